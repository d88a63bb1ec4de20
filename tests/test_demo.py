"""The README's main command: the instructor demo (train, export, grade), here with 2 training
steps."""

import subprocess
import sys

import pytest

from utils.runtime.storage import REPO_ROOT


@pytest.mark.notebook
def test_instructor_demo_trains_exports_and_grades(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "tools" / "demo.py"),
            "--steps",
            "2",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO_ROOT,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    table = run.stdout.split("| student")[1]
    assert "ref-student | graded" in table
    for student, reason in [
        ("mallory", "pickle-based files"),
        ("trent", "sha256 does not match"),
        ("oscar", "base model fingerprint"),
    ]:
        assert f"{student}" in table and reason in table
    assert (tmp_path / "grading" / "gradebook.csv").is_file()
    assert len(list((tmp_path / "grading" / "feedback").glob("*.md"))) == 4
