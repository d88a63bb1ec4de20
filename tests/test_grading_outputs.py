"""Golden-file tests of what the grader writes: the class gradebook, a student's feedback (graded,
lower-is-better, invalid) and Gradescope's results.json, from fixed results. Regenerate the files
after an intended change with ``FTKIT_UPDATE_GOLDEN=1 pytest tests/test_grading_outputs.py`` and
review the diff."""

import json
import os
from pathlib import Path

import pytest

from grading.report import feedback_markdown, gradescope_results, write_gradebook
from grading.rubric import load_rubric, score

GOLDEN = Path(__file__).parent / "golden"


def graded(lab, student, before, after, extra=None, items=135):
    rubric = load_rubric(lab)
    metric = rubric.metric
    return {
        "lab": lab,
        "student": student,
        "status": "graded",
        "reason": "",
        "metric": metric,
        "higher_is_better": rubric.higher_is_better,
        "before": {metric: before, **(extra or {}).get("before", {})},
        "after": {metric: after, **(extra or {}).get("after", {})},
        "heldout": {"items": items, "sha256": "0" * 16},
        "submission": f"submission_{lab}_{student}.zip",
        "sha256": "ab" * 32,
        **score(rubric, before, after),
    }


def invalid(lab, student, reason):
    return {
        "lab": lab,
        "student": student,
        "status": "invalid",
        "score": 0.0,
        "reason": reason,
        "submission": f"submission_{lab}_{student}.zip",
        "sha256": "cd" * 32,
    }


RESULTS = [
    graded(
        "03b_lora_peft",
        "alice",
        0.0,
        0.652,
        {"after": {"field_accuracy": {"actor": 0.8, "action": 0.9, "date": 1.0, "place": 0.95}}},
    ),
    graded(
        "05_continual_pretraining",
        "bob",
        11.59,
        8.52,
        {
            "before": {"general_perplexity": 16.57, "domain_blocks": 24},
            "after": {"general_perplexity": 18.76, "domain_blocks": 24},
        },
        items=231,
    ),
    graded("01_in_context_learning", "carol", 0.55, 0.61),
    invalid(
        "02_selective_finetuning",
        "mallory",
        "'classifier/model.bin': pickle-based files are refused",
    ),
]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("FTKIT_UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} is missing: run with FTKIT_UPDATE_GOLDEN=1 once and review it"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def test_the_gradebook_matches_its_golden_file(tmp_path):
    check_golden(
        "gradebook.csv",
        write_gradebook(RESULTS, tmp_path / "gradebook.csv").read_text(encoding="utf-8"),
    )


@pytest.mark.parametrize(
    "index, name",
    [(0, "feedback_graded.md"), (1, "feedback_lower_is_better.md"), (3, "feedback_invalid.md")],
)
def test_feedback_matches_its_golden_file(index, name):
    check_golden(name, feedback_markdown(RESULTS[index], "chart.png"))


def test_gradescope_results_match_their_golden_file():
    check_golden(
        "gradescope_results.json", json.dumps(gradescope_results(RESULTS), indent=2) + "\n"
    )
