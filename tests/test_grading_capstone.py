"""Grading the capstone: a faithful claim is reproduced, a tampered one is flagged, a swapped test
split or a bad claim is invalid, and the instructor's held-out file is scored when given."""

import json

import pytest
from grading_helpers import BASE_ID, adapter_folder, pack, tiny_grading_state, unpack

from grading.capstone import evaluation_key, grade_capstone
from grading.rubric import load_rubric
from grading.worker import base_state, grade_bytes
from utils.data.own_data import TaskConfig, examples_fingerprint, to_examples, write_examples
from utils.lab.capstone_report import Report, write_markdown, write_pdf
from utils.lab.submission import make_submission

LAB = "06_your_task"
TASK = TaskConfig(kind="classification", instruction="Spam or ham?", labels=("ham", "spam"))
ROWS = [
    {
        "text": f"message {i} " + ("win cash" if i % 3 == 0 else "see you"),
        "label": "spam" if i % 3 == 0 else "ham",
    }
    for i in range(9)
]


@pytest.fixture(scope="module")
def state(tokenizer):
    return tiny_grading_state(tokenizer)


@pytest.fixture(scope="module")
def capstone_zip(tokenizer, state, tmp_path_factory):
    """A capstone submission whose claimed scores are what the grader's own path measures."""
    out = tmp_path_factory.mktemp("capstone")
    examples, _ = to_examples([(f"d:{i}", r) for i, r in enumerate(ROWS)], TASK)
    adapter = adapter_folder(tokenizer, out / "adapter", trained=True)
    files = {"adapter/" + p.name: p.read_bytes() for p in adapter.iterdir()}
    claim = {
        "task": {
            "kind": "classification",
            "instruction": TASK.instruction,
            "labels": list(TASK.labels),
            "fields": [],
        },
        "primary": "accuracy",
        "max_new_tokens": 4,
        "before": {"accuracy": 0.0},
        "after": {"accuracy": 0.0},
        "test_fingerprint": examples_fingerprint(examples),
        "general": {"per_benchmark": 1, "before": 0.0, "after": 0.0},
    }
    rubric = load_rubric(LAB)
    write_examples(out / "test.jsonl", examples)
    files |= {
        "claimed.json": json.dumps(claim).encode(),
        "test.jsonl": (out / "test.jsonl").read_bytes(),
    }
    graded = grade_capstone(state, files, rubric, None, base_state(state))
    measured = graded["submission_details"]["reproduction"]["measured"]
    claim["before"]["accuracy"], claim["after"]["accuracy"] = measured["before"], measured["after"]
    claim["general"] |= graded["submission_details"]["reproduction"]["general"]["measured"]
    (out / "claimed.json").write_text(json.dumps(claim))
    report = Report("Report")
    report.text("Some discussion. " * 80)
    write_pdf(report, out / "report.pdf")
    write_markdown(report, out / "report.md")
    artifacts = {
        name: out / name
        for name in ("adapter", "claimed.json", "test.jsonl", "report.pdf", "report.md")
    }
    info = {"model_fingerprint": state["fingerprint"]}
    return make_submission(LAB, "student-1", artifacts, info, BASE_ID, out).read_bytes()


def grade(data, state, heldout=None):
    return grade_bytes(data, state, LAB, heldout, None)


def test_a_faithful_claim_is_reproduced_and_scored(capstone_zip, state):
    result = grade(capstone_zip, state)
    assert result["status"] == "graded", result.get("reason")
    reproduction = result["submission_details"]["reproduction"]
    assert reproduction["reproduced"] and result["reason"] == ""
    assert result["parts"]["reproduced result"] == 40 and result["parts"]["report"] == 20
    assert result["max_score"] == 100 and result["heldout"]["source"] == "submitted"


