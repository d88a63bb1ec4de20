"""The README's main command: the instructor demo (train, export, grade), here with 2 training
steps and graded on the first 24 rows of the held-out split (the whole path, less generation)."""

import json
import subprocess
import sys

import pytest

from utils.runtime.storage import REPO_ROOT


@pytest.mark.notebook
def test_instructor_demo_trains_exports_and_grades(tmp_path):
    rows = (REPO_ROOT / "data" / "news_events" / "heldout.jsonl").read_text().splitlines()[:24]
    (tmp_path / "heldout.jsonl").write_text("\n".join(rows) + "\n")
    run = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "tools" / "demo.py"),
            "--steps",
            "2",
            "--out",
            str(tmp_path / "demo"),
            "--heldout",
            str(tmp_path / "heldout.jsonl"),
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
    assert (tmp_path / "demo" / "grading" / "gradebook.csv").is_file()
    assert len(list((tmp_path / "demo" / "grading" / "feedback").glob("*.md"))) == 4
    results = [json.loads(p.read_text()) for p in (tmp_path / "demo" / "grading").glob("results/*")]
    graded = [r for r in results if r["student"] == "ref-student"]
    assert len(graded) == 1 and graded[0]["heldout"]["items"] == 24  # the rows it was given
