# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lab 10 — Making a fine-tuned model smaller: pruning, distillation, int8
#
# {{colab_badge}}
#
# A fine-tuned model that must run cheaply can lose weights, whole blocks, or bits per weight.
# This lab measures each on the same model and the same test split, side by side:
#
# 1. **The teacher**: the embedded model with a LoRA adapter trained on the SMS spam task (as
#    Labs 07 and 09 train it), merged — the model every method below makes smaller.
# 2. **Task 10.1**: magnitude and Wanda pruning scores by hand (Wanda: weight × input-activation
#    norm; Sun et al., 2023), then a sparsity sweep: where does quality collapse?
# 3. **Task 10.2**: predict, then measure, what 50 % of zeroed weights and what removing whole
#    blocks buy in latency on this CPU.
# 4. **Task 10.3**: the distillation loss by hand (Hinton et al., 2015), then a student with a
#    quarter of the blocks removed trained on the labels alone and with the teacher's
#    distributions: how much of the teacher's score each recovers.
# 5. **int8**: dynamic int8 quantization of the teacher and the student.
# 6. **One table and one plot**: parameters, MB, latency, test accuracy and perplexity, with the
#    Pareto front marked.
#
# **Time**: about 14 minutes on 2 CPU cores (`SMOKE = True`: about 2 minutes).

# %% tags=["colab-install"]
# (filled in by tools/build_labs.py)

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("FTKIT_PROFILE", "cpu")  # "cpu" (SmolLM2-135M, offline) | "t4" | "a100"
SMOKE = os.environ.get("FTKIT_SMOKE", "0") == "1"  # True: a few examples and steps
SEED = int(os.environ.get("FTKIT_SEED", "0"))  # initialisation, batch order
STUDENT_ID = os.environ.get("FTKIT_STUDENT", "your-student-id")  # names your submission zip

# %%
from utils.runtime.hardware import preflight

hardware = preflight(PROFILE)

# %%
import copy
import io
import json
import time

import torch
from tqdm.auto import tqdm

from utils.data.batching import pad_batch, training_batches
from utils.data.corpus import (
    TEST_FRACTIONS,
    load_corpus,
    pack_blocks,
    split_documents,
    tokenize_documents,
)
from utils.data.datasets import load_split
from utils.eval import label_task
from utils.eval.metrics import block_perplexity
from utils.lab.checks import check_close, checking
from utils.lab.expected import yours_or_kit
from utils.lab.plots import plot_lines, plot_pareto, show
from utils.lab.results import finish_lab, format_table
from utils.lab.submission import make_submission
from utils.lab.task_checks import check_distillation_loss, check_pruning_scores
from utils.runtime.memory import release_memory
from utils.runtime.models import embedded_model_dir, load_model, model_fingerprint
from utils.runtime.profiles import get_profile
from utils.runtime.storage import lab_output_dir
from utils.train import peft_family as family
from utils.train import pruning
from utils.train.loop import linear_decay

LAB = "10_compression"
OUT = lab_output_dir(LAB)
lab_start = time.perf_counter()
model, tokenizer = load_model(PROFILE, backend="transformers" if PROFILE == "cpu" else "auto")
BASE_FINGERPRINT = model_fingerprint(model)
TOKENIZER_PATH = str(embedded_model_dir()) if PROFILE == "cpu" else get_profile(PROFILE).model_id
LABELS = ("ham", "spam")

# %% [markdown]
# ## 1. The teacher
# LoRA (r = 8 on every linear layer) trained on SMS spam for a few steps, then merged into the
# weights: a plain model of the base's size, as it would be served. Quality is measured two ways
# throughout: **test accuracy** on the SMS task, and **perplexity** on held-out general English
# text (Lab 05's general corpus), which shows damage the task score can hide.

# %%
sms = {split: load_split("sms_spam", split) for split in ("train", "validation", "test")}
if SMOKE:
    sms = {split: rows[:8] for split, rows in sms.items()}
BATCH, STEPS = 4, (2 if SMOKE else 20)
batches = training_batches(
    label_task.encode_rows(tokenizer, sms["train"], LABELS), BATCH, STEPS, SEED
)
tuned, _ = family.train_briefly(
    model, "LoRA", 1e-3, batches, tokenizer.pad_token_id, TOKENIZER_PATH, SEED
)
teacher = tuned.merge_and_unload().eval()
del tuned

