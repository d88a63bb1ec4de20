"""Grading the capstone (Lab 06): re-run the student's before and after, and check the claim.

A capstone submission carries its own task (``claimed.json``: kind, instruction, labels or
fields, token budget, and the scores the student measured), its test split (``test.jsonl``,
unless the instructor holds the test data), its adapter, predictions and report. The grader

1. rebuilds the test examples from ``test.jsonl`` and checks they are the split the student's
   numbers were measured on (fingerprint);
2. scores the base model and the base with the adapter merged, with the lab's own
   ``evaluate_task`` — the same prompts, token budget and metric;
3. re-measures the general-ability row (the kit's fixed items of five general benchmarks,
   ``utils.eval.harness.general_set``) on the base and on the merged adapter;
4. calls the result **reproduced** when every re-measured score — task and general, before and
   after — is within the rubric's ``tolerance`` of the claimed one (on a 0–1 scale: chrF is
   divided by 100); a mismatch is reported with the numbers, never silently accepted;
5. scores the gain on the instructor's held-out file when one is given (``--heldout``), else on
   the submitted test split.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from grading.artifacts import TRIAL_ROWS, cached_result, submitted_adapter_merged
from grading.rubric import Rubric, score
from grading.validate import SubmissionError, parse_json
from utils.data.jsonl import jsonl_records
from utils.data.own_data import (
    TASK_KINDS,
    TaskConfig,
    examples_fingerprint,
    read_records,
    to_examples,
)
from utils.eval import harness
from utils.eval.metrics import majority_share
from utils.eval.task_eval import PRIMARY_METRIC, evaluate_task

MAX_INSTRUCTION_CHARS = 4000
MAX_LABELS, MAX_LABEL_CHARS = 100, 100
MAX_TEST_EXAMPLES = 5000
REPORT_MIN_BYTES = 1000


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SubmissionError(f"claimed.json: {where} must be a finite number")
    return float(value)


def _strings(value, where: str, limit: int) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > limit:
        raise SubmissionError(f"claimed.json: {where} must be a list of at most {limit} strings")
    if not all(isinstance(v, str) and 0 < len(v) <= MAX_LABEL_CHARS for v in value):
        raise SubmissionError(
            f"claimed.json: every entry of {where} must be a string of 1-{MAX_LABEL_CHARS} chars"
        )
    return tuple(value)


def read_claim(files: dict[str, bytes]):
    """(task, claim) from ``claimed.json``, every field type- and range-checked."""

    claim = parse_json(files, "claimed.json")
    spec = claim.get("task")
    if not isinstance(spec, dict) or spec.get("kind") not in TASK_KINDS:
        raise SubmissionError(f"claimed.json: task.kind must be one of {TASK_KINDS}")
    instruction = spec.get("instruction")
    if not isinstance(instruction, str) or not 0 < len(instruction) <= MAX_INSTRUCTION_CHARS:
        raise SubmissionError(
            f"claimed.json: task.instruction must be a string of 1-{MAX_INSTRUCTION_CHARS} chars"
        )
    task = TaskConfig(
        kind=spec["kind"],
        instruction=instruction,
        labels=_strings(spec.get("labels", []), "task.labels", MAX_LABELS),
        fields=_strings(spec.get("fields", []), "task.fields", MAX_LABELS),
    )
    if task.kind == "classification" and len(task.labels) < 2:
        raise SubmissionError("claimed.json: a classification task needs at least two labels")
    if task.kind == "extraction" and not task.fields:
        raise SubmissionError("claimed.json: an extraction task needs its fields")
    budget = claim.get("max_new_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= 256:
        raise SubmissionError("claimed.json: max_new_tokens must be an integer from 1 to 256")
    primary = PRIMARY_METRIC[task.kind]
    if claim.get("primary") != primary:
        raise SubmissionError(
            f"claimed.json: the primary metric of a {task.kind} task is {primary}"
        )
    for side in ("before", "after"):
        if not isinstance(claim.get(side), dict):
            raise SubmissionError(f"claimed.json: '{side}' must be an object of scores")
        _number(claim[side].get(primary), f"{side}.{primary}")
    if not isinstance(claim.get("test_fingerprint"), str):
        raise SubmissionError("claimed.json: test_fingerprint must be a string")
    read_general(claim)
    return task, claim


def read_general(claim: dict) -> dict | None:
    """The claim's general-ability row, checked ({per_benchmark, before, after}; None if absent)."""
    general = claim.get("general")
    if general is None:
        return None
    if not isinstance(general, dict):
        raise SubmissionError("claimed.json: 'general' must be an object")
    n = general.get("per_benchmark")
    limit = harness.GENERAL_MAX_PER_BENCHMARK
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= limit:
        raise SubmissionError(f"claimed.json: general.per_benchmark must be an integer 1-{limit}")
    sides = {side: _number(general.get(side), f"general.{side}") for side in ("before", "after")}
    if not all(0 <= v <= 1 for v in sides.values()):
        raise SubmissionError("claimed.json: general.before and general.after must be in [0, 1]")
    return {"per_benchmark": n, **sides}


