# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lab 03, Part C — LoRA's knobs at full range: α, rank, the merge scale and adapters combined
#
# {{colab_badge}}
#
# Part B trained a LoRA adapter with r = 16, α = 32 and swept a narrow grid around it. Here you
# take the knobs to their ends, on the same extraction task:
#
# - **α and rank at full range**: α from r/8 to 4r, rank from 4 to 256 — with α fixed, with
#   α = 2r, and with rsLoRA's α/√r — and the size of the update each setting makes;
# - **two conventions** for the same adapter (PEFT's `(α/r)·BA` and the `α·(x@A@B)` of much
#   from-scratch code), and how to translate one into the other (task 3.7);
# - **the merge scale**: merging an adapter at a fraction or a multiple of its strength (task 3.8);
# - **adapters combined**: an extraction adapter and an SMS adapter merged into one with PEFT's
#   `add_weighted_adapter` four ways, against switching and against one adapter trained on both.
#
# Settings are chosen on the validation split; the test split is used once, at the end of each
# section.
#
# **Time**: about 13 minutes on 2 CPU cores (`SMOKE = True`: under 2 minutes).

# %% tags=["colab-install"]
# (filled in by tools/build_labs.py)

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("FTKIT_PROFILE", "cpu")  # "cpu" (SmolLM2-135M, offline) | "t4" | "a100"
SMOKE = os.environ.get("FTKIT_SMOKE", "0") == "1"  # True: a few examples and steps, < 2 min
SEED = int(os.environ.get("FTKIT_SEED", "0"))  # adapter initialisation and batch order

# %%
from utils.runtime.hardware import preflight

hardware = preflight(PROFILE)

# %%
import math
import time

import torch
from datasets import concatenate_datasets
from peft import PeftModel
from peft.helpers import rescale_adapter_scale
from tqdm.auto import tqdm

from utils.data.datasets import dataset_fingerprint, get_spec, load_split
from utils.eval.metrics import target_json, teacher_forced_match
from utils.lab.checks import check_close, checking, passed, report
from utils.lab.expected import expected, yours_or_kit
from utils.lab.explorers import lora_calculator
from utils.lab.plots import plot_grouped_bars, plot_heatmap, plot_lines, show
from utils.lab.results import finish_lab, format_table
from utils.runtime.models import load_model, model_fingerprint
from utils.runtime.storage import lab_output_dir
from utils.train import sft
from utils.train.lora_scaling import (
    lora_layers,
    lora_scale,
    peft_linear,
    scratch_forward,
    update_norm,
)
from utils.train.params import ALL_LINEAR, add_peft_lora, count_trainable

LAB = "03c_lora_knobs"
OUT = lab_output_dir(LAB)
lab_start = time.perf_counter()
model, tokenizer = load_model(PROFILE)
BASE_FINGERPRINT = model_fingerprint(model)

# %% [markdown]
# ## 1. The task and the scores
# Part B's extraction task: a sentence in, JSON with who / what / when / where out; each sentence
# shape lives in one split. Every score in this lab is `teacher_forced_match` — one forward pass
# tells whether greedy decoding would produce the whole answer token for token and then stop
# (**exact match**), and what fraction of answer tokens it gets right (**token accuracy**, which
# still separates settings when few answers are right as a whole).

# %%
FIELDS = get_spec("news_events").fields
splits = {name: load_split("news_events", name) for name in ("train", "validation", "test")}
sms = {name: load_split("sms_spam", name) for name in ("train", "validation", "test")}
if SMOKE:
    splits = {
        "train": splits["train"][:8],
        "validation": splits["validation"][:3],
        "test": splits["test"][:3],
    }
    sms = {"train": sms["train"][:8], "validation": sms["validation"][:4], "test": sms["test"][:4]}
N_VAL = 32  # validation sentences per score in the sweeps
print({name: len(rows) for name, rows in splits.items()})
print({f"SMS {name}": len(rows) for name, rows in sms.items()})


def extraction_set(rows):
    """(prompts, answers) of extraction rows."""
    return (
        sft.extraction_prompts(tokenizer, rows, FIELDS),
        [target_json(r["target"], FIELDS) for r in rows],
    )


