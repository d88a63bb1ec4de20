# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lab 02 — Selective fine-tuning: a spam classifier from the last block
#
# {{colab_badge}}
#
# Lab 01 showed that prompting a small model barely beats chance on SMS spam. Here we *train* the
# same model, but only a sliver of it. The recipe (as in Raschka's *LLMs from Scratch*, ch. 6):
#
# 1. replace the language-model head (576 → 49,152 vocabulary logits) by a new **2-class head**;
# 2. read the prediction at the **last non-pad token**, the only one that has seen the whole
#    message;
# 3. **freeze** every parameter, then unfreeze the last transformer block, the final norm and the
#    head;
# 4. train, and measure **before and after** on the same full test split with the same function.
#
# Because the frozen layers compute exactly the same thing every epoch, we run them **once** and
# train on their cached output: that is what makes this lab fast on a CPU.
#
# **Time**: ≤ 10 minutes on 2 CPU cores (`SMOKE = True`: about a minute).
# **Expected**: ~3.5 M trainable parameters out of ~134.5 M (2.6 %); test accuracy from about chance
# (a random head) to about 90 % after training the last block. The test messages are written in
# *shapes* (templates) the model never saw in training, so this measures generalisation, not
# recall of the training set.

# %% tags=["colab-install"]
# (filled in by tools/build_labs.py)

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("FTKIT_PROFILE", "cpu")  # "cpu" (SmolLM2-135M, offline) | "t4" | "a100"
SMOKE = os.environ.get("FTKIT_SMOKE", "0") == "1"  # True: a few dozen examples, 1 min
SEED = int(os.environ.get("FTKIT_SEED", "0"))  # head initialisation and batch order
STUDENT_ID = os.environ.get("FTKIT_STUDENT", "your-student-id")  # names your submission zip

# %%
from utils.runtime.hardware import preflight

hardware = preflight(PROFILE)

# %%
import json
import time

import torch
from tqdm.auto import tqdm

from utils.data.batching import batches, load_classification_data, pad_batch
from utils.data.datasets import dataset_fingerprint, get_spec
from utils.eval.metrics import classifier_accuracy
from utils.lab.checks import check_close, check_equal, checking, passed, report
from utils.lab.diagrams import Changes, draw_model
from utils.lab.expected import expected, stand_in, yours_or_kit
from utils.lab.plots import plot_bars, plot_lines, show
from utils.lab.results import finish_lab, format_table
from utils.lab.submission import make_submission
from utils.runtime.models import load_model, model_fingerprint
from utils.runtime.profiles import get_profile
from utils.runtime.storage import lab_output_dir
from utils.train.classifier import (
    ClassifierSettings,
    cache_hidden_states,
    classifier_logits,
    last_token_index,
    logits_from_hidden,
    replace_head,
    save_classifier,
    train_classifier,
)
from utils.train.params import count_trainable

LAB = "02_selective_finetuning"
OUT = lab_output_dir(LAB)
lab_start = time.perf_counter()
model, tokenizer = load_model(PROFILE)
# identifies the base weights the trained parts belong to
BASE_FINGERPRINT = model_fingerprint(model)
NUM_BLOCKS = model.config.num_hidden_layers
print(f"{model.config.name_or_path}: {NUM_BLOCKS} blocks, hidden size {model.config.hidden_size}")

# %% [markdown]
# What this lab changes in the network, drawn from its settings:

# %%
show(
    draw_model(
        Changes(layers=NUM_BLOCKS, trained_blocks=1, norm=True, head="new"),
        OUT / "model.png",
        "Lab 02: the last block, the final norm and a new head train",
    )
)

# %% [markdown]
# ## The data
# The same `sms_spam` splits as Lab 01. Messages are tokenized once, without a prompt: the head
# learns the task, so no instruction is needed.

# %%
LABELS = get_spec("sms_spam").labels  # ("ham", "spam") -> class 0, 1
SIZES = (
    {"train": 48, "validation": 16, "test": 24}
    if SMOKE
    else {"train": None, "validation": None, "test": None}
)
splits, ids, y = load_classification_data(tokenizer, "sms_spam", SIZES)  # rows, token ids, classes
for name, rows in splits.items():
    print(
        f"{name:>10}: {len(rows)} messages, {sum(y[name])} spam, "
        f"{max(len(i) for i in ids[name])} tokens at most"
    )