def general_score(model, tokenizer, items: dict) -> float:
    """The share of the general items right (each benchmark's headline metric)."""
    verdicts = harness.pooled(harness.general_verdicts(model, tokenizer, items))
    return sum(verdicts) / len(verdicts)


def base_general(model, tokenizer, per_benchmark: int, fingerprint: str) -> float:
    """The base model's general score, cached per (base state, items per benchmark)."""

    def evaluate() -> dict:
        items = harness.general_set(per_benchmark)
        return {"score": general_score(model, tokenizer, items)}

    return cached_result(f"general-{fingerprint}-{per_benchmark}", evaluate)["score"]


def examples_from_jsonl(data: bytes, task, where: str) -> list[dict]:
    """Test examples from chat JSONL bytes (the lab's ``test.jsonl``); the first bad line is a
    SubmissionError naming it."""

    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise SubmissionError(f"{where} is not UTF-8 text") from None
    if sum(1 for line in lines if line.strip()) > MAX_TEST_EXAMPLES:
        raise SubmissionError(f"{where}: more than {MAX_TEST_EXAMPLES} test examples")
    examples, problems = to_examples(jsonl_records(lines, where), task)
    if problems:
        raise SubmissionError(problems[0])
    if not examples:
        raise SubmissionError(f"{where} holds no examples")
    return examples


def check_answers(task, examples: list[dict], where: str) -> None:
    """Every classification answer must be one of the task's labels."""
    if task.kind == "classification":
        unknown = sorted({e["answer"] for e in examples} - set(task.labels))
        if unknown:
            raise SubmissionError(f"{where}: answers {unknown[:5]} are not among the task's labels")


def submitted_test_split(files: dict[str, bytes], task, claim: dict) -> list[dict] | None:
    """The submitted test split, checked against the claim's fingerprint (None if not handed in)."""

    if "test.jsonl" not in files:
        return None
    examples = examples_from_jsonl(files["test.jsonl"], task, "test.jsonl")
    check_answers(task, examples, "test.jsonl")
    if examples_fingerprint(examples) != claim["test_fingerprint"]:
        raise SubmissionError(
            "test.jsonl is not the split the claimed scores were measured on (fingerprint differs)"
        )
    return examples


def scale(task, value: float) -> float:
    """A primary score on a 0-1 scale (chrF is 0-100)."""
    return value / 100 if task.kind == "generation" else value


def evaluation_key(task, examples: list[dict], budget: int) -> str:
    """A hash of what an evaluation depends on besides the model: task, examples, token budget."""

    spec = json.dumps([task.kind, task.system_prompt(), task.labels, task.fields, budget])
    return hashlib.sha256((spec + examples_fingerprint(examples)).encode()).hexdigest()[:16]


def base_result(model, tokenizer, task, examples, budget: int, fingerprint: str) -> dict:
    """The base model's evaluation, cached per (base state, task, examples, budget)."""

    def evaluate() -> dict:
        result = evaluate_task(model, tokenizer, task, examples, budget, progress=False)
        return {k: v for k, v in result.items() if k in ("score", "primary", "outputs")}

    key = evaluation_key(task, examples, budget)
    return cached_result(f"before-capstone-{fingerprint}-{key}", evaluate)


def adapter_results(
    model, tokenizer, files, rubric: Rubric, task, budget, example_sets, general_items=None
) -> tuple[list, float | None]:
    """The submission's evaluation on each set of examples, and its general score on
    ``general_items`` (None without them), with its adapter merged once."""

    results = []
    with submitted_adapter_merged(model, files, rubric) as (merged, _):
        for examples in example_sets:
            result = evaluate_task(merged, tokenizer, task, examples, budget, progress=False)
            results.append({"score": result["score"], "primary": result["primary"]})
        general = general_score(merged, tokenizer, general_items) if general_items else None
    return results, general


def report_present(files: dict[str, bytes]) -> bool:
    """A PDF report (a real one: the PDF signature and some content) and its Markdown twin."""
    pdf = files.get("report.pdf", b"")
    return pdf.startswith(b"%PDF-") and len(pdf) >= REPORT_MIN_BYTES and "report.md" in files


def constant_answer_score(task, examples: list[dict]) -> float | None:
    """For classification, what always answering the most common label scores (None otherwise)."""
    if task.kind != "classification":
        return None
    return majority_share([e["answer"] for e in examples])


