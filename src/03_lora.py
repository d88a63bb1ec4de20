# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lab 03 — LoRA, Part A: low-rank adaptation from scratch
#
# {{colab_badge}}
#
# Lab 02 trained the last block of the model. LoRA (Hu et al., 2021) adapts **every** layer it
# targets, but cheaply: each frozen weight matrix $W$ (out × in) gets a trainable update
# $\Delta W = \frac{\alpha}{r} B A$ with $A$ (r × in) and $B$ (out × r), and rank $r \ll$ in, out.
# $A$ starts random and $B$ at zero, so at initialisation the model is exactly the pre-trained one.
#
# You will write the LoRA layer, the wrapper around a frozen `nn.Linear`, and the function that
# swaps it into the model; check three properties numerically (no-op at init, merge equivalence,
# exact removal); fine-tune the Lab 02 spam classifier with LoRA, filling the LoRA row of Lab 02's
# ablation; and compare adapters on two attention projections with adapters on every linear
# layer. Part B (`03b_lora_peft`) does the same with PEFT and TRL, for instruction
# tuning.
#
# **Time**: about 5 minutes on 2 CPU cores (`SMOKE = True`: about a minute).
# **Expected**: r = 8 on `q_proj` and `v_proj` of all 30 blocks: 460,800 adapter parameters
# (+ 1,154 for the head), 0.34 % of the model; test accuracy about 0.9 after one epoch.

# %% tags=["colab-install"]
# (filled in by tools/build_labs.py)

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("FTKIT_PROFILE", "cpu")  # "cpu" (SmolLM2-135M, offline) | "t4" | "a100"
SMOKE = os.environ.get("FTKIT_SMOKE", "0") == "1"  # True: a few dozen messages, 1 min
SEED = int(os.environ.get("FTKIT_SEED", "0"))  # adapter and head initialisation, batch order
STUDENT_ID = os.environ.get("FTKIT_STUDENT", "your-student-id")  # names your submission zip

# %%
from utils.runtime.hardware import preflight

hardware = preflight(PROFILE)

# %%
import copy
import json
import math
import time

import torch
from torch import nn

from utils.data.batching import load_classification_data, pad_batch
from utils.data.datasets import dataset_fingerprint, get_spec
from utils.eval.metrics import classifier_accuracy
from utils.lab.checks import check_close, check_equal, checking, passed, report
from utils.lab.diagrams import Changes, draw_model
from utils.lab.expected import expected, stand_in, yours_or_kit
from utils.lab.plots import plot_lines, show
from utils.lab.results import finish_lab, format_table
from utils.lab.submission import make_submission
from utils.runtime.models import load_model, model_fingerprint
from utils.runtime.profiles import get_profile
from utils.runtime.storage import lab_output_dir
from utils.train.classifier import (
    ClassifierSettings,
    classifier_logits,
    replace_head,
    save_classifier,
    train_classifier,
)
from utils.train.params import count_trainable

LAB = "03_lora"
OUT = lab_output_dir(LAB)
lab_start = time.perf_counter()
model, tokenizer = load_model(PROFILE)
BASE_FINGERPRINT = model_fingerprint(model)

# %%
LABELS = get_spec("sms_spam").labels
SIZES = {"train": 48, "test": 24} if SMOKE else {"train": None, "test": None}
splits, ids, y = load_classification_data(tokenizer, "sms_spam", SIZES)  # rows, token ids, classes
print({name: len(rows) for name, rows in splits.items()})

# %% [markdown]
# ## 1. The LoRA layer
# ### Task 3.1 — `LoRALayer`
# Create `A` as an `nn.Parameter` of shape (rank, in_features) initialised with
# `nn.init.kaiming_uniform_(A, a=math.sqrt(5))`, `B` as an `nn.Parameter` of zeros of shape
# (out_features, rank), and `scaling = alpha / rank`. `forward(x)` returns `(x @ A.T @ B.T) *
# scaling`.


