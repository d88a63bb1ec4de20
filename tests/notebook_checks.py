"""What a notebook's run must show, shared by the two ways the suite runs a notebook: nbclient
(``tests/test_notebooks.py``) and JupyterLab in a browser (``tests/test_browser.py``). A notebook
the browser test runs is not run a second time through nbclient for the same checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
BROWSER = bool(CHROMIUM and CHROMEDRIVER)  # the browser tests run
run_in_browser_instead = pytest.mark.skipif(
    BROWSER,
    reason="tests/test_browser.py runs this notebook in JupyterLab and makes these checks on "
    "that run",
)


def check_lab01_learner(text: str, outputs: Path) -> None:
    """Lab 01's learner notebook: its tasks reported unfinished, the rest of the lab ran."""
    assert "[FAIL] Task 1.1" in text and "[FAIL] Task 1.2" in text and "[FAIL] Task 1.3" in text
    assert "[PASS] Task 1.1" not in text  # the task is the learner's
    assert (outputs / "01_in_context_learning" / "baseline.json").exists()


def check_lab03b_solution(text: str, outputs: Path) -> None:
    """Lab 03B's solution in SMOKE mode: every check passes, the adapters and the merged model
    saved as safetensors."""
    assert text.count("[PASS]") == 14 and "[FAIL]" not in text
    assert "as intended, the kit refuses it" in text
    out = outputs / "03b_lora_peft"
    results = json.loads((out / "results.json").read_text())
    assert results["trainable_parameters"] == 4_884_480  # r=16 on all 7 linear layers of 30 blocks
    assert [(c["r"], c["alpha"]) for c in results["sweep"]] == [(4, 4), (4, 8)]
    assert [r["adapter"] for r in results["switching"]] == ["base", "extract", "spam"]
    for name in ("adapter_extract", "adapter_spam"):
        config = json.loads((out / name / "adapter_config.json").read_text())
        assert config["r"] == 16 and (out / name / "adapter_model.safetensors").is_file()
    assert (out / "merged_extract" / "model.safetensors").is_file()
    assert not list(out.rglob("*.bin")) and not list(out.rglob("*.pt"))
