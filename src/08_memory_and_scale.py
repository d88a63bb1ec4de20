# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lab 08 — Training at the memory limit, and past one device
#
# {{colab_badge}}
#
# Full fine-tuning with Adam needs far more memory than the weights: a gradient per weight and
# two optimizer moments, plus the activations backward needs. This lab pulls the levers that move
# that limit, one at a time, on the embedded model (full fine-tuning, Lab 07's SMS task), and
# measures each against the same baseline: memory, seconds per step, and the loss.
#
# - **Part A, one device**: gradient accumulation (and why each micro-step's loss is divided by
#   their number), gradient checkpointing, optimizers (AdamW, 8-bit AdamW, Adafactor, SGD: state
#   bytes by hand, task 8.1, then measured), precision (bf16 on this CPU; an fp16 underflow and the
#   loss scale that fixes it), padding vs packing, left vs right padding for batched generation —
#   one table and one chart, next to the kit's memory estimate.
# - **Part B, past one device**: data parallelism for real — the same run on one process and on
#   two ranks (`torchrun`, gloo) must give the same loss and adapter — then ZeRO's stages as
#   per-GPU memory for 7B and 70B models, the FSDP and DeepSpeed configs you would take to a GPU
#   cluster, and the arithmetic of tensor and pipeline parallelism.
#
# **Time**: about 3 minutes on 2 CPU cores (`SMOKE = True`: under 2 minutes).

# %% tags=["colab-install"]
# (filled in by tools/build_labs.py)

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("FTKIT_PROFILE", "cpu")  # "cpu" (SmolLM2-135M, offline) | "t4" | "a100"
SMOKE = os.environ.get("FTKIT_SMOKE", "0") == "1"  # True: fewer steps, ~2 min
SEED = int(os.environ.get("FTKIT_SEED", "0"))  # batch order

# %%
from utils.runtime.hardware import preflight

hardware = preflight(PROFILE)

# %%
import json
import subprocess
import sys
import time

import torch

from utils.data.batching import training_batches
from utils.data.datasets import load_split
from utils.eval import label_task
from utils.lab.checks import check_close, check_equal, checking, report
from utils.lab.expected import yours_or_kit
from utils.lab.plots import plot_stacked_bars, show
from utils.lab.results import finish_lab, format_table
from utils.runtime.models import load_model, model_fingerprint
from utils.runtime.storage import REPO_ROOT, lab_output_dir
from utils.train import memory_levers as levers
from utils.train import peft_family as family
from utils.train.memory_estimate import (
    SHAPES,
    estimate_memory,
    shape_from_config,
    zero_model_states_gb,
)

LAB = "08_memory_and_scale"
OUT = lab_output_dir(LAB)
lab_start = time.perf_counter()
model, tokenizer = load_model(PROFILE, backend="transformers" if PROFILE == "cpu" else "auto")
BASE_FINGERPRINT = model_fingerprint(model)
LABELS = ("ham", "spam")
examples = label_task.encode_rows(tokenizer, load_split("sms_spam", "train"), LABELS)
if SMOKE:  # the shortest messages: the same paths, less compute
    examples = sorted(examples, key=lambda e: len(e[0]))[:32]
BATCH, STEPS = 8, (2 if SMOKE else 4)
batches = training_batches(examples, BATCH, STEPS, SEED)
n_params = sum(p.numel() for p in model.parameters())
print(f"{n_params:,} parameters; {STEPS} steps of {BATCH} messages per configuration")

# %% [markdown]
# ## Part A — one device
# ### Task 8.1 — optimizer state, by hand
# An optimizer's state is not a fixed number of bytes per parameter: it is kept **per tensor**,
# and its size depends on the tensor's shape. Write `state_bytes(optimizer, params)`, the bytes
# of state each optimizer below keeps for a list of fp32 parameter tensors after its first step
# (from each library's own source):
# - `"adamw"` (PyTorch): two moments with the parameter's shape, in fp32, and a step counter per
#   tensor (a 4-byte tensor);
# - `"adamw-8bit"` (bitsandbytes): the two moments in one byte each, plus, per moment, a 4-byte
#   scale for every block of 256 values (a last, partial block counts as one) and a 256-entry
#   fp32 code book; a tensor of fewer than 4,096 values is not quantized: two fp32 moments, no
#   scales, no code books;
# - `"adafactor"` (transformers, no first moment): the second moment of a matrix (m × n) kept as
#   a row vector and a column vector (m + n fp32 values), of any other tensor in full, plus the
#   weights' RMS (a 4-byte tensor) per tensor;
# - `"sgd"`: nothing.
#
# Before you run it, predict Adafactor's state for this model in **bytes per parameter** (AdamW's
# is 8, plus its counters): `PREDICTED_ADAFACTOR_BYTES`. The check compares your function with
# what each optimizer holds after the runs below.