def spam_set(rows):
    """(prompts, answers) of SMS rows: the answer is the label word."""
    prompts = [sft.chat_text(tokenizer, sft.spam_messages(r, with_answer=False)) for r in rows]
    return prompts, [r["label"] for r in rows]


def score(scored_model, data) -> dict:
    """Exact match, token accuracy and answer loss of ``scored_model`` on ``(prompts, answers)``."""
    result = teacher_forced_match(scored_model, tokenizer, *data, progress=False)
    return {k: result[k] for k in ("exact_match", "token_accuracy", "answer_loss")}


val_set, test_set = extraction_set(splits["validation"][:N_VAL]), extraction_set(splits["test"])
before = score(model, test_set)
print(f"base model on the test split: {before}")

# %% [markdown]
# ## 2. Two conventions, one adapter
# PEFT adds $\frac{\alpha}{r}\,BA$ to a weight, with `lora_A` of shape r × in and `lora_B` of
# shape out × r; with `use_rslora=True` the factor is $\frac{\alpha}{\sqrt r}$ (Kalajdzievski,
# 2023). Much from-scratch code — and Part A's first sketch — writes the adapter as
# `x @ W.T + alpha * (x @ A @ B)`, with `A` in × r, `B` r × out and **no division by r**. Same
# update, different meaning of α: an α copied from one convention into the other is off by a
# factor r (or √r).
#
# ### Task 3.7 — translate α between the conventions
# Write `peft_alpha(alpha, r, rslora)`: the `lora_alpha` that makes a PEFT adapter (with or
# without rsLoRA) equal to the from-scratch adapter `alpha * (x @ A @ B)` with the same A and B;
# and `scratch_alpha(lora_alpha, r, rslora)`, the converse. The check builds both on a real layer
# of the model and compares their outputs.


# %%
def peft_alpha(alpha: float, r: int, rslora: bool = False) -> float:
    # BEGIN SOLUTION
    return alpha * (math.sqrt(r) if rslora else r)
    # END SOLUTION


def scratch_alpha(lora_alpha: float, r: int, rslora: bool = False) -> float:
    # BEGIN SOLUTION
    return lora_alpha / (math.sqrt(r) if rslora else r)
    # END SOLUTION


# %%
layer = model.get_submodule("model.layers.0.self_attn.q_proj")  # a real 576 × 576 projection
generator = torch.Generator().manual_seed(SEED)
x = torch.randn(4, layer.in_features, generator=generator)
with checking("Task 3.7"):
    for r, rslora in ((8, False), (8, True), (64, False)):
        A = torch.randn(layer.in_features, r, generator=generator) * 0.02
        B = torch.randn(r, layer.out_features, generator=generator) * 0.02
        reference = scratch_forward(x, layer, A, B, alpha=0.5)
        with torch.no_grad():
            got = peft_linear(layer, A, B, peft_alpha(0.5, r, rslora), rslora)(x)
        check_close(
            "Task 3.7",
            float((got - reference).abs().max()),
            0.0,
            tol=1e-5,
            what=f"max |PEFT - from scratch| output, r = {r}{' rsLoRA' if rslora else ''}",
        )
        lora_alpha = 16.0
        with torch.no_grad():
            peft_out = peft_linear(layer, A, B, lora_alpha, rslora)(x)
            back = scratch_forward(x, layer, A, B, scratch_alpha(lora_alpha, r, rslora))
        check_close(
            "Task 3.7",
            float((back - peft_out).abs().max()),
            0.0,
            tol=1e-5,
            what=f"max |from scratch - PEFT lora_alpha=16| output, r = {r}"
            f"{' rsLoRA' if rslora else ''}",
        )
    check_close(
        "Task 3.7",
        peft_alpha(1.0, 256),
        expected("Task 3.7", 1.0, 256),
        what="lora_alpha for a from-scratch alpha of 1 at r = 256",
    )

