"""A private held-out split and a rubric calibrated on it, for a real course:

    python grading/heldout.py --lab 02 --seed <secret> --out private/ --reference REF.zip

The shipped ``data/<dataset>/heldout.jsonl`` is in every student's clone. This writes
``private/<lab>.heldout.jsonl``: fresh rows from the kit's generators, in shapes no shipped split
uses, chosen and filled from your secret (``--seed``, or ``FTKIT_HELDOUT_SEED`` to keep it out
of the shell's history), with the shipped held-out split's size and balance; and
``<lab>.heldout.report.json``, the checks (shapes and texts shared with shipped splits: 0).
With ``--reference`` (the hand-in of your reference run, e.g. the solution notebook's
submission zip), it grades that hand-in on the new file and writes ``<lab>.rubric.json``, the
lab's rubric with its thresholds moved so the reference keeps full marks. ``--heldout FILE``
instead of ``--seed`` calibrates on a file of your own (Lab 05's documents, say).
Grade with ``grading/run.py --heldout private/<lab>.heldout.jsonl --rubric
private/<lab>.rubric.json``, or build a Gradescope package with both (``grading/autograder.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grading.rubric import RubricError, load_rubric, recalibrated, resolve_lab, score  # noqa: E402
from utils.data.private_heldout import GENERATED, private_heldout, shape_report  # noqa: E402
from utils.runtime.storage import write_json_atomic  # noqa: E402

SEED_VARIABLE = "FTKIT_HELDOUT_SEED"


def write_private_heldout(lab: str, secret: str, out: Path) -> tuple[Path, dict]:
    """Write ``<lab>.heldout.jsonl`` and its report to ``out``; return the file and the report."""
    rubric = load_rubric(lab)
    if rubric.dataset not in GENERATED:
        why = (
            "is graded on each student's own test split; there is no held-out file to make"
            if rubric.artifact == "capstone"
            else f"is graded on {rubric.dataset!r} rows the kit does not generate; write your "
            "own held-out file (see grading/README.md) and calibrate on it with --heldout FILE"
        )
        raise ValueError(f"{lab} {why}")
    rows = private_heldout(rubric.dataset, secret)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{lab}.heldout.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    report = shape_report(rubric.dataset, rows)
    write_json_atomic(out / f"{lab}.heldout.report.json", report)
    return path, report


def describe(report: dict) -> str:
    """One paragraph an instructor reads before grading with the file."""

    def shares(balance: dict) -> str:
        return ", ".join(f"{k} {v:.3f}" for k, v in balance.items())

    return (
        f"{report['rows']} rows of {report['dataset']} in {report['shapes']} reserved shapes "
        f"(the shipped held-out split: {report['public_heldout_rows']}); "
        f"balance {shares(report['balance'])} "
        f"(shipped held-out: {shares(report['public_heldout_balance'])}); shapes shared with a "
        f"shipped split: {len(report['shared_shapes'])}, texts shared: {report['shared_texts']}; "
        f"a row's nearest shipped row overlaps it by {report['nearest_shipped_overlap']:.3f} "
        "(word-trigram Jaccard, mean; the shipped held-out split against the training split: "
        f"{report['public_heldout_nearest_train_overlap']:.3f})"
    )


def calibrate(
    lab: str,
    heldout: Path,
    reference: Path,
    out: Path,
    base: str = "embedded",
    base_id: str | None = None,
) -> tuple[Path, dict]:
    """Grade the reference hand-in on ``heldout`` with the lab's rubric and write
    ``<lab>.rubric.json``, recalibrated so it keeps full marks; return the file and the
    reference's result."""
    from grading.run import grade_batch

    rubric = load_rubric(lab)
    results = grade_batch(
        [reference],
        out / f"calibration-{lab}",
        base=base,
        base_id=base_id,
        lab=lab,
        heldout=heldout,
        force=True,
    )
    result = results[0]
    if result["status"] != "graded":
        raise RubricError(
            f"the reference hand-in was not graded ({result['status']}): {result['reason']}"
        )
    measured = {
        "before": result["before"][rubric.metric],
        "after": result["after"][rubric.metric],
        "chance": result.get("chance"),
    }
    new = recalibrated(rubric, measured, f"{heldout.name} ({result['heldout']['items']} items)")
    path = out / f"{lab}.rubric.json"
    write_json_atomic(path, new.to_dict())
    check = score(new, measured["before"], measured["after"], measured["chance"])
    if check["score"] < new.max_score:  # recalibrated() guarantees it; say so if it ever fails
        raise RubricError(f"the reference scores {check['score']} / {new.max_score}")
    return path, {**measured, "score": check["score"], "max_score": new.max_score}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--lab", required=True, help="the lab, e.g. 02_selective_finetuning (or 02)"
    )
    parser.add_argument("--out", type=Path, default=Path("private"), help="folder to write")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--seed", help=f"your secret (default: ${SEED_VARIABLE})")
    source.add_argument("--heldout", type=Path, help="calibrate on this file instead of making one")
    parser.add_argument(
        "--reference", type=Path, help="the reference hand-in: grade it and write the rubric"
    )
    parser.add_argument("--base", default="embedded", help="as grading/run.py --base")
    parser.add_argument("--base-id", help="as grading/run.py --base-id")
    args = parser.parse_args(argv)
    try:
        lab = resolve_lab(args.lab)
        heldout = args.heldout
        if heldout is None:
            secret = args.seed or os.environ.get(SEED_VARIABLE)
            if not secret:
                parser.error(f"give --seed SECRET (or set {SEED_VARIABLE}), or --heldout FILE")
            heldout, report = write_private_heldout(lab, secret, args.out)
            print(f"[heldout] {heldout}: {describe(report)}")
        if args.reference is None:
            print(
                f"[heldout] next: calibrate the rubric on it with --reference <your reference "
                f"hand-in> (then grade with --heldout {heldout} --rubric "
                f"{args.out / f'{lab}.rubric.json'})"
            )
            return 0
        path, measured = calibrate(lab, heldout, args.reference, args.out, args.base, args.base_id)
    except (ValueError, RubricError, OSError) as exc:
        print(f"[heldout] {exc}", file=sys.stderr)
        return 2
    print(
        f"[heldout] {path}: the reference scores before {measured['before']:.4f}, after "
        f"{measured['after']:.4f} on {heldout.name}, {measured['score']:g} / "
        f"{measured['max_score']:g} with this rubric. Grade with: grading/run.py zips/ "
        f"--heldout {heldout} --rubric {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
