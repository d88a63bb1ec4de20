"""The capstone's report: one list of blocks, written as Markdown and as a PDF (fpdf2).

A report is built from what the lab measured (``capstone_report``), so its text and its figures
come from one place; ``write_markdown`` and ``write_pdf`` render the same blocks. The PDF uses
DejaVu Sans, shipped with matplotlib, so Cyrillic and Greek print; CJK text needs a CJK TrueType
font (``font=`` in ``write_pdf``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

EXCERPT_CHARS = 220


@dataclass
class Report:
    """A title and an ordered list of blocks: ``("heading", text)``, ``("text", text)``,
    ``("table", header, rows)``, ``("image", path)``."""

    title: str
    blocks: list[tuple] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.blocks.append(("heading", text))

    def text(self, text: str) -> None:
        self.blocks.append(("text", text))

    def table(self, header: list[str], rows: list[list]) -> None:
        self.blocks.append(("table", header, [[_cell(v) for v in row] for row in rows]))

    def image(self, path: Path) -> None:
        self.blocks.append(("image", Path(path)))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def write_markdown(report: Report, path: Path) -> Path:
    """The report as Markdown (images linked by file name, next to the report)."""
    lines = [f"# {report.title}", ""]
    for block in report.blocks:
        kind = block[0]
        if kind == "heading":
            lines += [f"## {block[1]}", ""]
        elif kind == "text":
            lines += [block[1], ""]
        elif kind == "table":
            header, rows = block[1], block[2]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
            lines.append("")
        elif kind == "image":
            lines += [f"![{block[1].stem}]({block[1].name})", ""]
    path = Path(path)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def default_font() -> dict[str, Path]:
    """DejaVu Sans regular and bold from matplotlib's data folder."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return {"": folder / "DejaVuSans.ttf", "B": folder / "DejaVuSans-Bold.ttf"}


def write_pdf(report: Report, path: Path, font: dict[str, Path] | None = None) -> Path:
    """The report as an A4 PDF with fpdf2."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_margins(16, 14, 16)
    pdf.set_auto_page_break(True, margin=14)
    for style, file in (font or default_font()).items():
        pdf.add_font("body", style, str(file))
    pdf.add_page()
    pdf.set_font("body", "B", 15)
    pdf.multi_cell(0, 8, report.title, new_x="LMARGIN", new_y="NEXT")
    for block in report.blocks:
        _pdf_block(pdf, block)
    path = Path(path)
    pdf.output(str(path))
    return path


def _pdf_block(pdf, block: tuple) -> None:
    kind = block[0]
    if kind == "heading":
        pdf.ln(2)
        pdf.set_font("body", "B", 11.5)
        pdf.multi_cell(0, 6, block[1], new_x="LMARGIN", new_y="NEXT")
    elif kind == "text":
        pdf.set_font("body", "", 9)
        pdf.multi_cell(0, 4.4, block[1], new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    elif kind == "table":
        pdf.set_font("body", "", 8)
        with pdf.table(first_row_as_headings=True, line_height=4.4, padding=1) as table:
            for row in [block[1], *block[2]]:
                cells = table.row()
                for value in row:
                    cells.cell(value)
        pdf.ln(1.5)
    elif kind == "image":
        pdf.image(str(block[1]), w=120)


def capstone_report(
    run: dict,
    claimed: dict,
    test: list[dict],
    before: dict,
    after: dict,
    flipped: dict,
    loss_plot: Path,
    discussion: str,
    student: str,
) -> Report:
    """The capstone's one- or two-page report, from what the lab measured."""
    kind, primary = claimed["task"]["kind"], claimed["primary"]
    report = Report(f"Fine-tuning report — {student}")
    report.heading("Task")
    labels = claimed["task"]["labels"] or claimed["task"]["fields"]
    report.text(
        f"{kind.capitalize()} ({run['data']}). Instruction: “{claimed['task']['instruction']}”"
        + (f" Labels/fields: {', '.join(labels)}." if labels else "")
    )
    report.heading("Data")
    summary = run["summary"]
    report.table(["split", "examples"], [[name, size] for name, size in summary["sizes"].items()])
    report.text(
        f"{summary['rows']} rows read; {summary['bad rows']} bad rows left out; "
        f"{summary['duplicates']} duplicates and {summary['conflicting']} conflicting inputs "
        f"dropped; {summary['leaked into test']} train/validation rows removed as copies of test "
        f"rows. Trained on {run['settings']['train_examples']} examples."
    )
    report.heading("Model, settings and cost")
    settings, plan, history = run["settings"], run["plan"], run["history"]
    report.table(
        ["", "value"],
        [
            ["base model", run["model"]],
            [
                "LoRA",
                f"r = {settings['r']}, alpha = {settings['alpha']}, "
                f"{len(settings['target_modules'])} target module types",
            ],
            [
                "trainable parameters",
                f"{run['trainable_parameters']:,} of {run['total_parameters']:,} "
                f"({100 * run['trainable_parameters'] / run['total_parameters']:.2f} %)",
            ],
            [
                "learning rate, batch, epochs",
                f"{settings['learning_rate']}, {settings['batch_size']}, {settings['epochs']} "
                f"(validation chose epoch {history['best_epoch']})",
            ],
            [
                "training time",
                f"{history['seconds'] / 60:.1f} min (planned "
                f"{plan['estimated_minutes']} min), {history['global_steps']} steps",
            ],
            ["peak memory", f"{run['memory']['peak_gb']:.2f} GB ({run['memory']['kind']})"],
        ],
    )
    report.heading("Before and after, test split")
    rows = [
        [m, claimed["before"][m], claimed["after"][m], claimed["after"][m] - claimed["before"][m]]
        for m in claimed["before"]
    ]
    report.table(["metric", "before", "after", "gain"], rows)
    if claimed.get("baselines"):  # a classification task: how much of the gain is format
        base = claimed["baselines"]
        report.text(
            f"Baselines on the same test split: the majority label ({base['majority_label']}) "
            f"scores {base['majority']:.3f} accuracy; the base model constrained to the labels "
            f"(the likeliest label as its answer) {base['constrained_zero_shot']:.3f}."
        )
    ci = claimed["interval"]
    report.text(
        f"Gain in {primary}: {ci['gain']:+.3f}, {100 * ci['level']:.0f} % paired bootstrap "
        f"interval [{ci['low']:+.3f}, {ci['high']:+.3f}] over n = {ci['n']} test examples."
    )
    if claimed.get("general"):  # the same fixed items of general benchmarks, without/with
        general = claimed["general"]
        report.text(
            f"General ability ({general['n']} items of five general benchmarks, the adapter off "
            f"and on): {general['before']:.3f} -> {general['after']:.3f}, change "
            f"{general['gain']:+.3f}, {100 * general['level']:.0f} % interval "
            f"[{general['low']:+.3f}, {general['high']:+.3f}]."
        )
    report.image(loss_plot)
    for name, title in (("fixed", "Improved examples"), ("broken", "Worsened examples")):
        report.heading(title)
        if not flipped[name]:
            report.text("None.")
        for i in flipped[name]:
            report.text(
                f"Input: {excerpt(test[i]['text'])}\nReference: {excerpt(test[i]['answer'])}\n"
                f"Before: {excerpt(before['outputs'][i])}\nAfter: {excerpt(after['outputs'][i])}"
            )
    report.heading("Discussion")
    report.text(discussion.strip())
    return report
