"""Build the lab notebooks from their one source: ``python tools/build_labs.py [--check]``.

Each ``src/NN_topic.py`` (jupytext percent format) becomes
- ``solutions/NN_topic.ipynb``: everything, solution markers removed;
- ``labs/NN_topic.ipynb``: code between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` replaced by a
  placeholder (the text after ``# BEGIN SOLUTION:`` if given, else ``raise NotImplementedError``).
Every generated code cell must parse as Python (magics aside): the build refuses one that does not.
``{{colab_badge}}`` in markdown becomes the notebook's Open-in-Colab badge, and a results
placeholder such as ``{{ 04:comparison[1].peak GB :.2f }}`` (the syntax of ``tools/build_docs.py``)
becomes the figure the lab's last full run recorded, so a lab's text cannot drift from its
``docs/results/`` (re-collecting results makes the notebooks stale until rebuilt); the cell tagged
``colab-install`` is filled with the pinned install from ``requirements/``, and
``environment.yml`` is generated from the same pins.
Notebooks are written without outputs, execution counts or cell ids. ``--check`` fails when a
committed notebook is stale or missing.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
SRC, LABS, SOLUTIONS = ROOT / "src", ROOT / "labs", ROOT / "solutions"
sys.path.insert(0, str(ROOT))

from tools.build_docs import render as render_docs  # noqa: E402
from tools.pins import colab_badge, colab_install_source, environment_yml  # noqa: E402

BEGIN = re.compile(r"^(\s*)# BEGIN SOLUTION(?::\s*(.*))?$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
RESULT = re.compile(r"\{\{\s*((?:table\s+)?(?:rubric:)?\d\w*(?:-\w+)?:[^{}]+?)\s*\}\}")


def render_results(markdown: str) -> str:
    """``markdown`` with every results placeholder replaced by its recorded figure (a template
    such as ``{{goal}}``, with no ``<results>:`` part, is left alone)."""
    return render_docs(markdown, RESULT)


def strip_solutions(source: str, keep: bool) -> str:
    """Remove the markers (``keep``) or the marked code, leaving a placeholder at its
    indentation."""
    out, inside = [], False
    for line in source.splitlines():
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise ValueError(f"nested '# BEGIN SOLUTION' at: {line!r}")
            inside = True
            if not keep:
                indent, placeholder = begin.group(1), begin.group(2)
                out.append(indent + (placeholder or 'raise NotImplementedError("your code here")'))
            continue
        if END.match(line):
            if not inside:
                raise ValueError(f"'# END SOLUTION' without BEGIN at: {line!r}")
            inside = False
            continue
        if keep or not inside:
            out.append(line)
    if inside:
        raise ValueError("'# BEGIN SOLUTION' without a matching END")
    return "\n".join(out)


MAGIC = re.compile(r"^\s*[%!]")  # IPython magics and shell escapes: not Python, not parsed


def check_parses(code: str, where: str) -> None:
    """Raise ``SyntaxError`` naming ``where`` when a generated code cell is not valid Python (e.g.
    a ``# BEGIN SOLUTION:`` placeholder that is prose rather than code)."""
    python = "\n".join("pass" if MAGIC.match(line) else line for line in code.splitlines())
    try:
        ast.parse(python)
    except SyntaxError as exc:
        line = python.splitlines()[exc.lineno - 1] if exc.lineno else ""
        raise SyntaxError(
            f"{where}: generated code does not parse ({exc.msg}, cell line {exc.lineno}: "
            f"{line.strip()!r}); a placeholder after '# BEGIN SOLUTION:' must be code"
        ) from None


def render(source_path: Path, keep_solutions: bool) -> str:
    """The notebook JSON text for one source file (deterministic: no ids, outputs or counts)."""
    notebook = jupytext.read(source_path, fmt="py:percent")
    notebook.nbformat, notebook.nbformat_minor = 4, 4
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
        "accelerator": "GPU",
    }
    kind = "solutions" if keep_solutions else "labs"
    for number, cell in enumerate(notebook.cells, 1):
        cell.pop("id", None)
        if cell.cell_type == "markdown":
            cell.source = cell.source.replace("{{colab_badge}}", colab_badge(source_path.stem))
            cell.source = render_results(cell.source)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            if "colab-install" in cell.metadata.get("tags", []):
                cell.source = colab_install_source()
            cell.source = strip_solutions(cell.source, keep_solutions)
            check_parses(cell.source, f"{kind}/{source_path.stem}.ipynb, cell {number}")
        cell.metadata.pop("lines_to_next_cell", None)
    text = nbformat.writes(notebook, version=4)
    return json.dumps(json.loads(text), indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def targets() -> dict[Path, str]:
    """Every generated notebook path with its expected content."""
    expected = {}
    for source in sorted(SRC.glob("[0-9][0-9]*_*.py")):
        expected[LABS / f"{source.stem}.ipynb"] = render(source, keep_solutions=False)
        expected[SOLUTIONS / f"{source.stem}.ipynb"] = render(source, keep_solutions=True)
    expected[ROOT / "environment.yml"] = environment_yml()
    return expected


def stale_notebooks() -> list[str]:
    """Problems found: stale or missing generated notebooks, and notebooks with no source twin."""
    problems = []
    expected = targets()
    for path, text in expected.items():
        if not path.exists():
            problems.append(f"{path.relative_to(ROOT)} is missing")
        elif path.read_text() != text:
            problems.append(f"{path.relative_to(ROOT)} is stale")
    for folder in (LABS, SOLUTIONS):
        for path in folder.glob("*.ipynb"):
            if path not in expected:
                problems.append(f"{path.relative_to(ROOT)} has no source in src/")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only verify, write nothing")
    if parser.parse_args().check:
        problems = stale_notebooks()
        for problem in problems:
            print(problem)
        if problems:
            print("Run: python tools/build_labs.py")
        return 1 if problems else 0
    for path, text in targets().items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        print("wrote", path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
