"""Instructor demo: run Lab 01 end to end on the embedded model (offline, CPU) and print its table.

Run through ``python3 tools/kit.py demo`` (which sets up the environment first). Pass ``--smoke``
for a one-minute version.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils.notebooks import execute_notebook  # noqa: E402
from utils.results import format_table, lab_output_dir  # noqa: E402

LAB = "01_in_context_learning"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="10 test items per dataset (about a minute)")
    args = parser.parse_args()
    out = lab_output_dir(LAB)
    start = time.perf_counter()
    print(f"[demo] running solutions/{LAB}.ipynb on the embedded model ({'SMOKE' if args.smoke else 'full'})...")
    execute_notebook(ROOT / "solutions" / f"{LAB}.ipynb", out / "executed.ipynb", smoke=args.smoke, echo=True)
    baseline = json.loads((out / "baseline.json").read_text())["baseline"]
    rows = [{"dataset": name, "n_test": b["n_test"], "chance": b["chance"], "zero-shot (before)": b["zero_shot"],
             "best prompting (after)": b["best_prompting"], "best setting": b["best_setting"]}
            for name, b in baseline.items()]
    print("\nLab 01 — in-context learning on the test split (accuracy)")
    print(format_table(rows, list(rows[0])))
    print(f"\nplots:     {out / 'accuracy_vs_k.png'}\n           {out / 'before_after.png'}")
    print(f"results:   {out / 'results.json'}\nnotebook:  {out / 'executed.ipynb'}")
    print(f"wall time: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