# %% [markdown]
# ## 1. A new head
# ### Task 2.1 — replace the head
# Set `model.lm_head` to a fresh `torch.nn.Linear` from the hidden size to `NUM_CLASSES` outputs.
# (SmolLM2 ties its LM head to the input embeddings; a new head breaks that tie, which we record in
# the config.)

# %%
NUM_CLASSES = len(LABELS)
torch.manual_seed(SEED)
# BEGIN SOLUTION: model.lm_head = None  # your head here
model.lm_head = torch.nn.Linear(model.config.hidden_size, NUM_CLASSES)
# END SOLUTION
model.config.tie_word_embeddings = False

# %%
with checking("Task 2.1"):
    report(
        "Task 2.1",
        isinstance(model.lm_head, torch.nn.Linear) and model.lm_head.out_features == NUM_CLASSES,
        "the head is a Linear layer with one output per class",
        "model.lm_head must be torch.nn.Linear(hidden_size, NUM_CLASSES)",
    )
    _padded, _mask = pad_batch(ids["train"][:4], tokenizer.pad_token_id)
    with torch.no_grad():
        _logits = classifier_logits(model, _padded, _mask)
    check_equal(
        "Task 2.1", tuple(_logits.shape), (4, NUM_CLASSES), what="logits shape for 4 messages"
    )
    report(
        "Task 2.1",
        model.get_input_embeddings().weight is not model.lm_head.weight,
        "the head is new, not the tied embedding matrix",
        "the head still shares the embedding weights",
    )
if not passed("Task 2.1"):  # the rest of the lab needs a head
    torch.manual_seed(SEED)
    model.lm_head = stand_in("Task 2.1", "new head")(model.config.hidden_size, NUM_CLASSES)

# %% [markdown]
# ## 2. Which token is the message?
# In a causal model, token *t* attends only to tokens ≤ *t*. So only the **last real token** has
# seen
# the whole message, and its hidden state is what the head reads. Batches are right-padded
# (`[tok, tok, tok, pad, pad]`, mask `[1, 1, 1, 0, 0]`).
#
# ### Task 2.2 — the last non-pad token
# Given a right-padded `attention_mask` of shape (batch, seq), return the index of each row's last
# real token.