# %%
# BEGIN SOLUTION: PREDICTED_ADAFACTOR_BYTES = ...  # your prediction, bytes per parameter
PREDICTED_ADAFACTOR_BYTES = 0.05
# END SOLUTION


def state_bytes(optimizer: str, params: list[torch.Tensor]) -> int:
    # BEGIN SOLUTION: ...
    def blocks(n: int) -> int:
        return -(-n // 256)  # ceil(n / 256)

    per_tensor = {
        "adamw": lambda p: 8 * p.numel() + 4,
        "adamw-8bit": lambda p: (
            2 * p.numel() + 2 * 4 * blocks(p.numel()) + 2 * 256 * 4
            if p.numel() >= 4096
            else 8 * p.numel()
        ),
        "adafactor": lambda p: 4 * (sum(p.shape) if p.dim() == 2 else p.numel()) + 4,
        "sgd": lambda p: 0,
    }[optimizer]
    return sum(per_tensor(p) for p in params)
    # END SOLUTION


# %% [markdown]
# ### Each lever against the same baseline
# Every configuration trains a fresh copy of the full model on the same batches of 8 messages.
# Memory is how much the process grew while training (weights excluded: they were loaded
# before), which on a GPU would be the gradients, optimizer state and activations.

# %% [markdown]
# One step with **gradient accumulation**, as you would write it: the batch of 8 is split into
# micro-batches; each micro-batch's mean loss is divided by their number before `backward`, so the
# gradients that add up in `.grad` are those of the whole batch's mean (for micro-batches of equal
# size). Every configuration below trains through this function.


# %%
def accumulate(loss_of, micro_batches) -> float:
    """The gradients of one optimizer step; returns the step's loss."""
    step_loss = 0.0
    for part in micro_batches:
        loss = loss_of(part) / len(micro_batches)  # this micro-batch's mean loss, scaled
        loss.backward()  # adds this part's gradient to .grad (zeroed after each optimizer step)
        step_loss += loss.item()
    return step_loss


# %%
LEVERS = {
    "baseline (AdamW, batch 8)": {"micro": 8},
    "accumulation 4 x 2": {"micro": 2},
    "accumulation 8 x 1": {"micro": 1},
    "gradient checkpointing": {"micro": 8, "checkpointing": True},
    "8-bit AdamW": {"micro": 8, "optimizer": "adamw-8bit"},
    "Adafactor": {"micro": 8, "optimizer": "adafactor"},
    "SGD": {"micro": 8, "optimizer": "sgd"},
}
runs = {}
for name, settings in LEVERS.items():
    runs[name] = levers.train_with_levers(
        model, batches, tokenizer.pad_token_id, accumulate=accumulate, **settings
    )
    print(
        f"{name}: {runs[name]['memory_gb']:.2f} GB, {runs[name]['seconds_per_step']:.1f} s/step,"
        f" loss {runs[name]['loss'][-1]:.3f}"
    )

# %%
params = list(model.parameters())  # what every run's optimizer was given (the tied head once)
OPTIMIZERS = {"adamw": "baseline (AdamW, batch 8)", "adamw-8bit": "8-bit AdamW"}
OPTIMIZERS |= {"adafactor": "Adafactor", "sgd": "SGD"}
for optimizer, name in OPTIMIZERS.items():
    with checking("Task 8.1", fresh=optimizer == "adamw"):
        check_equal(
            "Task 8.1",
            state_bytes(optimizer, params),
            runs[name]["optimizer_state_bytes"],
            what=f"{optimizer}: your bytes of state (expected: what the optimizer holds)",
        )
per_parameter = {o: runs[n]["optimizer_state_bytes"] / n_params for o, n in OPTIMIZERS.items()}
print("bytes of state per parameter:", {o: round(b, 3) for o, b in per_parameter.items()})
if isinstance(PREDICTED_ADAFACTOR_BYTES, int | float):
    print(
        f"Adafactor: you predicted {PREDICTED_ADAFACTOR_BYTES:g}; "
        f"it keeps {per_parameter['adafactor']:.3f}"
    )

# %% [markdown]
# ### Gradient accumulation gives the same training
# With micro-batches of equal size, dividing each micro-batch's mean loss by the number of
# micro-batches makes the accumulated gradient exactly the full batch's: the loss curves agree.

# %%
baseline = runs["baseline (AdamW, batch 8)"]["loss"]
for name in ("accumulation 4 x 2", "accumulation 8 x 1"):
    check_close(
        "accumulation",
        max(abs(a - b) for a, b in zip(runs[name]["loss"], baseline, strict=True)),
        0.0,
        tol=1e-3,
        what=f"{name}: largest loss difference from the baseline",
    )

# %% [markdown]
# ### Task 8.2 — explain
# Why must each micro-step's loss be divided by the number of micro-steps? Below, the kit
# accumulates next-token losses over micro-batches of **unequal** lengths: averaging per
# micro-batch gives a different gradient from the full batch, counting tokens over all
# micro-batches gives the same. In two sentences, say why.

# %%
_lengths = [3, 4, 12, 12, 5, 3, 11, 2]
_ids = torch.full((8, 12), tokenizer.pad_token_id)
_mask = torch.zeros_like(_ids)
for _row, _n in enumerate(_lengths):
    _ids[_row, :_n] = torch.arange(100, 100 + _n)
    _mask[_row, :_n] = 1
_micro = [(_ids[i : i + 2], _mask[i : i + 2]) for i in range(0, 8, 2)]
_whole = levers.full_batch_gradients(model, (_ids, _mask))
for _rule in ("micro", "global"):
    _acc = levers.accumulated_gradients(model, _micro, _rule)
    print(
        f"normalise per {_rule:6}: largest gradient difference from the full batch "
        f"{levers.largest_difference(_whole, _acc):.2e}"
    )
model.zero_grad(set_to_none=True)

# %% [markdown]
# *YOUR ANSWER HERE*

# %% [markdown]
# ### Precision
# This CPU has no bf16 units, so bf16 cannot run on fast hardware here as it does on an A100's
# tensor cores (where it also halves activation memory); what it does to a step on this machine
# is measured below, and it varies with the machine and the size of the matrices.
# And fp16 has a narrow range: a gradient below about 6e-8 becomes exactly zero. A loss scale
# (PyTorch's `GradScaler`, 2¹⁶ by default) multiplies the loss before backward and divides the
# gradients after.

# %%
ONE_STEP = [b[:2] for b in batches[:2]] if SMOKE else batches[:3]
bf16 = levers.train_with_levers(
    model, ONE_STEP, tokenizer.pad_token_id, micro=8, autocast=torch.bfloat16, accumulate=accumulate
)
fp32 = levers.train_with_levers(
    model, ONE_STEP, tokenizer.pad_token_id, micro=8, accumulate=accumulate
)
print(
    f"seconds per step: fp32 {fp32['seconds_per_step']:.2f}, bf16 autocast "
    f"{bf16['seconds_per_step']:.2f} ({bf16['seconds_per_step'] / fp32['seconds_per_step']:.2f}x) "
    "on this CPU"
)
underflow = {scale: levers.fp16_zero_gradients(scale) for scale in (1.0, 2.0**16)}
print(
    f"fp16 gradients that are exactly zero: {underflow[1.0]:.0%} without a loss scale, "
    f"{underflow[2.0**16]:.0%} with 2^16"
)
report(
    "precision",
    underflow[1.0] > 0.9 and underflow[2.0**16] == 0.0,
    "the loss scale rescues every fp16 gradient",
    "unexpected underflow result",
)

# %% [markdown]
# ### Padding vs packing
# A batch padded to its longest message computes on pad tokens too; grouping messages of similar
# length (Lab 07's batches) wastes less; packing (Lab 05) concatenates examples into full rows
# and wastes nothing (with an attention mask that keeps examples apart, when they must not see
# each other).

# %%
import random

_lengths = [len(p) + 1 for p, _ in examples]
_rng = random.Random(SEED)
_random = [_rng.sample(_lengths, BATCH) for _ in range(50)]
_grouped = [[len(p) + 1 for p, _ in b] for b in training_batches(examples, BATCH, 50, SEED)]
padding = {
    "random batches": 1 - sum(map(sum, _random)) / sum(max(b) * len(b) for b in _random),
    "length-grouped batches": 1 - sum(map(sum, _grouped)) / sum(max(b) * len(b) for b in _grouped),
    "packed rows": 0.0,
}
for name, share in padding.items():
    print(f"{name:24}: {share:.0%} of the computed tokens are padding")

# %% [markdown]
# ### Left or right padding when generating in batches
# Training pads on the right, and there the side does not matter: the attention mask hides the
# pads and the loss ignores their labels, so each row's loss is the same either way (guides that
# say "pad left for training" carry over a generation habit). The side matters when
# **generating**: every row continues from the **last** position of the batch, so with right
# padding a short prompt's continuation would start after its pad tokens. Batched generation pads
# on the left; compare each way with generating every prompt alone.

# %%
_rows = sorted(load_split("sms_spam", "test")[:8], key=lambda r: len(r["text"]))
_prompts = [label_task.prompt_text(r, LABELS) for r in (_rows[0], _rows[-1])]  # shortest, longest


def generate(prompts: list[str], side: str) -> list[str]:
    """Greedy continuations of ``prompts`` generated as one batch padded on ``side``."""
    tokenizer.padding_side = side
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(
            **batch, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    width = batch["input_ids"].shape[1]
    return [tokenizer.decode(row[width:], skip_special_tokens=True) for row in out]


_side = tokenizer.padding_side
alone = [generate([p], "left")[0] for p in _prompts]
batched = {side: generate(_prompts, side) for side in ("left", "right")}
tokenizer.padding_side = _side
padding_generation = {
    side: sum(a == b for a, b in zip(alone, outs, strict=True)) for side, outs in batched.items()
}
for side, outs in batched.items():
    print(
        f"{side:5} padding: {padding_generation[side]} of {len(alone)} continuations as when "
        f"generated alone; {outs}"
    )
report(
    "padding side",
    padding_generation["left"] == len(alone),
    "left padding reproduces every prompt's own continuation",
    "left padding changed a continuation",
)

# %% [markdown]
# ### The table, and the estimate
# The kit's estimator (`utils.train.memory_estimate`, built for GPUs) predicts the gradients,
# optimizer state and activations of each configuration from the model's shape; the measured
# column is the process's growth on this CPU.

# %%
SHAPE = shape_from_config(model.config.to_dict(), "embedded")
seq = max(len(p) + 1 for b in batches for p, _ in b)
counted = yours_or_kit("Task 8.1", state_bytes, "count of optimizer state")
table, parts = [], {"gradients": [], "optimizer": [], "activations": []}
for name, settings in LEVERS.items():
    optimizer = settings.get("optimizer", "adamw")
    estimate = estimate_memory(  # its gradients and activations; the state is counted by hand
        SHAPE,
        method="full",
        weights="fp32",
        trainable_bytes=4.0,
        batch_size=settings["micro"],
        seq_len=seq,
        gradient_checkpointing=settings.get("checkpointing", False),
        activation_bytes=4.0,
        logits_tokens=settings["micro"],  # the LM head runs on the label position only
    )
    optimizer_gb = counted(optimizer, params) / 1e9  # Task 8.1's count, by tensor
    estimated = estimate.gradients + optimizer_gb + estimate.activations
    measured = runs[name]["memory_gb"]
    table.append(
        {
            "configuration": name,
            "measured GB": measured,
            "estimated GB": estimated,
            "miss %": 100 * (measured / estimated - 1),
            "s/step": runs[name]["seconds_per_step"],
            "last loss": runs[name]["loss"][-1],
        }
    )
    parts["gradients"].append(estimate.gradients)
    parts["optimizer"].append(optimizer_gb)
    parts["activations"].append(estimate.activations)
print(
    format_table(
        table,
        ["configuration", "measured GB", "estimated GB", "miss %", "s/step", "last loss"],
        floats="{:.3g}",
    )
)
show(
    plot_stacked_bars(
        list(LEVERS),
        parts,
        OUT / "memory_levers.png",
        title="Lab 08: estimated training memory per configuration (GB)",
        ylabel="GB (estimate)",
    )
)
for row in table:
    if abs(row["miss %"]) > 15:
        print(f"- {row['configuration']}: measured {row['miss %']:+.0f}% from the estimate.")

# %% [markdown]
# Why the rows above the estimate miss: the estimator (built for GPUs) adds up gradients,
# optimizer state and activations as if they peaked together, and counts nothing else. The
# process's peak can come at another moment — during `optimizer.step()`, when the activations
# are gone but PyTorch's multi-tensor optimizers hold full-size temporaries (AdamW computes the
# square root of its whole second moment at once: one more fp32 copy of the model) — and on a
# CPU the process also keeps freed memory for reuse. The lab does not separate the two; to try:
# pass `foreach=False` to the optimizer and measure again.

# %% [markdown]
# ## Part B — past one device
# ### Data parallelism, for real
# `tools/distributed/ddp_train.py` trains LoRA on the SMS task (SGD with momentum). Launched by
# `torchrun` with two processes, each takes half of every global batch, and DDP averages their
# gradients — which is the full batch's gradient, so the two runs must agree. (With Adam they
# agree less exactly: it divides each gradient by its own running size, so a float-rounding
# difference in a near-zero gradient becomes a visible difference in the update.) The same
# script runs unchanged on a machine with GPUs (NCCL instead of gloo). "Agree" means to float
# rounding: the two runs add the same numbers in a different order, and small differences grow
# a little from step to step (the check allows 5e-3 on the losses, 1e-4 on the weights).

# %%
SCRIPT = REPO_ROOT / "tools" / "distributed" / "ddp_train.py"
DDP_ARGS = ["--out", str(OUT / "ddp"), "--steps", "2" if SMOKE else "8", "--batch", "8"]
launches = {
    "2 ranks (torchrun)": [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(SCRIPT),
        *DDP_ARGS,
    ],
    "1 process": [sys.executable, str(SCRIPT), *DDP_ARGS],
}
for name, command in launches.items():
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1" if "2" in name else "2"},
    )
    if done.returncode:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-2000:]}")
