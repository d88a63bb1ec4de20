"""What the benchmarks share: one measurement per fresh child process, and the machine record."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULT = "RESULT "


def report_result(result: dict) -> None:
    """In a child process: hand ``result`` to the parent (one marked stdout line)."""
    print(RESULT + json.dumps(result), flush=True)


def run_child(script: str, *args: str, env: dict | None = None) -> dict:
    """Run ``script`` with ``args`` in a fresh Python process (nothing cached or patched from an
    earlier run, its own peak memory; ``env`` added to its environment) and return the result it
    reported; raise with its output if none."""
    out = subprocess.run(
        [sys.executable, script, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TQDM_DISABLE": "1", **(env or {})},
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith(RESULT)), None)
    if line is None:
        raise RuntimeError(
            f"{Path(script).name} {' '.join(args)} reported nothing:\n{out.stdout[-2000:]}\n"
            f"{out.stderr[-4000:]}"
        )
    return json.loads(line[len(RESULT) :])


def machine() -> dict:
    """The machine a benchmark ran on."""
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def write_result(name: str, payload: dict) -> Path:
    """``outputs/bench/<name>.json``."""
    out = ROOT / "outputs" / "bench" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2))
    print(f"wrote {out}")
    return out
