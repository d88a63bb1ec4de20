"""Rebuild Lab 09's benchmark subsets from the upstream repositories (checked out locally):
python tools/make_benchmarks.py --blimp PATH --piqa PATH --hellaswag PATH --truthfulqa PATH
--xcopa PATH

Each subset is a seeded random sample (seed 0) of one upstream file, written as
``data/benchmarks/<name>/items.jsonl`` in the fields its harness task (``task.yaml`` beside it)
reads; ``id`` is the item's position in the upstream file, so every item can be traced back.

With a PIQA or XCOPA checkout it also checks the shipped items against the benchmark's own other
split (PIQA's train — or its test split when the checkout lacks the train file —, XCOPA-it's
validation), which the kit does not ship, by runs of words as
Lab 09's contamination check does, and records what it found in ``train_test_overlap.json``.
"""

import argparse
import bz2
import json
import random
import subprocess
import sys
from pathlib import Path

from utils.data.jsonl import read_jsonl, write_jsonl
from utils.eval.harness import word_ngrams

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "benchmarks"
SEED = 0
BLIMP_PHENOMENA = (
    "anaphor_number_agreement",
    "determiner_noun_agreement_2",
    "irregular_past_participle_verbs",
    "regular_plural_subject_verb_agreement_1",
)
SIZES = {"blimp": 30, "piqa": 150, "hellaswag": 100, "truthfulqa_mc1": 50, "xcopa_it": 100}


def sample(rows: list[dict], n: int, seed: int = SEED) -> list[dict]:
    """``n`` rows drawn without replacement, in the drawn order (so the first k are a random
    sample too), each with its upstream ``id``."""
    picked = random.Random(seed).sample(range(len(rows)), n)
    return [{"id": i, **rows[i]} for i in picked]


def write(name: str, rows: list[dict]) -> None:
    write_jsonl(OUT / name / "items.jsonl", rows)
    print(f"{name}/items.jsonl: {len(rows)} items")


def build_blimp(checkout: Path) -> None:
    drawn = [
        sample(read_jsonl(checkout / "data" / f"{phenomenon}.jsonl"), SIZES["blimp"], SEED + k)
        for k, phenomenon in enumerate(BLIMP_PHENOMENA)
    ]
    rows = []
    for group in zip(*drawn, strict=True):  # the phenomena in turn: any first k items mix them
        for phenomenon, row in zip(BLIMP_PHENOMENA, group, strict=True):
            rows.append(
                {
                    "id": f"{phenomenon}/{row['id']}",
                    "phenomenon": phenomenon,
                    "sentence_good": row["sentence_good"],
                    "sentence_bad": row["sentence_bad"],
                }
            )
    write("blimp", rows)


def build_piqa(checkout: Path) -> None:
    data = checkout / "piqa" / "data"
    items = read_jsonl(data / "valid.jsonl")
    labels = (data / "valid-labels.lst").read_text().split()
    assert len(items) == len(labels)
    rows = [{**item, "label": int(label)} for item, label in zip(items, labels, strict=True)]
    write(
        "piqa",
        [
            {k: r[k] for k in ("id", "goal", "sol1", "sol2", "label")}
            for r in sample(rows, SIZES["piqa"])
        ],
    )


def build_hellaswag(checkout: Path) -> None:
    lines = bz2.decompress((checkout / "hellaswag_val_full.txt.bz2").read_bytes()).decode()
    lines = lines.split("\n")
    rows = [
        {"query": lines[i], "label": int(lines[i + 1]), "choices": lines[i + 2 : i + 6]}
        for i in range(0, len(lines) - 5, 6)
    ]
    assert len(rows) == 10042, len(rows)
    write("hellaswag", sample(rows, SIZES["hellaswag"]))


def build_truthfulqa(checkout: Path) -> None:
    items = json.loads((checkout / "data" / "v0" / "mc_task.json").read_text())
    rows = []
    for item in items:
        choices = list(item["mc1_targets"])
        rows.append(
            {
                "question": item["question"],
                "choices": choices,
                "label": list(item["mc1_targets"].values()).index(1),
            }
        )
    write("truthfulqa_mc1", sample(rows, SIZES["truthfulqa_mc1"]))