ddp = {n: json.loads((OUT / "ddp" / f"result-{n}.json").read_text()) for n in (1, 2)}
from safetensors.torch import load_file

_a, _b = (load_file(str(OUT / "ddp" / f"adapter-{n}.safetensors")) for n in (1, 2))
ddp_weight_diff = max(float((_a[k] - _b[k]).abs().max()) for k in _a)
ddp_loss_diff = max(abs(x - y) for x, y in zip(ddp[1]["loss"], ddp[2]["loss"], strict=True))
check_close("DDP", ddp_loss_diff, 0.0, tol=5e-3, what="largest loss difference, 2 ranks vs 1")
check_close("DDP", ddp_weight_diff, 0.0, tol=1e-4, what="largest adapter weight difference")
print(
    f"seconds per step: 1 process (2 threads) {ddp[1]['seconds_per_step']:.2f}, "
    f"2 ranks (1 thread each) {ddp[2]['seconds_per_step']:.2f}"
)

# %% [markdown]
# Two ranks on two cores are not twice as fast: the one process already used both cores (two
# threads), each rank now has one, and every step adds an all-reduce of the gradients. Data
# parallelism pays off when each rank brings its own device.
#
# ### ZeRO: what each GPU holds
# Mixed-precision Adam keeps 16 bytes per parameter (2 for the 16-bit weight, 2 for its gradient,
# 12 for the fp32 master copy and two moments). Plain data parallelism (stage 0) keeps all of it
# on every GPU; ZeRO splits the optimizer state (stage 1), the gradients too (stage 2), the weights
# too (stage 3); offloading moves states to CPU memory. Model states only — activations come on
# top (the kit's estimator, Lab 04).

