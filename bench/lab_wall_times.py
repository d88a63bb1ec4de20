"""Wall time of every solutions notebook on the embedded default, one after the other.

    .venv/bin/python bench/lab_wall_times.py            # SMOKE runs (about 10 minutes in all)
    .venv/bin/python bench/lab_wall_times.py --full     # full runs as well (about 50 minutes more)

Each notebook runs in a fresh kernel with its outputs in a temporary folder (never in parallel: on
2 cores two jobs run several times slower each). Prints a table and writes
outputs/bench/lab_wall_times.json.
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


def time_notebook(path: Path, smoke: bool) -> dict:
    """Run one notebook; its wall time and whether any check failed."""
    from tools.notebooks import cell_outputs_text, execute_notebook

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        notebook = execute_notebook(
            path, None, smoke=smoke, timeout=3600, extra_env={"FTKIT_OUTPUTS": out}
        )
        seconds = time.perf_counter() - start
    text = cell_outputs_text(notebook)
    return {
        "lab": path.stem,
        "mode": "smoke" if smoke else "full",
        "seconds": round(seconds, 1),
        "pass": text.count("[PASS]"),
        "fail": text.count("[FAIL]"),
    }


def main() -> int:
    from utils.lab.results import format_table

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="also run every lab in full")
    parser.add_argument(
        "--labs", nargs="*", help="only these notebooks (e.g. 01_in_context_learning)"
    )
    args = parser.parse_args()
    notebooks = sorted((ROOT / "solutions").glob("*.ipynb"))
    if args.labs:
        notebooks = [p for p in notebooks if p.stem in args.labs]
    rows = []
    for smoke in [True, False] if args.full else [True]:
        for path in notebooks:
            rows.append(time_notebook(path, smoke))
            print(f"[bench] {rows[-1]}", flush=True)
    print(format_table(rows, ["lab", "mode", "seconds", "pass", "fail"]))
    write_result("lab_wall_times", {"machine": machine(), "runs": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