# %%
class LoRALayer(nn.Module):
    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float):
        super().__init__()
        # BEGIN SOLUTION: self.A, self.B, self.scaling = ..., ..., ...
        self.A = nn.Parameter(torch.empty(rank, in_features))
        self.B = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.scaling = alpha / rank
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        return (x @ self.A.T @ self.B.T) * self.scaling
        # END SOLUTION


# %%
with checking("Task 3.1"):
    torch.manual_seed(0)
    _yours = LoRALayer(576, 192, rank=8, alpha=16)
    torch.manual_seed(0)
    _ref = expected("Task 3.1", 576, 192, rank=8, alpha=16)
    check_equal(
        "Task 3.1",
        sum(p.numel() for p in _yours.parameters()),
        sum(p.numel() for p in _ref.parameters()),
        what="parameter count r * (in + out)",
    )
    if report(
        "Task 3.1",
        isinstance(getattr(_yours, "A", None), nn.Parameter) and torch.equal(_yours.A, _ref.A),
        "A is initialised like the reference",
        "A should be an nn.Parameter initialised with kaiming_uniform_",
    ):
        with torch.no_grad():
            _yours.B.normal_(), _ref.B.copy_(_yours.B)
            _x = torch.randn(3, 576)
            check_close(
                "Task 3.1",
                float((_yours(_x) - _ref(_x)).abs().max()),
                0.0,
                tol=1e-5,
                what="max |your output - reference|",
            )
LoRALayer = yours_or_kit("Task 3.1", LoRALayer, "LoRALayer")

# %% [markdown]
# ### Task 3.2 — `LinearWithLoRA`
# Keep the given `nn.Linear` (frozen: `requires_grad = False` on its parameters), add a
# `LoRALayer` of matching sizes, and return the sum of both in `forward`.


# %%
class LinearWithLoRA(nn.Module):
    def __init__(self, linear: nn.Linear, rank: int, alpha: float):
        super().__init__()
        # BEGIN SOLUTION: self.linear, self.lora = ..., ...
        self.linear = linear
        for param in linear.parameters():
            param.requires_grad = False
        self.lora = LoRALayer(linear.in_features, linear.out_features, rank, alpha)
        # END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN SOLUTION
        return self.linear(x) + self.lora(x)
        # END SOLUTION


# %%
with checking("Task 3.2"):
    _linear = nn.Linear(576, 192)
    _wrapped = LinearWithLoRA(_linear, rank=8, alpha=16)
    _x = torch.randn(2, 576)
    with torch.no_grad():
        check_close(
            "Task 3.2",
            float((_wrapped(_x) - _linear(_x)).abs().max()),
            0.0,
            tol=0.0,
            what="max |wrapped - original| at initialisation",
        )
    report(
        "Task 3.2",
        not any(p.requires_grad for p in _linear.parameters()),
        "the wrapped linear layer is frozen",
        "set requires_grad = False on the wrapped layer's parameters",
    )
LinearWithLoRA = yours_or_kit("Task 3.2", LinearWithLoRA, "LinearWithLoRA")

# %% [markdown]
# ### Task 3.3 — put LoRA into the model
# Replace every `nn.Linear` whose name ends in one of `targets` (here the attention's `q_proj` and
# `v_proj`) by a `LinearWithLoRA` around it. Walk `model.named_modules()`, find each match's
# parent with `model.get_submodule(parent_name)`, and `setattr` the wrapper in place. Return the
# replaced names.


# %%
def add_lora(model: nn.Module, targets: tuple[str, ...], rank: int, alpha: float) -> list[str]:
    # BEGIN SOLUTION: ...
    replaced = []
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and name.split(".")[-1] in targets:
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, LinearWithLoRA(module, rank, alpha))
            replaced.append(name)
    return replaced
    # END SOLUTION


# %%
RANK, ALPHA, TARGETS = 8, 16, ("q_proj", "v_proj")
NUM_CLASSES = len(LABELS)
replace_head(model, NUM_CLASSES, seed=SEED)  # the new 2-class head of Lab 02
for param in model.parameters():
    param.requires_grad = False