# Lab 05's general corpus (Python's reference documentation), split as Lab 05 splits it: blocks
# of the train documents calibrate the pruning and measure validation perplexity (different
# blocks), blocks of the test documents measure test perplexity
general = split_documents(load_corpus("general"), TEST_FRACTIONS["general"])
BLOCK = 64 if SMOKE else 256  # tokens per block
CALIBRATION, PPL = (2, 2) if SMOKE else (16, 12)  # blocks to calibrate, blocks per perplexity
general_blocks = {
    split: pack_blocks(tokenize_documents(tokenizer, docs), BLOCK, tokenizer.eos_token_id)
    for split, docs in general.items()
}
calibration = [torch.tensor([b]) for b in general_blocks["train"][:CALIBRATION]]  # one per batch
ppl_blocks = {
    "validation": general_blocks["train"][CALIBRATION : CALIBRATION + PPL],
    "test": general_blocks["test"][:PPL],
}
latency_rows = label_task.encode_rows(tokenizer, sms["test"][:8], LABELS)
latency_ids, latency_mask = pad_batch([p for p, _ in latency_rows], tokenizer.pad_token_id)


def measure(candidate, split: str = "test") -> dict:
    """Accuracy on an SMS split, perplexity on that split's general blocks, parameter count."""
    accuracy = label_task.evaluate_labels(candidate, tokenizer, sms[split], LABELS)["accuracy"]
    return {
        f"{split} accuracy": accuracy,
        "perplexity": block_perplexity(candidate, ppl_blocks[split]),
        "parameters": sum(p.numel() for p in candidate.parameters()),
    }


def saved_megabytes(candidate) -> float:
    """MB of the model's state dict as torch.save writes it."""
    buffer = io.BytesIO()
    torch.save(candidate.state_dict(), buffer)
    return buffer.tell() / 1e6


teacher_scores = measure(teacher)
teacher_validation = measure(teacher, "validation")  # the reference for every choice below
base_scores = measure(model)
print(
    format_table(
        [{"model": "base", **base_scores}, {"model": "teacher", **teacher_scores}],
        ["model", "test accuracy", "perplexity", "parameters"],
        floats="{:.3f}",
    )
)

# %% [markdown]
# ## 2. Task 10.1 — pruning scores by hand
# **Magnitude pruning** removes the weights with the smallest absolute value. **Wanda** (Sun et
# al., 2023) scores weight $W_{ij}$ by $|W_{ij}| \cdot \lVert X_j \rVert_2$: its magnitude times
# the L2 norm of input feature $j$ over the calibration tokens, so a small weight on a loud input
# survives. Wanda compares weights within each output row (row $i$), and needs no retraining.
#
# Write `my_pruning_scores(weight, input_norms, method)`: the score of every weight of a linear
# layer's `weight` (shape `[out, in]`) for `method` "magnitude" or "wanda" (`input_norms`: shape
# `[in]`). The check compares your scores and the masks they give at 50 % with the kit's, on a
# real layer of the teacher with real calibration norms.


# %%
def my_pruning_scores(weight, input_norms, method):
    """The pruning score of every weight of ``weight`` (``[out, in]``): higher = keep."""
    # BEGIN SOLUTION
    scores = weight.detach().abs().float()
    if method == "wanda":
        scores = scores * input_norms.float().unsqueeze(0)
    return scores
    # END SOLUTION


# %%
linears = pruning.block_linears(teacher)
norms = pruning.input_norms(teacher, calibration, linears)
check_pruning_scores(my_pruning_scores, linears, norms)

# %% [markdown]
# ## 3. Where quality collapses
# Each point zeroes the given share of every block's linear weights, chosen by magnitude or by
# Wanda (the kit's scorer, or yours if Task 10.1 passed), and measures the result on the
# **validation** SMS (the test split waits for the final table) and the general perplexity.
# **2:4** keeps the 2 best of every 4 consecutive weights (50 %): the pattern NVIDIA's sparse
# tensor cores run faster (Mishra et al., 2021).

# %%
SPARSITIES = (0.5,) if SMOKE else (0.3, 0.5, 0.7)
scores_of = yours_or_kit("Task 10.1", my_pruning_scores, "pruning scores")
sweep = []
for method in ("magnitude", "wanda"):
    for sparsity in SPARSITIES:
        pruned = copy.deepcopy(teacher)
        pruning.prune_linears(
            pruning.block_linears(pruned), method, sparsity, norms=norms, scorer=scores_of
        )
        sweep.append({"method": method, "sparsity": sparsity, **measure(pruned, "validation")})
        del pruned
        print(
            f"{method} {sparsity:.0%}: validation accuracy {sweep[-1]['validation accuracy']:.3f}, "
            f"perplexity {sweep[-1]['perplexity']:.1f}"
        )
