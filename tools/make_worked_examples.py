"""Rebuild the capstone's worked examples from the upstream repositories (checked out locally):
python tools/make_worked_examples.py --sib200 PATH/sib-200 --e2e PATH/e2e-dataset

- ``cyrillic_langid``: SIB-200's sentences in six languages written in Cyrillic. Each sentence
  (``index_id``) appears once, in one language, dealt round-robin after a seeded shuffle, so no
  translation of a test sentence is in training; SIB-200's own train/dev/test split is kept.
- ``e2e_nlg``: the first reference of each distinct input of the E2E development set.
"""

import argparse
import csv
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "worked_examples"
LANGUAGES = {
    "rus_Cyrl": "Russian",
    "ukr_Cyrl": "Ukrainian",
    "bel_Cyrl": "Belarusian",
    "bul_Cyrl": "Bulgarian",
    "mkd_Cyrl": "Macedonian",
    "srp_Cyrl": "Serbian",
}
SEED = 0


def read_tsv(path: Path) -> dict[str, str]:
    """index_id -> text of one SIB-200 split file."""
    with open(path, encoding="utf-8", newline="") as fh:
        return {row["index_id"]: row["text"] for row in csv.DictReader(fh, delimiter="\t")}


def build_langid(sib200: Path) -> None:
    folder = OUT / "cyrillic_langid"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    for split in ("train", "dev", "test"):
        texts = {
            code: read_tsv(sib200 / "data" / "annotated" / code / f"{split}.tsv")
            for code in LANGUAGES
        }
        ids = sorted(texts["rus_Cyrl"], key=int)
        rng.shuffle(ids)
        codes = list(LANGUAGES)
        with open(folder / f"{split}.tsv", "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
            writer.writerow(["index_id", "language", "text"])
            for i, index in enumerate(ids):
                code = codes[i % len(codes)]
                writer.writerow([index, LANGUAGES[code], texts[code][index]])
        print(f"cyrillic_langid/{split}.tsv: {len(ids)} sentences")


def build_e2e(e2e: Path) -> None:
    with open(e2e / "devset.csv", encoding="utf-8", newline="") as fh:
        first: dict[str, str] = {}
        for row in csv.DictReader(fh):
            first.setdefault(row["mr"], row["ref"])
    path = OUT / "e2e_nlg" / "restaurants.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["mr", "ref"])
        writer.writerows(first.items())
    print(f"e2e_nlg/restaurants.csv: {len(first)} inputs")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sib200", type=Path, help="a checkout of github.com/dadelani/sib-200")
    parser.add_argument("--e2e", type=Path, help="a checkout of github.com/tuetschek/e2e-dataset")
    args = parser.parse_args()
    if not (args.sib200 or args.e2e):
        parser.error("give --sib200 and/or --e2e")
    if args.sib200:
        build_langid(args.sib200)
    if args.e2e:
        build_e2e(args.e2e)


if __name__ == "__main__":
    sys.exit(main())
