# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lab 04 — QLoRA through Unsloth: 4-bit base, 16-bit adapters
#
# {{colab_badge}}
#
# QLoRA (Dettmers et al., 2023) freezes the base model in **4-bit NF4** and trains LoRA adapters on
# top in 16/32-bit. On a GPU that is what lets a 7–8B model train on one 16–24 GB card. This lab
# walks the **Unsloth** workflow end to end —
# `FastLanguageModel.from_pretrained(load_in_4bit=True)`,
# `get_peft_model`, TRL's `SFTTrainer`, `train_on_responses_only`, `for_inference`, saving the
# adapter and a merged 16-bit model — on the same extraction task as Lab 03B, so the scores compare.
#
# You will: quantize a real weight matrix to NF4 by hand and match bitsandbytes bit for bit
# (task 4.1), count bytes per parameter (4.2), see why LLM.int8() keeps outlier features in 16-bit
# (4.3), then train LoRA and QLoRA with the same budget and measure memory, time and score side by
# side — and estimate what the same runs need on a Colab T4 or A100.
#
# **Time**: about 12 minutes on 2 CPU cores (`SMOKE = True`: under 2 minutes). On a CPU 4-bit saves
# little: read section 5 for why, and section 6 for what it saves on a GPU.

# %% tags=["colab-install"]
# (filled in by tools/build_labs.py)

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("FTKIT_PROFILE", "cpu")  # "cpu" (SmolLM2-135M, offline) | "t4" | "a100"
SMOKE = os.environ.get("FTKIT_SMOKE", "0") == "1"  # True: a few examples and steps, < 2 min
SEED = int(os.environ.get("FTKIT_SEED", "0"))  # adapter initialisation and batch order
STUDENT_ID = os.environ.get("FTKIT_STUDENT", "your-student-id")  # names your submission zip

# %%
from utils.runtime.hardware import preflight

hardware = preflight(PROFILE)

# %%
import time

import torch
from peft import PeftModel

from utils.data.datasets import dataset_fingerprint, get_spec, load_split
from utils.eval.metrics import evaluate_extraction, target_json, teacher_forced_match
from utils.lab.checks import check_close, check_equal, checking, passed, report
from utils.lab.diagrams import Changes, draw_model
from utils.lab.expected import expected, stand_in
from utils.lab.explorers import quantization_explorer
from utils.lab.plots import plot_grouped_bars, plot_histograms, plot_stacked_bars, show
from utils.lab.results import finish_lab, format_table
from utils.lab.submission import make_submission
from utils.runtime.memory import GB, PeakMemory, memory_now, release_memory, weight_bytes
from utils.runtime.models import load_model, model_fingerprint, model_source, set_special_tokens
from utils.runtime.profiles import get_profile
from utils.runtime.storage import lab_output_dir
from utils.train import sft
from utils.train.memory_estimate import SHAPES, estimate_memory
from utils.train.params import ALL_LINEAR, add_peft_lora, count_trainable, keep_adapters_fp32
from utils.train.quantization import (
    NF4_LEVELS,
    bitsandbytes_nf4_roundtrip,
    int8_absmax_matmul,
    int8_outlier_matmul,
    nf4_dequantize,
    nf4_quantize,
    nf4_roundtrip_linears,
)

LAB = "04_qlora_unsloth"
OUT = lab_output_dir(LAB)
ON_GPU = hardware.device == "cuda"
lab_start = time.perf_counter()
print(memory_now())

# %% [markdown]
# ## 1. The data and the 16-bit base model's zero-shot score
# The same sentences as Lab 03B (who / what / when / where as JSON; test shapes never seen in
# training), the same prompts and the same evaluation function.

# %%
FIELDS = get_spec("news_events").fields
splits = {name: load_split("news_events", name) for name in ("train", "validation", "test")}
if SMOKE:
    splits = {
        "train": splits["train"][:16],
        "validation": splits["validation"][:3],
        "test": splits["test"][:3],
    }
print({name: len(rows) for name, rows in splits.items()})

base, tokenizer = load_model(PROFILE, load_in_4bit=False)
LAYERS = base.config.num_hidden_layers  # for the network diagram
BASE_FINGERPRINT = model_fingerprint(base)


test_prompts, test_targets = (
    sft.extraction_prompts(tokenizer, splits["test"], FIELDS),
    [r["target"] for r in splits["test"]],
)
val_prompts = sft.extraction_prompts(tokenizer, splits["validation"][:45], FIELDS)
val_answers = [target_json(r["target"], FIELDS) for r in splits["validation"][:45]]
before = evaluate_extraction(base, tokenizer, test_prompts, test_targets, FIELDS, max_new_tokens=56)
print(
    f"zero-shot (16/32-bit base): JSON valid {before['json_valid']:.2f}, exact match "
    f"{before['exact_match']:.2f}"
)

