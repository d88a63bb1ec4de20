"""Environment check: ``python -m tools.envcheck`` prints [OK]/[FAIL] per package and capability."""

from __future__ import annotations

import importlib.util
import sys
from importlib import metadata

from tools.pins import read_pins


def check_package(name: str, wanted: str) -> tuple[bool, str]:
    """(ok, message) for one pinned package."""
    try:
        found = metadata.version(name)
    except metadata.PackageNotFoundError:
        return False, f"{name} is missing (wanted {wanted}): pip install {name}=={wanted}"
    if name == "torch" and "+cu" in found:
        return True, f"torch {found} (a CUDA build, e.g. Colab's: kept as installed)"
    if found.split("+")[0] != wanted:
        return False, f"{name} {found} installed, the kit pins {wanted}"
    return True, f"{name} {found}"


def check_capabilities() -> list[tuple[bool, str]]:
    """Torch device/dtype, Unsloth's backend, and the embedded model (without loading it)."""
    results = []
    try:
        import torch

        from utils.runtime.hardware import detect_hardware

        hw = detect_hardware()
        results.append((True, f"torch runs: {hw.summary()}"))
        cuda_build = torch.version.cuda is not None
        results.append(
            (
                hw.device == "cuda" or not cuda_build,
                "torch is a CPU build" if not cuda_build else f"torch CUDA {torch.version.cuda}",
            )
        )
    except Exception as exc:  # noqa: BLE001 - report, don't crash the check
        results.append((False, f"torch does not run: {exc}"))
    results.append(
        (
            importlib.util.find_spec("unsloth") is not None,
            "unsloth importable (CPU backend on a machine without GPU)",
        )
    )
    try:
        from utils.runtime.models import embedded_gguf_path, embedded_model_dir, is_cache_valid

        results.append((True, f"embedded model file {embedded_gguf_path().name}"))
        cached = is_cache_valid(embedded_model_dir())
        results.append(
            (
                True,
                "converted model cache ready"
                if cached
                else "converted model cache not built yet (built on first use, ~30 s)",
            )
        )
    except Exception as exc:  # noqa: BLE001
        results.append((False, f"embedded model: {exc}"))
    return results


def run_checks(pins: dict[str, str] | None = None, capabilities: bool = True) -> bool:
    """Print one [OK]/[FAIL] line per package and capability; True when all are OK."""
    all_ok = True
    for name, wanted in sorted((pins or read_pins()).items()):
        ok, message = check_package(name, wanted)
        all_ok &= ok
        print(f"[{'OK' if ok else 'FAIL'}] {message}")
    for ok, message in check_capabilities() if capabilities else []:
        all_ok &= ok
        print(f"[{'OK' if ok else 'FAIL'}] {message}")
    print("All checks passed." if all_ok else "Some checks failed: see the [FAIL] lines above.")
    return all_ok


if __name__ == "__main__":
    sys.exit(0 if run_checks() else 1)
