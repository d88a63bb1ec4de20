"""Set up the kit and run it: ``python3 tools/kit.py demo`` or ``python3 tools/kit.py test``.

Needs only Python >= 3.10 with pip and venv. It makes ``.venv`` (once), installs the pinned CPU
stack (again only when a requirements file changed), converts the embedded model once into
``.cache``, then runs the instructor demo or the test suite. Safe to run again: the second time is
fast.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("FTKIT_VENV", ROOT / ".venv"))
REQUIREMENTS = ROOT / "requirements" / "cpu.txt"
NO_DEPS = ROOT / "requirements" / "no-deps.txt"
STAMP = VENV / ".ftkit-installed"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def install_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (REQUIREMENTS, NO_DEPS, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run(*args: str | Path) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT)


def ensure_environment() -> Path:
    """Create the virtual environment and install the pins, unless already done for these files."""
    if not venv_python().exists():
        print(f"[kit] creating virtual environment {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == install_fingerprint():
        return venv_python()
    print("[kit] installing the pinned CPU stack into .venv (a few minutes, once)...", flush=True)
    pip = [venv_python(), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run(*pip, "-r", REQUIREMENTS)
    run(*pip, "--no-deps", "-r", NO_DEPS)
    run(*pip, "--no-deps", "-e", ROOT)
    STAMP.write_text(install_fingerprint())
    print("[kit] environment ready", flush=True)
    return venv_python()


def test_workers() -> str:
    """pytest-xdist workers for this machine: one per core, at most one per 8 GB of RAM (a
    notebook run peaks at a few GB), at least one."""
    try:
        ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):  # no sysconf (Windows): cores decide
        ram_gb = 8.0 * (os.cpu_count() or 1)
    return str(max(1, min(os.cpu_count() or 1, int(ram_gb // 8))))


LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"

COMMANDS = {
    "setup": [],
    "demo": [["tools/demo.py"]],
    "heldout": [["grading/heldout.py"]],  # an instructor's private held-out split and rubric
    "test": [
        ["-m", "ruff", "check", "."],
        ["-m", "ruff", "format", "--check", "."],
        ["-c", LINT_IMPORTS],  # the import layers and no cycles (pyproject.toml)
        # one test at a time per worker: xdist's default hands each worker a quarter of its share
        # up front, which put every notebook run (sorted first) on the first worker
        ["-m", "pytest", "-q", "-n", test_workers(), "--dist", "load", "--maxschedchunk", "1"]
        + ["--durations=15"],
    ],
    "check": [["-m", "tools.envcheck"]],
    "gpu-check": [["tools/gpu_check.py"]],
}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(
            f"usage: python3 tools/kit.py {{{'|'.join(COMMANDS)}}} [extra args for the last step]",
            file=sys.stderr,
        )
        return 2
    python = ensure_environment()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    steps = COMMANDS[sys.argv[1]]
    for i, step in enumerate(steps):
        extra = sys.argv[2:] if i == len(steps) - 1 else []
        code = subprocess.run([str(python), *step, *extra], cwd=ROOT, env=env).returncode
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
