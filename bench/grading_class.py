"""A class graded end to end through the grader's batch path, on the embedded model.

    .venv/bin/python bench/grading_class.py [--lab 02] [--students 100]
    .venv/bin/python bench/grading_class.py --lab 03b --students 5   # slow: read the projection

Lab 02: each submission is the embedded model's last block, final norm and a fresh head,
perturbed with its own seed — what Lab 02 hands in (the scores are near chance: timing is the
point). Lab 03B: PEFT LoRA adapters (r = 16, all linear layers) with random B matrices, the worst
case for grading (an untrained adapter answers with up to the token limit).

Grades the class with ``grading.run.grade_batch`` and one worker (the base's "before" score
included), and prints the wall time for the class, per submission, the projection to 100
students, and one submission's steps measured in-process (validate, prepare — the frozen prefix
or the merge —, evaluate, restore). Writes outputs/bench/grading_class_<lab>.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine, write_result  # noqa: E402

LABS = {"02": "02_selective_finetuning", "03b": "03b_lora_peft"}


def lab02_artifact(model, seed: int, folder: Path) -> dict:
    """A Lab 02 classifier: the last block, final norm and a new head, perturbed by ``seed``."""
    import torch

    from utils.train.classifier import save_classifier

    decoder = model.get_decoder()
    torch.manual_seed(seed)
    tensors = {
        f"model.layers.{len(decoder.layers) - 1}.{n}": p.detach() + 1e-3 * torch.randn_like(p)
        for n, p in decoder.layers[-1].named_parameters()
    }
    tensors |= {"model.norm.weight": decoder.norm.weight.detach().clone()}
    tensors |= {
        "lm_head.weight": 0.02 * torch.randn(2, model.config.hidden_size),
        "lm_head.bias": torch.zeros(2),
    }
    save_classifier(folder / "classifier", tensors, ("ham", "spam"))
    return {"classifier": folder / "classifier"}


def lab03b_artifact(model, seed: int, folder: Path) -> dict:
    """A Lab 03B adapter: PEFT LoRA r = 16 on all linear layers, random B (an untrained-looking
    adapter that does not stop early: the slow case)."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    from utils.train.params import ALL_LINEAR

    torch.manual_seed(seed)
    config = LoraConfig(r=16, lora_alpha=32, target_modules=list(ALL_LINEAR))
    peft_model = get_peft_model(copy.deepcopy(model), config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 1e-3)
    peft_model.save_pretrained(str(folder / "adapter"))
    return {"adapter": folder / "adapter"}


def make_class(lab: str, students: int, inbox: Path) -> list[Path]:
    """``students`` submission zips for ``lab`` in ``inbox``."""
    from utils.lab.submission import make_submission
    from utils.runtime.models import load_model, model_fingerprint
    from utils.runtime.profiles import get_profile

    model, _ = load_model("cpu", backend="transformers")
    info = {"model_fingerprint": model_fingerprint(model), "seed": 0, "config": {}, "packages": {}}
    make = lab02_artifact if lab == LABS["02"] else lab03b_artifact
    zips = []
    for seed in range(students):
        folder = inbox / f"s{seed:03d}"
        artifacts = make(model, seed, folder)
        zips.append(
            make_submission(
                lab, f"student{seed:03d}", artifacts, info, get_profile("cpu").model_id, folder
            )
        )
    return zips


def breakdown(lab: str, zip_path: Path) -> dict:
    """One submission's steps, in-process, after the class's shared work is done."""
    from grading import artifacts
    from grading.peft_types import check_adapter
    from grading.rubric import load_rubric
    from grading.validate import check_classifier, load_submission
    from grading.worker import load_base

    model, tokenizer, base_id = load_base("embedded")
    rubric = load_rubric(lab)
    rows, _ = artifacts.load_heldout(rubric, None)
    data, steps = zip_path.read_bytes(), {}
    start = time.perf_counter()
    submission = load_submission(data, lab, base_id)
    if lab == LABS["02"]:
        labels = ("ham", "spam")
        config, tensors = check_classifier(
            submission.files,
            artifacts.param_shapes(model),
            artifacts.linear_shapes(model),
            model.config.hidden_size,
            labels,
            rubric.checks,
        )
        depth = artifacts.first_trained_block(model, tensors)
    else:
        check_adapter(submission.files, artifacts.linear_shapes(model), rubric.checks)
    steps["validate"] = time.perf_counter() - start
    if lab == LABS["02"]:
        start = time.perf_counter()
        artifacts.frozen_prefix(model, tokenizer, rows, depth)
        steps["frozen prefix, once per class"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        with artifacts.base_restored(model):
            if lab == LABS["02"]:
                from utils.train.classifier import apply_classifier

                cache = artifacts.frozen_prefix(model, tokenizer, rows, depth)
                apply_classifier(model, tensors, config)
                steps["prepare"] = time.perf_counter() - start
                start = time.perf_counter()
                artifacts.cached_classifier_score(model, cache, rows, rubric, depth)
            else:
                from peft import PeftModel

                for name in ("adapter_config.json", "adapter_model.safetensors"):
                    Path(folder, name).write_bytes(submission.files["adapter/" + name])
                merged = PeftModel.from_pretrained(model, folder).merge_and_unload()
                steps["prepare"] = time.perf_counter() - start
                start = time.perf_counter()
                artifacts.ADAPTER_METRICS[rubric.dataset](merged, tokenizer, rows, rubric)
            steps["evaluate"] = time.perf_counter() - start
            start = time.perf_counter()
        steps["restore"] = time.perf_counter() - start
    return {k: round(v, 3) for k, v in steps.items()}


def main() -> int:
    from grading.run import grade_batch

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lab", choices=sorted(LABS), default="02")
    parser.add_argument("--students", type=int, default=100)
    args = parser.parse_args()
    lab = LABS[args.lab]
    with tempfile.TemporaryDirectory() as tmp:
        print(f"[bench] making {args.students} {lab} submissions ...", flush=True)
        zips = make_class(lab, args.students, Path(tmp) / "inbox")
        start = time.perf_counter()
        results = grade_batch(zips, Path(tmp) / "out", progress=True)
        seconds = time.perf_counter() - start
        statuses = sorted({r["status"] for r in results})
        steps = breakdown(lab, zips[0])
    per_student = seconds / args.students
    result = {
        "lab": lab,
        "students": args.students,
        "class_seconds": round(seconds, 1),
        "seconds_per_submission": round(per_student, 2),
        "projected_100_minutes": round(100 * per_student / 60, 1),
        "statuses": statuses,
        "one_submission_steps_seconds": steps,
        "machine": machine(),
    }
    print(
        f"{lab}: {args.students} submissions graded in {seconds:.0f} s with one worker "
        f"({per_student:.2f} s each, statuses {statuses}); a class of 100: "
        f"{result['projected_100_minutes']} min"
    )
    print(f"one submission, in-process: {steps}")
    write_result(f"grading_class_{args.lab}", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