# %% [markdown]
# ## 3. α and rank at full range
# ### Explore: the scale per rank
# Before training, look at the factor each convention multiplies the update by. The calculator's
# last rows price r = 256 with α = 32 under each convention, and its column "same α at r =
# 4/16/64/256" shows what that α gives at each rank: with α fixed, PEFT's α/r shrinks 64-fold
# from r = 4 to r = 256, rsLoRA's α/√r 8-fold, and the from-scratch α not at all. Change the
# scaling, rank and α with the controls (in JupyterLab or Colab) and predict before you look.

# %%
lora_calculator()

# %% [markdown]
# Each cell below trains a fresh adapter on every linear layer with the **same small budget** —
# 8 steps of 4 sentences at learning rate 10⁻³ (Part B's sweep ran 10 steps of 8; cut here to
# fit every cell in the time) — and scores it on 32 validation sentences. Two sweeps:
# - **α at r = 16**: α = r/8, r/2, r, 2r and 4r (2 to 64);
# - **rank 4 → 256** three ways: α fixed at 32, α = 2r (the scale stays 2), and rsLoRA with
#   α = 8 (the scale is 2 at r = 16, like the others, and falls as 1/√r).
#
# The table also gives ‖ΔW‖, the size of everything the adapter adds (the Frobenius norm of every
# layer's scaled $BA$ together), and the final training loss beside the validation loss: a
# validation loss far above the training loss is over-fitting.

# %%
SWEEP_STEPS, SWEEP_BATCH = (1, 4) if SMOKE else (8, 4)
ALPHAS_AT_16 = [8, 32] if SMOKE else [2, 8, 16, 32, 64]
RANKS = [4, 16] if SMOKE else [4, 16, 64, 256]
WAYS = {  # how α follows the rank: (alpha for rank r, use_rslora)
    "α = 32 fixed": (lambda r: 32, False),
    "α = 2r": (lambda r: 2 * r, False),
    "rsLoRA, α = 8": (lambda r: 8, True),
}
sweep_train = sft.chat_dataset(
    splits["train"][: SWEEP_STEPS * SWEEP_BATCH],  # exactly the sentences the budget uses
    tokenizer,
    lambda r: sft.extraction_messages(r, FIELDS),
)


def train_adapter(r: int, alpha: int, rslora: bool, dataset, steps: int, batch: int):
    """A fresh adapter on every linear layer of a freshly loaded base, trained on ``dataset``;
    returns (model, training result)."""
    base, _ = load_model(PROFILE)
    settings = sft.SFTSettings(
        r=r,
        alpha=alpha,
        use_rslora=rslora,
        target_modules=ALL_LINEAR,
        learning_rate=1e-3,
        batch_size=batch,
        max_steps=steps,
        warmup_steps=2 if steps > 2 else 0,  # a 1-step SMOKE run must still learn something
        seed=SEED,
    )
    adapted = add_peft_lora(base, **settings.lora_arguments())
    trainer = sft.build_trainer(adapted, tokenizer, dataset, settings)
    trainer.args.disable_tqdm = True
    return adapted, sft.train(trainer)


cells = [(16, alpha, False) for alpha in ALPHAS_AT_16]
cells += [(r, way(r), rslora) for r in RANKS for way, rslora in WAYS.values()]
cells = list(dict.fromkeys(cells))  # r = 16, α = 32 appears in both sweeps: train it once
def preferred(row: dict):
    """How the sweep ranks a cell on validation: token accuracy, then the lower answer loss."""
    return (row["val token accuracy"], -row["val answer loss"])


sweep, chosen_model = [], None
for r, alpha, rslora in tqdm(cells, desc="sweep cells"):
    adapted, result = train_adapter(r, alpha, rslora, sweep_train, SWEEP_STEPS, SWEEP_BATCH)
    val = score(adapted, val_set)
    row = {
        "r": r,
        "alpha": alpha,
        "rsLoRA": rslora,
        "scale": round(lora_scale(alpha, r, "rslora" if rslora else "peft"), 4),
        "trainable": count_trainable(adapted)[0],
        "train seconds": round(result["seconds"], 1),
        "update norm": round(update_norm(adapted), 2),
        "final train loss": result["loss"][-1],
        "val answer loss": val["answer_loss"],
        "val token accuracy": val["token_accuracy"],
        "val exact match": val["exact_match"],
    }
    sweep.append(row)
    if max(sweep, key=preferred) is row:  # keep the best adapter so far
        chosen_model = adapted
    if (r, alpha, rslora) == (16, 32, False):
        adapted.save_pretrained(str(OUT / "adapter_extract"))
    del adapted
