"""Golden-file tests of what the grader writes: the class gradebook, a student's feedback (graded,
lower-is-better, invalid) and Gradescope's results.json, from fixed results. Regenerate the files
after an intended change with ``FTKIT_UPDATE_GOLDEN=1 pytest tests/test_grading_outputs.py`` and
review the diff."""

import json
import os
from pathlib import Path

import pytest

from grading.outputs import feedback_markdown, gradescope_results, write_gradebook
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


# --- the files an LMS imports -------------------------------------------------------------------

ROSTER = """Student,ID,SIS User ID,SIS Login ID,Section,student
    Points Possible,,,,,
"Smith, Alice",101,S001,asmith,Sec 1,alice
"Jones, Bob",102,S002,bjones,Sec 1,bob
"Lee, Carol",103,S003,clee,Sec 2,carol
"=cmd, Dave",104,S004,dave,Sec 2,dave
"""


def lms_results():
    """The golden results, plus alice's second (worse) hand-in of the same lab and a zip too
    broken to name anyone but through its file name; erin is graded but not on the roster."""
    extra = [
        {**graded("03b_lora_peft", "alice", 0.0, 0.2), "submission": "resubmitted.zip"},
        {**invalid("03b_lora_peft", "dave (from file name)", "not a readable zip file")},
        graded("03b_lora_peft", "erin", 0.0, 0.5),
        {"lab": "03b_lora_peft", "student": "frank", "status": "timeout", "score": 0.0},
    ]
    return RESULTS + extra


def test_the_lms_files_match_their_golden_files(tmp_path):
    from grading.lms import export_for_lms

    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    export = export_for_lms(
        lms_results(), tmp_path, roster, {"03b_lora_peft": "Lab 3B: LoRA with PEFT (12345)"}
    )
    check_golden("gradebook_canvas.csv", export.canvas.read_text(encoding="utf-8"))
    check_golden("scores.csv", export.scores.read_text(encoding="utf-8"))
    assert export.not_on_roster == ["erin", "mallory"] and export.not_final == ["frank"]


def test_the_canvas_file_keeps_the_best_verdict_and_leaves_missing_grades_blank(tmp_path):
    import csv

    from grading.lms import export_for_lms

    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    export = export_for_lms(lms_results(), tmp_path, roster)
    rows = list(csv.DictReader(open(export.canvas, encoding="utf-8")))
    assert rows[0]["Student"] == "    Points Possible" and rows[0]["03b_lora_peft"] == "100.0"
    by_login = {r["SIS Login ID"]: r for r in rows[1:]}
    alice_best = graded("03b_lora_peft", "alice", 0.0, 0.652)["score"]
    assert float(by_login["asmith"]["03b_lora_peft"]) == alice_best  # not the 0.2 resubmission
    assert by_login["bjones"]["03b_lora_peft"] == ""  # bob handed in Lab 05 only: left as it is
    assert by_login["dave"]["03b_lora_peft"] == "0.0"  # a broken zip is a 0, named by its file
    assert by_login["dave"]["Student"] == "'=cmd, Dave"  # roster text stays inert
    assert set(by_login) == {"asmith", "bjones", "clee", "dave"}  # erin: reported, not added


def test_without_a_roster_the_kit_id_is_the_login_and_a_bad_roster_names_its_line(tmp_path):
    import csv

    from grading.lms import export_for_lms, read_roster

    export = export_for_lms(RESULTS, tmp_path)
    rows = list(csv.DictReader(open(export.canvas, encoding="utf-8")))
    assert [r["SIS Login ID"] for r in rows[1:]] == ["alice", "bob", "carol", "mallory"]
    bad = tmp_path / "bad.csv"
    bad.write_text("student,SIS Login ID\nalice,a\n,b\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.csv:3: the 'student' cell is empty"):
        read_roster(bad)
    bad.write_text("student\nalice\nalice\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.csv:3: student 'alice' is on the roster twice"):
        read_roster(bad)
    bad.write_text("name,email\nx,y\n", encoding="utf-8")
    with pytest.raises(ValueError, match="needs a 'student' column"):
        read_roster(bad)
    canvas_as_exported = tmp_path / "canvas.csv"  # no 'student' column: SIS Login ID is the id
    canvas_as_exported.write_text(ROSTER.replace(",student\n", "\n"), encoding="utf-8")
    assert sorted(read_roster(canvas_as_exported)) == ["asmith", "bjones", "clee", "dave"]
