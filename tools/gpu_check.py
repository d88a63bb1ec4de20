"""The kit's GPU branches, checked on a CUDA machine: ``python3 tools/kit.py gpu-check``.

CPU CI cannot reach them: the dtype chosen by compute capability, fp16 with loss scaling and bf16,
the 4-bit load through bitsandbytes, Unsloth's GPU path, and the grader with its base on the GPU.
Each runs on a tiny random Llama built here (the embedded tokenizer; nothing is downloaded) and
the whole check takes a few minutes. On a machine without a GPU it says so and lists what it
would check. Prints a table and exits 1 when a check fails.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402


@dataclass(frozen=True)
class Check:
    name: str
    what: str
    min_capability: tuple[int, int] = (0, 0)  # below it the check does not apply


CHECKS = (
    Check("dtype", "the kit picks bf16 on compute capability >= 8.0, fp16 below"),
    Check("fp16 step", "a LoRA step in fp16 autocast with a loss scaler: finite loss and grads"),
    Check("bf16 step", "a LoRA step in bf16 autocast: finite loss and grads", (8, 0)),
    Check("4-bit load", "bitsandbytes NF4 load (Linear4bit layers, finite logits), as QLoRA"),
    Check("unsloth", "Unsloth's GPU path: load, LoRA on every linear layer, one SFT step"),
    Check("grader", "the grader with its base on the GPU reproduces a capstone claim"),
)


def plan(capability: tuple[int, int] | None) -> list[tuple[Check, str | None]]:
    """Each check with the reason it is skipped (None: it runs) on a GPU of ``capability`` (None:
    no GPU, nothing runs)."""
    rows = []
    for check in CHECKS:
        if capability is None:
            rows.append((check, "needs a CUDA GPU"))
        elif capability < check.min_capability:
            need = ".".join(map(str, check.min_capability))
            rows.append((check, f"needs compute capability >= {need}"))
        else:
            rows.append((check, None))
    return rows


def table(rows: list[dict]) -> str:
    """A fixed-width pass/fail table of ``{"check", "result", "seconds", "detail"}`` rows."""
    lines = [f"{'check':<12} {'result':<6} {'s':>6}  detail", "-" * 78]
    for row in rows:
        seconds = "" if row["seconds"] is None else f"{row['seconds']:.1f}"
        lines.append(f"{row['check']:<12} {row['result']:<6} {seconds:>6}  {row['detail']}")
    return "\n".join(lines)


def tiny_folder(folder: Path) -> Path:
    """A tiny random Llama with the embedded tokenizer, saved (fp32) to ``folder``."""
    from utils.runtime.models import build_tiny_model, load_embedded_tokenizer

    tokenizer = load_embedded_tokenizer()
    build_tiny_model(tokenizer, num_layers=2, hidden_size=64).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def check_dtype(folder: Path) -> str:
    from utils.runtime.hardware import choose_dtype

    capability = torch.cuda.get_device_capability(0)
    dtype = choose_dtype("cuda", capability)
    wanted = torch.bfloat16 if capability >= (8, 0) else torch.float16
    assert dtype == wanted, f"chose {dtype} on compute capability {capability}"
    return f"compute capability {capability[0]}.{capability[1]} -> {str(dtype).split('.')[-1]}"


def lora_step(folder: Path, dtype: torch.dtype) -> str:
    """One LoRA step on the GPU under ``dtype`` autocast (fp16 with a gradient scaler)."""
    from transformers import AutoModelForCausalLM

    from utils.train.params import add_peft_lora

    model = add_peft_lora(AutoModelForCausalLM.from_pretrained(folder).cuda(), r=4, alpha=8)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    ids = torch.randint(0, model.config.vocab_size, (2, 16), device="cuda")
    model.train()
    with torch.autocast("cuda", dtype=dtype):
        loss = model(input_ids=ids, labels=ids).loss
    scaler.scale(loss).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert torch.isfinite(loss) and grads, "no finite loss or no gradients"
    scaler.step(optimizer)
    scaler.update()
    return f"loss {loss.item():.3f}, {len(grads)} adapter gradients" + (
        f", loss scale {scaler.get_scale():.0f}" if dtype == torch.float16 else ""
    )


def check_4bit(folder: Path) -> str:
    import bitsandbytes as bnb

    from utils.runtime.hardware import choose_dtype
    from utils.runtime.models import load_with_transformers

    dtype = choose_dtype("cuda", torch.cuda.get_device_capability(0))
    model, tokenizer = load_with_transformers(str(folder), dtype, load_in_4bit=True)
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    ids = tokenizer("Hello there", return_tensors="pt").input_ids.to(model.device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert layers and torch.isfinite(logits.float()).all(), "no 4-bit layers or non-finite logits"
    return f"{len(layers)} Linear4bit layers, {torch.cuda.max_memory_allocated() / 1e6:.0f} MB peak"


def check_unsloth(folder: Path) -> str:
    from utils.data.own_data import TaskConfig, task_messages, to_examples
    from utils.runtime.models import load_model, model_backend
    from utils.runtime.profiles import custom_profile
    from utils.train import sft
    from utils.train.params import add_peft_lora, linear_layer_names

    model, tokenizer = load_model(custom_profile(str(folder), device="cuda"), backend="unsloth")
    assert model_backend(model) == "unsloth", "not loaded through Unsloth"
    settings = sft.SFTSettings(
        r=4, alpha=8, target_modules=linear_layer_names(model), max_steps=1, batch_size=2
    )
    model = add_peft_lora(model, **settings.lora_arguments())
    task = TaskConfig(kind="classification", instruction="Spam or ham?", labels=("ham", "spam"))
    rows = [(f"r:{i}", {"text": f"message {i}", "label": ("ham", "spam")[i % 2]}) for i in range(4)]
    examples, _ = to_examples(rows, task)
    dataset = sft.chat_dataset(examples, tokenizer, lambda e: task_messages(task, e))
    history = sft.train(sft.build_trainer(model, tokenizer, dataset, settings))
    assert history["global_steps"] == 1, history
    return f"one step, loss {history['loss'][-1]:.3f}, dtype {next(model.parameters()).dtype}"


def check_grader(folder: Path) -> str:
    from grading.capstone import general_score
    from grading.worker import grade_bytes
    from utils.data.own_data import TaskConfig, examples_fingerprint, to_examples, write_examples
    from utils.eval import harness
    from utils.eval.task_eval import evaluate_task
    from utils.lab.submission import make_submission
    from utils.runtime.models import load_with_transformers, model_fingerprint
    from utils.train.params import add_peft_lora

    base, tokenizer = load_with_transformers(str(folder), torch.float32)
    base = base.cuda().eval()
    fingerprint = model_fingerprint(base)
    task = TaskConfig(kind="classification", instruction="Spam or ham?", labels=("ham", "spam"))
    rows = [(f"r:{i}", {"text": f"message {i}", "label": ("ham", "spam")[i % 2]}) for i in range(6)]
    examples, _ = to_examples(rows, task)
    out = folder / "submission"
    general_items = harness.general_set(1)  # the capstone's general-ability row
    before = evaluate_task(base, tokenizer, task, examples, 4, progress=False)["accuracy"]
    general_before = general_score(base, tokenizer, general_items)
    adapted = add_peft_lora(base, r=4, alpha=8)
    after = evaluate_task(adapted, tokenizer, task, examples, 4, progress=False)["accuracy"]
    general_after = general_score(adapted, tokenizer, general_items)
    adapted.save_pretrained(str(out / "adapter"))
    base = adapted.unload()
    claim = {
        "task": {"kind": "classification", "instruction": task.instruction,
                 "labels": list(task.labels), "fields": []},
        "primary": "accuracy", "max_new_tokens": 4,
        "before": {"accuracy": before}, "after": {"accuracy": after},
        "test_fingerprint": examples_fingerprint(examples),
        "general": {"per_benchmark": 1, "before": general_before, "after": general_after},
    }  # fmt: skip
    (out / "claimed.json").write_text(json.dumps(claim))
    write_examples(out / "test.jsonl", examples)
    artifacts = {name: out / name for name in ("adapter", "claimed.json", "test.jsonl")}
    zip_path = make_submission(
        "06_your_task", "gpu-check", artifacts, {"model_fingerprint": fingerprint}, str(folder), out
    )
    state = {
        "model": base,
        "tokenizer": tokenizer,
        "base_id": str(folder),
        "fingerprint": fingerprint,
    }
    result = grade_bytes(zip_path.read_bytes(), state, "06_your_task", None, None)
    assert result["status"] == "graded", result.get("reason")
    reproduction = result["submission_details"]["reproduction"]
    assert reproduction["reproduced"], reproduction
    return f"graded {result['score']:.0f}/{result['max_score']:.0f}, claim reproduced on the GPU"


RUNNERS: dict[str, Callable[[Path], str]] = {
    "dtype": check_dtype,
    "fp16 step": lambda folder: lora_step(folder, torch.float16),
    "bf16 step": lambda folder: lora_step(folder, torch.bfloat16),
    "4-bit load": check_4bit,
    "unsloth": check_unsloth,
    "grader": check_grader,
}


def main() -> int:
    capability = torch.cuda.get_device_capability(0) if torch.cuda.is_available() else None
    planned = plan(capability)
    if capability is None:
        print("gpu-check needs a CUDA GPU (this machine has none); on one it would check:")
        for check, _ in planned:
            print(f"  - {check.name}: {check.what}")
        return 0
    print(f"gpu-check on {torch.cuda.get_device_name(0)} (compute capability {capability})")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = tiny_folder(Path(tmp) / "tiny-llama")
        for check, skipped in planned:
            if skipped:
                rows.append({"check": check.name, "result": "skip", "seconds": None,
                             "detail": skipped})  # fmt: skip
                continue
            start = time.perf_counter()
            try:
                detail, result = RUNNERS[check.name](folder), "PASS"
            except Exception as exc:  # report every branch, not only the first failure
                detail, result = f"{type(exc).__name__}: {exc}"[:200], "FAIL"
                traceback.print_exc()
            rows.append({"check": check.name, "result": result,
                         "seconds": time.perf_counter() - start, "detail": detail})  # fmt: skip
    print(table(rows))
    return 1 if any(row["result"] == "FAIL" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
