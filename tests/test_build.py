"""One source per lab: generated notebooks are fresh, clean, and stripped of solutions in labs/."""

import json
import re
import sys
from pathlib import Path

import pytest

from tools.pins import COLAB_NO_DEPS, COLAB_PACKAGES, colab_badge, read_pins
from utils.runtime.storage import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tools"))
import build_labs  # noqa: E402


def test_generated_notebooks_and_environment_are_fresh():
    assert build_labs.stale_notebooks() == []


def test_every_lab_source_has_both_twins():
    sources = sorted(p.stem for p in (REPO_ROOT / "src").glob("[0-9][0-9]*_*.py"))
    assert sources, "no lab sources found"
    for stem in sources:
        assert (REPO_ROOT / "labs" / f"{stem}.ipynb").exists()
        assert (REPO_ROOT / "solutions" / f"{stem}.ipynb").exists()


@pytest.mark.parametrize("folder", ["labs", "solutions"])
def test_notebooks_are_committed_clean(folder):
    for path in (REPO_ROOT / folder).glob("*.ipynb"):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            assert "id" not in cell
            assert not cell.get("outputs") and cell.get("execution_count") is None
        first = "".join(nb["cells"][0]["source"])
        assert colab_badge(path.stem) in first, (
            f"{path.name}: its own Open-in-Colab badge comes first"
        )
        tags = [c["metadata"].get("tags", []) for c in nb["cells"]]
        assert ["colab-install"] in tags and ["parameters"] in tags


def test_lab_notebooks_hide_solutions_and_keep_placeholders():
    for path in (REPO_ROOT / "labs").glob("*.ipynb"):
        text = path.read_text()
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        solution = (REPO_ROOT / "solutions" / path.name).read_text()
        assert "BEGIN SOLUTION" not in solution
    lab01 = (REPO_ROOT / "labs" / "01_in_context_learning.ipynb").read_text()
    solution_line = "torch.log_softmax(model(ids).logits"
    assert solution_line not in lab01
    assert solution_line in (REPO_ROOT / "solutions" / "01_in_context_learning.ipynb").read_text()


# The kit's implementations of the learners' tasks (what utils.lab.expected runs for the checks):
# a learner notebook must not import them, nor call them through a module.
ANSWER_NAMES = (
    "calibrate_scores",
    "billed_tokens",
    "freeze_all_but",
    "LoRALayer",
    "LinearWithLoRA",
    "apply_lora",
    "replace_modules",
    "lora_parameter_count",
    "response_only_labels",
    "outlier_columns",
    "nf4_bytes_per_parameter",
    "role_order_problems",
    "lora_params",
    "method_params",
    "expected_state_bytes",
    "BottleneckAdapter",
    "add_bottleneck_adapters",
)


def solution_lines(source: str) -> list[str]:
    """The code lines inside a lab source's solution blocks (30+ characters: long enough to be
    an answer rather than an idiom like `param.requires_grad = False`)."""
    lines, inside = [], False
    for line in source.splitlines():
        if build_labs.BEGIN.match(line) or build_labs.END.match(line):
            inside = bool(build_labs.BEGIN.match(line))
            continue
        if inside and len(line.strip()) >= 30 and not line.strip().startswith("#"):
            lines.append(line.strip())
    return lines


@pytest.mark.parametrize("source", sorted((REPO_ROOT / "src").glob("*.py")), ids=lambda p: p.stem)
def test_learner_notebooks_neither_contain_nor_import_their_answers(source):
    notebook = json.loads((REPO_ROOT / "labs" / f"{source.stem}.ipynb").read_text())
    code = "\n".join(
        "".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"
    )
    shown = [line for line in solution_lines(source.read_text()) if line in code]
    assert not shown, f"{source.stem}: solution lines on the learner's page: {shown}"
    imported = [
        name
        for name in ANSWER_NAMES
        if re.search(rf"import[^\n]*\b{name}\b|\.{name}\(", code)  # imported, or via a module
        or (  # called bare without the learner defining it
            re.search(rf"^{name}\(", code, re.M)
            and not re.search(rf"^(def|class) {name}\b", code, re.M)
        )
    ]
    assert not imported, f"{source.stem}: the learner notebook reaches the kit's answers {imported}"


def test_a_placeholder_that_is_not_code_stops_the_build():
    build_labs.check_parses("%pip install x\n!ls\nx = 1  # fine", "lab, cell 1")
    with pytest.raises(SyntaxError, match=r"lab, cell 2: .*'one adapter per block'"):
        build_labs.check_parses("def f():\n    one adapter per block\n", "lab, cell 2")


def test_strip_solutions():
    source = "def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n\nx = 2"
    assert build_labs.strip_solutions(source, keep=True) == "def f():\n    return 1\n\nx = 2"
    assert (
        build_labs.strip_solutions(source, keep=False)
        == 'def f():\n    raise NotImplementedError("your code here")\n\nx = 2'
    )
    custom = "# BEGIN SOLUTION: answer = ...\nanswer = 42\n# END SOLUTION"
    assert build_labs.strip_solutions(custom, keep=False) == "answer = ..."
    for broken in ("# BEGIN SOLUTION\nx", "# END SOLUTION", "# BEGIN SOLUTION\n# BEGIN SOLUTION"):
        with pytest.raises(ValueError):
            build_labs.strip_solutions(broken, keep=True)


def test_colab_cell_and_environment_use_the_one_set_of_pins():
    pins = read_pins()
    lab = json.loads((REPO_ROOT / "labs" / "01_in_context_learning.ipynb").read_text())
    cell = next(
        "".join(c["source"])
        for c in lab["cells"]
        if "colab-install" in c["metadata"].get("tags", [])
    )
    for name in COLAB_PACKAGES:
        assert f'"{name}=={pins[name]}"' in cell
    assert "torch==" not in cell, "Colab keeps its own CUDA torch"
    env = (REPO_ROOT / "environment.yml").read_text()
    for name, version in read_pins(("cpu.txt",)).items():
        assert f"- {name}=={version}" in env
    assert Path(REPO_ROOT / "requirements" / "no-deps.txt").read_text().count("==") == 4
    for name in COLAB_NO_DEPS:
        assert f'"{name}=={pins[name]}"' in cell


def test_a_results_placeholder_in_lab_text_becomes_the_recorded_figure():
    from tools.build_docs import DocsError

    recorded = json.loads((REPO_ROOT / "docs" / "results" / "04_qlora_unsloth.json").read_text())
    peak = recorded["comparison"][1]["peak GB"]
    text = "peak {{ 04:comparison[1].peak\nGB :.2f }} GB; {{goal}} and {{colab_badge}} stay"
    assert build_labs.render_results(text) == (
        f"peak {peak:.2f} GB; {{{{goal}}}} and {{{{colab_badge}}}} stay"
    )
    with pytest.raises(DocsError, match="no_such_key"):
        build_labs.render_results("{{ 04:no_such_key :.2f }}")
    for folder in ("labs", "solutions"):
        for path in (REPO_ROOT / folder).glob("*.ipynb"):
            for cell in json.loads(path.read_text())["cells"]:
                if cell["cell_type"] == "markdown":
                    left = build_labs.RESULT.search("".join(cell["source"]))
                    assert left is None, f"{path.name}: unrendered {left.group(0)}"