two_four = copy.deepcopy(teacher)
pruning.prune_linears(
    pruning.block_linears(two_four), "wanda", norms=norms, n_m=(2, 4), scorer=scores_of
)
sweep.append({"method": "wanda 2:4", "sparsity": 0.5, **measure(two_four, "validation")})
show(
    plot_lines(
        {
            method: (  # from the dense teacher (sparsity 0) up
                [0.0] + [r["sparsity"] for r in sweep if r["method"] == method],
                [teacher_validation["perplexity"]]
                + [r["perplexity"] for r in sweep if r["method"] == method],
            )
            for method in ("magnitude", "wanda")
        },
        OUT / "sparsity_sweep.png",
        title="Lab 10: validation perplexity against the share of zeroed weights",
        xlabel="sparsity",
        ylabel="perplexity (log scale)",
        log_y=True,  # magnitude pruning's perplexity grows by orders of magnitude
    )
)

# %% [markdown]
# ## 4. Task 10.2 — what sparsity buys on this CPU
# Predict two ratios of forward time against the dense teacher's (1.0 = as fast), then measure:
# the teacher at 50 % Wanda sparsity (the zeros are still stored and multiplied by dense kernels),
# and the teacher with a quarter of its blocks removed (section 5 chooses which).

# %%
# BEGIN SOLUTION: PREDICTED_SPARSE_TIME = ...  # a ratio, e.g. 0.5
PREDICTED_SPARSE_TIME = 1.0
# END SOLUTION
# BEGIN SOLUTION: PREDICTED_BLOCKS_TIME = ...  # a ratio
PREDICTED_BLOCKS_TIME = 0.78
# END SOLUTION

# %% [markdown]
# ## 5. Removing whole blocks
# ShortGPT (Men et al., 2024) ranks blocks by how little they change their input: 1 minus the
# cosine between the hidden states entering and leaving the block, on calibration text. The
# least important quarter goes: the model is smaller and faster, and worse.

