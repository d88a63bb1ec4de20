"""Instructor demo, offline on a CPU: train a short Lab 03B reference adapter on the embedded model,
export it as a student submission, add a few deliberately bad submissions, grade them all with
``grading/run.py`` on the held-out split, and print the class table and where the feedback is.

Run through ``python3 tools/kit.py demo`` (which sets up the environment first). ``--steps`` sets
the reference run's training steps (default: one epoch).
"""

import argparse
import json
import shutil
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LAB = "03b_lora_peft"


def train_reference(steps: int, folder: Path) -> dict:
    """A short LoRA run of Lab 03B (same helpers as the lab); returns run_info, loss and config."""
    from utils.data.datasets import get_spec, load_split
    from utils.lab.results import run_info
    from utils.runtime.models import load_model, model_fingerprint
    from utils.train import sft
    from utils.train.params import add_peft_lora

    model, tokenizer = load_model("cpu")
    fingerprint = model_fingerprint(model)
    fields = get_spec("news_events").fields
    settings = sft.SFTSettings(r=16, alpha=32, learning_rate=1e-3, batch_size=8, max_steps=steps)
    model = add_peft_lora(model, **settings.lora_arguments())
    dataset = sft.chat_dataset(
        load_split("news_events", "train"), tokenizer, lambda r: sft.extraction_messages(r, fields)
    )
    history = sft.train(sft.build_trainer(model, tokenizer, dataset, settings))
    model.save_pretrained(str(folder / "adapter"))
    info = run_info(
        config=settings.to_dict(),
        seed=settings.seed,
        device="cpu",
        dtype="float32",
        model_fingerprint=fingerprint,
    )
    return {
        "info": info,
        "loss": history["loss"],
        "settings": settings.to_dict(),
        "seconds": history["seconds"],
    }


def bad_submissions(good: Path, inbox: Path) -> None:
    """Three broken copies of the good zip: a pickle file, a tampered adapter, another base
    model."""
    with zipfile.ZipFile(good) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(files["manifest.json"])

    def write(student: str, changes: dict, manifest_changes: dict) -> None:
        new = {
            **files,
            **changes,
            "manifest.json": json.dumps({**manifest, "student": student, **manifest_changes}),
        }
        with zipfile.ZipFile(
            inbox / f"submission_{LAB}_{student}.zip", "w", zipfile.ZIP_DEFLATED
        ) as archive:
            for name, data in new.items():
                archive.writestr(name, data)

    write("mallory", {"adapter/adapter_model.bin": b"\x80\x04K\x01."}, {})  # a pickle file
    write(
        "trent",
        {
            "adapter/adapter_config.json": files["adapter/adapter_config.json"].replace(
                b'"r": 16', b'"r": 8'
            )
        },
        {},
    )
    write(
        "oscar",
        {},
        {"base_model": {"id": manifest["base_model"]["id"], "fingerprint": "0123456789abcdef"}},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--steps",
        type=int,
        default=-1,
        help="training steps of the reference run (default: one epoch, 61 steps, about 3 minutes)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "demo", help="demo folder")
    parser.add_argument(
        "--heldout",
        type=Path,
        help="held-out JSONL to grade on (default: the kit's heldout split; the tests pass a few "
        "of its rows)",
    )
    args = parser.parse_args()
    from grading.run import grade_batch, print_table
    from utils.lab.submission import make_submission

    start = time.perf_counter()
    if args.out.exists():
        shutil.rmtree(args.out)
    inbox = args.out / "inbox"
    budget = "one epoch" if args.steps < 0 else f"{args.steps} steps"
    print(f"[demo] 1/3 training a reference adapter for Lab 03B ({budget}, embedded model, CPU)...")
    run = train_reference(args.steps, args.out / "reference")
    print(f"[demo]     {run['seconds']:.0f} s, loss {run['loss'][0]:.3f} -> {run['loss'][-1]:.3f}")
    print("[demo] 2/3 exporting it as student 'ref-student', plus three broken submissions...")
    good = make_submission(
        LAB,
        "ref-student",
        {"adapter": args.out / "reference" / "adapter"},
        run["info"],
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        inbox,
        training_config=run["settings"],
        loss=run["loss"],
    )
    bad_submissions(good, inbox)
    print(
        f"[demo] 3/3 grading {len(list(inbox.glob('*.zip')))} submissions on the held-out split..."
    )
    results = grade_batch(sorted(inbox.glob("*.zip")), args.out / "grading", heldout=args.heldout)
    print()
    print_table(results)
    print(f"\ngradebook: {args.out / 'grading' / 'gradebook.csv'}")
    print(f"feedback:  {args.out / 'grading' / 'feedback'}")
    print(f"results:   {args.out / 'grading' / 'results'}")
    print(f"wall time: {time.perf_counter() - start:.0f} s")
    graded = [r for r in results if r["status"] == "graded"]
    return 0 if len(graded) == 1 and graded[0]["student"] == "ref-student" else 1


if __name__ == "__main__":
    sys.exit(main())
