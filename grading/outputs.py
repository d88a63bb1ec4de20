"""What the grader writes: a class gradebook (CSV), per-student feedback (markdown + a before/after
chart) and Gradescope's ``results.json``. Student-facing files hold aggregate scores only, never
held-out examples or labels."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from utils.lab.plots import plot_bars

GRADEBOOK_COLUMNS = [
    "student",
    "lab",
    "status",
    "score",
    "max_score",
    "before",
    "after",
    "gain",
    "reason",
    "submission",
    "flags",
]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP: what a spreadsheet may run as a formula


def csv_safe(value):
    """A cell a spreadsheet shows as text: strings that could start a formula get a leading "'"."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def md_escape(text: str) -> str:
    """Student-controlled text made inert in markdown: one line, markdown characters escaped, so
    it cannot fake a score line, a link or an image."""
    text = " ".join(str(text).split())
    return re.sub(r"([\\`*_\[\]()!|<>~])", r"\\\1", text)


def safe_stem(text: str, limit: int = 40) -> str:
    """A short file-name-safe form of a student id (ids from file names can be anything)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:limit].strip("-.") or "unknown"


def metric_values(result: dict) -> tuple[float | None, float | None]:
    """(before, after) of the rubric's metric, None where the submission was not scored."""
    if result.get("status") != "graded":
        return None, None
    return result["before"][result["metric"]], result["after"][result["metric"]]


def gradebook_rows(results: list[dict]) -> list[dict]:
    """One row per submission, sorted by student then file."""
    rows = []
    for r in results:
        before, after = metric_values(r)
        rows.append(
            {
                "student": r.get("student") or "?",
                "lab": r.get("lab") or "?",
                "status": r["status"],
                "score": r["score"],
                "max_score": r.get("max_score", ""),
                "before": "" if before is None else round(before, 4),
                "after": "" if after is None else round(after, 4),
                "gain": "" if before is None else round(r.get("gain", after - before), 4),
                "reason": r.get("reason", ""),
                "submission": r["submission"],
                "flags": "; ".join(r.get("flags") or []),
            }
        )
    return sorted(rows, key=lambda row: (row["student"], row["submission"]))


def write_gradebook(results: list[dict], path: Path) -> Path:
    """The class CSV (one row per submission)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=GRADEBOOK_COLUMNS)
        writer.writeheader()
        writer.writerows(
            {key: csv_safe(value) for key, value in row.items()} for row in gradebook_rows(results)
        )
    return path


def heldout_phrase(result: dict) -> str:
    """What the metric was measured on: held-out items, or for a perplexity (Lab 05) the packed
    blocks and the documents they come from."""
    items, metric = result["heldout"]["items"], result["metric"]
    corpus = metric.removesuffix("_perplexity")
    blocks = result["after"].get(f"{corpus}_blocks")
    if metric.endswith("_perplexity") and isinstance(blocks, int):
        return (
            f"{blocks} held-out blocks of {corpus} text, from a held-out set of {items} documents"
        )
    return f"{items} held-out items"


def feedback_markdown(result: dict, chart: str | None) -> str:
    """The student's feedback: score, the reason if invalid, the parts, before/after (aggregates
    only)."""
    lines = [
        f"# Feedback: {md_escape(result.get('lab') or 'submission')} — "
        f"{md_escape(result.get('student') or result['submission'])}",
        "",
        f"**Score: {result['score']:g} / {result.get('max_score', '?')}**",
        "",
    ]
    if result["status"] != "graded":
        lines += [
            "Your submission could not be graded: "
            f"**{md_escape(result.get('reason') or 'unknown error')}**",
            "",
            "Fix this and submit again; re-export the zip with the lab's last cell.",
        ]
        return "\n".join(lines) + "\n"
    before, after = metric_values(result)
    better = "higher" if result.get("higher_is_better", True) else "lower"
    lines += ["| part | points |", "|---|---|"]
    lines += [
        f"| {name} | {points:g} / {result['part_max'][name]:g} |"
        for name, points in result["parts"].items()
        if result["part_max"][name] > 0
    ]
    reproduction = (result.get("submission_details") or {}).get("reproduction")
    if reproduction:
        claimed, measured = reproduction["claimed"], reproduction["measured"]
        lines += [
            "",
            f"Your claimed before/after {claimed['before']:.3f} / {claimed['after']:.3f}; "
            f"re-measured {measured['before']:.3f} / {measured['after']:.3f}: "
            + ("**reproduced**." if reproduction["reproduced"] else "**not reproduced**."),
        ]
    lines += [
        "",
        f"Metric: {result['metric']} ({better} is better) on {heldout_phrase(result)} "
        "(examples are not shown).",
        "",
        f"- base model (before): {before:.3f}",
        f"- your submission (after): {after:.3f}",
        *(
            [f"- chance (the most common label every time): {result['chance']:.3f}"]
            if result.get("chance") is not None and result["chance"] > before
            else []
        ),
        f"- improvement: {result.get('gain', after - before):+.3f}"
        + (
            " (counted from chance, above the base)" if (result.get("chance") or 0) > before else ""
        ),
        "",
    ]
    others = [
        k
        for k, v in result["after"].items()
        if k != result["metric"]
        and isinstance(v, float)
        and isinstance(result["before"].get(k), float)
    ]
    if others:
        lines += [
            "Also measured (not scored): "
            + "; ".join(
                f"{k} {result['before'][k]:.3f} → {result['after'][k]:.3f}" for k in others
            ),
            "",
        ]
    fields = result["after"].get("field_accuracy")
    if fields:
        lines += [
            "Per-field accuracy (after): " + ", ".join(f"{k} {v:.2f}" for k, v in fields.items()),
            "",
        ]
    if chart:
        lines += [f"![before and after]({chart})", ""]
    return "\n".join(lines)


def write_feedback(result: dict, folder: Path) -> Path:
    """``<folder>/<student>_<hash>.md`` (+ a PNG chart for graded submissions)."""

    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{safe_stem(result.get('student') or 'unknown')}_{result['sha256'][:8]}"
    chart = None
    if result["status"] == "graded":
        before, after = metric_values(result)
        plot_bars(
            ["base model (before)", "your submission (after)"],
            [before, after],
            folder / f"{stem}.png",
            title=f"{result['lab']}: {result['metric']} on the held-out split",
            xlabel=result["metric"],
        )
        chart = f"{stem}.png"
    path = folder / f"{stem}.md"
    path.write_text(feedback_markdown(result, chart), encoding="utf-8")
    return path


def gradescope_results(results: list[dict]) -> dict:
    """Gradescope's results.json: one test per rubric part (or one failed test with the reason)."""
    tests = []
    for r in results:
        if r["status"] == "graded":
            before, after = metric_values(r)
            for name, points in r["parts"].items():
                tests.append(
                    {
                        "name": f"{r['lab']}: {name}",
                        "score": points,
                        "max_score": r["part_max"][name],
                        "visibility": "visible",
                        "output": "",
                    }
                )
            tests[-1]["output"] = (
                f"{r['metric']}: before {before:.3f}, after {after:.3f} (held-out split)"
            )
        else:
            tests.append(
                {
                    "name": f"{r.get('lab') or 'submission'}: valid submission",
                    "score": 0.0,
                    "max_score": r.get("max_score") or 100.0,
                    "visibility": "visible",
                    "output": r.get("reason", ""),
                }
            )
    return {
        "score": sum(r["score"] for r in results),
        "tests": tests,
        "visibility": "visible",
        "output": f"{len(results)} submission(s) graded on the held-out split",
    }