# %%
importance = pruning.block_importance(teacher, calibration)
n_blocks = len(importance)
REMOVE = sorted(sorted(range(n_blocks), key=importance.__getitem__)[: n_blocks // 4])
teacher_cut = pruning.drop_blocks(copy.deepcopy(teacher), REMOVE)
half_sparse = copy.deepcopy(teacher)
pruning.prune_linears(pruning.block_linears(half_sparse), "wanda", 0.5, norms=norms)
REPEATS = 3  # timed passes per model (the fastest are compared)
sparse_time = family.relative_latency(half_sparse, teacher, latency_ids, latency_mask, REPEATS)
blocks_time = family.relative_latency(teacher_cut, teacher, latency_ids, latency_mask, REPEATS)
with checking("Task 10.2"):
    check_close("Task 10.2", PREDICTED_SPARSE_TIME, sparse_time, 0.2, "50 % sparse / dense time")
    check_close("Task 10.2", PREDICTED_BLOCKS_TIME, blocks_time, 0.2, "blocks removed / dense")
print(
    f"removed blocks {REMOVE} of {n_blocks}; time against the dense teacher: 50 % sparse "
    f"{sparse_time:.2f}, {len(REMOVE)} blocks removed {blocks_time:.2f}"
)

# %% [markdown]
# ## 6. Task 10.3 — the distillation loss
# The teacher's whole next-token distribution says more than the one right token. Soften the
# student's and the teacher's logits at a temperature $T$ and pull the student towards the
# teacher with $KL(p^T_{teacher} \,\|\, p^T_{student})$, scaled by $T^2$ so its gradients keep
# their size as $T$ changes (Hinton et al., 2015); mix it with the label loss:
#
# $$\mathcal{L} = \alpha\, T^2\, KL + (1 - \alpha)\, CE$$
#
# both averaged over the positions that have a label. `labels` are aligned with the inputs, as
# a causal LM takes them (-100 where there is nothing to learn): the logits at position $t$
# predict label $t + 1$. Return a dict with `loss`, `kd` (the scaled KL) and `ce`.


# %%
def my_distillation_loss(student_logits, teacher_logits, labels, temperature, alpha):
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE, over labelled positions."""
    # BEGIN SOLUTION
    targets = labels[:, 1:]
    keep = targets != -100
    student = student_logits[:, :-1][keep].float()
    teacher_ = teacher_logits[:, :-1][keep].float().detach()
    student_t = torch.log_softmax(student / temperature, dim=-1)
    teacher_t = torch.log_softmax(teacher_ / temperature, dim=-1)
    kd = temperature**2 * (teacher_t.exp() * (teacher_t - student_t)).sum(-1).mean()
    ce = torch.nn.functional.cross_entropy(student, targets[keep])
    return {"loss": alpha * kd + (1 - alpha) * ce, "kd": kd, "ce": ce}
    # END SOLUTION


# %%
check_distillation_loss(my_distillation_loss)

# %% [markdown]
# Two students start from the same model — the **base** without the removed blocks, with a fresh
# LoRA adapter — and get the same budget (the same batches of training SMS, each followed by its
# label word, and the same steps). Both learn at one position, the label word's: one from the
# label alone ($\alpha = 0$), the other also from the teacher's whole next-token distribution
# there ($\alpha = 0.5$, $T = 2$), which says how sure the teacher is and what else it
# considered. Pruning a model and then distilling it back from the unpruned one is Minitron's
# recipe (Muralidharan et al., 2024).

# %%
distillation_loss = yours_or_kit("Task 10.3", my_distillation_loss, "the distillation loss")
DISTILL_STEPS = 2 if SMOKE else 40
label_ids = dict(zip(LABELS, label_task.label_token_ids(tokenizer, LABELS), strict=True))
sequences = [
    (prompt + [label_ids[row["label"]]],)
    for (prompt, _), row in zip(
        label_task.encode_rows(tokenizer, sms["train"], LABELS), sms["train"], strict=True
    )
]
distill_batches = training_batches(sequences, 4 if SMOKE else 8, DISTILL_STEPS, SEED)


def train_student(alpha: float, temperature: float = 2.0):
    """The base model without the REMOVE blocks, with a fresh LoRA adapter (r 8, every linear
    layer) trained DISTILL_STEPS AdamW steps on the mixed loss; returns it and its losses."""
    student = family.set_up_method(
        pruning.drop_blocks(copy.deepcopy(model), REMOVE), "LoRA", TOKENIZER_PATH, seed=SEED
    )
    params = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    schedule = linear_decay(optimizer, DISTILL_STEPS)
    losses = []
    student.train()
    for batch in tqdm(distill_batches, desc=f"alpha {alpha:g}", leave=False):
        ids, mask = pad_batch([seq for (seq,) in batch], tokenizer.pad_token_id)
        labels = torch.full_like(ids, -100)  # the label word is the only token to learn
        rows, last = torch.arange(len(ids)), mask.sum(1) - 1
        labels[rows, last] = ids[rows, last]
        student_logits = student(input_ids=ids, attention_mask=mask).logits
        teacher_logits = student_logits.detach()  # alpha 0: no teacher needed
        if alpha:
            with torch.no_grad():
                teacher_logits = teacher(input_ids=ids, attention_mask=mask).logits
        parts = distillation_loss(student_logits, teacher_logits, labels, temperature, alpha)
        parts["loss"].backward()
        optimizer.step(), schedule.step(), optimizer.zero_grad()
        losses.append(parts["loss"].item())
    return student.eval(), losses


students = {}
for name, alpha in (("student, labels only", 0.0), ("student, distilled", 0.5)):
    started = time.perf_counter()
    trained, losses = train_student(alpha)
    if alpha:  # the hand-in: which blocks went (data, never code) and the adapter
        trained.save_pretrained(str(OUT / "student_adapter"))
        (OUT / "recipe.json").write_text(json.dumps({pruning.RECIPE_KEY: REMOVE}))
    merged = trained.merge_and_unload()  # served as a plain model: no adapter overhead
    students[name] = {"model": merged, "loss": losses, **measure(merged)}
    print(
        f"{name}: {time.perf_counter() - started:.0f} s, accuracy "
        f"{students[name]['test accuracy']:.3f}, perplexity {students[name]['perplexity']:.1f}"
    )

# %% [markdown]
# ## 7. int8: fewer bits per weight
# Dynamic int8 quantization stores the blocks' linear weights in 8 bits (one scale per output
# channel) and quantizes each layer's input on the fly with **one scale for the whole tensor**,
# so the products run on int8 CPU kernels (PyTorch's `quantize_dynamic`). The embeddings and the
# LM head, which share one matrix in this model, stay in fp32.
#
# One scale per input is the weak point: if a few input features are far louder than the rest,
# the scale is set by them and the quiet features lose their resolution (Dettmers et al., 2022).
# The calibration norms of section 2 show which layers see such inputs: the loudest input
# feature against the median one, per kind of layer (the largest over the blocks).

# %%
kinds = sorted({name.rsplit(".", 1)[-1] for name in norms})
loudness = [
    {
        "layer": kind,
        "loudest / median input norm": max(
            float(n.max() / n.median()) for name, n in norms.items() if name.endswith(kind)
        ),
    }
    for kind in kinds
]
print(format_table(loudness, ["layer", "loudest / median input norm"], floats="{:.1f}"))

# %% [markdown]
# Two int8 teachers, measured on **validation**: every linear layer of the blocks in int8, and
# every one except the layer with the loudest inputs. The one with the lower validation
# perplexity is the recipe used for the test table, for the teacher and the distilled student.

# %%
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic  # noqa: E402

LOUDEST = max(loudness, key=lambda row: row["loudest / median input norm"])["layer"]


def int8_copy(source, keep_fp32: tuple = ()):
    """A copy of ``source`` with its blocks' linear layers in dynamic int8, except those whose
    name ends with one of ``keep_fp32``."""
    quantized = copy.deepcopy(source)
    blocks = pruning.decoder_blocks(quantized)
    names = [
        name
        for name, module in blocks.named_modules()
        if isinstance(module, torch.nn.Linear) and not name.endswith(keep_fp32)
    ]
    quantize_dynamic(
        blocks,  # the modules to quantize: the decoder blocks
        {name: per_channel_dynamic_qconfig for name in names},  # which layers, how: int8 weights
        inplace=True,  # swap the layers in the copy
    )
    return quantized


INT8_CHOICES = {"every linear": (), f"all but {LOUDEST}": (LOUDEST,)}
int8_validation = []
for choice, keep in INT8_CHOICES.items():
    int8_validation.append(
        {"int8 layers": choice, **measure(int8_copy(teacher, keep), "validation")}
    )
    release_memory()
print(
    format_table(
        [{"int8 layers": "none (fp32)", **teacher_validation}, *int8_validation],
        ["int8 layers", "validation accuracy", "perplexity"],
        floats="{:.3f}",
    )
)
INT8_CHOICE = min(int8_validation, key=lambda row: row["perplexity"])["int8 layers"]
INT8_OF = {  # the int8 copy's name -> the float model it quantizes
    "teacher, int8": teacher,
    "student distilled, int8": students["student, distilled"]["model"],
}
int8 = {name: int8_copy(source, INT8_CHOICES[INT8_CHOICE]) for name, source in INT8_OF.items()}
print(f"int8 recipe chosen on validation: {INT8_CHOICE}")

# %% [markdown]
# ## 8. Side by side

# %%
candidates = {
    "teacher": teacher,
    "teacher, 50 % Wanda": half_sparse,
    "teacher, blocks removed": teacher_cut,
    **{name: s["model"] for name, s in students.items()},
    **int8,
}
known = {"teacher": teacher_scores, **students}
summary = []
for name, candidate in candidates.items():
    scores = known[name] if name in known else measure(candidate)
    summary.append(
        {
            "model": name,
            "MB": saved_megabytes(candidate),  # zeros included: a dense file stores them
            "time": family.relative_latency(candidate, teacher, latency_ids, latency_mask, REPEATS),
            **{k: scores[k] for k in ("test accuracy", "perplexity", "parameters")},
        }
    )
    if name in INT8_OF:  # int8 weights are packed buffers, not parameters: count the source's
        summary[-1]["parameters"] = sum(p.numel() for p in INT8_OF[name].parameters())
print(
    format_table(
        summary,
        ["model", "parameters", "MB", "time", "test accuracy", "perplexity"],
        floats="{:.3f}",
    )
)

# %%
show(
    plot_pareto(
        {r["model"]: (r["MB"], r["test accuracy"]) for r in summary},
        OUT / "pareto.png",
        title="Lab 10: size against test accuracy (the Pareto front joined)",
        xlabel="MB on disk",
        ylabel="test accuracy",
    )
)

# %%
run_info = finish_lab(
    LAB,
    {
        "base": base_scores,
        "teacher": teacher_scores,
        "sweep": sweep,
        "removed_blocks": REMOVE,
        "block_importance": importance,
        "latency": {"sparse": sparse_time, "blocks_removed": blocks_time},
        "input_loudness": loudness,
        "int8_validation": int8_validation,
        "int8_choice": INT8_CHOICE,
        "students": {n: {k: v for k, v in s.items() if k != "model"} for n, s in students.items()},
        "summary": summary,
    },
    lab_start,
    config={"profile": PROFILE, "smoke": SMOKE, "steps": STEPS, "distill_steps": DISTILL_STEPS},
    seed=SEED,
    device=hardware.device,
    dtype=next(model.parameters()).dtype,
    model_fingerprint=BASE_FINGERPRINT,
)

# %% [markdown]
# ## Hand in
# Hand in the distilled student: `recipe.json` (which blocks you removed — data the grader reads,
# never code) and its LoRA adapter. The grader removes the same blocks from its own copy of the
# base model, merges your adapter, and scores the result on SMS messages it keeps back (the same
# label-word accuracy as above); part of the points go to the share of the base's parameters your
# student does without, so a smaller student that keeps its accuracy scores best.

# %%
submission = make_submission(
    LAB,
    STUDENT_ID,
    {"adapter": OUT / "student_adapter", "recipe.json": OUT / "recipe.json"},
    run_info,
    base_model_id=get_profile(PROFILE).model_id,
    out_dir=OUT,
    training_config={"alpha": 0.5, "temperature": 2.0, "steps": DISTILL_STEPS},
    loss=students["student, distilled"]["loss"],
)

# %% [markdown]
# Before you upload: the grader's own checks on the zip you just wrote, and your student run on
# a few public messages (a zip the grader refuses scores 0). From a terminal:
# `python grading/run.py --check <your zip>`.

# %%
from grading.run import check_submission  # noqa: E402

verdict = check_submission(submission, base=PROFILE)  # prints the verdict

# %% [markdown]
# ## Takeaways
# The numbers below are this run's.

# %%
rows = {r["model"]: r for r in summary}
teacher_row = rows["teacher"]
collapse = {
    method: next(
        (
            r["sparsity"]
            for r in sweep
            if r["method"] == method and r["perplexity"] > 2 * teacher_validation["perplexity"]
        ),
        None,
    )
    for method in ("magnitude", "wanda")
}
print(
    "- Validation perplexity first passes twice the dense teacher's ("
    + ", ".join(
        f"{method}: " + (f"at {at:.0%} sparsity" if at is not None else "not within the sweep")
        for method, at in collapse.items()
    )
    + ")."
)
print(
    f"- Zeroing 50 % of the weights changed the forward time by a factor of {sparse_time:.2f} and "
    f"the file not at all ({rows['teacher, 50 % Wanda']['MB']:.0f} MB): dense kernels multiply "
    f"the zeros. Removing {len(REMOVE)} of {n_blocks} blocks: time x{blocks_time:.2f}, "
    f"{rows['teacher, blocks removed']['MB']:.0f} MB instead of {teacher_row['MB']:.0f}."
)
kept = {
    name: rows[name]["test accuracy"] / teacher_row["test accuracy"]
    for name in ("teacher, blocks removed", "student, labels only", "student, distilled")
}
print(
    f"- Test accuracy: teacher {teacher_row['test accuracy']:.3f}; without {len(REMOVE)} blocks "
    f"{rows['teacher, blocks removed']['test accuracy']:.3f} before any training, "
    f"{rows['student, labels only']['test accuracy']:.3f} trained on labels, "
    f"{rows['student, distilled']['test accuracy']:.3f} distilled ("
    + ", ".join(f"{share:.0%}" for share in kept.values())
    + f" of the teacher's on {len(sms['test'])} messages)."
)
print(
    f"- int8 ({INT8_CHOICE}): {rows['teacher, int8']['MB']:.0f} MB instead of "
    f"{teacher_row['MB']:.0f}, time x{rows['teacher, int8']['time']:.2f}, test accuracy "
    f"{rows['teacher, int8']['test accuracy']:.3f}; {LOUDEST}'s loudest input feature is "
    f"{max(r['loudest / median input norm'] for r in loudness):.0f} times its median one."
)
