"""The docs: rendered from their templates and the stored full-run results (so no figure drifts),
short enough to read, with a layout section that matches the tree and links that resolve."""

import re
from pathlib import Path

import pytest

from tools import build_docs

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PAGES = [ROOT / "README.md", ROOT / "grading" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_rendered_page_matches_its_template_and_the_stored_results():
    assert build_docs.stale_pages() == [], "run: python tools/build_docs.py"


def test_the_readme_is_a_page_a_newcomer_reads_to_the_end():
    assert len(README.splitlines()) <= 150
    assert "python3 tools/kit.py demo" in README and "python3 tools/kit.py test" in README


def layout_block() -> str:
    return README.split("## Where things live", 1)[1].split("```")[1]


def layout_entry(block: str, name: str) -> str | None:
    """The text of the layout line for ``name/`` with its continuation lines, or None."""
    lines = block.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip().startswith(f"{name}/")), None)
    if start is None:
        return None
    text = lines[start]
    for line in lines[start + 1 :]:
        if not re.match(r"^ {6,}[^ /]+( |$)", line):  # a deeper-indented line without "name/"
            break
        text += " " + line.strip()
    return text


def test_where_things_live_names_every_module_and_folder_that_exists():
    block = layout_block()
    for package in sorted(p for p in (ROOT / "utils").iterdir() if (p / "__init__.py").is_file()):
        entry = layout_entry(block, package.name)
        assert entry is not None, f"utils/{package.name}/ is missing from the README's layout"
        for module in sorted(package.glob("*.py")):
            if module.stem != "__init__":
                assert re.search(rf"\b{module.stem}\b", entry), (
                    f"utils/{package.name}/{module.name}"
                )
    for folder in (
        "src",
        "labs",
        "solutions",
        "utils",
        "grading",
        "data",
        "docs",
        "tests",
        "bench",
        "tools",
        "requirements",
    ):
        assert re.search(rf"^{folder}/", block, re.M), folder
        assert (ROOT / folder).is_dir(), folder
    tools_line = re.sub(r"\([^)]*\)", "", layout_entry(block, "tools").split("/", 1)[1])
    named = {name.strip().removesuffix(".py") for name in tools_line.split(",")}
    present = {p.stem for p in (ROOT / "tools").glob("*.py")} - {"__init__"}
    assert named == present, f"tools/ in the layout: {sorted(named)}; on disk: {sorted(present)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
        assert (page.parent / target).exists(), (
            f"{page.name} links to {target}, which does not exist"
        )


def test_a_placeholder_reads_values_rows_and_tables_from_results(tmp_path, monkeypatch):
    results = tmp_path / "results"
    results.mkdir()
    (results / "07_demo.json").write_text(
        '{"after": {"acc": 0.91234}, "rows": [{"name": "a", "n": 1200}, {"name": "b", "n": 3}]}'
    )
    monkeypatch.setattr(build_docs, "RESULTS", results)
    assert (
        build_docs.render("acc {{ 07:after.acc :.2f }}, {{ 07:rows[name=a].n :, }}")
        == "acc 0.91, 1,200"
    )
    assert build_docs.render("{{ table 07:rows | name=Name; n :03d }}").splitlines() == [
        "| Name | n |",
        "|---|---|",
        "| a | 1200 |",
        "| b | 003 |",
    ]
    for broken in (
        "{{ 07:after.loss }}",
        "{{ 08:after.acc }}",
        "{{ 07:rows[name=c].n }}",
        "{{ 07 }}",
    ):
        with pytest.raises(build_docs.DocsError):
            build_docs.render(broken)


def test_collecting_refuses_a_smoke_run(tmp_path, monkeypatch):
    (tmp_path / "07_demo").mkdir()
    (tmp_path / "07_demo" / "results.json").write_text('{"run_info": {"config": {"smoke": true}}}')
    monkeypatch.setattr(build_docs, "RESULTS", tmp_path / "collected")
    with pytest.raises(build_docs.DocsError, match="SMOKE"):
        build_docs.collect(tmp_path)