test_batch = pad_batch(ids["test"][:8], tokenizer.pad_token_id)
with torch.no_grad():
    logits_base = classifier_logits(model, *test_batch)
    hidden_base = model.get_decoder()(input_ids=test_batch[0], attention_mask=test_batch[1])[0]
torch.manual_seed(SEED)
replaced = []
with checking("Task 3.3"):
    replaced = add_lora(model, TARGETS, RANK, ALPHA) or []
    check_equal(
        "Task 3.3",
        len(replaced),
        2 * model.config.num_hidden_layers,
        what="number of wrapped layers",
    )
if not passed("Task 3.3") and not replaced:  # nothing wrapped: the lab needs adapters to train
    torch.manual_seed(SEED)
    replaced = stand_in("Task 3.3", "add_lora")(model, TARGETS, RANK, ALPHA)
for param in model.lm_head.parameters():
    param.requires_grad = True
expected_lora = sum(
    RANK * (m.in_features + m.out_features)
    for n, m in model.named_modules()
    if isinstance(m, nn.Linear) and n.endswith(".linear")
)
check_equal(
    "Task 3.3",
    count_trainable(model)[0],
    expected_lora + sum(p.numel() for p in model.lm_head.parameters()),
    what="trainable parameters (adapters + head)",
)
TOTAL = sum(p.numel() for p in model.parameters())
print(
    f"trainable: {count_trainable(model)[0]:,} of {TOTAL:,} "
    f"({100 * count_trainable(model)[0] / TOTAL:.2f} %)"
)

# %% [markdown]
# What this lab changes in the network, drawn from its settings:

# %%
show(
    draw_model(
        Changes(layers=model.config.num_hidden_layers, lora=TARGETS, head="new"),
        OUT / "model.png",
        "Lab 03: LoRA on q and v of every block, and a new head",
    )
)

# %% [markdown]
# ## 2. Three properties to verify
# 1. **No-op at initialisation** ($B = 0$): the adapted model gives the base model's outputs.

# %%
with torch.no_grad():
    check_close(
        "init",
        float((classifier_logits(model, *test_batch) - logits_base).abs().max()),
        0.0,
        tol=0.0,
        what="max |adapted - base| logit at initialisation",
    )

# %% [markdown]
# ## 3. Fine-tune with LoRA
# Nothing is frozen *below* the adapters any more (there is one in every block), so the Lab 02
# cache cannot be used: every step runs the whole model forward and backward, but only the
# adapters and the head receive updates.


# %%
def logits_fn(input_ids, attention_mask):
    return classifier_logits(model, input_ids, attention_mask)


CONFIG = ClassifierSettings(epochs=1, learning_rate=1e-3, batch_size=16, seed=SEED)
pad = tokenizer.pad_token_id
before = classifier_accuracy(logits_fn, ids["test"], y["test"], pad_value=pad)
history = train_classifier(model, logits_fn, ids["train"], y["train"], CONFIG, pad_value=pad)
after = classifier_accuracy(logits_fn, ids["test"], y["test"], pad_value=pad)
print(
    f"test accuracy: {before['accuracy']:.3f} before -> {after['accuracy']:.3f} after "
    f"({history['seconds']:.0f} s, {len(history['step'])} steps)"
)
show(
    plot_lines(
        {"training loss": (history["step"], history["loss"])},
        OUT / "loss.png",
        title=f"Lab 03: LoRA r={RANK} on {'+'.join(TARGETS)} (+ head)",
        xlabel="step",
        ylabel="loss",
    )
)

# %% [markdown]
# 2. **Merging**: after training, folding $\frac{\alpha}{r}BA$ into $W$ gives the same outputs as
#    the unmerged model (so inference costs nothing extra).
# 3. **Removal**: dropping the adapters restores the base model *exactly*.