def build_xcopa(checkout: Path) -> None:
    rows = read_jsonl(checkout / "data" / "it" / "test.it.jsonl")
    keep = ("premise", "choice1", "choice2", "question", "label")
    write(
        "xcopa_it",
        [{"id": r["id"], **{k: r[k] for k in keep}} for r in sample(rows, SIZES["xcopa_it"])],
    )


OVERLAP_WORDS = 8  # as Lab 09's contamination check
OVERLAP_FIELDS = {"piqa": ("goal", "sol1", "sol2"), "xcopa_it": ("premise", "choice1", "choice2")}


def commit_of(checkout: Path) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def split_overlap(name: str, other: list[dict], where: str, checkout: Path) -> dict:
    """The shipped items of ``name`` that share a run of words with the benchmark's other split
    (field by field: a goal, a solution, a premise, a choice)."""

    fields = OVERLAP_FIELDS[name]
    index: set = set()
    for row in other:
        for field in fields:
            index |= word_ngrams(row[field], OVERLAP_WORDS)
    shipped = read_jsonl(OUT / name / "items.jsonl")
    flagged = []
    for item in shipped:
        shared = sorted(set().union(*(word_ngrams(item[f], OVERLAP_WORDS) for f in fields)) & index)
        if shared:
            flagged.append({"id": item["id"], "shared": " ".join(shared[0])})
    checkable = sum(any(word_ngrams(item[f], OVERLAP_WORDS) for f in fields) for item in shipped)
    return {
        "benchmark": name,
        "items": len(shipped),
        "checkable": checkable,
        "against": f"{where} ({len(other)} items) at commit {commit_of(checkout)}",
        "flagged": len(flagged),
        "examples": flagged[:5],
    }


def record_overlap(checks: list[dict]) -> None:
    path = OUT / "train_test_overlap.json"
    record = json.loads(path.read_text()) if path.is_file() else {"n_words": OVERLAP_WORDS}
    record["n_words"] = OVERLAP_WORDS
    by_name = {c["benchmark"]: c for c in record.get("checks", [])} | {
        c["benchmark"]: c for c in checks
    }
    record["checks"] = [by_name[n] for n in sorted(by_name)]
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    for c in checks:
        print(f"{c['benchmark']}: {c['flagged']} of {c['items']} share {OVERLAP_WORDS} words")


def overlap_piqa(checkout: Path) -> dict:
    """Against PIQA's train split where the checkout has it, else its (unlabelled) test split."""
    data = checkout / "piqa" / "data"
    other = "train.jsonl" if (data / "train.jsonl").is_file() else "tests.jsonl"
    return split_overlap("piqa", read_jsonl(data / other), f"piqa/data/{other}", checkout)


def overlap_xcopa(checkout: Path) -> dict:
    validation = read_jsonl(checkout / "data" / "it" / "val.it.jsonl")
    return split_overlap("xcopa_it", validation, "data/it/val.it.jsonl", checkout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    builders = {
        "blimp": (build_blimp, "github.com/alexwarstadt/blimp"),
        "piqa": (build_piqa, "github.com/ybisk/ybisk.github.io"),
        "hellaswag": (build_hellaswag, "github.com/klosax/hellaswag_text_data"),
        "truthfulqa": (build_truthfulqa, "github.com/sylinrl/TruthfulQA"),
        "xcopa": (build_xcopa, "github.com/cambridgeltl/xcopa"),
    }
    for name, (_, repo) in builders.items():
        parser.add_argument(f"--{name}", type=Path, help=f"a checkout of {repo}")
    args = parser.parse_args()
    chosen = [name for name in builders if getattr(args, name)]
    if not chosen:
        parser.error("give at least one checkout")
    for name in chosen:
        builders[name][0](getattr(args, name))
    overlaps = {"piqa": overlap_piqa, "xcopa": overlap_xcopa}
    record_overlap([overlaps[n](getattr(args, n)) for n in chosen if n in overlaps])


if __name__ == "__main__":
    sys.exit(main())