# %%
MODELS = {"7B": (SHAPES["llama-2-7b"].params(), 32000 * 4096), "70B": (70e9, 128256 * 8192)}
zero_rows = []
for label, (params, layer) in MODELS.items():
    for stage, offload in ((0, False), (1, False), (2, False), (3, False), (3, True)):
        row = {"model": label, "ZeRO stage": f"{stage}{' + CPU offload' if offload else ''}"}
        for gpus in (1, 2, 4, 8):
            row[f"{gpus} GPU"] = zero_model_states_gb(
                params,
                gpus,
                stage,
                offload_optimizer=offload,
                offload_params=offload,
                largest_layer=layer,
            )
        zero_rows.append(row)
print(
    format_table(
        zero_rows, ["model", "ZeRO stage", "1 GPU", "2 GPU", "4 GPU", "8 GPU"], floats="{:.1f}"
    )
)

# %% [markdown]
# The configs in `tools/distributed/` are what you would launch with on a GPU machine: an
# `accelerate` FSDP config (`accelerate launch --config_file tools/distributed/fsdp.yaml ...`)
# and DeepSpeed ZeRO-1/2/3 and ZeRO-3 with CPU offload (`zero*.json`, for the Trainer's
# `deepspeed=` argument). They are checked to load with the installed libraries:

