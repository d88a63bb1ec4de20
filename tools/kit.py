"""Set up the kit and run it: ``python3 tools/kit.py demo`` or ``python3 tools/kit.py test``.

Needs only Python >= 3.10 with pip and venv. It makes ``.venv`` (once), installs the pinned CPU stack
(again only when a requirements file changed), converts the embedded model once into ``.cache``,
then runs the instructor demo or the test suite. Safe to run again: the second time is fast.
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
    pip = [venv_python(), "-m", "pip", "install", "--disable-pip-version-check"]
    run(*pip, "-r", REQUIREMENTS)
    run(*pip, "--no-deps", "-r", NO_DEPS)
    run(*pip, "--no-deps", "-e", ROOT)
    STAMP.write_text(install_fingerprint())
    return venv_python()


def main() -> int:
    commands = {
        "setup": [],
        "demo": ["-m", "utils.demo"],
        "test": ["-m", "pytest", "-q"],
        "check": ["-m", "utils.envcheck"],
    }
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(f"usage: python3 tools/kit.py {{{'|'.join(commands)}}} [extra args]", file=sys.stderr)
        return 2
    python = ensure_environment()
    if not commands[sys.argv[1]]:
        return 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([str(python), *commands[sys.argv[1]], *sys.argv[2:]], cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
