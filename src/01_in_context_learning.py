# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lab 01 — In-context learning: zero-shot and few-shot prompting
#
# {{colab_badge}}
#
# Before we train anything, how far does **prompting** get us? A causal language model can classify
# text without any training: write a prompt that ends where the label should come, and compare how
# likely the model finds each label word. Adding a few solved examples ("shots") to the prompt is
# *in-context learning* (ICL).
#
# You will:
# 1. score a label word by hand from the model's logits (Task 1.1);
# 2. write a k-shot prompt (Task 1.2) and sweep k = 0, 1, 2, 4, 8 on two datasets;
# 3. compare prompt formats: instruction vs plain, raw text vs chat template, label words;
# 4. measure how much the *choice* and *order* of the examples matter;
# 5. fix the model's label bias with contextual calibration (Task 1.3);
# 6. save the best prompting accuracy: the number Labs 02–03 must beat by fine-tuning.
#
# **Datasets**: `sms_spam` (SMS messages, spam vs ham) and `animal_diet` (animal → carnivore /
# herbivore / omnivore). **Time**: ≤ 10 minutes on 2 CPU cores with the embedded model; set
# `SMOKE = True` for a 1-minute check on 10 items per split and dataset.
#
# **What to expect on the embedded SmolLM2-135M**: a 135M-parameter model is a weak in-context
# learner. Accuracies hover near chance (50 % for SMS, 33 % for diets), move a lot with the prompt,
# and more shots do not reliably help. That is the finding: remember it when Lab 02 fine-tunes the
# same model to over 90 % on SMS. Larger models (the `t4`/`a100` profiles) gain much more from
# shots.

# %% tags=["colab-install"]
# (filled in by tools/build_labs.py)

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("FTKIT_PROFILE", "cpu")  # "cpu" (SmolLM2-135M, offline) | "t4" | "a100"
SMOKE = os.environ.get("FTKIT_SMOKE", "0") == "1"  # True: 10 items per split, 1 min
SEED = int(os.environ.get("FTKIT_SEED", "0"))  # chooses the demonstrations
STUDENT_ID = os.environ.get("FTKIT_STUDENT", "your-student-id")  # names your submission zip

# %%
from utils.runtime.hardware import preflight

hardware = preflight(PROFILE)

# %%
import json
import time

import torch

from utils.data.datasets import dataset_fingerprint, get_spec, load_split
from utils.data.prompting import (
    DATASET_FORMATS,
    Prompt,
    PromptFormat,
    choose_demos,
    format_to_dict,
    render_raw,
)
from utils.eval.icl import evaluate_prompt, predict, run_icl
from utils.eval.metrics import score_candidates
from utils.lab.checks import check_close, check_equal, report
from utils.lab.diagrams import Changes, draw_model
from utils.lab.expected import expected
from utils.lab.explorers import prompt_builder
from utils.lab.plots import plot_grouped_bars, plot_sweep, show
from utils.lab.results import finish_lab, format_table, save_results
from utils.lab.submission import make_submission
from utils.runtime.models import load_model, model_fingerprint
from utils.runtime.profiles import get_profile
from utils.runtime.storage import lab_output_dir

LAB = "01_in_context_learning"
OUT = lab_output_dir(LAB)
lab_start = time.perf_counter()
torch.manual_seed(SEED)
model, tokenizer = load_model(PROFILE)
print(
    f"model: {model.config.name_or_path}, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M "
    "parameters"
)

# %% [markdown]
# What this lab changes in the network, drawn from its settings:

# %%
show(
    draw_model(
        Changes(layers=model.config.num_hidden_layers, prompt=True),
        OUT / "model.png",
        "Lab 01: only the prompt changes; every weight stays frozen",
    )
)

# %% [markdown]
# ## The data
# Labs use the public splits `train` (where demonstrations come from), `validation` (where we
# compare prompts and choose one) and `test` (touched once, at the end, to score the zero-shot
# prompt and the chosen one). A fourth split, `heldout`, is kept for grading and never loaded here.

# %%
DATASETS = ["sms_spam", "animal_diet"]
train = {name: load_split(name, "train") for name in DATASETS}
valid = {name: load_split(name, "validation") for name in DATASETS}
test = {name: load_split(name, "test") for name in DATASETS}
if SMOKE:
    valid = {name: rows[:10] for name, rows in valid.items()}
    test = {name: rows[:10] for name, rows in test.items()}