COLUMNS = list(sweep[0])
print(format_table(sweep, COLUMNS))


# %%
def cell(r, alpha, rslora=False):
    """The sweep row of one setting (None if it was not run)."""
    found = [c for c in sweep if (c["r"], c["alpha"], c["rsLoRA"]) == (r, alpha, rslora)]
    return found[0] if found else None


def cell_value(key, r, alpha, rslora=False):
    row = cell(r, alpha, rslora)
    return row[key] if row else float("nan")


at_16 = [cell(16, a) for a in ALPHAS_AT_16]
show(
    plot_lines(
        {
            "validation token accuracy": (
                [c["scale"] for c in at_16],
                [c["val token accuracy"] for c in at_16],
            ),
            "validation exact match": (
                [c["scale"] for c in at_16],
                [c["val exact match"] for c in at_16],
            ),
        },
        OUT / "alpha_sweep.png",
        title=f"r = 16: α from {ALPHAS_AT_16[0]} to {ALPHAS_AT_16[-1]} ({SWEEP_STEPS} steps)",
        xlabel="scale α/r",
        ylabel="score",
    )
)
show(
    plot_heatmap(
        RANKS,
        list(WAYS),
        [
            [cell_value("val token accuracy", r, way(r), rs) for way, rs in WAYS.values()]
            for r in RANKS
        ],
        OUT / "rank_heatmap.png",
        title=f"validation answer-token accuracy after {SWEEP_STEPS} steps",
        xlabel="how α follows the rank",
        ylabel="rank r",
    )
)
show(
    plot_lines(
        {
            name: (RANKS, [cell_value("update norm", r, way(r), rs) for r in RANKS])
            for name, (way, rs) in WAYS.items()
        },
        OUT / "update_norm.png",
        title="‖ΔW‖: how much each adapter changed the model",
        xlabel="rank r",
        ylabel="update norm",
    )
)
chosen = max(sweep, key=preferred)
chosen_test = score(chosen_model, test_set)
print(
    f"chosen on validation: r = {chosen['r']}, α = {chosen['alpha']}"
    f"{' (rsLoRA)' if chosen['rsLoRA'] else ''}, scale {chosen['scale']}\n"
    f"test exact match {before['exact_match']:.3f} -> {chosen_test['exact_match']:.3f}, "
    f"token accuracy {before['token_accuracy']:.3f} -> {chosen_test['token_accuracy']:.3f}"
)
norms = {
    name: [cell_value("update norm", r, way(r), rs) for r in RANKS]
    for name, (way, rs) in WAYS.items()
}
spread = {name: max(values) / min(values) for name, values in norms.items()}
report(
    "update size",
    SMOKE
    or (
        norms["α = 32 fixed"][-1] < norms["α = 32 fixed"][0]
        and norms["α = 2r"][-1] > norms["α = 2r"][0]
    ),
    f"‖ΔW‖ from r = {RANKS[0]} to {RANKS[-1]}: α fixed {norms['α = 32 fixed'][0]} -> "
    f"{norms['α = 32 fixed'][-1]} (falls), α = 2r {norms['α = 2r'][0]} -> {norms['α = 2r'][-1]} "
    "(grows)",
    "the update did not fall with rank at fixed α and grow at α = 2r",
)
report(
    "update size",
    SMOKE or min(spread, key=spread.get) == "rsLoRA, α = 8",
    "rsLoRA's update changes least across ranks (largest / smallest ‖ΔW‖: "
    + ", ".join(f"{name} {value:.1f}×" for name, value in spread.items())
    + ")",
    "rsLoRA's update is not the most stable across ranks here: " + str(spread),
)
same_scale = [cell(16, 32), cell(16, 8, True)]  # α/r = 32/16 and α/√r = 8/4: both scale 2
report(
    "same scale",
    None in same_scale or same_scale[0]["val answer loss"] == same_scale[1]["val answer loss"],
    "r = 16 with α = 32 and with rsLoRA α = 8 (both scale 2) trained the same adapter",
    "two settings with the same scale gave different adapters",
)
gaps = [c["val answer loss"] - c["final train loss"] for c in sweep]
print(
    f"validation minus training loss, over all cells: {min(gaps):+.3f} to {max(gaps):+.3f} "
    "(a large positive gap would be over-fitting)"
);

