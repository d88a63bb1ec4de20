"""Before a run starts: how long it will take and how much memory it will need.

Time comes from a few measured forward/backward passes on real training batches (no optimizer
step, so the model is left as it was); memory from ``utils.train.memory_estimate`` with the
model's own shape. Together they let a learner choose the number of training examples knowingly.

On a GPU the memory figure is the GPU's (weights, adapters, gradients, optimizer states, saved
activations, logits, the CUDA overhead); the process's own RAM comes on top and does not count
against the GPU. On a CPU everything shares the process's RAM, so the plan is the process's peak
resident size: what it holds now (Python, the libraries, the loaded weights) plus the training
state, with the saved activations scaled by ``CPU_ACTIVATION_FACTOR`` — a CPU's fp32 backward
keeps more per token than the GPU formula counts (no fused kernels).
"""

from __future__ import annotations

import itertools
import math
import statistics
import time

import psutil

from utils.runtime.memory import GB, release_memory
from utils.train.memory_estimate import estimate_memory, shape_from_config

# Measured on the kit's reference CPU (fp32, SmolLM2-135M, LoRA r = 16, batch 8): the training
# state at the longest rows of two data sets came to ~2.5-2.7 MB per token against the 1.76 MB
# the GPU formula counts; with this factor bench/plan_memory.py's plans land within 6 % of the
# measured peaks (docs/performance.md).
CPU_ACTIVATION_FACTOR = 1.45


def measure_step_seconds(trainer, repeats: int = 2) -> float:
    """Median seconds of one forward + backward pass on the trainer's first batches (after one
    warm-up pass; the same batches again when there are fewer). Gradients are cleared afterwards
    and the model is back in eval mode."""
    model = trainer.model
    device = next(model.parameters()).device
    batches = itertools.cycle(trainer.get_train_dataloader())  # a small set: batches repeat
    seconds = []
    model.train()
    try:
        for _ in range(repeats + 1):
            batch = {k: v.to(device) for k, v in next(batches).items() if hasattr(v, "to")}
            start = time.perf_counter()
            model(**batch).loss.backward()
            seconds.append(time.perf_counter() - start)
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()
    return statistics.median(seconds[1:])


def training_steps(n_examples: int, batch_size: int, epochs: float, max_steps: int = -1) -> int:
    """Optimizer steps of a run (``max_steps`` wins when positive, as in transformers)."""
    if max_steps > 0:
        return max_steps
    return max(1, math.ceil(math.ceil(n_examples / batch_size) * epochs))


def plan_run(model, settings, n_examples: int, seq_len: int, step_seconds: float) -> dict:
    """Steps, estimated minutes, and estimated peak memory (GB) of a LoRA run with ``settings``
    (``utils.train.sft.SFTSettings``) on ``n_examples`` whose longest is ``seq_len`` tokens (the
    longest batch sets the peak). The memory is the GPU's on a GPU, the process's peak RSS on a
    CPU (see the module's docstring)."""
    steps = training_steps(n_examples, settings.batch_size, settings.epochs, settings.max_steps)
    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    weights = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}.get(dtype, "fp16")
    if getattr(model, "is_loaded_in_4bit", False):  # QLoRA: NF4 blocks, 16-bit embeddings
        weights = "nf4-dq"
    on_gpu = next(model.parameters()).is_cuda
    try:
        shape = shape_from_config(model.config.to_dict(), model.config.model_type)
    except ValueError as unknown:  # a config the kit cannot read: no estimate, the run still goes
        print(f"[plan] no memory estimate: {unknown}")
        memory = None
    else:
        memory = estimate_memory(
            shape,
            method="lora",
            weights=weights,
            lora_r=settings.r,
            lora_targets=settings.target_modules,
            lora_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
            batch_size=settings.batch_size,
            seq_len=seq_len,
            gradient_checkpointing=settings.gradient_checkpointing,
            activation_bytes=2.0 if on_gpu else 4.0,
            overhead_gb=0.75 if on_gpu else 0.0,
        )
    if memory is None:
        planned = None
    elif on_gpu:
        planned = memory.total
    else:  # the process now (weights included) + the rest of the training state
        release_memory()  # what the timed passes freed goes back first
        process = psutil.Process().memory_info().rss / GB
        planned = (
            process
            + memory.total
            - memory.weights
            + (CPU_ACTIVATION_FACTOR - 1) * memory.activations
        )
    return {
        "examples": n_examples,
        "steps": steps,
        "seconds_per_step": round(step_seconds, 2),
        "estimated_minutes": round(steps * step_seconds / 60, 1),
        "estimated_memory_gb": None if planned is None else round(planned, 2),
        "memory_kind": "GPU (the process's RAM comes on top)"
        if on_gpu
        else "RAM, the process's peak",
    }


def examples_for_minutes(minutes: float, step_seconds: float, batch_size: int) -> int:
    """How many examples one epoch can take in ``minutes`` at ``step_seconds`` per step."""
    return max(batch_size, int(minutes * 60 / step_seconds) * batch_size)