labels = {name: get_spec(name).labels for name in DATASETS}
for name in DATASETS:
    print(
        f"{name}: {len(train[name])} train / {len(valid[name])} validation / {len(test[name])} "
        f"test, labels {labels[name]}"
    )
    for row in train[name][:3]:
        print(f"    {row['label']:>9}  {row['text'][:90]}")

# %% [markdown]
# One prompt format per dataset. The instruction says what to do; `input_prefix` and
# `output_prefix` frame each example; the model's answer is the word after `output_prefix`.

# %%
FORMATS = DATASET_FORMATS  # from utils.data.prompting:
for name, fmt in FORMATS.items():
    print(f"{name}: {fmt}")

# %% [markdown]
# ## 1. How a language model classifies
# For a prompt ending in `Label:`, the model gives a probability to every next token. The
# prediction is the label whose word (with its leading space, `" spam"`) has the highest
# log-probability. For a label of several tokens, add their log-probabilities:
# $\log p(w_1 \dots w_n \mid x) = \sum_i \log p(w_i \mid x, w_{<i})$.
#
# ### Task 1.1 — score a label by hand
# Complete `label_logprob`: tokenize the prompt and the label separately (no special tokens), run
# the model once on their concatenation, take `log_softmax` of the logits, and add up the
# log-probability of each label token *at the position before it*.


