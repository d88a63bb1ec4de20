"""Build a Gradescope autograder for one lab: ``python grading/autograder.py --lab 03b_lora_peft
--heldout private/heldout.jsonl --out autograder.zip``.

The zip holds the kit as it is in this checkout (its tracked files), the instructor's held-out
file and rubric if given, and Gradescope's two entry points:
- ``setup.sh`` (run once when Gradescope builds the image): installs the pinned CPU stack with
  ``tools/kit.py setup``, converts the embedded model and caches the base model's score on the
  held-out file (``grading/run.py --prepare``), so no submission pays for either;
- ``run_autograder`` (run for each submission): ``grading/run.py --gradescope`` for this lab,
  which grades ``/autograder/submission`` and writes ``/autograder/results/results.json``.

``FTKIT_AUTOGRADER_ROOT`` (default ``/autograder``) and ``FTKIT_PYTHON`` (default the image's
``kit/.venv``) move both, so the package can be tried outside Gradescope. The resources each lab
needs (memory, time) are in ``grading/README.md``.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grading.rubric import load_rubric, resolve_lab  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
EXECUTABLE = 0o100755 << 16  # the zip's external attributes of an executable regular file

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
set -euo pipefail
apt-get update -q >/dev/null
apt-get install -y -q python3 python3-venv python3-pip >/dev/null
cd /autograder/source/kit
python3 tools/kit.py setup
.venv/bin/python grading/run.py --prepare {grading_args}
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this for each submission to lab {lab}: grades /autograder/submission and
# writes /autograder/results/results.json (one test per rubric part).
set -uo pipefail
ROOT="${{FTKIT_AUTOGRADER_ROOT:-/autograder}}"
KIT="$ROOT/source/kit"
PYTHON="${{FTKIT_PYTHON:-$KIT/.venv/bin/python}}"
cd "$KIT"
exec "$PYTHON" grading/run.py --gradescope --out "$ROOT/outputs" {grading_args} \\
    --timeout {timeout:g}
"""


def kit_files(root: Path = REPO_ROOT) -> list[str]:
    """The kit's tracked files as they are in this checkout (local edits included; outputs,
    caches and the virtual environment are not tracked)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=False)
    if listed.returncode:
        raise RuntimeError(f"{root} is not a git checkout of the kit: cannot list its files")
    return sorted(f for f in listed.stdout.decode().split("\0") if f and (root / f).is_file())


def build_autograder(
    lab: str,
    out: Path,
    heldout: Path | None = None,
    rubric: Path | None = None,
    base: str = "embedded",
    timeout: float = 900,
    max_memory_gb: float | None = None,
) -> Path:
    """Write the autograder zip for ``lab`` to ``out``; return its path."""
    lab = resolve_lab(lab)
    load_rubric(lab, rubric)  # an unusable rubric file fails here, not on Gradescope
    held = f"heldout{Path(heldout).suffix or '.jsonl'}" if heldout is not None else None

    def grading_args(private: str) -> str:
        args = ["--lab", shlex.quote(lab), "--base", shlex.quote(base)]
        args += ["--heldout", f'"{private}/{held}"'] if held else []
        args += ["--rubric", f'"{private}/rubric.json"'] if rubric is not None else []
        return " ".join(args)

    setup = SETUP.format(grading_args=grading_args("/autograder/source/private"))
    run = RUN.format(lab=lab, grading_args=grading_args("$ROOT/source/private"), timeout=timeout)
    if max_memory_gb:
        run = run.rstrip("\n") + f" --max-memory-gb {max_memory_gb:g}\n"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (("setup.sh", setup), ("run_autograder", run)):
            info = zipfile.ZipInfo(name)
            info.external_attr, info.compress_type = EXECUTABLE, zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
        for name in kit_files():
            archive.write(REPO_ROOT / name, f"kit/{name}")
        if heldout is not None:
            archive.write(heldout, f"private/{held}")
        if rubric is not None:
            archive.write(rubric, "private/rubric.json")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lab", required=True, help="the lab, e.g. 03b_lora_peft (or 03b)")
    parser.add_argument("--out", type=Path, default=Path("autograder.zip"), help="the zip to write")
    parser.add_argument("--heldout", type=Path, help="your private held-out file (recommended)")
    parser.add_argument("--rubric", type=Path, help="your rubric (default: the kit's)")
    parser.add_argument("--base", default="embedded", help="as grading/run.py --base")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per submission")
    parser.add_argument("--max-memory-gb", type=float, help="as grading/run.py --max-memory-gb")
    args = parser.parse_args(argv)
    path = build_autograder(
        args.lab, args.out, args.heldout, args.rubric, args.base, args.timeout, args.max_memory_gb
    )
    print(
        f"[autograder] {path} ({path.stat().st_size / 1e6:.1f} MB) for {resolve_lab(args.lab)}: "
        "upload it in Gradescope (Configure Autograder -> Zip file upload); the memory and time "
        "to set are in grading/README.md"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
