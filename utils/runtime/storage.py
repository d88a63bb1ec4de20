"""Where the kit keeps its data, caches and outputs (each overridable by an environment variable),
and how it writes files there (atomically)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def lab_output_dir(lab: str) -> Path:
    """``outputs/<lab>/`` (created), where a lab writes its results, plots and artifacts."""
    path = outputs_dir() / lab
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json_atomic(path: Path, data: dict) -> Path:
    """Write JSON to ``path`` through a temporary file, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=False, default=str)
    os.replace(tmp, path)
    return path
