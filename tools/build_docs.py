"""Render the docs from the results the labs wrote: ``python tools/build_docs.py [--check]``.

Each ``docs/src/<page>.md`` is a template; every figure in it is a placeholder read from a results
file, so text and measurement cannot drift:

- ``{{ 03b:after.exact_match :.3f }}``: one value. ``03b`` names ``docs/results/03b*.json`` (a lab's
  full-run ``results.json``, copied by ``--collect``) or ``rubric:03b`` a grading rubric; the path
  walks dicts by key and lists by index or by ``[field=value]``; the format is Python's.
- ``{{ table 03b:sweep | r; alpha; trainable :,; val exact match :.3f }}``: a markdown table of a
  list of rows, one column per field, separated by ``;`` (``field :format``; ``field=Header``
  renames it).

The rendered page is ``docs/<page>.md`` (or ``README.md`` for ``docs/src/README.md``). ``--check``
fails when a rendered page is stale; ``--collect DIR`` copies each lab's ``DIR/<lab>/results.json``
into ``docs/results/`` first (after a full run of the labs).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES, RESULTS = ROOT / "docs" / "src", ROOT / "docs" / "results"
RUBRICS = ROOT / "grading" / "rubrics"
PLACEHOLDER = re.compile(r"\{\{\s*(.+?)\s*\}\}", re.S)
SELECTOR = re.compile(r"\[([^\]=]+)=([^\]]+)\]|\[(\d+)\]")


class DocsError(ValueError):
    """A placeholder that names no results file, key or row."""


def results_file(name: str) -> dict:
    """The JSON a placeholder names: ``rubric:<lab prefix>`` or ``<lab prefix>``."""
    folder, stem = (
        (RUBRICS, name.split(":", 1)[1]) if name.startswith("rubric:") else (RESULTS, name)
    )
    matches = sorted(folder.glob(f"{stem}*.json"))
    if len(matches) != 1:
        raise DocsError(f"{name!r} matches {len(matches)} files in {folder.name}/")
    return json.loads(matches[0].read_text())


def lookup(data, path: str):
    """Walk ``data`` along ``a.b[2].c`` or ``rows[field=value].c``."""
    for part in re.split(r"\.(?![^\[]*\])", path):
        key = SELECTOR.split(part)[0]
        if key:
            if not isinstance(data, dict) or key not in data:
                raise DocsError(f"no key {key!r} in {path!r}")
            data = data[key]
        for field, value, index in SELECTOR.findall(part):
            if index:
                data = data[int(index)]
                continue
            rows = [r for r in data if str(r.get(field.strip())) == value.strip()]
            if len(rows) != 1:
                raise DocsError(f"{len(rows)} rows with {field}={value} in {path!r}")
            data = rows[0]
    return data


def formatted(value, spec: str) -> str:
    """``value`` in the format ``spec`` (a Python format spec; empty: as it is)."""
    if value is None:
        return "—"
    return format(value, spec) if spec and not isinstance(value, str) else str(value)


def split_spec(text: str) -> tuple[str, str]:
    """``'path :.3f'`` -> (``'path'``, ``'.3f'``)."""
    path, _, spec = text.rpartition(" :") if " :" in text else (text, "", "")
    return path.strip(), spec.strip()


def parse_target(text: str) -> tuple[str, str]:
    """``'03b:after.n'`` -> (``'03b'``, ``'after.n'``); ``'rubric:03b:reference'`` likewise."""
    parts = text.split(":", 2) if text.startswith("rubric:") else text.split(":", 1)
    if len(parts) < 2:
        raise DocsError(f"{text!r}: expected <results>:<path>")
    return ":".join(parts[:-1]), parts[-1].strip()


def render_value(expression: str) -> str:
    target, spec = split_spec(expression)
    source, path = parse_target(target)
    return formatted(lookup(results_file(source), path), spec)


def render_table(expression: str) -> str:
    target, _, columns = expression[len("table ") :].partition("|")
    source, path = parse_target(target.strip())
    rows = lookup(results_file(source), path)
    specs = []
    for column in columns.split(";"):
        field, spec = split_spec(column)
        field, _, header = field.partition("=")
        specs.append((field.strip(), header.strip() or field.strip(), spec))
    lines = ["| " + " | ".join(h for _, h, _ in specs) + " |", "|" + "---|" * len(specs)]
    for row in rows:
        lines.append("| " + " | ".join(formatted(row.get(f), s) for f, _, s in specs) + " |")
    return "\n".join(lines)


def render(template: str, pattern: re.Pattern = PLACEHOLDER) -> str:
    """The template with every placeholder ``pattern`` finds replaced (its first group is the
    expression: a value or ``table ...``)."""

    def replace(match: re.Match) -> str:
        expression = " ".join(match.group(1).split())
        return (
            render_table(expression)
            if expression.startswith("table ")
            else render_value(expression)
        )

    return pattern.sub(replace, template)


def target_of(source: Path) -> Path:
    return {"README.md": ROOT / "README.md", "grading.md": ROOT / "grading" / "README.md"}.get(
        source.name, ROOT / "docs" / source.name
    )


def stale_pages() -> list[str]:
    """Rendered pages that differ from their templates' rendering."""
    return [
        str(target_of(s).relative_to(ROOT))
        for s in sorted(SOURCES.glob("*.md"))
        if not target_of(s).is_file() or target_of(s).read_text() != render(s.read_text())
    ]


def collect(outputs: Path) -> None:
    """Copy each lab's full-run ``results.json`` from ``outputs`` into ``docs/results/``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    for results in sorted(outputs.glob("*/results.json")):
        if json.loads(results.read_text())["run_info"]["config"].get("smoke"):
            raise DocsError(f"{results} is a SMOKE run; the docs quote full runs only")
        shutil.copyfile(results, RESULTS / f"{results.parent.name}.json")
        print(f"collected {results.parent.name}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail if a rendered page is stale")
    parser.add_argument(
        "--collect", type=Path, help="copy <DIR>/<lab>/results.json into docs/results/"
    )
    args = parser.parse_args()
    if args.collect:
        collect(args.collect)
    if args.check:
        stale = stale_pages()
        for page in stale:
            print(f"{page} is stale: run python tools/build_docs.py", file=sys.stderr)
        return 1 if stale else 0
    for source in sorted(SOURCES.glob("*.md")):
        target_of(source).write_text(render(source.read_text()))
        print(f"wrote {target_of(source).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
