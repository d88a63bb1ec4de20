"""Rubrics (one JSON file per lab in ``grading/rubrics``) and the score they give."""

from __future__ import annotations

import json
from pathlib import Path

RUBRIC_DIR = Path(__file__).resolve().parent / "rubrics"
RUBRIC_KEYS = ("lab", "dataset", "artifact", "metric", "valid_points", "after", "gain", "checks")


def load_rubric(lab: str, path: Path | None = None) -> dict:
    """The rubric for ``lab`` (or the file at ``path``), checked for the keys the grader needs."""
    path = Path(path) if path else RUBRIC_DIR / f"{lab}.json"
    if not path.is_file():
        known = sorted(p.stem for p in RUBRIC_DIR.glob("*.json"))
        raise KeyError(f"no rubric for lab {lab!r} ({path}); labs with a rubric: {known}")
    rubric = json.loads(path.read_text())
    missing = [k for k in RUBRIC_KEYS if k not in rubric]
    if missing:
        raise ValueError(f"{path}: rubric misses {missing}")
    if not isinstance(rubric.get("higher_is_better", True), bool):
        raise ValueError(f"{path}: higher_is_better must be true or false")
    for part in ("after", "gain"):
        band = rubric[part]
        if band["zero_at"] == band["full_at"]:
            raise ValueError(f"{path}: {part}.zero_at and {part}.full_at must differ")
    return rubric


def linear_credit(value: float, zero_at: float, full_at: float) -> float:
    """0 at ``zero_at`` or worse, 1 at ``full_at`` or better, linear in between (``full_at`` may be
    below ``zero_at``, for metrics where lower is better)."""
    return min(1.0, max(0.0, (value - zero_at) / (full_at - zero_at)))


def max_score(rubric: dict) -> float:
    """Points for a perfect submission."""
    return float(rubric["valid_points"] + rubric["after"]["points"] + rubric["gain"]["points"])


def improvement(rubric: dict, before: float, after: float) -> float:
    """How much better ``after`` is than ``before``: ``after - before``, or ``before - after`` for a
    metric where lower is better (``"higher_is_better": false``, e.g. perplexity)."""
    return after - before if rubric.get("higher_is_better", True) else before - after


def score(rubric: dict, before: float, after: float) -> dict:
    """Points per rubric part for a valid submission, and the total (rounded to 0.01)."""
    gain = improvement(rubric, before, after)
    parts = {
        "valid submission": float(rubric["valid_points"]),
        "after": round(rubric["after"]["points"] * linear_credit(after, rubric["after"]["zero_at"],
                                                                  rubric["after"]["full_at"]), 2),
        "gain over base": round(rubric["gain"]["points"] * linear_credit(gain, rubric["gain"]["zero_at"],
                                                                          rubric["gain"]["full_at"]), 2),
    }
    part_max = {"valid submission": float(rubric["valid_points"]), "after": float(rubric["after"]["points"]),
                "gain over base": float(rubric["gain"]["points"])}
    return {"parts": parts, "part_max": part_max, "score": round(sum(parts.values()), 2),
            "max_score": max_score(rubric), "gain": gain}