def test_a_tampered_claim_is_flagged_not_accepted(capstone_zip, state):
    manifest, files = unpack_bytes(capstone_zip)
    claim = json.loads(files["claimed.json"])
    claim["after"]["accuracy"] = min(1.0, claim["after"]["accuracy"] + 0.3)
    files["claimed.json"] = json.dumps(claim).encode()
    result = grade(pack(manifest, files), state)
    assert result["status"] == "graded"
    assert not result["submission_details"]["reproduction"]["reproduced"]
    assert result["parts"]["reproduced result"] == 0 and result["reason"].startswith(
        "not reproduced: claimed"
    )


def test_the_general_row_is_re_measured_and_required(capstone_zip, state):
    manifest, files = unpack_bytes(capstone_zip)
    claim = json.loads(files["claimed.json"])
    general = json.loads(files["claimed.json"])["general"]
    assert general["per_benchmark"] == 1 and 0 <= general["after"] <= 1
    tampered = {**claim, "general": {**general, "before": (general["before"] + 0.5) % 1}}
    result = grade(pack(manifest, {**files, "claimed.json": json.dumps(tampered).encode()}), state)
    assert result["status"] == "graded" and result["parts"]["reproduced result"] == 0
    assert "claimed general before/after" in result["reason"]
    missing = {k: v for k, v in claim.items() if k != "general"}
    result = grade(pack(manifest, {**files, "claimed.json": json.dumps(missing).encode()}), state)
    assert result["status"] == "graded" and result["parts"]["reproduced result"] == 0
    assert "no general-ability row" in result["reason"]


def test_a_swapped_test_split_or_a_bad_claim_is_invalid(capstone_zip, state):
    manifest, files = unpack_bytes(capstone_zip)
    lines = files["test.jsonl"].decode().splitlines()
    swapped = {**files, "test.jsonl": ("\n".join(lines[1:]) + "\n").encode()}
    result = grade(pack(manifest, swapped), state)
    assert result["status"] == "invalid" and "fingerprint differs" in result["reason"]
    claim = json.loads(files["claimed.json"])
    for change, message in (
        ({"max_new_tokens": 10**6}, "max_new_tokens"),
        ({"primary": "chrf"}, "primary metric"),
        ({"task": {**claim["task"], "kind": "poetry"}}, "task.kind"),
        ({"task": {**claim["task"], "labels": ["x" * 500, "y"]}}, "task.labels"),
        ({"after": {"accuracy": float("nan")}}, "finite number"),
        ({"general": {"per_benchmark": 10**6, "before": 0.5, "after": 0.5}}, "per_benchmark"),
        ({"general": {"per_benchmark": 1, "before": 2.0, "after": 0.5}}, "[0, 1]"),
        ({"general": [0.5]}, "'general' must be an object"),
    ):
        bad = {**files, "claimed.json": json.dumps({**claim, **change}).encode()}
        result = grade(pack(manifest, bad), state)
        assert result["status"] == "invalid" and message in result["reason"], change


def test_the_instructors_heldout_file_is_scored_and_no_report_costs_points(
    capstone_zip, state, tmp_path
):
    manifest, files = unpack_bytes(capstone_zip)
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text("".join(json.dumps(r) + "\n" for r in ROWS[:6]))
    files.pop("report.pdf")
    result = grade(pack(manifest, files), state, heldout)
    assert result["status"] == "graded" and result["heldout"] == {
        "items": 6,
        "source": "instructor",
    }
    assert result["parts"]["report"] == 0
    assert result["submission_details"]["reproduction"]["reproduced"]


def test_the_base_evaluation_cache_key_covers_the_task():
    examples, _ = to_examples([("d:0", ROWS[0])], TASK)
    other = TaskConfig(kind="classification", instruction="Other?", labels=("ham", "spam"))
    assert evaluation_key(TASK, examples, 4) != evaluation_key(other, examples, 4)
    assert evaluation_key(TASK, examples, 4) != evaluation_key(TASK, examples, 5)


def unpack_bytes(data):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s.zip"
        path.write_bytes(data)
        return unpack(path)
