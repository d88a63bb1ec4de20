"""A private held-out split measured on real hand-ins: the reference and a student who trained on
the public held-out split, each graded on the shipped held-out split and on a private one.

    .venv/bin/python bench/private_heldout.py --reference REF.zip --cheater CHEAT.zip [--lab 02]

REF.zip: the lab's solution run to the end (its submission). CHEAT.zip: the same run with the
shipped held-out rows added to the training split (``FTKIT_DATA`` pointing at a copy of ``data/``
whose ``train.jsonl`` has them), as a student who opened the file would. Makes the private file
and the recalibrated rubric with ``grading/heldout.py``'s functions, grades both hand-ins with
``grading.run.grade_batch`` on the shipped split (the shipped rubric) and on the private one (the
new rubric), and writes outputs/bench/private_heldout_<lab>.json.
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


def graded(zip_path: Path, lab: str, out: Path, heldout: Path | None, rubric: Path | None) -> dict:
    """The grader's verdict on one hand-in: before, after, chance and points."""
    from grading.run import grade_batch

    result = grade_batch([zip_path], out, lab=lab, heldout=heldout, rubric=rubric, force=True)[0]
    if result["status"] != "graded":
        raise SystemExit(f"{zip_path.name} was not graded: {result['reason']}")
    metric = result["metric"]
    return {
        "before": round(result["before"][metric], 4),
        "after": round(result["after"][metric], 4),
        "chance": result.get("chance"),
        "score": result["score"],
        "max_score": result["max_score"],
    }


def lab_test_score(zip_path: Path) -> float | None:
    """The test-split score the lab's own run recorded beside its zip (``results.json``), if
    there: a split both hand-ins saw none of."""
    import json

    results = zip_path.parent / "results.json"
    if not results.is_file():
        return None
    after = json.loads(results.read_text()).get("after", {})
    return round(next(iter(after.values())), 4) if after else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--cheater", type=Path, required=True)
    parser.add_argument("--lab", default="02")
    parser.add_argument("--seed", default="bench: not a secret", help="the private split's seed")
    args = parser.parse_args()

    from grading.heldout import calibrate, write_private_heldout
    from grading.rubric import load_rubric, resolve_lab

    lab = resolve_lab(args.lab)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        private = Path(tmp) / "private"
        heldout, report = write_private_heldout(lab, args.seed, private)
        rubric_path, _ = calibrate(lab, heldout, args.reference, private)
        rubric = load_rubric(lab, rubric_path)
        hand_ins = {"reference": args.reference, "cheater": args.cheater}
        rows = {
            who: {
                "shipped": graded(path, lab, Path(tmp) / f"{who}-public", None, None),
                "private": graded(path, lab, Path(tmp) / f"{who}-private", heldout, rubric_path),
                "lab_test_after": lab_test_score(path),
            }
            for who, path in hand_ins.items()
        }
    result = {
        "lab": lab,
        "private_split": {**report, "shared_shape_count": len(report["shared_shapes"])},
        "hand_ins": rows,
        "rubric": {
            "shipped": load_rubric(lab).to_dict() | {"calibration": None},
            "private": rubric.to_dict() | {"calibration": None},
        },
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(),
    }
    write_result(f"private_heldout_{lab}", result)
    for who, scores in rows.items():
        print(f"{who:10s} the lab's test split: {scores['lab_test_after']}")
        for where, s in scores.items():
            if where == "lab_test_after":
                continue
            print(
                f"{who:10s} {where:8s} before {s['before']:.3f} after {s['after']:.3f} "
                f"score {s['score']:g}/{s['max_score']:g}"
            )


if __name__ == "__main__":
    main()
