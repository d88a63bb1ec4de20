"""Hardware preflight: what is this machine, which dtype to compute in, will the profile fit."""

from __future__ import annotations

from dataclasses import dataclass

import psutil
import torch

from utils.runtime.profiles import Profile, get_profile


@dataclass
class Hardware:
    """What the preflight found."""

    device: str
    gpu_name: str | None
    compute_capability: tuple[int, int] | None
    dtype: torch.dtype
    ram_gb: float
    vram_gb: float | None
    cpu_threads: int

    def summary(self) -> str:
        gpu = "none"
        if self.gpu_name:
            major, minor = self.compute_capability or (0, 0)
            gpu = f"{self.gpu_name} (compute capability {major}.{minor}, {self.vram_gb:.1f} GB)"
        return (
            f"device={self.device}  GPU={gpu}  dtype={str(self.dtype).replace('torch.', '')}  "
            f"RAM={self.ram_gb:.1f} GB  CPU threads={self.cpu_threads}"
        )


def choose_dtype(device: str, compute_capability: tuple[int, int] | None = None) -> torch.dtype:
    """bf16 only on GPUs with compute capability >= 8.0, fp16 on older GPUs, fp32 on CPU.

    ``torch.cuda.is_bf16_supported()`` answers True on a T4 (cc 7.5) through emulation, which is
    slow; a CPU without AMX runs bf16 matmuls ~100x slower than fp32. So the decision is made by
    compute capability alone.
    """
    if device != "cuda":
        return torch.float32
    if compute_capability is None:
        raise ValueError("choose_dtype needs the compute capability of a CUDA device")
    return torch.bfloat16 if compute_capability >= (8, 0) else torch.float16


def detect_hardware() -> Hardware:
    """Look at the machine once: GPU (if any), RAM, threads, and the dtype to use."""
    ram_gb = psutil.virtual_memory().total / 1e9
    threads = torch.get_num_threads()
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        cc = (props.major, props.minor)
        return Hardware(
            "cuda",
            props.name,
            cc,
            choose_dtype("cuda", cc),
            ram_gb,
            props.total_memory / 1e9,
            threads,
        )
    return Hardware("cpu", None, None, torch.float32, ram_gb, None, threads)


def check_fits(profile: Profile, hw: Hardware) -> None:
    """Raise a RuntimeError with advice when ``profile`` cannot run on ``hw``."""
    if profile.device == "cuda" and hw.device != "cuda":
        raise RuntimeError(
            f"Profile '{profile.name}' needs a CUDA GPU and none was found. In Colab: Runtime > "
            "Change runtime type > GPU. On a CPU-only machine use PROFILE = 'cpu'."
        )
    available = hw.vram_gb if profile.device == "cuda" else hw.ram_gb
    kind = "GPU memory" if profile.device == "cuda" else "RAM"
    if available is not None and available < profile.min_memory_gb:
        raise RuntimeError(
            f"Profile '{profile.name}' needs about {profile.min_memory_gb:.0f} GB of {kind}; this "
            f"machine has {available:.1f} GB. Pick a smaller profile (t4 < a100) or a bigger "
            "machine."
        )


def preflight(profile: str | Profile | None = None) -> Hardware:
    """Print device, GPU, compute capability, dtype, memory and threads; fail early if it won't
    fit."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    hw = detect_hardware()
    print(f"[preflight] profile={prof.name}: {prof.description}")
    print(f"[preflight] {hw.summary()}")
    check_fits(prof, hw)
    print("[preflight] OK")
    return hw
