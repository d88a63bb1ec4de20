"""Instructor demo, offline on a CPU: train a short Lab 03B reference adapter on the embedded model,
export it as a student submission, add a few deliberately bad submissions, grade them all with
``grading/run.py`` on the held-out split, and print the class table and where the feedback is.

Run through ``python3 tools/kit.py demo`` (which sets up the environment first). ``--steps`` sets
the reference run's training steps (default: one epoch). The console shows one progress bar and a
summary per stage; everything the libraries print (the trainer's logs, Unsloth's notices, dataset
bars, warnings, the grading workers' output) goes to ``<out>/demo.log``.
"""

import argparse
import json
import os
import shutil
import sys
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LAB = "03b_lora_peft"


@contextmanager
def libraries_to_log(path: Path):
    """Send both output streams to ``path`` at the file-descriptor level (Python and C output,
    and what child processes inherit); yield ``(terminal, bars)``: the real stdout and stderr, for
    the demo's own lines and progress bars."""
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(1), "w", buffering=1)
    bars = os.fdopen(os.dup(2), "w", buffering=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as log:
        os.dup2(log.fileno(), 1), os.dup2(log.fileno(), 2)
        try:
            yield terminal, bars
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            for stream in (terminal, bars):
                stream.close()
            for fd in saved:
                os.close(fd)


def step_bar(stream):
    """A trainer callback drawing one progress bar (steps, the last logged loss) on ``stream``."""
    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    class StepBar(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.bar = tqdm(  # position 0: the trainer's own bar, open too, writes to the log
                total=state.max_steps, desc="training", unit="step", file=stream, position=0
            )

        def on_step_end(self, args, state, control, **kwargs):
            self.bar.update(1)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{logs['loss']:.3f}")

        def on_train_end(self, args, state, control, **kwargs):
            self.bar.close()

    return StepBar()


def train_reference(steps: int, folder: Path, bars=None) -> dict:
    """A short LoRA run of Lab 03B (same helpers as the lab); returns run_info, loss and config.
    ``bars``: a stream to draw the training's progress bar on."""
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
    trainer = sft.build_trainer(model, tokenizer, dataset, settings)
    if bars is not None:
        trainer.add_callback(step_bar(bars))
    history = sft.train(trainer)
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
        "steps": history["global_steps"],
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
    inbox, log = args.out / "inbox", args.out / "demo.log"
    budget = "one epoch" if args.steps < 0 else f"{args.steps} steps"
    with libraries_to_log(log) as (terminal, bars):
        say = lambda text: print(f"[demo] {text}", file=terminal)  # noqa: E731
        say(f"1/3 training a reference adapter for Lab 03B ({budget}, embedded model, CPU)")
        run = train_reference(args.steps, args.out / "reference", bars)
        say(
            f"    {run['steps']} steps in {run['seconds']:.0f} s, training loss (first and last "
            f"logged) {run['loss'][0]:.3f} -> {run['loss'][-1]:.3f}"
        )
        say("2/3 exporting it as student 'ref-student', plus three broken submissions")
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
        zips = sorted(inbox.glob("*.zip"))
        say(f"    {len(zips)} zips in {inbox} ({good.stat().st_size / 1e6:.1f} MB each)")
        say(f"3/3 grading {len(zips)} submissions on the held-out split")
        graded_at = time.perf_counter()
        results = grade_batch(zips, args.out / "grading", heldout=args.heldout, progress_file=bars)
        say(f"    graded in {time.perf_counter() - graded_at:.0f} s")
    print()
    print_table(results)
    print(f"\ngradebook: {args.out / 'grading' / 'gradebook.csv'}")
    print(f"feedback:  {args.out / 'grading' / 'feedback'}")
    print(f"results:   {args.out / 'grading' / 'results'}")
    print(f"full log:  {log} (the trainer's and libraries' output)")
    print(f"wall time: {time.perf_counter() - start:.0f} s")
    graded = [r for r in results if r["status"] == "graded"]
    return 0 if len(graded) == 1 and graded[0]["student"] == "ref-student" else 1


if __name__ == "__main__":
    sys.exit(main())
