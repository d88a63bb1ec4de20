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
    for part in ("after", "gain"):
        band = rubric[part]
        if not band["zero_at"] < band["full_at"]:
            raise ValueError(f"{path}: {part}.zero_at must be below {part}.full_at")
    return rubric


def linear_credit(value: float, zero_at: float, full_at: float) -> float:
    """0 at or below ``zero_at``, 1 at or above ``full_at``, linear in between."""
    return min(1.0, max(0.0, (value - zero_at) / (full_at - zero_at)))


def max_score(rubric: dict) -> float:
    """Points for a perfect submission."""
    return float(rubric["valid_points"] + rubric["after"]["points"] + rubric["gain"]["points"])


def score(rubric: dict, before: float, after: float) -> dict:
    """Points per rubric part for a valid submission, and the total (rounded to 0.01)."""
    gain = after - before
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
            "max_score": max_score(rubric)}