# %%
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils.deepspeed import HfDeepSpeedConfig

configs = {
    "fsdp.yaml": str(load_config_from_file(str(SCRIPT.parent / "fsdp.yaml")).distributed_type)
}
for name in ("zero1", "zero2", "zero3", "zero3_offload"):
    ds = HfDeepSpeedConfig(json.loads((SCRIPT.parent / f"{name}.json").read_text()))
    configs[f"{name}.json"] = (
        f"ZeRO stage {ds.get_value('zero_optimization.stage')}"
        f"{', offload' if ds.is_offload() else ''}"
    )
for name, what in configs.items():
    print(f"{name:20} loads: {what}")

# %% [markdown]
# ### Tensor and pipeline parallelism: the arithmetic
# **Tensor parallelism** splits each weight matrix across $t$ GPUs (Megatron: the MLP's first
# matrix by columns, the second by rows), so each GPU holds $1/t$ of every layer and the layers
# run on all GPUs at once; each block needs two all-reduces of its activations per forward pass
# (and two in backward): fast links (NVLink) within one machine. **Pipeline parallelism** gives
# each of $p$ GPUs a run of consecutive layers and passes activations from stage to stage; with
# $m$ micro-batches the idle "bubble" is $(p-1)/(m+p-1)$ of the time. For Llama-2-7B
# (hidden 4096, 32 blocks) at 2,048 tokens in bf16:

# %%
hidden, blocks, tokens = 4096, 32, 2048
message_mb = tokens * hidden * 2 / 1e6
tp_rows = [
    {
        "t": t,
        "weights per GPU (GB)": SHAPES["llama-2-7b"].params() * 2 / t / 1e9,
        "all-reduces per step": 4 * blocks if t > 1 else 0,
        "each of (MB)": message_mb if t > 1 else 0.0,
    }
    for t in (1, 2, 4, 8)
]
pp_rows = [
    {"p": p, "m": m, "blocks per GPU": blocks // p, "bubble": (p - 1) / (m + p - 1)}
    for p in (2, 4, 8)
    for m in (1, 8, 32)
]
print(format_table(tp_rows, list(tp_rows[0]), floats="{:.2f}"))
print(format_table(pp_rows, list(pp_rows[0]), floats="{:.2f}"))

# %%
results = {
    "levers": table,
    "losses": {name: run["loss"] for name, run in runs.items()},
    "optimizer_state_gb": {name: run["optimizer_state_gb"] for name, run in runs.items()},
    "precision": {
        "fp32_seconds": fp32["seconds_per_step"],
        "bf16_seconds": bf16["seconds_per_step"],
        "fp16_zero_share": {"no scale": underflow[1.0], "2^16": underflow[2.0**16]},
    },
    "padding": padding,
    "padding_generation": {"prompts": len(alone), **padding_generation},
    "ddp": {
        "one_process": ddp[1],
        "two_ranks": ddp[2],
        "loss_difference": ddp_loss_diff,
        "weight_difference": ddp_weight_diff,
    },
    "zero": zero_rows,
    "configs": configs,
}
finish_lab(
    LAB,
    results,
    lab_start,
    config={"profile": PROFILE, "smoke": SMOKE, "batch": BATCH, "steps": STEPS},
    seed=SEED,
    device=hardware.device,
    dtype=next(model.parameters()).dtype,
    model_fingerprint=BASE_FINGERPRINT,
)

# %% [markdown]
# ## Takeaways
# The numbers below are this run's.

# %%
best = min(table, key=lambda r: r["measured GB"])
print(
    f"- Least memory: {best['configuration']} ({best['measured GB']:.2f} GB vs "
    f"{table[0]['measured GB']:.2f} GB for the baseline)."
)
slowdown = (
    runs["gradient checkpointing"]["seconds_per_step"]
    / runs["baseline (AdamW, batch 8)"]["seconds_per_step"]
)
print(
    f"- Accumulation reproduced the baseline's losses; checkpointing took {slowdown:.2f}x the "
    "baseline's time per step."
)
print(f"- Two ranks gave the same adapter (largest difference {ddp_weight_diff:.1e}).")