# %%
def swap_adapters(model: nn.Module, build) -> list[str]:
    """Replace every LinearWithLoRA (the layers ``add_lora`` wrapped) by ``build(wrapper)``."""
    for name in replaced:
        path, leaf = name.rsplit(".", 1)
        owner = model.get_submodule(path)
        setattr(owner, leaf, build(getattr(owner, leaf)))
    return replaced


def merged_linear(wrapper: LinearWithLoRA) -> nn.Linear:
    """W + (alpha / r) B A as one plain linear layer."""
    linear = nn.Linear(
        wrapper.linear.in_features,
        wrapper.linear.out_features,
        bias=wrapper.linear.bias is not None,
    )
    with torch.no_grad():
        linear.weight.copy_(
            wrapper.linear.weight + (wrapper.lora.B @ wrapper.lora.A) * wrapper.lora.scaling
        )
        if wrapper.linear.bias is not None:
            linear.bias.copy_(wrapper.linear.bias)
    return linear


adapter_state = {
    n: p.detach().clone().contiguous() for n, p in model.named_parameters() if p.requires_grad
}
merged_model = copy.deepcopy(model)
swap_adapters(merged_model, merged_linear)
with torch.no_grad():
    check_close(
        "merge",
        float(
            (classifier_logits(merged_model, *test_batch) - classifier_logits(model, *test_batch))
            .abs()
            .max()
        ),
        0.0,
        tol=1e-4,
        what="max |merged - unmerged| logit",
    )
    del merged_model
    swap_adapters(model, lambda wrapper: wrapper.linear)
    hidden_removed = model.get_decoder()(input_ids=test_batch[0], attention_mask=test_batch[1])[0]
report(
    "remove",
    torch.equal(hidden_removed, hidden_base),
    "without adapters the base model is restored exactly",
    "removing the adapters did not restore the base model",
)
# %% [markdown]
# ## 4. The LoRA row of Lab 02's ablation

# %%
row = {
    "trained": f"LoRA r={RANK} {'+'.join(TARGETS)} + head",
    "trainable params": sum(t.numel() for t in adapter_state.values()),
    "epochs": CONFIG.epochs,
    "train seconds": f"{history['seconds']:.1f}",
    "test accuracy": after["accuracy"],
}
lab02 = lab_output_dir("02_selective_finetuning") / "results.json"
table = (
    [r for r in json.loads(lab02.read_text())["ablation"] if not r["trained"].startswith("LoRA")]
    if lab02.exists()
    else []
)
if table and len(y["test"]) != 242:
    table = []  # SMOKE runs use a different test subset: not comparable
print(
    format_table(
        [*table, row], ["trained", "trainable params", "epochs", "train seconds", "test accuracy"]
    )
)

# %% [markdown]
# ## 5. Every linear layer
# The recipe above is the LoRA paper's: it adapted only the attention's query and value projections
# (Hu et al., 2021). Later work adapts every linear layer of every block — QLoRA (Dettmers et al.,
# 2023) found that needed to match full fine-tuning — and Raschka's GPT-2 spam experiments (*Build a
# Large Language Model (From Scratch)*, 2024, chapter 6, additional experiments) report LoRA on
# every layer at 96.67 % test accuracy against 95.00 % for training the last block. **Predict**
# before running: with the same rank, rate, epoch and batches, does LoRA on all seven linear layers
# of every block catch up with Lab 02's last block, and what does it cost per epoch? A fresh copy of
# the base model, and the same table on the same test split (a comparison, like Lab 02's: nothing
# is chosen by it, and the adapter you hand in stays the q + v one above).

# %%
WIDE_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
wide, _ = load_model(PROFILE)  # a fresh copy of the base model
replace_head(wide, NUM_CLASSES, seed=SEED)  # the same new head, from the same seed
for param in wide.parameters():
    param.requires_grad = False
torch.manual_seed(SEED)
(add_lora if passed("Task 3.3") else stand_in("Task 3.3", "add_lora"))(
    wide, WIDE_TARGETS, RANK, ALPHA
)
for param in wide.lm_head.parameters():
    param.requires_grad = True