# %%
def last_index_right_padded(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last 1 in each row of a right-padded mask."""
    # BEGIN SOLUTION: ...
    return attention_mask.sum(dim=1) - 1
    # END SOLUTION


# %%
_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
with checking("Task 2.2"):
    _yours = last_index_right_padded(_mask)
    check_equal(
        "Task 2.2",
        None if _yours is None else _yours.tolist(),
        last_token_index(_mask).tolist(),
        what="last-token indices",
    );
# The kit's `last_token_index` also handles left padding ([0, 0, 1, 1, 1] -> 4), used by generation.

# %% [markdown]
# ## 3. Freeze all but the last block
# ### Task 2.3 — the freeze loop
# Set `requires_grad = False` on every parameter, then `True` on the parameters of the last
# `last_blocks` transformer blocks (`model.model.layers`), the final norm (`model.model.norm`,
# if `train_norm`), the head (`model.lm_head`, always) and the input embeddings
# (`model.model.embed_tokens`, if `train_embeddings`). Return the number of trainable
# parameters. Mind the edge case `last_blocks = 0` (the head alone): what is `layers[-0:]`?
# The ablation in section 6 uses your function for every row.


# %%
def freeze_for_finetuning(
    model, last_blocks: int, train_norm: bool = True, train_embeddings: bool = False
) -> int:
    """Train only the last blocks, the final norm, the head (and the embeddings if asked)."""
    # BEGIN SOLUTION: ...
    for param in model.parameters():
        param.requires_grad = False
    blocks = list(model.model.layers)[len(model.model.layers) - last_blocks :]
    modules = [*blocks, model.lm_head]
    modules += [model.model.norm] if train_norm else []
    modules += [model.model.embed_tokens] if train_embeddings else []
    for module in modules:
        for param in module.parameters():
            param.requires_grad = True
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
    # END SOLUTION


# %%
TOTAL = sum(p.numel() for p in model.parameters())
with checking("Task 2.3"):
    for _case in (
        {"last_blocks": 1},
        {"last_blocks": 0, "train_norm": False},
        {"last_blocks": 2, "train_embeddings": True},
    ):
        _expected_names = expected("Task 2.3", model, **_case)
        _count = freeze_for_finetuning(model, **_case)
        _names = {n for n, p in model.named_parameters() if p.requires_grad}
        report(
            "Task 2.3",
            _names == _expected_names and _count == count_trainable(model)[0],
            f"{_case}: the right {len(_names)} tensors train, and the count is returned",
            f"{_case}: extra {sorted(_names - _expected_names)[:3]}, missing "
            f"{sorted(_expected_names - _names)[:3]}, returned {_count!r}",
        )
freeze_for_finetuning = yours_or_kit("Task 2.3", freeze_for_finetuning, "freeze function")
freeze_for_finetuning(model, 1)  # the lab's setting: the last block, the norm and the head
print(
    f"trainable: {count_trainable(model)[0]:,} of {TOTAL:,} parameters "
    f"({100 * count_trainable(model)[0] / TOTAL:.2f} %)"
)

# %% [markdown]
# ## 4. Run the frozen layers once
# Blocks 0 … 28 and the embeddings are frozen: for a given message they produce the same hidden
# states in every epoch. We compute them once (one forward pass over the data, no gradients) and
# train block 29, the norm and the head on that cache. **This is only allowed while those layers
# stay frozen**: unfreeze block 28 and its outputs change at every step, so the cache would be stale
# (that is why the "last two blocks" run below caches at depth 28 instead).
#
# One pass stores the hidden states entering blocks 28, 29 and 30 (= after the last block), for
# the ablation below.

# %%
DEPTHS = [NUM_BLOCKS - 2, NUM_BLOCKS - 1, NUM_BLOCKS]
start = time.perf_counter()
cache = {
    name: cache_hidden_states(model, ids[name], DEPTHS, tokenizer.pad_token_id) for name in splits
}
cache_seconds = time.perf_counter() - start
print(
    f"cached {sum(len(v) for v in ids.values())} messages at depths {DEPTHS} in "
    f"{cache_seconds:.0f} s"
)

# The cached path must give exactly what the full forward pass gives:
_padded, _mask = pad_batch(ids["test"][:8], tokenizer.pad_token_id)
_hidden, _ = pad_batch(cache["test"][NUM_BLOCKS - 1][:8], 0.0)
with torch.no_grad():
    _diff = (
        (
            logits_from_hidden(model, _hidden, _mask, NUM_BLOCKS - 1)
            - classifier_logits(model, _padded, _mask)
        )
        .abs()
        .max()
    )
check_close("cache", float(_diff), 0.0, tol=1e-4, what="max |cached - full| logit difference");

# %% [markdown]
# How much does the cache save? One training step on the cache runs one block; without it, all 30
# blocks run forward (the frozen ones without gradients) before the same backward pass.


# %%
def time_steps(logits_fn, items, n_steps: int = 3) -> float:
    """Seconds per training step (forward + backward + AdamW) over the first batches."""
    config = ClassifierSettings(epochs=1, learning_rate=1e-9, batch_size=16, seed=SEED)
    n = min(len(items), n_steps * config.batch_size)
    history = train_classifier(
        model, logits_fn, items[:n], y["train"][:n], config, pad_value=0.0, progress=False
    )
    return history["seconds"] / len(history["step"])


untrained = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
step_cached = time_steps(
    lambda h, m: logits_from_hidden(model, h, m, NUM_BLOCKS - 1), cache["train"][NUM_BLOCKS - 1]
)
step_full = time_steps(lambda i, m: classifier_logits(model, i, m), ids["train"])
model.load_state_dict(untrained, strict=False)  # undo the (tiny) updates of the timing steps
print(
    f"seconds per step: {step_cached:.3f} on the cache vs {step_full:.3f} with the full forward "
    f"-> {step_full / step_cached:.0f}x faster per epoch"
)

# %% [markdown]
# ## 5. Before and after
# "Before" is the fresh head on the test split; "after" is the same function after training. Both
# use `classifier_accuracy` on every test message. The training loop is written out below: a
# forward pass to class logits, the cross-entropy loss, the backward pass, an AdamW step — for
# each batch, for each epoch. (The sweeps further down call `train_classifier`, the same loop
# with a few lines of bookkeeping around it.)


# %%
def logits_at(depth):
    """Class logits from hidden states cached at ``depth`` (blocks ``depth..`` run with
    gradients)."""
    return lambda hidden, mask: logits_from_hidden(model, hidden, mask, depth)


def evaluate_at(depth, split="test"):
    return classifier_accuracy(logits_at(depth), cache[split][depth], y[split], pad_value=0.0)


CONFIG = ClassifierSettings(
    epochs=2 if SMOKE else 3, learning_rate=5e-4, batch_size=16, weight_decay=0.01, seed=SEED
)
before = evaluate_at(NUM_BLOCKS - 1)

forward = logits_at(NUM_BLOCKS - 1)  # the last block, the final norm and the head
torch.manual_seed(CONFIG.seed)
optimizer = torch.optim.AdamW(  # only the parameters Task 2.3 left trainable
    [p for p in model.parameters() if p.requires_grad],
    lr=CONFIG.learning_rate,
    weight_decay=CONFIG.weight_decay,
)
model.train()
history, start = {"step": [], "loss": []}, time.perf_counter()
bar = tqdm(total=CONFIG.epochs * -(-len(y["train"]) // CONFIG.batch_size), desc="training")
for epoch in range(CONFIG.epochs):
    for hidden, mask, gold, _ in batches(  # a new shuffle each epoch, padded batches
        cache["train"][NUM_BLOCKS - 1], y["train"], CONFIG.batch_size, 0.0, CONFIG.seed + epoch
    ):
        loss = torch.nn.functional.cross_entropy(forward(hidden, mask).float(), gold)
        optimizer.zero_grad(set_to_none=True)  # drop the previous batch's gradients
        loss.backward()  # gradients of every trainable weight
        optimizer.step()  # AdamW moves them
        history["step"].append(len(history["step"]) + 1)
        history["loss"].append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
bar.close()
model.eval()  # (no dropout in this model, but the habit matters)
history["seconds"] = time.perf_counter() - start
after = evaluate_at(NUM_BLOCKS - 1)
trained_state = {
    n: p.detach().clone().contiguous() for n, p in model.named_parameters() if p.requires_grad
}
validation = evaluate_at(NUM_BLOCKS - 1, "validation")
print(
    f"test accuracy: {before['accuracy']:.3f} before -> {after['accuracy']:.3f} after "
    f"({history['seconds']:.0f} s of training; validation {validation['accuracy']:.3f})"
)
path = plot_lines(
    {"training loss": (history["step"], history["loss"])},
    OUT / "loss.png",
    title="Lab 02: training loss (last block + norm + head)",
    xlabel="step",
    ylabel="loss",
)
show(path)

# %% [markdown]
# Compare with prompting (Lab 01's best configuration on the same test split, if you ran Lab 01):

# %%
baseline_file = lab_output_dir("01_in_context_learning") / "baseline.json"
prompting = (
    json.loads(baseline_file.read_text())["baseline"]["sms_spam"]
    if baseline_file.exists()
    else None
)
comparison = [{"method": "fresh head (before)", "test accuracy": before["accuracy"]}]
if prompting and prompting["n_test"] == len(y["test"]):
    comparison += [
        {"method": "Lab 01 zero-shot prompting", "test accuracy": prompting["zero_shot"]},
        {
            "method": f"Lab 01 best prompting ({prompting['best_setting']})",
            "test accuracy": prompting["best_prompting"],
        },
    ]
else:
    print("(run Lab 01 on the same split to add its prompting numbers here)")
comparison.append({"method": "selective fine-tuning (after)", "test accuracy": after["accuracy"]})
print(format_table(comparison, ["method", "test accuracy"]))
path = plot_bars(
    [row["method"] for row in comparison],
    [row["test accuracy"] for row in comparison],
    OUT / "before_after.png",
    title="Lab 02: prompting vs selective fine-tuning, sms_spam test",
)
show(path)

# %% [markdown]
# ## 6. Ablation: how much of the model should train?
# Each row starts again from the pre-trained weights and a fresh head, and trains for the same
# number of epochs. *Head only* and *last two blocks* reuse the cache (depths 30 and 28);
# *all layers* cannot (nothing is frozen), so it runs the full model forward and backward — on a
# CPU we give it a single epoch, and say so in the table.


# %%
def fresh_model(last_blocks: int, train_norm: bool = True, train_embeddings: bool = False):
    global model
    model, _ = load_model(PROFILE)
    replace_head(model, NUM_CLASSES, seed=SEED)
    return freeze_for_finetuning(
        model, last_blocks, train_norm=train_norm, train_embeddings=train_embeddings
    )


ablation = [
    {
        "trained": "last block + norm + head",
        "trainable params": count_trainable(model)[0],
        "epochs": CONFIG.epochs,
        "train seconds": f"{history['seconds']:.1f}",
        "test accuracy": after["accuracy"],
    }
]
for label, blocks, norm in (("head only", 0, False), ("last two blocks + norm + head", 2, True)):
    trainable = fresh_model(blocks, train_norm=norm)
    depth = NUM_BLOCKS - blocks
    run = train_classifier(
        model, logits_at(depth), cache["train"][depth], y["train"], CONFIG, pad_value=0.0
    )
    ablation.append(
        {
            "trained": label,
            "trainable params": trainable,
            "epochs": CONFIG.epochs,
            "train seconds": f"{run['seconds']:.1f}",
            "test accuracy": evaluate_at(depth)["accuracy"],
        }
    )

trainable = fresh_model(NUM_BLOCKS, train_embeddings=True)
full_config = ClassifierSettings(
    epochs=1, learning_rate=2e-5, batch_size=16, weight_decay=0.01, seed=SEED
)
n_full = len(ids["train"])  # one epoch of the whole model: ~3.5 minutes on 2 CPU cores
run = train_classifier(
    model,
    lambda i, m: classifier_logits(model, i, m),
    ids["train"][:n_full],
    y["train"][:n_full],
    full_config,
    pad_value=tokenizer.pad_token_id,
)
full = classifier_accuracy(
    lambda i, m: classifier_logits(model, i, m),
    ids["test"],
    y["test"],
    pad_value=tokenizer.pad_token_id,
)
ablation.append(
    {
        "trained": "all layers (no cache possible)",
        "trainable params": trainable,
        "epochs": 1,
        "train seconds": f"{run['seconds']:.1f}",
        "test accuracy": full["accuracy"],
    }
)
ablation.append(
    {
        "trained": "LoRA (filled in by Lab 03)",
        "trainable params": "-",
        "epochs": "-",
        "train seconds": "-",
        "test accuracy": "-",
    }
)
print(
    format_table(
        ablation,
        ["trained", "trainable params", "epochs", "train seconds", "test accuracy"],
        floats="{:.3f}",
    )
)

# %% [markdown]
# ## 7. Save the trained classifier
# Only what was trained is saved (the last block, the final norm and the head), as safetensors:
# the rest is the unchanged base model. The grader later loads these tensors onto its own copy of
# the base model.

# %%
save_classifier(OUT / "classifier", trained_state, LABELS)
print(
    f"saved {len(trained_state)} tensors ({sum(t.numel() for t in trained_state.values()):,} "
    "parameters) "
    f"to {OUT / 'classifier'}"
)

# %%
results = {
    "before": {"accuracy": before["accuracy"]},
    "after": {"accuracy": after["accuracy"]},
    "validation_after": validation["accuracy"],
    "trainable_params": ablation[0]["trainable params"],
    "total_params": TOTAL,
    "cache_seconds": cache_seconds,
    "seconds_per_step": {"cached": step_cached, "full_forward": step_full},
    "ablation": ablation,
    "loss": history["loss"],
    "prompting": prompting,
}
info = finish_lab(
    LAB,
    results,
    lab_start,
    config={
        "profile": PROFILE,
        "smoke": SMOKE,
        "train": vars(CONFIG),
        "full_ft": vars(full_config),
        "cache_depths": DEPTHS,
    },
    seed=SEED,
    device=hardware.device,
    dtype=next(model.parameters()).dtype,
    model_fingerprint=BASE_FINGERPRINT,
    dataset_fingerprints={n: dataset_fingerprint(r) for n, r in splits.items()},
)

# %% [markdown]
# ## Submit
# The grader puts your saved tensors on its own copy of the base model
# (`utils.train.classifier.apply_classifier`)
# and measures accuracy on a held-out split you never see, with the same `classifier_accuracy`.
# "Before" there is the base model with a fresh head (seed 0), as in section 5.

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
# In two or three sentences: the *head only* row trains a linear classifier on frozen features.
# What does its accuracy tell you about what the pre-trained model already knows about spam, and
# what does training the last block add on top?

# %% [markdown]
# *YOUR ANSWER HERE*

# %% [markdown]
# ## Takeaways
# - Training 2.6 % of the parameters (last block, norm, new head) turns a near-chance prompt into a
#   strong classifier.
# - Frozen layers are a fixed feature extractor: compute them once, train on the cache.
# - More trainable layers cost more time; on this task they buy little accuracy. Lab 03 asks whether
#   a low-rank update (LoRA) of *every* layer does better for the same budget.
#
# **Go further**: 🐢 train the head only for three times as many epochs: does it catch up? 🐕
# unfreeze the final norm alone on top of the head and compare; 🦁 replace the linear head with a
# two-layer MLP and see whether a deeper head can stand in for the last block.