# %% [markdown]
# **Reading the sweep.** The scale multiplies the update, and with Adam it acts like a learning
# rate for the adapter: each step moves A and B by about the learning rate whatever the gradient's
# size, so the change in $BA$ grows with the scale. At r = 16, α far below r learns little in 8
# steps; α several times r learns fastest. Down the rank axis, **α fixed** makes the scale α/r
# fall with every doubling of r, and ‖ΔW‖ falls with it: the bigger adapter changes the model
# *less*, because each of its directions is scaled down. With **α = 2r** the scale stays 2 but the
# update grows with the rank — more directions, each moved as far. **rsLoRA**'s α/√r is the scale
# at which the update keeps about the same size at every rank (the checks above measure all
# three), so a higher rank can add capacity without changing the step: Kalajdzievski (2023)
# derives that scale and shows, on larger models, that with α/r the ranks above ~64 learn no
# better than small ones while with α/√r they do. The training and validation losses stay close
# in every cell: on 32 sentences seen once, no cell over-fits — over-fitting needs many passes
# over few examples.

# %% [markdown]
# ## 4. The merge scale
# Merging folds the update into the weights: $W + s\cdot\Delta W$ with s = 1. Nothing forces
# s = 1: PEFT's `rescale_adapter_scale` multiplies every adapter's scale by s for as long as you
# need, and a merge inside it bakes in $W + s\,\Delta W$. With s between 0 and 1 this is WiSE-FT's
# weight interpolation (Wortsman et al., 2022), which often keeps more of the base model's
# behaviour; s above 1 pushes further in the direction the adapter learned.
#
# ### Task 3.8 — merge at a chosen strength
# First predict: for the adapter chosen in section 3 (trained for only 10 steps), at which s in
# 0, 0.25, …, 1.5 will validation token accuracy be highest? Then write `merged_at(adapted, s)`, a
# context manager: inside the `with` block the adapter is merged into the weights at strength s
# ($W + s\,\Delta W$, no LoRA product computed at run time), and on leaving it is unmerged, so
# `adapted` is as before. Use PEFT, not hand-edited weights: `rescale_adapter_scale(adapted, s)`
# around `adapted.merge_adapter()`, and `adapted.unmerge_adapter()` on the way out (in a
# `finally:`, so an error inside the block cannot leave the weights changed). Merging in place
# also avoids a trap: a `copy.deepcopy` of a model Unsloth loaded keeps its `forward` bound to the
# original, so a merged copy would still answer with the original's outputs.

# %%
from contextlib import contextmanager

# BEGIN SOLUTION: PREDICTED_BEST_SCALE = ...  # your prediction: 0, 0.25, ..., 1.5
PREDICTED_BEST_SCALE = 1.25
# END SOLUTION


@contextmanager
def merged_at(adapted, s: float):
    # BEGIN SOLUTION
    with rescale_adapter_scale(adapted, s):
        adapted.merge_adapter()
        try:
            yield adapted
        finally:
            adapted.unmerge_adapter()
    # END SOLUTION


# %%
probe = tokenizer(val_set[0][:2], return_tensors="pt", padding=True, add_special_tokens=False)
with torch.no_grad():
    with chosen_model.disable_adapter():
        base_logits = chosen_model(**probe).logits
    adapter_logits = chosen_model(**probe).logits
