"""The grades in the files learning-management systems import: Canvas's gradebook CSV and a
generic ``student,lab,score,max_score`` CSV, one row per student (and lab): the best final verdict
of their submissions. A roster maps the kit's student ids (what each student set as
``STUDENT_ID``) to the LMS's own identity columns when they differ."""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

from grading.outputs import csv_safe
from grading.rubric import load_rubric

FINAL = ("graded", "invalid")  # verdicts; "error" and "timeout" are graded again by a later run
CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
POINTS_POSSIBLE = "    Points Possible"  # the second row of Canvas's own export, read on import
ROSTER_KEY = "student"  # the roster column holding the kit's student id
FROM_FILE_NAME = " (from file name)"  # marks a student id read from a broken zip's file name


def student_id(result: dict) -> str:
    """The id a result counts under: the manifest's, or the one its file name gives."""
    return result["student"].removesuffix(FROM_FILE_NAME)


@dataclass(frozen=True)
class LmsExport:
    """What was written, and the students whose grade is not in the Canvas file (not on the
    roster) or not final yet (an error or a timeout: grade again before uploading)."""

    scores: Path
    canvas: Path
    not_on_roster: list[str]
    not_final: list[str]


def best_scores(results: list[dict]) -> dict[tuple[str, str], dict]:
    """(student, lab) -> the result with the highest score among its final verdicts (a student
    who handed in twice keeps the better one). A zip too broken to name its student takes part
    under the id its file name gives, so it still shows as a 0."""
    best: dict[tuple[str, str], dict] = {}
    for r in results:
        if r.get("status") not in FINAL or not r.get("student") or not r.get("lab"):
            continue
        key = (student_id(r), r["lab"])
        if key not in best or r["score"] > best[key]["score"]:
            best[key] = r
    return best


def max_score(lab: str, results: list[dict]) -> float:
    """The lab's maximum: from a graded result, else from its rubric."""
    for r in results:
        if r.get("lab") == lab and r.get("max_score"):
            return float(r["max_score"])
    try:
        return float(load_rubric(lab).max_score)
    except KeyError:  # a lab named only by a broken zip's file name
        return 100.0


def read_roster(path: Path) -> dict[str, dict]:
    """The kit's student id -> that student's LMS identity columns. The roster is a CSV with a
    ``student`` column (e.g. Canvas's own gradebook export with that column added), or without
    it, Canvas's export as it is, its ``SIS Login ID`` then being the kit's student id. A bad row
    names its file and line."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        key = ROSTER_KEY if ROSTER_KEY in columns else "SIS Login ID"
        if key not in columns:
            raise ValueError(
                f"{path}: the roster needs a '{ROSTER_KEY}' column (the id each student set as "
                f"STUDENT_ID) or Canvas's 'SIS Login ID' column; it has {columns}"
            )
        roster: dict[str, dict] = {}
        for row in reader:
            line = reader.line_num
            if (row.get("Student") or "").strip() == POINTS_POSSIBLE.strip():
                continue  # Canvas's points row, not a student
            student = (row.get(key) or "").strip()
            if not student:
                raise ValueError(f"{path}:{line}: the '{key}' cell is empty")
            if student in roster:
                raise ValueError(f"{path}:{line}: student {student!r} is on the roster twice")
            roster[student] = {c: (row.get(c) or "").strip() for c in CANVAS_IDENTITY}
    return roster


def write_scores(best: dict[tuple[str, str], dict], results: list[dict], path: Path) -> Path:
    """The generic CSV: ``student,lab,score,max_score,status`` (what any LMS or spreadsheet
    reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "lab", "score", "max_score", "status"])
        for (student, lab), r in sorted(best.items()):
            writer.writerow(
                [csv_safe(student), lab, r["score"], max_score(lab, results), r["status"]]
            )
    return path


def write_canvas(
    best: dict[tuple[str, str], dict],
    results: list[dict],
    path: Path,
    roster: dict[str, dict] | None = None,
    assignments: dict[str, str] | None = None,
) -> tuple[Path, list[str]]:
    """Canvas's gradebook-import CSV: its identity columns, a ``Points Possible`` row, one column
    per lab (headed ``assignments[lab]``, e.g. ``Lab 3B (12345)`` copied from Canvas's export so
    the grades land in that assignment; by default the lab id, which Canvas imports as a new
    assignment). With a roster, one row per roster student (blank where there is no grade: Canvas
    then leaves that cell as it was); without one, one row per graded student with the kit's id
    as ``SIS Login ID``. Returns the path and the graded students not on the roster."""
    labs = sorted({lab for _, lab in best})
    headers = [(assignments or {}).get(lab, lab) for lab in labs]
    students = sorted({student for student, _ in best})
    identities = (
        roster
        if roster is not None
        else {
            s: {"Student": s, "ID": "", "SIS User ID": "", "SIS Login ID": s, "Section": ""}
            for s in students
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*CANVAS_IDENTITY, *headers])
        writer.writerow(
            [POINTS_POSSIBLE, "", "", "", "", *(max_score(lab, results) for lab in labs)]
        )
        for student, identity in identities.items():
            graded = [best.get((student, lab)) for lab in labs]
            cells = ["" if r is None else r["score"] for r in graded]
            writer.writerow([csv_safe(identity[c]) for c in CANVAS_IDENTITY] + cells)
    return path, [s for s in students if s not in identities]


def export_for_lms(
    results: list[dict],
    out: Path,
    roster: Path | None = None,
    assignments: dict[str, str] | None = None,
) -> LmsExport:
    """Write ``scores.csv`` and ``gradebook_canvas.csv`` in ``out``."""
    best = best_scores(results)
    canvas, missing = write_canvas(
        best,
        results,
        out / "gradebook_canvas.csv",
        read_roster(roster) if roster else None,
        assignments,
    )
    final = {key[0] for key in best}
    not_final = sorted(
        {student_id(r) for r in results if r.get("student") and r.get("status") not in FINAL}
        - final
    )
    return LmsExport(write_scores(best, results, out / "scores.csv"), canvas, missing, not_final)


def parse_assignment(text: str) -> tuple[str, str]:
    """``LAB=NAME`` from the command line (``03b_lora_peft=Lab 3B (12345)``)."""
    lab, sep, name = text.partition("=")
    if not sep or not lab.strip() or not name.strip():
        raise argparse.ArgumentTypeError(
            f"expected LAB=NAME (e.g. '03b_lora_peft=Lab 3B (12345)'), got {text!r}"
        )
    return lab.strip(), name.strip()