# %%
def label_logprob(model, tokenizer, prompt_text: str, label_text: str) -> float:
    """log p(label_text | prompt_text) under the model."""
    # BEGIN SOLUTION: ...
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    label_ids = tokenizer(label_text, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + label_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
    return sum(logprobs[len(prompt_ids) - 1 + i, token].item() for i, token in enumerate(label_ids))
    # END SOLUTION


# %%
# Check Task 1.1 against the kit's batched scorer, on a plain zero-shot prompt.
_plain = PromptFormat(input_prefix="Message: ", output_prefix="Label:")
_prompt = Prompt("", render_raw(_plain, [], valid["sms_spam"][0]["text"])[1], (" spam", " ham"))
_expected = score_candidates(model, tokenizer, [_prompt], progress=False)[0]
for _word, _value in zip(_prompt.candidates, _expected):
    check_close(
        "Task 1.1",
        label_logprob(model, tokenizer, _prompt.text, _word),
        _value,
        tol=1e-3,
        what=f"log p({_word!r})",
    )

# %% [markdown]
# ### Task 1.2 — write a k-shot prompt
# Build the prompt as: the instruction, a blank line, then each demonstration as
# `Message: <text>` and `Label: <label>` on two lines, demonstrations separated by a blank line,
# and finally the query as `Message: <query>` followed by `Label:` with nothing after it.


# %%
def few_shot_prompt(instruction: str, demos: list[dict], query: str) -> str:
    """A k-shot SMS prompt ending in 'Label:'."""
    # BEGIN SOLUTION: ...
    blocks = [instruction] + [f"Message: {d['text']}\nLabel: {d['label']}" for d in demos]
    return "\n\n".join(blocks) + f"\n\nMessage: {query}\nLabel:"
    # END SOLUTION


# %%
_demos = choose_demos(train["sms_spam"], 2, SEED, labels["sms_spam"])
_query = valid["sms_spam"][0]["text"]
_fmt = FORMATS["sms_spam"]
check_equal(
    "Task 1.2",
    few_shot_prompt(_fmt.instruction, _demos, _query),
    "".join(render_raw(_fmt, _demos, _query)),
    what="your 2-shot prompt",
)
print(few_shot_prompt(_fmt.instruction, _demos, _query))

# %% [markdown]
# From here on the kit's `build_prompt` writes the prompts (the same text as yours), and
# `score_candidates` scores them in batches. Because the instruction and demonstrations are the
# same for every message, it runs them through the model **once** and reuses their
# key/value cache: an 8-shot evaluation costs little more than a zero-shot one.
#
# ## 2. Zero-shot vs k-shot
# Demonstrations are drawn from `train` with the seed, covering the labels in turn.

# %%
KS = [0, 1, 2, 4, 8]
sweep = {}
for name in DATASETS:
    for k in KS:
        sweep[name, k] = run_icl(
            model, tokenizer, FORMATS[name], train[name], valid[name], labels[name], k, SEED
        )
        print(
            f"{name:12s} k={k}: accuracy {sweep[name, k]['accuracy']:.3f}  "
            f"({sweep[name, k]['seconds']:.0f} s)"
        )

# The animal validation set is small (24 animals) and cheap to score: repeat the sweep with two more
# seeds and plot mean ± standard deviation, to see how much of the curve is noise.
import statistics

animal_seeds = {
    k: [sweep["animal_diet", k]["accuracy"]]
    + [
        run_icl(
            model,
            tokenizer,
            FORMATS["animal_diet"],
            train["animal_diet"],
            valid["animal_diet"],
            labels["animal_diet"],
            k,
            SEED + s,
        )["accuracy"]
        for s in (1, 2)
    ]
    for k in KS
}
chance = {name: 1 / len(labels[name]) for name in DATASETS}
series = {
    "sms_spam (seed 0)": ([sweep["sms_spam", k]["accuracy"] for k in KS], None),
    "animal_diet (3 seeds, mean ± std)": (
        [statistics.mean(animal_seeds[k]) for k in KS],
        [statistics.pstdev(animal_seeds[k]) for k in KS],
    ),
}
path = plot_sweep(
    KS,
    series,
    OUT / "accuracy_vs_k.png",
    title="In-context learning: accuracy vs number of shots",
    xlabel="k (demonstrations in the prompt)",
    baselines={f"chance {name}": c for name, c in chance.items()},
)
show(path)

# %% [markdown]
# ## 3. Prompt format
# Three choices at k = 4: drop the instruction (plain), render the prompt with the model's **chat
# template** (the instruction as system message, each demonstration as a user/assistant turn), and
# change the **label words** the model must produce.

# %%
K_FORMAT = 4
VARIANTS = {
    "sms_spam": {
        "plain (no instruction)": PromptFormat(input_prefix="Message: ", output_prefix="Label:"),
        "chat template": PromptFormat(
            instruction=FORMATS["sms_spam"].instruction,
            input_prefix="Message: ",
            output_prefix="Label:",
            chat=True,
        ),
        "label words yes/no": PromptFormat(
            instruction="Is this SMS message spam? Answer yes or no.",
            input_prefix="Message: ",
            output_prefix="Spam:",
            label_words={"spam": "yes", "ham": "no"},
        ),
    },
    "animal_diet": {
        "plain (no instruction)": PromptFormat(input_prefix="Animal: ", output_prefix="Diet:"),
        "chat template": PromptFormat(
            instruction=FORMATS["animal_diet"].instruction,
            input_prefix="Animal: ",
            output_prefix="Diet:",
            chat=True,
        ),
        "label words meat/plants/both": PromptFormat(
            instruction="What does each animal eat: meat, plants or both?",
            input_prefix="Animal: ",
            output_prefix="Eats:",
            label_words={"carnivore": "meat", "herbivore": "plants", "omnivore": "both"},
        ),
    },
}
formats = {}
for name in DATASETS:
    formats[name, "instruction (default)"] = sweep[name, K_FORMAT]
    for variant, fmt in VARIANTS[name].items():
        formats[name, variant] = run_icl(
            model, tokenizer, fmt, train[name], valid[name], labels[name], K_FORMAT, SEED
        )
format_rows = [
    {"dataset": n, "format": v, "accuracy": r["accuracy"], "macro_f1": r["macro_f1"]}
    for (n, v), r in formats.items()
]
print(format_table(format_rows, ["dataset", "format", "accuracy", "macro_f1"]))

# %% [markdown]
# ## 4. Which demonstrations, and in what order
# Same k, same format; only the random seed changes. *Choice*: a different set of
# demonstrations. *Order*: the same set, shuffled. The spread is the noise any single
# few-shot number carries.

# %%
K_SEEDS = 4
N_SEEDS = 2 if SMOKE else 5
sensitivity_rows = []
for name in DATASETS:
    n_seeds = min(N_SEEDS, 3) if name == "sms_spam" else N_SEEDS  # SMS is the slow one
    choice = [sweep[name, K_SEEDS]["accuracy"]] + [
        run_icl(
            model,
            tokenizer,
            FORMATS[name],
            train[name],
            valid[name],
            labels[name],
            K_SEEDS,
            SEED + s,
        )["accuracy"]
        for s in range(1, n_seeds)
    ]
    order = [sweep[name, K_SEEDS]["accuracy"]] + [
        run_icl(
            model,
            tokenizer,
            FORMATS[name],
            train[name],
            valid[name],
            labels[name],
            K_SEEDS,
            SEED,
            order_seed=s,
        )["accuracy"]
        for s in range(1, n_seeds)
    ]
    for kind, values in (("choice", choice), ("order", order)):
        sensitivity_rows.append(
            {
                "dataset": name,
                "varying": kind,
                "runs": len(values),
                "mean": statistics.mean(values),
                "std": statistics.pstdev(values),
                "min": min(values),
                "max": max(values),
            }
        )
print(format_table(sensitivity_rows, ["dataset", "varying", "runs", "mean", "std", "min", "max"]))

# %% [markdown]
# ### Explore: build a prompt yourself
# The prompt builder scores one validation message with the demonstrations you pick, in the order
# you write them (positions in the list it prints, e.g. `0,1,2,3` or `3,2,1,0`; empty is
# zero-shot). The table is a few orders computed for you; in JupyterLab or Colab the controls
# below it recompute the label log-probabilities and show the full prompt as you type. Try the
# same four demonstrations in both orders on several messages: which label does the *last*
# demonstration pull towards?

# %%
prompt_builder(
    model,
    tokenizer,
    FORMATS["sms_spam"],
    choose_demos(train["sms_spam"], 8, SEED, labels["sms_spam"]),
    labels["sms_spam"],
    valid["sms_spam"][:20],
)

# %% [markdown]
# ## 5. Label bias and contextual calibration
# Small models often prefer one label whatever the input (look at the confusion counts above).
# *Contextual calibration* (Zhao et al., 2021) measures that bias by asking the same prompt about a
# content-free input, `"N/A"`, and subtracts its label scores from every prediction.
#
# ### Task 1.3 — calibrate
# `scores` is a list (one row per validation item) of label log-probabilities; `null_scores` is the
# row for the content-free input. Return the calibrated rows.


# %%
def calibrate(scores: list[list[float]], null_scores: list[float]) -> list[list[float]]:
    """Subtract the content-free input's score of each label from every row."""
    # BEGIN SOLUTION: ...
    return [[s - n for s, n in zip(row, null_scores)] for row in scores]
    # END SOLUTION


# %%
_run = sweep["sms_spam", 8]
_yours = calibrate(_run["scores"], _run["null_scores"])
_reference = expected("Task 1.3", _run["scores"], _run["null_scores"])
if report(
    "Task 1.3",
    _yours == _reference,
    "calibrated scores match",
    "calibrated scores differ: subtract null_scores[j] from column j of every row",
):
    _acc = sum(
        p == r["label"] for p, r in zip(predict(_yours, labels["sms_spam"]), valid["sms_spam"])
    ) / len(_yours)
    print(f"SMS, 8 shots: {_run['accuracy']:.3f} raw -> {_acc:.3f} calibrated")
calibration_rows = [
    {
        "dataset": n,
        "k": k,
        "raw": sweep[n, k]["accuracy"],
        "calibrated": sweep[n, k]["calibrated_accuracy"],
    }
    for n in DATASETS
    for k in KS
]
print(format_table(calibration_rows, ["dataset", "k", "raw", "calibrated"]))

# %% [markdown]
# ## 6. The number to beat
# "Before" is zero-shot; "after" is the best prompting configuration we tried (any k, format,
# seed, with or without calibration), **chosen on the validation split**. Only now is the test
# split used: both prompts are scored on it once. Choosing on test instead would make the "after"
# an optimistic estimate: the best of many tries on the same items looks better than it is.


# %%
def best_configuration(name: str) -> dict:
    """The prompt with the best validation accuracy on ``name``: its setting, accuracy, format and
    demonstrations."""
    candidates = []
    for k in KS:
        for calibrated in (False, True):
            run = sweep[name, k]
            candidates.append(
                {
                    "setting": f"k={k}, instruction" + (", calibrated" if calibrated else ""),
                    "accuracy": run["calibrated_accuracy" if calibrated else "accuracy"],
                    "format": FORMATS[name],
                    "demo_ids": run["demo_ids"],
                    "calibrated": calibrated,
                }
            )
    candidates += [
        {
            "setting": f"k={K_FORMAT}, {v}",
            "accuracy": r["accuracy"],
            "format": VARIANTS[n][v],
            "demo_ids": r["demo_ids"],
            "calibrated": False,
        }
        for (n, v), r in formats.items()
        if n == name and v in VARIANTS[n]
    ]
    return max(candidates, key=lambda c: c["accuracy"])


def test_accuracy(name: str, config: dict) -> float:
    """Accuracy of one prompt configuration on the test split (raw or calibrated, as chosen)."""
    by_id = {row["id"]: row for row in train[name]}
    demos = [by_id[i] for i in config["demo_ids"]]
    result = evaluate_prompt(
        model, tokenizer, config["format"], demos, test[name], labels[name], progress=False
    )
    return result["calibrated_accuracy" if config["calibrated"] else "accuracy"]


ZERO_SHOT = {"format": None, "demo_ids": [], "calibrated": False}
baseline = {}
for name in DATASETS:
    best = best_configuration(name)
    baseline[name] = {
        "zero_shot": test_accuracy(name, {**ZERO_SHOT, "format": FORMATS[name]}),
        "best_prompting": test_accuracy(name, best),
        "best_setting": best["setting"],
        "validation_accuracy": best["accuracy"],
        "chance": chance[name],
        "n_test": len(test[name]),
    }
summary_rows = [
    {
        "dataset": n,
        "chance": b["chance"],
        "zero-shot (before)": b["zero_shot"],
        "best prompting (after)": b["best_prompting"],
        "best setting": b["best_setting"],
        "its validation accuracy": b["validation_accuracy"],
    }
    for n, b in baseline.items()
]
print(
    format_table(
        summary_rows,
        [
            "dataset",
            "chance",
            "zero-shot (before)",
            "best prompting (after)",
            "best setting",
            "its validation accuracy",
        ],
    )
)
path = plot_grouped_bars(
    DATASETS,
    {
        "chance": [chance[n] for n in DATASETS],
        "zero-shot": [baseline[n]["zero_shot"] for n in DATASETS],
        "best prompting": [baseline[n]["best_prompting"] for n in DATASETS],
    },
    OUT / "before_after.png",
    title="Lab 01: prompting only (test split)",
)
show(path)

# %%
results = {
    "baseline": baseline,
    "sweep": [
        {"dataset": n, **{k: v for k, v in r.items() if k not in ("scores", "null_scores")}}
        for (n, _), r in sweep.items()
    ],
    "formats": format_rows,
    "sensitivity": sensitivity_rows,
    "animal_diet_k_seeds": {str(k): v for k, v in animal_seeds.items()},
}
info = finish_lab(
    LAB,
    results,
    lab_start,
    config={
        "profile": PROFILE,
        "smoke": SMOKE,
        "ks": KS,
        "k_format": K_FORMAT,
        "k_seeds": K_SEEDS,
        "formats": {n: repr(f) for n, f in FORMATS.items()},
    },
    seed=SEED,
    device=hardware.device,
    dtype=next(model.parameters()).dtype,
    model_fingerprint=model_fingerprint(model),
    dataset_fingerprints={
        f"{n}/{split}": dataset_fingerprint(rows[n])
        for split, rows in (("validation", valid), ("test", test))
        for n in DATASETS
    },
)
save_results(OUT / "baseline.json", {"lab": LAB, "baseline": baseline}, info)  # read by Labs 02-03

# %% [markdown]
# ## Submit your best SMS prompt
# The grader rebuilds your best `sms_spam` prompt — format and the ids of its demonstrations, in
# order, plus whether it is calibrated — and scores it on a held-out split you never see, with the
# same scoring function as above. "Before" there is the zero-shot default format. The zip holds
# `prompt_spec.json` only: no model, no code.

# %%
best_sms = best_configuration("sms_spam")
spec = {
    "dataset": "sms_spam",
    "format": format_to_dict(best_sms["format"]),
    "demo_ids": best_sms["demo_ids"],
    "calibrated": best_sms["calibrated"],
    "validation_accuracy": best_sms["accuracy"],
    "test_accuracy": baseline["sms_spam"]["best_prompting"],
    "setting": best_sms["setting"],
}
(OUT / "prompt_spec.json").write_text(json.dumps(spec, indent=2))
submission = make_submission(
    LAB,
    STUDENT_ID,
    {"prompt_spec.json": OUT / "prompt_spec.json"},
    info,
    base_model_id=get_profile(PROFILE).model_id,
    out_dir=OUT,
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
# In two or three sentences: why does the **order** of the same demonstrations change the accuracy
# (look at your order table and at which label the model leans towards), and why did calibration
# help some prompts and hurt others?

# %% [markdown]
# *YOUR ANSWER HERE*

# %% [markdown]
# ## Takeaways
# - A causal LM classifies by comparing the likelihood of label words; no training is involved.
# - On a 135M model, shots, format and even the order of the same examples swing accuracy by tens
#   of points, and the model leans towards one label. Calibration corrects that lean for some
#   settings (it made 8-shot SMS the best prompt) and not for others; no setting is reliably good.
# - These numbers are the baseline: in Lab 02 you fine-tune the same model on the same `train`
#   split and measure on the same `test` split.
#
# **Go further**: 🐢 add k = 16 to the sweep and see whether more shots keep helping; 🐕 write a
# prompt format of your own for `animal_diet` and compare it on validation; 🦁 calibrate with the
# average of several content-free inputs (`"N/A"`, `""`, `"[MASK]"`) instead of one.