with checking("Task 3.8"):
    report(
        "Task 3.8",
        isinstance(PREDICTED_BEST_SCALE, int | float) and 0 <= PREDICTED_BEST_SCALE <= 1.5,
        "a prediction is on record",
        "PREDICTED_BEST_SCALE: a number from 0 to 1.5",
    )
    for s, target in ((0.0, base_logits), (1.0, adapter_logits)):
        with merged_at(chosen_model, s) as merged, torch.no_grad():
            report(
                "Task 3.8",
                all(layer.merged for _, layer in lora_layers(merged)),
                f"s = {s}: every adapted weight is merged inside the block",
                f"s = {s}: the adapter is not merged inside the block — call merge_adapter()",
            )
            got = merged(**probe).logits
        check_close(
            "Task 3.8",
            float((got - target).abs().max()),
            0.0,
            tol=1e-3,
            what=f"max |logit| difference at s = {s} from the {'base' if s == 0 else 'adapter'}",
        )
    with torch.no_grad():
        after_blocks = chosen_model(**probe).logits
    check_close(
        "Task 3.8",
        float((adapter_logits - after_blocks).abs().max()),
        0.0,
        tol=1e-3,  # merging and unmerging a large update rounds the weights a little
        what="the adapter's logits after the blocks (it must be unmerged, as before)",
    )
merge = yours_or_kit("Task 3.8", merged_at, "merge at a scale")