def mismatch(reproduction: dict | None) -> str:
    """The gradebook's reason when the claimed scores were not reproduced ("" otherwise)."""
    if reproduction is None:
        return "no test.jsonl handed in: the claimed scores could not be re-measured"
    if reproduction["reproduced"]:
        return ""
    general = reproduction["general"]
    if general is None:
        return "not reproduced: claimed.json has no general-ability row (Lab 06, section 5)"
    parts = []
    for what, row in (("", reproduction), ("general ", general)):
        claimed, measured = row["claimed"], row["measured"]
        parts.append(
            f"claimed {what}before/after {claimed['before']:.3f}/{claimed['after']:.3f}, "
            f"measured {measured['before']:.3f}/{measured['after']:.3f}"
        )
    return (
        f"not reproduced: {'; '.join(parts)} (tolerance {reproduction['tolerance']} on a 0-1 scale)"
    )


def grade_capstone(
    state: dict,
    files: dict,
    rubric: Rubric,
    heldout: Path | None,
    base_fp: str,
    trial: bool = False,
):
    """The result fields of one capstone submission (raises SubmissionError when invalid).
    ``trial``: a student's pre-check, every check and the adapter run on the first few submitted
    test examples, no reproduction (it needs the whole split)."""
    task, claim = read_claim(files)
    budget, primary = claim["max_new_tokens"], claim["primary"]
    submitted = submitted_test_split(files, task, claim)
    if trial:
        if submitted is None:  # to be graded on the instructor's file: check the adapter only
            with submitted_adapter_merged(state["model"], files, rubric):
                return {"heldout": {"items": 0, "source": "none"}}
        submitted, heldout = submitted[:TRIAL_ROWS], None
    instructor = None
    if heldout is not None:
        instructor, problems = to_examples(read_records(Path(heldout)), task)
        if problems or not instructor:
            raise RuntimeError(f"the held-out file {heldout} has bad rows: {problems[:3]}")
        check_answers(task, instructor, "the held-out file")
    if submitted is None and instructor is None:
        raise SubmissionError("test.jsonl is missing and no held-out file was given to the grader")
    model, tokenizer = state["model"], state["tokenizer"]
    sets = [s for s in (submitted, instructor) if s is not None]
    befores = [base_result(model, tokenizer, task, s, budget, base_fp) for s in sets]
    claimed_general = read_general(claim)
    reproducing = submitted is not None and not trial
    general_items = None
    if reproducing and claimed_general:
        general_items = harness.general_set(claimed_general["per_benchmark"])
    afters, general_after = adapter_results(
        model, tokenizer, files, rubric, task, budget, sets, general_items
    )
    reproduction = None
    if reproducing:
        claimed = (claim["before"][primary], claim["after"][primary])
        measured = (befores[0]["score"], afters[0]["score"])
        worst = max(abs(scale(task, c - m)) for c, m in zip(claimed, measured, strict=True))
        general = None
        if claimed_general:
            n = claimed_general["per_benchmark"]
            general_measured = (base_general(model, tokenizer, n, base_fp), general_after)
            general_claimed = (claimed_general["before"], claimed_general["after"])
            general_worst = max(
                abs(c - m) for c, m in zip(general_claimed, general_measured, strict=True)
            )
            general = {
                "per_benchmark": n,
                "claimed": dict(zip(("before", "after"), general_claimed, strict=True)),
                "measured": dict(zip(("before", "after"), general_measured, strict=True)),
                "largest_difference": round(general_worst, 4),
            }
            worst = max(worst, general_worst)
        reproduction = {
            "claimed": {"before": claimed[0], "after": claimed[1]},
            "measured": {"before": measured[0], "after": measured[1]},
            "general": general,
            "largest_difference": round(worst, 4),
            "tolerance": rubric.tolerance,
            "reproduced": general is not None and worst <= rubric.tolerance,
        }
    graded_on = sets[-1]
    before, after = scale(task, befores[-1]["score"]), scale(task, afters[-1]["score"])
    chance = constant_answer_score(task, graded_on)
    points = score(rubric, before, after, chance)
    extra = {
        "reproduced result": rubric.reproduced_points
        * bool(reproduction and reproduction["reproduced"]),
        "report": rubric.report_points * report_present(files),
    }
    points["parts"] |= extra
    points["part_max"] |= {
        "reproduced result": rubric.reproduced_points,
        "report": rubric.report_points,
    }
    points["score"] = round(sum(points["parts"].values()), 2)
    metric = f"{primary}/100" if task.kind == "generation" else primary  # on a 0-1 scale
    return {
        "reason": mismatch(reproduction),
        "metric": metric,
        "higher_is_better": True,
        "before": {metric: before},
        "after": {metric: after},
        "submission_details": {"task": task.kind, "reproduction": reproduction},
        "heldout": {"items": len(graded_on), "source": "instructor" if instructor else "submitted"},
        "chance": chance,
        **points,
    }
