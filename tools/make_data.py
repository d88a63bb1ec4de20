"""Regenerate the bundled datasets from their seeded generators: python tools/make_data.py [NAME
...]"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils.data.datasets import REGISTRY, build_bundled, find_leaks, load_split  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", default=sorted(REGISTRY), help="datasets to rebuild")
    for name in parser.parse_args().names:
        paths = build_bundled(name)
        splits = {split: load_split(name, split, allow_heldout=True) for split in paths}
        leaks = find_leaks(splits)
        if leaks:
            raise SystemExit(f"{name}: {len(leaks)} texts appear in two splits, e.g. {leaks[0]}")
        print(name, {split: len(rows) for split, rows in splits.items()})


if __name__ == "__main__":
    main()