# %% [markdown]
# ## 2. NF4: 4-bit NormalFloat
# Trained weights are roughly normally distributed around 0. NF4 has 16 levels placed at quantiles
# of a normal distribution (rescaled to [-1, 1], with an exact 0), so each level is used about
# equally often. A weight is stored as the index of its nearest level (4 bits); each **block** of
# 64 weights also stores its absolute maximum, which scales the block to [-1, 1].
#
# ### Task 4.1 — quantize one block
# Given `block` (64 floats), return `codes` (the index 0–15 of the nearest entry of `NF4_LEVELS` to
# each `weight / absmax`, as `torch.uint8`) and `absmax` (a 0-d tensor: the largest |weight|).

# %%
print("NF4 levels:", [round(v, 4) for v in NF4_LEVELS.tolist()])


def nf4_quantize_block(block: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # BEGIN SOLUTION
    absmax = block.abs().max()
    codes = (block[:, None] / absmax - NF4_LEVELS).abs().argmin(dim=1).to(torch.uint8)
    return codes, absmax
    # END SOLUTION


# %%
LAYER = len(base.model.layers) // 2
weight = base.model.layers[LAYER].mlp.down_proj.weight.detach().float().cpu()
print(
    f"layer {LAYER} mlp.down_proj: {tuple(weight.shape)}, {weight.numel():,} weights, std "
    f"{weight.std():.4f}"
)
codes, absmax = nf4_quantize(weight)  # the kit's blockwise version
dequantized = nf4_dequantize(codes, absmax, weight.shape)
by_bitsandbytes = bitsandbytes_nf4_roundtrip(weight)
check_close(
    "NF4",
    float((dequantized - by_bitsandbytes).abs().max()),
    0.0,
    tol=1e-6,
    what="max |kit - bitsandbytes| after quantize + dequantize",
)
with checking("Task 4.1"):
    your_codes, your_absmax = nf4_quantize_block(weight.flatten()[:64].clone())
    check_equal(
        "Task 4.1", your_codes.tolist(), codes[0].tolist(), what="codes of the first block"
    )
    check_close(
        "Task 4.1", float(your_absmax), float(absmax[0]), tol=1e-7, what="absmax of the first block"
    )
print(f"first block: codes {codes[0][:8].tolist()} ..., absmax {float(absmax[0]):.4f}")

# %% [markdown]
# How good is it? The same matrix with 16 **evenly spaced** 4-bit levels (absmax, the obvious
# choice) for comparison:


# %%
def uniform4_roundtrip(w: torch.Tensor, blocksize: int = 64) -> torch.Tensor:
    """Blockwise absmax quantization to 16 evenly spaced levels in [-1, 1], and back."""
    blocks = w.flatten().view(-1, blocksize)
    scale = blocks.abs().amax(dim=1, keepdim=True)
    levels = torch.linspace(-1, 1, 16)
    return (
        levels[(blocks[..., None] / scale[..., None] - levels).abs().argmin(-1)]
        .mul(scale)
        .view(w.shape)
    )


uniform = uniform4_roundtrip(weight)
errors = {"NF4": (dequantized - weight).flatten(), "uniform 4-bit": (uniform - weight).flatten()}
quant_rows = [
    {
        "format": name,
        "mean |error|": float(e.abs().mean()),
        "max |error|": float(e.abs().max()),
        "relative error": float(e.norm() / weight.norm()),
    }
    for name, e in errors.items()
]
print(
    format_table(
        quant_rows, ["format", "mean |error|", "max |error|", "relative error"], floats="{:.5f}"
    )
)
report(
    "NF4",
    quant_rows[0]["relative error"] < quant_rows[1]["relative error"],
    "NF4's error is smaller than evenly spaced 4-bit levels on a real weight matrix",
    "NF4 did not beat evenly spaced levels here",
)
show(
    plot_histograms(
        {name: e.tolist() for name, e in errors.items()},
        OUT / "nf4_error_histogram.png",
        title=f"quantization error, layer {LAYER} down_proj",
        xlabel="dequantized - original",
    )
)

# %% [markdown]
# ### Explore: codes and block sizes
# The quantization explorer round-trips the same matrix through NF4, evenly spaced 4-bit (int4)
# and 8-bit (int8) codes, with one absmax per block of the size you choose. The table holds a few
# settings; in JupyterLab or Colab the controls below it redraw the error histogram. Before you
# move the slider, predict: does a larger block raise or lower the error, and why (think of
# what one large weight does to its block's scale)?

# %%
quantization_explorer(weight, f"layer {LAYER} mlp.down_proj")

# %% [markdown]
# ### Task 4.2 — bytes per parameter
# With blocks of 64, each weight costs 4 bits plus its share of the block's fp32 absmax. **Double
# quantization** stores the absmaxes themselves in 8 bits, with one fp32 scale per 256 blocks.
# Write both costs in bytes per parameter.

# %%
# BEGIN SOLUTION: nf4_bytes, nf4_double_quant_bytes = ..., ...
nf4_bytes = (4 + 32 / 64) / 8
nf4_double_quant_bytes = (4 + 8 / 64 + 32 / (64 * 256)) / 8
# END SOLUTION
with checking("Task 4.2"):
    check_close(
        "Task 4.2", nf4_bytes, expected("Task 4.2"), tol=1e-9, what="NF4 bytes per parameter"
    )
    check_close(
        "Task 4.2",
        nf4_double_quant_bytes,
        expected("Task 4.2", double_quant=True),
        tol=1e-9,
        what="NF4 + double quantization bytes per parameter",
    )
if not passed("Task 4.2"):  # the table below needs both numbers
    _bytes_per_parameter = stand_in("Task 4.2", "bytes per parameter")
    nf4_bytes, nf4_double_quant_bytes = (
        _bytes_per_parameter(),
        _bytes_per_parameter(double_quant=True),
    )
params_7b = SHAPES["llama-2-7b"].params()
print(
    format_table(
        [
            {"format": f, "bytes/param": b, "7B model (GB)": b * params_7b / GB}
            for f, b in [
                ("fp32", 4.0),
                ("fp16 / bf16", 2.0),
                ("int8", 1.0),
                ("NF4", nf4_bytes),
                ("NF4 + double quant", nf4_double_quant_bytes),
            ]
        ],
        ["format", "bytes/param", "7B model (GB)"],
    )
)

# %% [markdown]
# ## 3. LLM.int8() and outlier features
# 8-bit quantization scales each row by its absolute maximum. Transformers grow a few hidden
# **feature dimensions with huge values** (Dettmers et al., 2022); one such value in a row squeezes
# every other value of the row into a handful of int8 levels. LLM.int8() finds the feature columns
# with any |value| ≥ 6, multiplies those in 16-bit, and the rest in int8.
#
# Here are real inputs to the MLP's `down_proj` in every block of the base model (captured with
# forward hooks); we keep the block whose input has the largest value:

# %%
captured = {}
hooks = [
    layer.mlp.down_proj.register_forward_hook(
        lambda module, args, output, i=i: captured.update(
            {i: args[0].detach().flatten(0, 1).float().cpu()}
        )
    )
    for i, layer in enumerate(base.model.layers)
]
with torch.no_grad():
    batch = tokenizer([r["text"] for r in splits["train"][:8]], return_tensors="pt", padding=True)
    base(**batch.to(base.device))
for hook in hooks:
    hook.remove()
INT8_LAYER = max(captured, key=lambda i: float(captured[i].abs().max()))
x = captured[INT8_LAYER]
w_lin = base.model.layers[INT8_LAYER].mlp.down_proj.weight.detach().float().cpu()
column_max = x.abs().amax(dim=0)
print(
    f"block {INT8_LAYER} down_proj inputs {tuple(x.shape)}: median column max "
    f"{column_max.median():.2f}, "
    f"largest {column_max.max():.1f} (columns {column_max.topk(3).indices.tolist()})"
)

# %% [markdown]
# ### Task 4.3 — which columns are outliers?
# Return a boolean mask over the feature columns of `x`: True where any value in that column has
# |value| ≥ `threshold`.


# %%
def outlier_columns(x: torch.Tensor, threshold: float = 6.0) -> torch.Tensor:
    # BEGIN SOLUTION
    return (x.abs() >= threshold).any(dim=0)
    # END SOLUTION


# %%
with checking("Task 4.3"):
    check_equal(
        "Task 4.3",
        outlier_columns(x).tolist(),
        expected("Task 4.3", x).tolist(),
        what="the outlier-column mask",
    )
exact = x @ w_lin.T
plain = int8_absmax_matmul(x, w_lin)
decomposed, n_outliers = int8_outlier_matmul(x, w_lin, threshold=6.0)
int8_rows = [
    {
        "method": "int8 absmax, every column",
        "relative error": float((plain - exact).norm() / exact.norm()),
    },
    {
        "method": f"LLM.int8(): {n_outliers} of {x.shape[1]} columns in 16-bit",
        "relative error": float((decomposed - exact).norm() / exact.norm()),
    },
]
print(format_table(int8_rows, ["method", "relative error"], floats="{:.5f}"))
report(
    "int8",
    n_outliers > 0 and int8_rows[1]["relative error"] < int8_rows[0]["relative error"],
    f"keeping {n_outliers} outlier columns in 16-bit cuts the error "
    f"{int8_rows[0]['relative error'] / max(int8_rows[1]['relative error'], 1e-12):.0f}×",
    "no outlier columns here, or the decomposition did not help",
)
del base
release_memory()

# %% [markdown]
# ## 4. QLoRA, the Unsloth way
# `load_in_4bit=True` quantizes every linear layer of the blocks to NF4 (bitsandbytes, blocks of 64,
# double quantization) as it loads; embeddings, norms and the LM head stay in 16/32-bit. On a CPU
# this runs on Unsloth's CPU backend, on a GPU on its kernels — the same calls.

# %%
SETTINGS = sft.SFTSettings(
    r=16,
    alpha=32,
    target_modules=ALL_LINEAR,
    learning_rate=1e-3,
    epochs=1,
    batch_size=8,
    max_steps=2 if SMOKE else -1,
    seed=SEED,
    gradient_checkpointing=ON_GPU,
)
train_data = sft.chat_dataset(
    splits["train"], tokenizer, lambda r: sft.extraction_messages(r, FIELDS)
)


def comparison_row(method: str, model, peak: dict, history: dict, after: dict) -> dict:
    """One row of the LoRA vs QLoRA table: memory, time per training step and for generating the
    test answers, size and score of a trained run."""
    return {
        "method": method,
        "weights GB": weight_bytes(model) / GB,
        "peak GB": peak["peak_gb"],
        "s/step": history["seconds"] / history["global_steps"],
        "generate s": after["seconds"],
        "trainable": count_trainable(model)[0],
        "exact match": after["exact_match"],
        "json valid": after["json_valid"],
    }


qlora_memory = PeakMemory().start()

# %%
from unsloth import FastLanguageModel  # noqa: E402
from unsloth.chat_templates import train_on_responses_only  # noqa: E402

model, tokenizer = FastLanguageModel.from_pretrained(
    model_name=model_source(PROFILE),
    max_seq_length=get_profile(PROFILE).max_seq_length,
    dtype=hardware.dtype,
    load_in_4bit=True,
)
if PROFILE == "cpu":
    set_special_tokens(tokenizer, model)  # the embedded GGUF's eos/pad fix
print(
    type(model.model.layers[0].mlp.down_proj).__name__,
    "| weights in memory:",
    f"{weight_bytes(model) / GB:.3f} GB",
)

model = FastLanguageModel.get_peft_model(
    model,
    r=SETTINGS.r,
    lora_alpha=SETTINGS.alpha,
    lora_dropout=0.0,
    bias="none",
    target_modules=list(SETTINGS.target_modules),
    random_state=SEED,
    use_gradient_checkpointing="unsloth" if SETTINGS.gradient_checkpointing else False,
)

# %% [markdown]
# Before training: how much did 4-bit cost the base model? The answer loss on validation
# sentences (teacher-forced) with the adapters switched off:

# %%
with model.disable_adapter():
    base_4bit_val = teacher_forced_match(model, tokenizer, val_prompts, val_answers, progress=False)
print(f"4-bit base: validation answer loss {base_4bit_val['answer_loss']:.3f}")

# %% [markdown]
# TRL's `SFTTrainer` with the kit's `SFTConfig` (precision from the weights: fp32 on a CPU, fp16 on
# a T4, bf16 on an A100), then Unsloth's `train_on_responses_only` (Lab 03B's mask), then two
# checks: no row lost every label, and on a CPU the adapters are kept in fp32 — TRL casts them to
# bf16 next to a quantized base, and bf16 is emulated (~100× slower) on this kind of CPU.

# %%
from trl import SFTTrainer  # noqa: E402

trainer = SFTTrainer(
    model=model,
    args=sft.sft_config(model, SETTINGS),
    train_dataset=train_data,
    processing_class=tokenizer,
)
# reads the user/assistant headers from the chat template
trainer = train_on_responses_only(trainer)
sft.check_labels(trainer.train_dataset["labels"])
keep_adapters_fp32(trainer.model)
print("adapter dtypes:", sorted({str(p.dtype) for p in model.parameters() if p.requires_grad}))
print(memory_now())

# %%
qlora_history = sft.train(trainer)
qlora_peak = qlora_memory.stop()
print(
    f"{qlora_history['global_steps']} steps in {qlora_history['seconds']:.0f} s; "
    f"loss {qlora_history['loss'][0]:.3f} -> {qlora_history['loss'][-1]:.4f}; peak "
    f"{qlora_peak['peak_gb']:.2f} GB"
)
print(memory_now())

# %%
FastLanguageModel.for_inference(model)  # Unsloth's fast generation path (on a GPU)
start = time.perf_counter()
qlora_after = evaluate_extraction(
    model, tokenizer, test_prompts, test_targets, FIELDS, max_new_tokens=56
)
qlora_after["seconds"] = time.perf_counter() - start  # inference on the 4-bit base
print(
    f"QLoRA: JSON valid {qlora_after['json_valid']:.2f}, exact match "
    f"{qlora_after['exact_match']:.3f}"
)
model.save_pretrained(str(OUT / "adapter_qlora"))  # adapter_config.json + adapter_model.safetensors
qlora_row = comparison_row("QLoRA (NF4 base)", model, qlora_peak, qlora_history, qlora_after)
del model, trainer
release_memory()

# %% [markdown]
# What this lab changes in the network, drawn from its settings:

# %%
show(
    draw_model(
        Changes(layers=LAYERS, lora=SETTINGS.target_modules, four_bit=True),
        OUT / "model.png",
        "Lab 04: LoRA adapters on a frozen 4-bit base (QLoRA)",
    )
)

# %% [markdown]
# ## 5. LoRA vs QLoRA, same task, same budget
# The same settings, data order and seed on the 16/32-bit base (the kit's `add_peft_lora` and
# `sft.build_trainer` make the same calls as section 4). Memory is measured the same way for both:
# from before loading to the end of training.

# %%
lora_memory = PeakMemory().start()
model, tokenizer = load_model(PROFILE, load_in_4bit=False)
model = add_peft_lora(model, **SETTINGS.lora_arguments())
with model.disable_adapter():
    base_16bit_val = teacher_forced_match(
        model, tokenizer, val_prompts, val_answers, progress=False
    )
trainer = sft.build_trainer(model, tokenizer, train_data, SETTINGS)
lora_history = sft.train(trainer)
lora_peak = lora_memory.stop()
start = time.perf_counter()
lora_after = evaluate_extraction(
    model, tokenizer, test_prompts, test_targets, FIELDS, max_new_tokens=56
)
lora_after["seconds"] = time.perf_counter() - start  # the same generation on the full base
lora_row = comparison_row(
    f"LoRA ({str(hardware.dtype).replace('torch.', '')} base)",
    model,
    lora_peak,
    lora_history,
    lora_after,
)
del model, trainer
release_memory()

# %%
COMPARE = ["method", "weights GB", "peak GB", "s/step", "generate s", "trainable", "exact match"]
COMPARE += ["json valid"]
comparison = [lora_row, qlora_row]
print(
    f"memory: {qlora_peak['kind']}; zero-shot exact match {before['exact_match']:.3f} for both "
    "bases"
)
print(format_table(comparison, COMPARE))
print(
    f"validation answer loss of the untrained base: 16/32-bit {base_16bit_val['answer_loss']:.3f}, "
    f"4-bit {base_4bit_val['answer_loss']:.3f}"
)
gap = lora_row["exact match"] - qlora_row["exact match"]
print(
    f"QLoRA vs LoRA: {100 * gap:+.1f} points of exact match "
    f"({'within' if abs(gap) <= 0.02 else 'outside'} the 2-point band the QLoRA paper reports at "
    "7B+)"
)
show(
    plot_grouped_bars(
        ["weights GB", "peak GB", "s/step", "exact match"],
        {
            r["method"]: [r[k] for k in ("weights GB", "peak GB", "s/step", "exact match")]
            for r in comparison
        },
        OUT / "lora_vs_qlora.png",
        title=f"LoRA vs QLoRA on {hardware.device} ({len(test_targets)} test sentences)",
        ylabel="",
        ylim=None,
    )
)

# %% [markdown]
# Which layers carry the 4-bit loss? Section 2's NF4 rounding (`nf4_roundtrip_linears`, the same
# numbers as bitsandbytes) applied to the full-precision base: once to every linear layer of the
# blocks, as `load_in_4bit` does, and once to all of them but `down_proj`, whose inputs carry the
# outlier features of section 3 (bitsandbytes' `llm_int8_skip_modules` keeps a layer this way).

# %%
rounded_val = {}
for kept in [(), ("down_proj",)]:
    rounded, tokenizer = load_model(PROFILE, load_in_4bit=False)
    changed = nf4_roundtrip_linears(rounded, keep=kept)  # NF4 round trip, in place
    name = "NF4, every linear" if not kept else "NF4 but down_proj"
    rounded_val[name] = teacher_forced_match(
        rounded, tokenizer, val_prompts, val_answers, progress=False
    )["answer_loss"]
    print(f"{name} ({changed} layers rounded): validation answer loss {rounded_val[name]:.3f}")
    del rounded
    release_memory()

# %% [markdown]
# **Reading the numbers** (measured on the embedded model, 2 CPU cores, full run — compare with
# your table):
# - The **weights** shrink as promised: the blocks' linear layers go from 4 bytes to ~0.52 byte per
#   parameter ({{ 04:comparison[0].weights GB :.2f }} → {{ 04:comparison[1].weights GB :.2f }}
#   GB). Not 8×: the 28M-parameter embedding (tied with the LM head), a fifth of this small model,
#   stays in full precision.
# - The **peak** does not shrink at all ({{ 04:comparison[0].peak GB :.2f }} GB LoRA,
#   {{ 04:comparison[1].peak GB :.2f }} GB QLoRA): at 135M parameters the peak is activations and
#   logits over a 49k-token vocabulary, the Python/PyTorch runtime and the 4-bit loader's transient
#   copy — not weights.
# - Each **step** costs a little more ({{ 04:comparison[0].s/step :.2f }} vs
#   {{ 04:comparison[1].s/step :.2f }} s): every 4-bit matmul first dequantizes its weight, a small
#   cost next to the rest of the step here (reported at about 30 % on GPUs).
# - **Inference** pays the same toll: generating the {{ 04:lora_after.n }} test answers took
#   {{ 04:comparison[0].generate s :.0f }} s on the 16/32-bit base and
#   {{ 04:comparison[1].generate s :.0f }} s on the 4-bit one (the same generation function; the
#   4-bit model also went through Unsloth's `for_inference`, which speeds up GPUs). Only the frozen
#   weights of the blocks' linear layers are 4-bit — NF4 codes and one scale per 64 weights. The
#   embedding and LM head, the norms, the LoRA adapters (fp32 here, 16-bit on a GPU), the
#   activations, gradients and optimizer state are not, and every matmul runs in 16/32-bit on
#   weights dequantized on the fly. QLoRA buys memory, not speed: to serve fast, merge the adapter
#   into a 16-bit model (section 7).
# - The **score** drops: {{ 04:comparison[0].exact match :.2f }} →
#   {{ 04:comparison[1].exact match :.2f }} exact match, almost all of it on "who" (the sentences
#   without an actor). The 4-bit base starts worse (validation answer loss
#   {{ 04:base_val_answer_loss.16/32-bit :.2f }} → {{ 04:base_val_answer_loss.4-bit :.2f }}): the
#   embedded weights were *already* 4-bit (GGUF Q4_1) and NF4 quantizes them a second time, and
#   small models have less redundancy to absorb the error. Keeping the most sensitive layers in
#   16-bit (all `down_proj`, whose inputs carry the outlier features of section 3) brings it from
#   {{ 04:base_val_answer_loss.NF4, every linear :.2f }} (every layer rounded, as above) to
#   {{ 04:base_val_answer_loss.NF4 but down_proj :.2f }} — the idea behind Unsloth's "dynamic"
#   4-bit checkpoints. At 7B and up, the QLoRA paper finds no loss against 16-bit LoRA; that is
#   where QLoRA is meant to be used.
#
# ## 6. What the same run needs on a GPU (estimated)
# `utils.train.memory_estimate.estimate_memory` adds up weights, LoRA weights, gradients, AdamW
# state and saved
# activations from the model's shape (tested against published figures: a 7B model in fp16 needs
# ~15 GB to load; a 16 GB GPU trains ~1B parameters in full; Llama-2-7B QLoRA r = 256 ≈ 17.9 GB).
# These are **estimates**, not measurements:

# %%
GPU_RUN = {
    "lora_r": SETTINGS.r,
    "lora_targets": SETTINGS.target_modules,
    "batch_size": SETTINGS.batch_size,
    "seq_len": 256,
    "gradient_checkpointing": True,
}
estimates = []
for key in ("llama-2-7b", "llama-3.2-3b", "llama-3.1-8b"):
    shape = SHAPES[key]
    for method, weights in (("full", "fp32"), ("lora", "bf16"), ("lora", "nf4-dq")):
        est = estimate_memory(shape, method=method, weights=weights, **GPU_RUN)
        label = {
            "full": "full FT (mixed precision)",
            "bf16": "LoRA, 16-bit base",
            "nf4-dq": "QLoRA, NF4 base",
        }
        estimates.append(
            {
                "model": shape.name,
                "method": label["full" if method == "full" else weights],
                **{k: round(v, 2) for k, v in est.as_dict().items() if k != "trainable_params"},
            }
        )
EST_COLUMNS = [
    "model",
    "method",
    "weights",
    "trainable_weights",
    "gradients",
    "optimizer",
    "activations",
    "total",
]
print("ESTIMATED GPU memory (GB), batch 8 × 256 tokens, gradient checkpointing, AdamW:")
print(format_table(estimates, EST_COLUMNS, floats="{:.1f}"))
parts = ["weights", "trainable_weights", "gradients", "optimizer", "activations", "overhead"]
shown = [e for e in estimates if e["method"] != "full FT (mixed precision)"]
show(
    plot_stacked_bars(
        [f"{e['model']}\n{e['method']}" for e in shown],
        {p: [e[p] for e in shown] for p in parts},
        OUT / "gpu_memory_estimate.png",
        title="ESTIMATED GPU memory for this lab's run",
        ylabel="GB",
        line=("T4: 16 GB", 16.0),
    )
)

# %% [markdown]
# ## 7. Save: adapter, merged 16-bit model, GGUF
# The adapter learnt to correct the **NF4** weights, so it must be merged into those: dequantize the
# 4-bit weights to 16/32-bit, add $\frac{\alpha}{r}BA$, save (Unsloth's `save_pretrained_merged`
# does exactly this on a GPU, and can export GGUF for llama.cpp/Ollama). Merging back into 4-bit
# would re-quantize the sum and lose the adapter's small updates. On a CPU Unsloth refuses to merge
# a 4-bit model, so the kit does it by hand: load the base in full precision, round its linear
# weights through NF4 (`nf4_roundtrip_linears` — bit-identical to bitsandbytes, section 2), apply
# the saved adapter with PEFT, `merge_and_unload`, save. For contrast, the same adapter merged into
# the *original* weights:

# %%
merged_dir = OUT / "merged"
base, tokenizer = load_model(PROFILE, load_in_4bit=False)
original_base_after = None
if not SMOKE:
    contrast = PeftModel.from_pretrained(base, str(OUT / "adapter_qlora")).merge_and_unload()
    original_base_after = evaluate_extraction(
        contrast, tokenizer, test_prompts, test_targets, FIELDS, max_new_tokens=56
    )
    del contrast
    base, tokenizer = load_model(PROFILE, load_in_4bit=False)
print(f"rounded {nf4_roundtrip_linears(base)} linear layers through NF4")
served = PeftModel.from_pretrained(base, str(OUT / "adapter_qlora"))
probe = tokenizer(test_prompts[:4], return_tensors="pt", padding=True, add_special_tokens=False).to(
    base.device
)
with torch.no_grad():
    logits_adapter = served(**probe).logits.float()
    merged = served.merge_and_unload()
    logits_merged = merged(**probe).logits.float()
check_close(
    "merge",
    float((logits_adapter - logits_merged).abs().max()),
    0.0,
    tol=1e-2 if ON_GPU else 1e-3,
    what="max |merged - adapter| logit",
)
merged.save_pretrained(str(merged_dir))
tokenizer.save_pretrained(str(merged_dir))
print(
    f"merged model: {merged_dir} ({sum(p.stat().st_size for p in merged_dir.glob('*')) / 1e6:.0f} "
    "MB)"
)
merged_after = evaluate_extraction(
    merged, tokenizer, test_prompts, test_targets, FIELDS, max_new_tokens=56
)
print(
    f"exact match: QLoRA model {qlora_after['exact_match']:.3f} | merged into the NF4 weights "
    f"{merged_after['exact_match']:.3f}"
    + (
        ""
        if original_base_after is None
        else f" | merged into the original weights {original_base_after['exact_match']:.3f}"
    )
)
report(
    "merge",
    abs(merged_after["exact_match"] - qlora_after["exact_match"]) <= 0.02,
    "the merged 16-bit model scores like the QLoRA model it came from",
    "the merged model scores differently from the QLoRA model",
)
if ON_GPU:
    try:
        merged.save_pretrained_gguf(str(OUT / "gguf"), tokenizer, quantization_method="q4_k_m")
        print(f"GGUF written to {OUT / 'gguf'}")
    except Exception as error:  # needs llama.cpp, which Unsloth downloads and builds
        print(f"GGUF export skipped: {type(error).__name__}: {error}")
else:
    print(
        "GGUF export skipped: Unsloth's save_pretrained_gguf builds llama.cpp from GitHub (a GPU "
        "runtime with "
        "internet, e.g. Colab); run this lab with PROFILE='t4' or 'a100' there to export it."
    )
del served, merged, base
release_memory()

# %%
strip = ("outputs", "correct")
results = {
    "before": {k: v for k, v in before.items() if k not in strip},
    "qlora_after": {k: v for k, v in qlora_after.items() if k not in strip},
    "lora_after": {k: v for k, v in lora_after.items() if k not in strip},
    "merged_after": {k: v for k, v in merged_after.items() if k not in strip},
    "merged_into_original_exact_match": original_base_after and original_base_after["exact_match"],
    "comparison": comparison,
    "memory_kind": qlora_peak["kind"],
    "base_val_answer_loss": {
        "16/32-bit": base_16bit_val["answer_loss"],
        "4-bit": base_4bit_val["answer_loss"],
        **rounded_val,
    },
    "nf4": quant_rows,
    "int8": int8_rows,
    "gpu_estimates": estimates,
    "qlora_loss": qlora_history["loss"],
    "lora_loss": lora_history["loss"],
}
info = finish_lab(
    LAB,
    results,
    lab_start,
    config={
        "profile": PROFILE,
        "smoke": SMOKE,
        "settings": SETTINGS.to_dict(),
        "gpu_run": {**GPU_RUN, "lora_targets": list(GPU_RUN["lora_targets"])},
    },
    seed=SEED,
    device=hardware.device,
    dtype=hardware.dtype,
    model_fingerprint=BASE_FINGERPRINT,
    dataset_fingerprints={n: dataset_fingerprint(r) for n, r in splits.items()},
)

# %% [markdown]
# ## Hand in
# The zip holds your **QLoRA** adapter and a manifest. The grader merges it into the
# full-precision base (as section 7 does) and scores it on a held-out split you never see.

# %%
submission = make_submission(
    LAB,
    STUDENT_ID,
    {"adapter": OUT / "adapter_qlora"},
    info,
    base_model_id=get_profile(PROFILE).model_id,
    out_dir=OUT,
    training_config=SETTINGS.to_dict(),
    loss=qlora_history["loss"],
)

# %% [markdown]
# Before you upload: the grader's own checks on the zip you just wrote, and your artifact run on a
# few public examples (a zip the grader refuses scores 0). From a terminal:
# `python grading/run.py --check <your zip>`.

# %%
from grading.run import check_submission

verdict = check_submission(submission, base=PROFILE)  # prints the verdict

# %% [markdown]
# ### Explain what you measured
# In two or three sentences: why does NF4's error per weight shrink with a smaller block, and
# what does a smaller block cost in bytes per weight (one fp32 absmax per block, or 8 bits with
# double quantization)? Which block size would you choose for a 7B model, and why?

# %% [markdown]
# *YOUR ANSWER HERE*

# %% [markdown]
# ## Takeaways
# - NF4 spends its 16 levels where normally distributed weights are; blockwise absmax scaling and
#   double quantization bring a weight to ~0.52 byte. LLM.int8() handles the few huge activation
#   features by leaving them in 16-bit.
# - QLoRA trains 16/32-bit adapters on a frozen 4-bit base. Here it scored below LoRA, because the
#   embedded weights were already 4-bit and got quantized twice; starting from 16-bit weights of a
#   large model the gap is reported to be small. Its win is memory **on big models on a GPU**
#   (weights are most of the memory there); on a 135M model on a CPU, activations, logits and the
#   runtime dominate and 4-bit buys almost nothing.
# - Merge a QLoRA adapter into the dequantized NF4 weights it was trained against, in 16-bit —
#   never back into 4-bit, and not into the original weights.
#
# **Go further**: 🐢 measure the NF4 round-trip error with block sizes 32 and 128; 🐕 change
# LLM.int8()'s outlier threshold to 3 and to 10 and watch the error and the number of 16-bit
# columns; 🦁 keep the QLoRA adapters in bf16 instead of fp32 and compare speed and exact match.
