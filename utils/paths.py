"""Where the kit keeps its data, caches and outputs (each overridable by an environment variable)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _dir_from_env(var: str, default: Path) -> Path:
    path = Path(os.environ.get(var, default)).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Model cache (converted embedded model, tokenizers): ``$FTKIT_CACHE`` or ``<repo>/.cache``."""
    return _dir_from_env("FTKIT_CACHE", REPO_ROOT / ".cache")


def outputs_dir() -> Path:
    """Lab results, plots and artifacts: ``$FTKIT_OUTPUTS`` or ``<repo>/outputs``."""
    return _dir_from_env("FTKIT_OUTPUTS", REPO_ROOT / "outputs")


def data_dir() -> Path:
    """The bundled datasets: ``$FTKIT_DATA`` or ``<repo>/data``."""
    return Path(os.environ.get("FTKIT_DATA", REPO_ROOT / "data")).expanduser()