# %%
SCALES = [0.0, 1.0, 1.5] if SMOKE else [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
scale_rows = []
for s in tqdm(SCALES, desc="merge scales"):
    with merge(chosen_model, s):
        scored = score(chosen_model, val_set)
    scale_rows.append({"s": s, **{f"val {k.replace('_', ' ')}": v for k, v in scored.items()}})
print(format_table(scale_rows, list(scale_rows[0])))
show(
    plot_lines(
        {
            "token accuracy": (SCALES, [r["val token accuracy"] for r in scale_rows]),
            "exact match": (SCALES, [r["val exact match"] for r in scale_rows]),
        },
        OUT / "merge_scale.png",
        title="the chosen adapter merged at scale s (validation)",
        xlabel="s",
        ylabel="score",
    )
)
best_scale = max(scale_rows, key=lambda r: (r["val token accuracy"], -abs(r["s"] - 1)))["s"]
if isinstance(PREDICTED_BEST_SCALE, int | float):
    print(f"you predicted s = {PREDICTED_BEST_SCALE}; validation prefers s = {best_scale}")
if best_scale == 1.0:
    best_scale_test = chosen_test
else:
    with merge(chosen_model, best_scale):
        best_scale_test = score(chosen_model, test_set)
print(
    f"test at s = 1: exact match {chosen_test['exact_match']:.3f}; "
    f"at s = {best_scale}: {best_scale_test['exact_match']:.3f}"
)

# %% [markdown]
# The best s need not be 1: training stopped where the step budget ended, not where the update
# is right. An adapter trained briefly on a small set can be too weak (the best s is above 1) or
# already too specialised (below 1); the validation curve says which, and the test score above is
# the one check of the choice.

# %% [markdown]
# ## 5. Adapters combined
# One adapter per task is easy to switch (Part B, Task 3.6), but a single merged model serves
# any request without knowing its task. PEFT's `add_weighted_adapter` builds a new adapter from
# several:
# - `linear`: a weighted sum of the A matrices and of the B matrices **separately** (so ΔW gains
#   cross terms $B_1A_2$ and $B_2A_1$; all adapters must share a rank);
# - `cat`: the ranks stacked, so ΔW is exactly the weighted sum of the updates (rank adds up);
# - `ties` (Yadav et al., 2023): keep each update's largest entries (`density`), elect a sign per
#   entry, and average only the entries that agree with it;
# - `dare_ties` (Yu et al., 2024): drop entries at random instead, rescale the rest, then TIES.
#
# The extraction adapter is section 3's r = 16, α = 32 cell; an SMS adapter (spam or ham, in one
# word) is trained below with the same settings, and a third adapter on **both** tasks' data at
# once. Every combination is scored on both tasks' validation sets; the one with the best mean
# goes to the test sets, with switching and the joint adapter beside it.

# %%
SMS_STEPS, JOINT_STEPS = (1, 2) if SMOKE else (20, 25)
spam_train = sft.chat_dataset(sms["train"][: SMS_STEPS * 8], tokenizer, sft.spam_messages)
spam_model, spam_result = train_adapter(16, 32, False, spam_train, SMS_STEPS, 8)
spam_model.save_pretrained(str(OUT / "adapter_spam"))
joint_train = concatenate_datasets([sweep_train, spam_train])  # the same examples, both tasks
joint_model, joint_result = train_adapter(16, 32, False, joint_train, JOINT_STEPS, 8)
joint_model.save_pretrained(str(OUT / "adapter_joint"))
del spam_model, joint_model, chosen_model, model

base, _ = load_model(PROFILE)
server = PeftModel.from_pretrained(base, str(OUT / "adapter_extract"), adapter_name="extract")
server.load_adapter(str(OUT / "adapter_spam"), adapter_name="spam")
server.load_adapter(str(OUT / "adapter_joint"), adapter_name="joint")
COMBINATIONS = ["linear", "cat", "ties", "dare_ties"]
for how in COMBINATIONS:
    torch.manual_seed(SEED)  # DARE drops entries at random
    server.add_weighted_adapter(
        adapters=["extract", "spam"],  # the adapters to combine
        weights=[1.0, 1.0],  # each one's weight in the combination
        adapter_name=how,  # the new adapter's name
        combination_type=how,  # linear | cat | ties | dare_ties
        density=0.5 if "ties" in how else None,  # TIES/DARE: the fraction of entries kept
    )
server.eval();

# %%
sms_val, sms_test = spam_set(sms["validation"][:40]), spam_set(sms["test"])


def scored_with(name: str, data) -> dict:
    """``score`` of adapter ``name`` ("base": the adapters off) on ``(prompts, answers)``."""
    if name == "base":
        with server.disable_adapter():
            return score(server, data)
    server.set_adapter(name)
    return score(server, data)


def both_tasks(name: str, extraction_data, spam_data) -> dict:
    """One table row: adapter ``name`` on the extraction and the SMS sets."""
    ext, spam = scored_with(name, extraction_data), scored_with(name, spam_data)["exact_match"]
    return {
        "adapter": name,
        "rank": server.peft_config[name].r if name != "base" else 0,
        "extraction exact match": ext["exact_match"],
        "extraction token accuracy": ext["token_accuracy"],
        "SMS accuracy": spam,
        "mean": (ext["exact_match"] + spam) / 2,
    }


combo_table = [
    both_tasks(name, val_set, sms_val)
    for name in tqdm(["base", "extract", "spam", *COMBINATIONS, "joint"], desc="adapters")
]
print(format_table(combo_table, list(combo_table[0])))
show(
    plot_grouped_bars(
        ["extraction exact match", "SMS accuracy"],
        {r["adapter"]: [r["extraction exact match"], r["SMS accuracy"]] for r in combo_table},
        OUT / "combinations.png",
        title="each adapter and combination on both tasks (validation)",
        ylabel="exact match",
    )
)
combined = max((r for r in combo_table if r["adapter"] in COMBINATIONS), key=lambda r: r["mean"])
test_table = [
    both_tasks(combined["adapter"], test_set, sms_test),
    both_tasks("joint", test_set, sms_test),
    {"adapter": "switching", "rank": 16},
]
switched = scored_with("extract", test_set)
test_table[-1] |= {
    "extraction exact match": switched["exact_match"],
    "extraction token accuracy": switched["token_accuracy"],
    "SMS accuracy": scored_with("spam", sms_test)["exact_match"],
}
test_table[-1]["mean"] = (
    test_table[-1]["extraction exact match"] + test_table[-1]["SMS accuracy"]
) / 2
print(f"chosen on validation: {combined['adapter']}; on the test sets:")
print(format_table(test_table, list(test_table[0])))

# %% [markdown]
# **Reading the table.** `cat` adds the two updates exactly (a test of the kit checks it), so each
# task gets its own adapter's change *plus* the other's, which it was never trained to tolerate;
# `linear` adds cross terms no training produced; TIES and DARE keep part of each update and settle
# sign conflicts, trading some of each skill for less interference. Switching keeps both skills
# intact but needs the task of every request; the joint adapter learns both from the start, at
# the cost of training on both data sets. The line below says how much of each skill the best
# combination kept, against each adapter alone.

# %%
by_name = {r["adapter"]: r for r in combo_table}
report(
    "one skill each",
    SMOKE
    or (
        by_name["extract"]["extraction exact match"] > by_name["spam"]["extraction exact match"]
        and by_name["spam"]["SMS accuracy"] > by_name["extract"]["SMS accuracy"]
    ),
    "each adapter alone wins on its own task only",
    "an adapter alone does not win on its own task",
)
report(
    "combining",
    SMOKE or all(by_name["joint"]["mean"] > by_name[how]["mean"] for how in COMBINATIONS),
    "the adapter trained on both tasks beats every combination on the two tasks' mean",
    "a combination matched the adapter trained on both tasks",
)
print(
    f"validation: {combined['adapter']} keeps extraction exact match "
    f"{combined['extraction exact match']:.2f} (the extraction adapter alone: "
    f"{by_name['extract']['extraction exact match']:.2f}) and SMS accuracy "
    f"{combined['SMS accuracy']:.2f} (the SMS adapter alone: "
    f"{by_name['spam']['SMS accuracy']:.2f}); "
    f"the joint adapter: {by_name['joint']['extraction exact match']:.2f} and "
    f"{by_name['joint']['SMS accuracy']:.2f}"
);

# %%
results = {
    "before": before,
    "sweep": sweep,
    "sweep_steps": SWEEP_STEPS,
    "sweep_batch": SWEEP_BATCH,
    "chosen": {k: chosen[k] for k in ("r", "alpha", "rsLoRA", "scale")},
    "chosen_test": chosen_test,
    "merge_scales": scale_rows,
    "best_scale": best_scale,
    "best_scale_test": best_scale_test,
    "combinations": combo_table,
    "combination_chosen": combined["adapter"],
    "combination_test": test_table,
    "spam_train_seconds": round(spam_result["seconds"], 1),
    "joint_train_seconds": round(joint_result["seconds"], 1),
}
info = finish_lab(
    LAB,
    results,
    lab_start,
    config={
        "profile": PROFILE,
        "smoke": SMOKE,
        "sweep_steps": SWEEP_STEPS,
        "sweep_batch": SWEEP_BATCH,
        "sms_steps": SMS_STEPS,
        "joint_steps": JOINT_STEPS,
    },
    seed=SEED,
    device=hardware.device,
    dtype=next(server.parameters()).dtype,
    model_fingerprint=BASE_FINGERPRINT,
    dataset_fingerprints={n: dataset_fingerprint(r) for n, r in splits.items()},
)

# %% [markdown]
# ### Explain what you measured
# In two or three sentences: which combination kept most of both skills on the test sets, and
# what would you deploy for a service that must answer both kinds of request without being told
# which is which — and why?

# %% [markdown]
# *YOUR ANSWER HERE*

# %% [markdown]
# ## Takeaways
# - PEFT scales the update by α/r. With α fixed, a higher rank makes the update *smaller*; with
#   α = 2r it grows with the rank; rsLoRA's α/√r keeps its size about the same at every rank, so
#   rank adds capacity without changing the step. Change α together with r, or use rsLoRA.
# - The same adapter in from-scratch code (`α·(x@A@B)`, no division) has `lora_alpha` = α·r in
#   PEFT (α·√r with rsLoRA): read which convention a snippet uses before copying its α.
# - The merge scale is a free dial after training: choose it on validation like any other
#   setting — the best s need not be 1 — and check the choice once on test.
# - Combining two task adapters into one (`linear`, `cat`, `ties`, `dare_ties`) cost most of one
#   skill here; switching adapters per request, or one adapter trained on both tasks, kept both.
#   Yadav et al. (2023) and Yu et al. (2024) report better merges of larger, fully fine-tuned
#   models: measure on your own tasks before relying on a merge.
#
# **Go further**: 🐢 rerun the rank sweep with 30 steps on 16 sentences and look for the gap
# between training and validation loss; 🐕 merge with weights other than 1 and 1 and find the
# best pair on validation; 🦁 train the two adapters longer and see whether TIES then keeps both
# skills.