def wide_logits(input_ids, attention_mask):
    return classifier_logits(wide, input_ids, attention_mask)


wide_history = train_classifier(wide, wide_logits, ids["train"], y["train"], CONFIG, pad_value=pad)
wide_row = {
    "trained": f"LoRA r={RANK} all linear + head",
    "trainable params": count_trainable(wide)[0],  # adapters + head, as in the row above
    "epochs": CONFIG.epochs,
    "train seconds": f"{wide_history['seconds']:.1f}",
    "test accuracy": classifier_accuracy(wide_logits, ids["test"], y["test"], pad_value=pad)[
        "accuracy"
    ],
}
last_block = [r for r in table if r["trained"].startswith("last block")]
print(
    format_table(
        [*last_block, row, wide_row],
        ["trained", "trainable params", "epochs", "train seconds", "test accuracy"],
    )
)
del wide

# %%
save_classifier(OUT / "classifier", adapter_state, LABELS, lora={"rank": RANK, "alpha": ALPHA})
results = {
    "before": {"accuracy": before["accuracy"]},
    "after": {"accuracy": after["accuracy"]},
    "lora_row": row,
    "lora_all_linear_row": wide_row,
    "loss": history["loss"],
}
info = finish_lab(
    LAB,
    results,
    lab_start,
    config={
        "profile": PROFILE,
        "smoke": SMOKE,
        "rank": RANK,
        "alpha": ALPHA,
        "targets": TARGETS,
        "train": vars(CONFIG),
    },
    seed=SEED,
    device=hardware.device,
    dtype=next(model.parameters()).dtype,
    model_fingerprint=BASE_FINGERPRINT,
    dataset_fingerprints={n: dataset_fingerprint(r) for n, r in splits.items()},
)

# %% [markdown]
# ## Submit
# The zip holds your A/B matrices and the head (`classifier/`). The grader merges
# $\frac{\alpha}{r}BA$ into its own copy of the base (the merge you verified above), puts the head
# on, and measures accuracy on a held-out split you never see with the same `classifier_accuracy`.

# %%
submission = make_submission(
    LAB,
    STUDENT_ID,
    {"classifier": OUT / "classifier"},
    info,
    base_model_id=get_profile(PROFILE).model_id,
    out_dir=OUT,
    training_config=vars(CONFIG),
    loss=history["loss"],
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
# In two or three sentences: your adapter starts as an exact no-op because `B` starts at zero.
# What would go wrong if both `A` and `B` started random? And if both started at zero?

# %% [markdown]
# *YOUR ANSWER HERE*

# %% [markdown]
# ## Takeaways
# - LoRA trains 0.34 % of the parameters yet touches every block; the update is a product of two
#   thin matrices, scaled by α / r.
# - It starts as an exact no-op, merges into the weights for free inference, and comes off cleanly.
# - Unlike Lab 02, nothing below the adapters is frozen, so there is no cache: on a CPU, a LoRA
#   epoch costs about as much as a full fine-tuning epoch minus the weight gradients.
# - Where the adapters sit mattered here: at the same r = 8, one epoch with adapters on q and v
#   reached {{ 03_:lora_row.test accuracy :.3f }} and on every linear layer
#   {{ 03_:lora_all_linear_row.test accuracy :.3f }} (Lab 02's last block:
#   {{ 02:after.accuracy :.3f }}), for {{ 03_:lora_all_linear_row.train seconds }} s of training
#   instead of {{ 03_:lora_row.train seconds }} s — the frozen model's forward and backward passes
#   dominate a step either way. The wider adapter also trains five times the parameters (Lab 07
#   compares placements at an equal budget). One seed on 242 test messages: a standard error of
#   about 0.015.
#
# **Go further**: 🐢 compare rank 2 with rank 32; 🐕 train section 5's adapters at r = 2, close to
# q + v's parameter count at r = 8: is it the placement or the size that wins?; 🦁 add DoRA's
# per-column magnitude vector to your `LoRALayer` and check it still starts as a no-op.
