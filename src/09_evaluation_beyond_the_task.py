# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lab 09 — Evaluation beyond the task: what a fine-tune costs elsewhere
#
# {{colab_badge}}
#
# Every lab so far proved its gain on its own test split. This one asks what fine-tuning did to
# everything else — the question to answer before shipping any adapter — with the tool the field
# uses for it, EleutherAI's **LM Evaluation Harness** (`lm-eval`; Gao et al., 2023), offline.
#
# 1. **The harness, offline**: five small subsets of real benchmarks (grammar, physical and
#    everyday common sense, misconceptions, Italian), shipped with the kit as harness tasks; the
#    embedded model's scores beside chance and a published run.
# 2. **Task 9.1**: the harness's multiple-choice scorer, by hand — it must agree with the
#    harness on every item.
# 3. **Task 9.2**: predict, then measure, how much the prompt template alone moves a score.
# 4. **The forgetting table**: the model fine-tuned on Lab 07's SMS task four ways, and the
#    adapters your earlier labs saved, each scored on the same general items, with paired
#    bootstrap intervals against the base.
# 5. **Contamination**: do the kit's training texts share passages with the benchmarks, and do
#    the benchmarks' own splits share passages with each other?
# 6. **A model as the judge**: how often a small judge picks the right answer of two, whether its
#    verdict survives swapping their places, and how it and chrF compare with labels made by hand
#    on Lab 06's real answers.
#
# **Time**: about 14 minutes on 2 CPU cores (`SMOKE = True`: about 2 minutes).

# %% tags=["colab-install"]
# (filled in by tools/build_labs.py)

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("FTKIT_PROFILE", "cpu")  # "cpu" (SmolLM2-135M, offline) | "t4" | "a100"
SMOKE = os.environ.get("FTKIT_SMOKE", "0") == "1"  # True: a few items and steps, ~2 min
SEED = int(os.environ.get("FTKIT_SEED", "0"))  # initialisation, batch order, bootstrap

# %%
from utils.runtime.hardware import preflight

hardware = preflight(PROFILE)

# %%
import csv
import json
import math
import time

import torch

from utils.data.batching import training_batches
from utils.data.corpus import kjv_documents
from utils.data.datasets import load_split
from utils.eval import harness, judge, label_task
from utils.eval.compare import paired_bootstrap
from utils.eval.text_metrics import chrf_scores
from utils.lab.checks import checking, report
from utils.lab.plots import plot_grouped_bars, plot_intervals, show
from utils.lab.results import finish_lab, format_table
from utils.lab.task_checks import check_hand_scorer
from utils.runtime.memory import release_memory
from utils.runtime.models import embedded_model_dir, load_model, model_fingerprint
from utils.runtime.profiles import get_profile
from utils.runtime.storage import data_dir, lab_output_dir, outputs_dir
from utils.train import peft_family as family
from utils.train.params import count_trainable

LAB = "09_evaluation_beyond_the_task"
OUT = lab_output_dir(LAB)
lab_start = time.perf_counter()
model, tokenizer = load_model(PROFILE, backend="transformers" if PROFILE == "cpu" else "auto")
BASE_FINGERPRINT = model_fingerprint(model)
TOKENIZER_PATH = str(embedded_model_dir()) if PROFILE == "cpu" else get_profile(PROFILE).model_id
LIMIT = 2 if SMOKE else None  # items per benchmark for the harness (None: the whole subset)
GENERAL = 2 if SMOKE else harness.GENERAL_PER_BENCHMARK  # items per benchmark, general set

# %% [markdown]
# ## 1. The harness, offline
# A harness **task** says where a benchmark's items are and how to turn one into a prompt and
# its choices. The kit's tasks read local JSONL files (`data/benchmarks/<name>/items.jsonl`, each
# with a `SOURCE.md`: origin, licence, citation) and use the harness's own prompt for that
# benchmark. Here is PIQA's:

# %%
print((data_dir() / "benchmarks" / "piqa" / "task.yaml").read_text())

# %% [markdown]
# For a multiple-choice task the harness scores each choice by its **log-likelihood**: the sum of
# the log-probabilities of the choice's tokens after the context. `acc` counts an item right when
# the likeliest choice is the gold one; `acc_norm` first divides each choice's log-likelihood by
# its length in characters, so that long choices are not penalised for having more tokens.
#
# The harness takes the model already in memory (its `HFLM` wrapper): the same call scores the
# base model, a merged fine-tune, or a Colab profile's model.

# %%
configs = {name: harness.task_config(name) for name in harness.BENCHMARKS}
started = time.perf_counter()
harness_results = harness.run_harness(
    model,  # any causal LM in memory: the base here, a fine-tune later
    tokenizer,  # the harness tokenizes contexts and choices with it
    list(configs.values()),  # the kit's task files (local data, the harness's prompts)
    limit=LIMIT,  # items per task (None: all)
    batch_size=16,  # requests per forward pass
)
harness_seconds = time.perf_counter() - started
requests = {name: harness.benchmark_requests(configs[name], LIMIT) for name in harness.BENCHMARKS}
print(f"the harness scored {sum(map(len, requests.values()))} items in {harness_seconds:.0f} s")

# %% [markdown]
# A score on 50–150 items is an estimate: its standard error is $\sqrt{p(1-p)/n}$, 4 to 6
# points here, so two runs of the same model on two different subsets can differ by several
# points. The published run below used the **full** validation sets (1,838 PIQA and 10,042
# HellaSwag items), the harness's same prompts and the original bf16 weights; the embedded model
# is a 4-bit GGUF export turned back into fp32, and the kit's HellaSwag contexts keep one
# lower-case letter the harness capitalises (see its `SOURCE.md`).

# %%
published = json.loads((data_dir() / "benchmarks" / "published.json").read_text())
general_rows = []
for name, benchmark in harness.BENCHMARKS.items():
    result = harness_results[configs[name]["task"]]
    score, n = result[benchmark.metric], len(result["items"])
    stderr = math.sqrt(score * (1 - score) / n)
    reference = published["scores"].get(name, {})
    row = {
        "benchmark": benchmark.title,
        "tests": benchmark.tests,
        "metric": benchmark.metric,
        "items": n,
        "score": score,
        "stderr": stderr,
        "chance": harness.chance_level(name, requests[name]),
        "published": reference.get(benchmark.metric),
    }
    if row["published"] is not None:  # within two standard errors of ours (and theirs, tiny)
        row["within 2 stderr"] = abs(score - row["published"]) <= 2 * stderr
    general_rows.append(row)
print(format_table(general_rows, list(general_rows[0]) + ["within 2 stderr"], floats="{:.3f}"))
print(f"published: {published['model']}, {published['how']} ({published['source']})")
show(
    plot_grouped_bars(
        [r["benchmark"] for r in general_rows],
        {
            "embedded model": [r["score"] for r in general_rows],
            "chance": [r["chance"] for r in general_rows],
        },
        OUT / "general_scores.png",
        title="The embedded model on general benchmarks (harness, 0-shot)",
    )
)

# %% [markdown]
# ## 2. Task 9.1 — the multiple-choice scorer, by hand
# Write the two pieces of the harness's scorer. The token ids come from `harness.encode_pair`,
# which tokenizes exactly as the harness does (the context and continuation as one text, split
# where the context's tokens end; an empty context — BLiMP's — becomes one start token).
#
# - `continuation_logprob(model, context_ids, continuation_ids)`: run the model on
#   `context_ids + continuation_ids` and add up the log-probability of each continuation token
#   given everything before it (the logits at position $i$ predict token $i + 1$).
# - `pick_choice(loglikelihoods, choices, normalise)`: the index of the likeliest choice; with
#   `normalise`, of the likeliest per character of the choice's text (`acc_norm`).
#
# The check compares your log-likelihoods and picks with the harness's, item by item.


# %%
def continuation_logprob(model, context_ids: list[int], continuation_ids: list[int]) -> float:
    """log p(continuation | context): the sum of the continuation tokens' log-probabilities."""
    # BEGIN SOLUTION: return ...
    ids = torch.tensor([context_ids + continuation_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    positions = range(len(context_ids) - 1, ids.shape[1] - 1)  # each predicts the next token
    return float(sum(logprobs[p, ids[0, p + 1]] for p in positions))
    # END SOLUTION


def pick_choice(loglikelihoods: list[float], choices: list[str], normalise: bool) -> int:
    """The index of the likeliest choice (per character of its text when ``normalise``)."""
    # BEGIN SOLUTION: return ...
    scores = [ll / len(c) if normalise else ll for ll, c in zip(loglikelihoods, choices)]
    return max(range(len(scores)), key=scores.__getitem__)
    # END SOLUTION


# %%
CHECKED = 2 if SMOKE else 6  # items per benchmark compared with the harness
check_hand_scorer(
    continuation_logprob,
    pick_choice,
    model,
    tokenizer,
    {name: requests[name][:CHECKED] for name in ("blimp", "piqa", "hellaswag")},
    {
        name: harness_results[configs[name]["task"]]["items"]
        for name in ("blimp", "piqa", "hellaswag")
    },
)

# %% [markdown]
# The harness runs every choice as a full sequence and takes the log-softmax over the whole
# vocabulary at every position. The kit's `harness.score_requests` computes the same numbers with
# the same token ids, but runs once what the harness repeats (the preamble every TruthfulQA item
# starts with; a long context once for all of its item's choices), scores short items' choices
# many to a forward pass, and sends only the continuation's positions through the output layer.
# On the base model, over the general set the forgetting table uses:

# %%
general_items = {name: requests[name][:GENERAL] for name in harness.BENCHMARKS}
started = time.perf_counter()
base_lls = {
    name: harness.score_requests(model, tokenizer, items) for name, items in general_items.items()
}
kit_seconds = time.perf_counter() - started
agreement = {
    "largest_loglikelihood_difference": max(
        abs(a - b)
        for name, items in general_items.items()
        for ours, theirs in zip(base_lls[name], harness_results[configs[name]["task"]]["items"])
        for a, b in zip(ours, theirs["loglikelihoods"], strict=True)
    ),
    "items": sum(map(len, general_items.values())),
    "kit_seconds": kit_seconds,
}
print(
    f"{agreement['items']} items: the kit's scorer took {kit_seconds:.0f} s; largest difference "
    f"from the harness's log-likelihoods {agreement['largest_loglikelihood_difference']:.1e}"
)

# %% [markdown]
# ## 3. Task 9.2 — how much does the prompt alone move a score?
# A benchmark score belongs to a model **and a prompt**. Below, the same PIQA items are scored
# with three templates — the harness's, the goal alone, and an instruction — and XCOPA's Italian
# items with the harness's Italian connectives ("perché", "quindi") and with English ones.
#
# Before running it, predict the **spread** on PIQA: the best template's `acc_norm` minus the
# worst's, in points. Then write a fourth PIQA template of your own (Jinja, like the task file:
# `{{goal}}` is the goal).

# %%
# BEGIN SOLUTION: PREDICTED_SPREAD_POINTS = ...  # your prediction, in accuracy points
PREDICTED_SPREAD_POINTS = 4.0
# END SOLUTION
# BEGIN SOLUTION: MY_TEMPLATE = ...  # your PIQA template: a string with {{goal}} in it
MY_TEMPLATE = "Goal: {{goal}}\nSolution:"
# END SOLUTION

# %%
PIQA_TEMPLATES = {
    "harness: Question/Answer": configs["piqa"]["doc_to_text"],
    "goal alone": "{{goal}}",
    "instruction": "Choose the best way to reach the goal.\nGoal: {{goal}}\nBest way:",
}
with checking("Task 9.2"):
    ok = isinstance(PREDICTED_SPREAD_POINTS, int | float) and 0 <= PREDICTED_SPREAD_POINTS <= 100
    report("Task 9.2", ok, "a prediction is on record", "PREDICTED_SPREAD_POINTS: a number, 0-100")
    fresh = isinstance(MY_TEMPLATE, str) and MY_TEMPLATE not in PIQA_TEMPLATES.values()
    report(
        "Task 9.2",
        fresh and "{{goal}}" in MY_TEMPLATE,
        "your template uses the goal and differs from the three",
        "MY_TEMPLATE: a new string with {{goal}} in it",
    )
if isinstance(MY_TEMPLATE, str) and "{{goal}}" in MY_TEMPLATE:
    PIQA_TEMPLATES["yours"] = MY_TEMPLATE
else:
    print("[NOTE] Task 9.2 is not finished: the table below has the lab's three templates only.")

# %%
TEMPLATE_ITEMS = 4 if SMOKE else 60  # items per template
connective = "{{{{premise.strip()[:-1]}}}} {{{{'{}' if question == 'cause' else '{}'}}}}"
variants = [("PIQA", "piqa", label, text) for label, text in PIQA_TEMPLATES.items()] + [
    ("XCOPA", "xcopa_it", "harness: perché / quindi", connective.format("perché", "quindi")),
    ("XCOPA", "xcopa_it", "English: because / so", connective.format("because", "so")),
]
template_rows = []
for title, name, label, text in variants:
    config = harness.task_config(name, doc_to_text=text, task=f"kit_{name}_{len(template_rows)}")
    items = harness.benchmark_requests(config, TEMPLATE_ITEMS)
    scores = harness.verdicts(items, harness.score_requests(model, tokenizer, items))
    template_rows.append(
        {"benchmark": title, "template": label, "items": len(items)}
        | {metric: scores[metric] for metric in ("acc", "acc_norm")}
    )
print(
    format_table(
        template_rows, ["benchmark", "template", "items", "acc", "acc_norm"], floats="{:.3f}"
    )
)
piqa_norm = [r["acc_norm"] for r in template_rows if r["benchmark"] == "PIQA"]
spread = 100 * (max(piqa_norm) - min(piqa_norm))
piqa_stderr = 100 * math.sqrt(max(piqa_norm) * (1 - max(piqa_norm)) / template_rows[0]["items"])
print(f"PIQA spread: {spread:.1f} points measured; one standard error is {piqa_stderr:.1f} points")
if isinstance(PREDICTED_SPREAD_POINTS, int | float):
    print(f"you predicted {PREDICTED_SPREAD_POINTS:.1f} points")

# %% [markdown]
# ## 4. The forgetting table
# Fine-tune the model on Lab 07's task (SMS spam, the label word after `Label:`) four ways, at
# Lab 07's budget (20 steps of 4 messages) and the learning rates Lab 07 chose on validation —
# plus full fine-tuning at ten times its rate, the usual way to break a model. Merge each into
# the base weights (all but the soft prompt), then score every fine-tune on the task's test
# split **and** on the same general set (the first 20 items of each benchmark, 100 in all), as
# the base was.
#
# A soft prompt (Lab 07's prompt tuning) changes no weight: a deployment attaches it to its own
# task's inputs only, and there it cannot cost anything elsewhere. Its row measures the other
# case — the prompt left on every input — scored through the model's own forward pass, which
# prepends the prompt (the fast scorer runs the bare decoder and would never see it).

# %%
LABELS = ("ham", "spam")
sms = {split: load_split("sms_spam", split) for split in ("train", "test")}
if SMOKE:
    sms = {split: rows[:16] for split, rows in sms.items()}
BATCH, STEPS = 4, (2 if SMOKE else 20)
batches = training_batches(
    label_task.encode_rows(tokenizer, sms["train"], LABELS), BATCH, STEPS, SEED
)
FINE_TUNES = [  # (row, method, learning rate)
    ("LoRA r=8, all linear", "LoRA", 1e-3),
    ("IA3", "IA3", 1e-2),
    ("soft prompt, left on every input", "prompt tuning (text init)", 1e-1),
    ("full fine-tuning", "full fine-tuning", 1e-4),
    ("full fine-tuning, rate x10", "full fine-tuning", 1e-3),
]
if SMOKE:  # the same paths, three fine-tunes
    FINE_TUNES = [FINE_TUNES[0], FINE_TUNES[2], FINE_TUNES[-1]]


base_task = label_task.evaluate_labels(model, tokenizer, sms["test"], LABELS)["accuracy"]
base_general = harness.general_verdicts(model, tokenizer, general_items, base_lls)
forgetting = []
for row_name, method, lr in FINE_TUNES:
    release_memory()
    tuned, losses = family.train_briefly(
        model, method, lr, batches, tokenizer.pad_token_id, TOKENIZER_PATH, SEED
    )
    trainable = count_trainable(tuned)[0]
    merged = family.merged_for_serving(tuned, method)  # the weights a deployment would ship
    soft_prompt = merged is None  # nothing to merge: the prompt stays attached to the model
    scored = tuned if soft_prompt else merged
    verdicts = harness.general_verdicts(scored, tokenizer, general_items, full_forward=soft_prompt)
    forgetting.append(
        {
            "fine-tune": row_name,
            "trainable": trainable,
            "lr": lr,
            "final loss": losses[-1],
            "task accuracy": label_task.evaluate_labels(scored, tokenizer, sms["test"], LABELS)[
                "accuracy"
            ],
            "general": verdicts,
        }
    )
    del tuned, merged

# %% [markdown]
# The course's own adapters join the table when their labs have run here: each saved adapter is
# merged into a copy of the base (Lab 04's into the base's weights rounded through NF4, the
# weights QLoRA trained on) and scored on the same general items. Their task scores are their own
# labs'; a lab not run yet is named below, and the rest of the table does not depend on it.

# %%
EARLIER = [  # (row, adapter folder under the outputs folder, merge into NF4-rounded weights)
    ("Lab 03B: LoRA, JSON extraction", "03b_lora_peft/adapter_extract", False),
    ("Lab 04: QLoRA, JSON extraction", "04_qlora_unsloth/adapter_qlora", True),
    ("Lab 05: LoRA + embeddings, Bible text", "05_continual_pretraining/adapter_cpt_lora", False),
    ("Lab 06: your capstone adapter", "06_your_task-*/adapter", False),
]
for row_name, pattern, nf4 in EARLIER:
    found = sorted(outputs_dir().glob(pattern), key=lambda path: path.stat().st_mtime)
    if not found:
        print(f"[NOTE] {row_name}: no adapter at outputs/{pattern}; run that lab to add its row.")
        continue
    folder = found[-1]  # the newest, if several capstone runs are there
    try:
        merged, trainable = family.merged_saved_adapter(model, folder, nf4)
    except (ValueError, RuntimeError, KeyError, OSError) as exc:  # made for another base model
        print(f"[NOTE] {row_name}: {folder} does not load onto this base model ({exc}).")
        continue
    lab_results = folder.parent / "results.json"
    smoke = lab_results.is_file() and json.loads(lab_results.read_text())["run_info"]["config"].get(
        "smoke"
    )
    forgetting.append(
        {
            "fine-tune": row_name + (" (SMOKE run)" if smoke else ""),
            "trainable": trainable,
            "lr": None,
            "final loss": None,
            "task accuracy": None,  # measured in its own lab, on its own task
            "general": harness.general_verdicts(merged, tokenizer, general_items),
            "adapter": str(folder.relative_to(outputs_dir())),
        }
    )
    del merged

# %% [markdown]
# Each row's general score is the mean over the 100 items of each benchmark's headline metric;
# the interval is a paired bootstrap over items of the change against the base (Lab 06's method):
# an interval that contains 0 is no measured change.

# %%
table = []
for row in forgetting:
    change = paired_bootstrap(
        harness.pooled(base_general), harness.pooled(row["general"]), seed=SEED
    )
    per_benchmark = {
        harness.BENCHMARKS[name].title: sum(row["general"][name]) / len(row["general"][name])
        - sum(base_general[name]) / len(base_general[name])
        for name in harness.BENCHMARKS
    }
    table.append(
        {
            "fine-tune": row["fine-tune"],
            "trainable": row["trainable"],
            "lr": row["lr"],
            "task before": base_task if row["task accuracy"] is not None else None,
            "task after": row["task accuracy"],
            "general before": change["before"],
            "general after": change["after"],
            "change": change["gain"],
            "low": change["low"],
            "high": change["high"],
            "per benchmark": per_benchmark,
            "adapter": row.get("adapter", "trained in this lab"),
        }
    )
columns = ["fine-tune", "trainable", "lr", "task after", "general after", "change", "low", "high"]
print(f"base: task accuracy {base_task:.3f}, general score {table[0]['general before']:.3f}")
print(format_table([{k: "–" if v is None else v for k, v in r.items()} for r in table], columns))
show(
    plot_intervals(
        [r["fine-tune"] for r in table],
        [r["change"] for r in table],
        [(r["low"], r["high"]) for r in table],
        OUT / "forgetting.png",
        title="Change in general score after each fine-tune (95% interval)",
        xlabel=f"general score after - before ({agreement['items']} items, 5 benchmarks)",
    )
)

# %% [markdown]
# ## 5. Contamination
# A benchmark score means little if the model trained on the benchmark. The standard check
# (Brown et al., 2020, Appendix C, with 13 words) flags a benchmark item that shares a long run of
# words with any training text. Here the runs are 8 words long (the items are short), the
# training texts are every text the kit trains on: the SMS, news and animal datasets and Lab 05's
# Bible corpus. An item is checked on its context and choices together; one with fewer than 8
# words in all (some of BLiMP's pairs of short sentences) cannot be flagged.
# A planted copy of one PIQA item shows the check finds what it should.

# %%
N_WORDS = 8
training_texts = [
    row["text"]
    for name in ("sms_spam", "news_events", "animal_diet")
    for split in ("train", "validation", "test")
    for row in load_split(name, split)
] + [doc.text for doc in kjv_documents()]
training_index = harness.ngram_index(training_texts, N_WORDS)  # built once, for every benchmark
contamination_rows = []
for name, items in requests.items():
    hits = harness.contamination(training_index, items, N_WORDS)
    long_enough = sum(bool(harness.item_ngrams(item, N_WORDS)) for item in items)
    contamination_rows.append(
        {
            "benchmark": harness.BENCHMARKS[name].title,
            "items": len(items),
            "checkable": long_enough,
            "flagged": len(hits),
            "example": " ".join(hits[0][1]) if hits else "",
        }
    )
planted = requests["piqa"][0]
pasted = f"some text. {planted['context']} {planted['choices'][0]}"
control = harness.contamination(harness.ngram_index([pasted], N_WORDS), [planted], N_WORDS)
contamination_rows.append(
    {
        "benchmark": "control: one PIQA item pasted into a text",
        "items": 1,
        "checkable": 1,
        "flagged": len(control),
        "example": " ".join(control[0][1]) if control else "",
    }
)
print(format_table(contamination_rows, list(contamination_rows[0])))

# %% [markdown]
# The same check between a benchmark's own splits asks whether its test items already sit in
# the data people train on for it. The kit does not ship those other splits; the script that
# built the subsets ran the check against them (`tools/make_benchmarks.py`, field by field: a
# goal, a solution, a premise, a choice) and recorded what it found:

# %%
between_splits = json.loads((data_dir() / "benchmarks" / "train_test_overlap.json").read_text())
print(
    format_table(
        [
            {k: c[k] for k in ("benchmark", "items", "checkable", "flagged", "against")}
            | {"example": c["examples"][0]["shared"] if c["examples"] else ""}
            for c in between_splits["checks"]
        ],
        ["benchmark", "items", "checkable", "flagged", "example", "against"],
    )
)

# %% [markdown]
# ## 6. A model as the judge, and when not to trust it
# Open-ended answers have no single right string, so a common shortcut is to ask a model which of
# two answers is better (Zheng et al., 2023, *Judging LLM-as-a-Judge*, who also describe its
# biases: the position of an answer, its length, the judge's own style). Here the judge is the
# embedded model, on pairs whose better answer is known by construction: a human description of
# a restaurant's data (the capstone's E2E worked example), and the same description with one
# fact changed (a name, an area, a food or a landmark). Each pair is shown twice, the right
# description first and then second; a judge worth using picks it in both orders.

# %%
with open(
    data_dir() / "worked_examples" / "e2e_nlg" / "restaurants.csv", encoding="utf-8", newline=""
) as fh:
    restaurants = list(csv.DictReader(fh))  # rows of (mr, ref): the data and a description
JUDGE_PAIRS = 8 if SMOKE else 60
pairs = judge.factual_swap_pairs(restaurants, JUDGE_PAIRS, SEED)
print(f"one pair ({pairs[0]['changed']}):\n  right: {pairs[0]['good']}\n  wrong: {pairs[0]['bad']}")
judged = judge.judge_reliability(
    harness.score_requests(model, tokenizer, judge.judge_items(tokenizer, pairs))
)
judge_interval = paired_bootstrap([0.25] * judged["pairs"], judged["per_pair_right"], seed=SEED)
print(
    f"{judged['pairs']} pairs: right {judged['accuracy']:.0%} of the time; the same verdict in "
    f"both orders for {judged['consistency']:.0%} of pairs; right in both orders for "
    f"{judged['right in both orders']:.0%} (a coin: 25 %; 95 % interval of the excess "
    f"{judge_interval['low']:+.2f} to {judge_interval['high']:+.2f}); it answered A "
    f"{judged['answers A']:.0%} of the time."
)

# %% [markdown]
# ### The judge on real answers: Lab 06's descriptions, before and after training
# Pairs made by swapping one fact are easy to label; real outputs are not. The capstone's worked
# example (restaurant descriptions) left, for each test input, the base model's description and
# the fine-tuned model's. For 40 of them the kit ships which one is better, **labelled by hand**
# (the data stated correctly and completely first, then fluency; ties kept apart):
# `data/worked_examples/e2e_nlg/judged_outputs.jsonl`. Two automatic judges face those labels:
# chrF against the human reference (Lab 06's metric — the higher-scoring answer wins), and the
# model judge, each pair shown in both orders.

# %%
labelled = [
    json.loads(line)
    for line in (data_dir() / "worked_examples" / "e2e_nlg" / "judged_outputs.jsonl")
    .read_text(encoding="utf-8")
    .splitlines()
]
decided = [r for r in labelled if r["better"] in ("before", "after")][: 8 if SMOKE else None]
real_pairs = [  # the hand-labelled better answer as "good", for judge_items
    {
        "data": r["data"],
        "good": r[r["better"]],
        "bad": r[{"before": "after", "after": "before"}[r["better"]]],
    }
    for r in decided
]
real = judge.judge_reliability(
    harness.score_requests(model, tokenizer, judge.judge_items(tokenizer, real_pairs))
)
references = [r["reference"] for r in decided]
judges = judge.compare_judges(
    [r["better"] for r in decided],  # the hand labels: the truth here
    chrf_scores([r["before"] for r in decided], references),  # chrF of each answer vs reference
    chrf_scores([r["after"] for r in decided], references),
    real["per_pair_verdict"],  # the model judge: right / wrong in both orders, or split
)
print(f"{len(labelled)} labelled pairs, {len(labelled) - len(decided)} of them ties (left out)")
print(format_table([{"measure": k, "value": v} for k, v in judges.items()], ["measure", "value"]))

# %%
results = {
    "general": general_rows,
    "published": published,
    "harness_seconds": harness_seconds,
    "agreement": agreement,
    "templates": template_rows,
    "template_spread_points": spread,
    "forgetting": table,
    "contamination": contamination_rows,
    "between_splits": between_splits["checks"],
    "judge": {k: v for k, v in judged.items() if not k.startswith("per_pair")}
    | {"excess_over_coin": judge_interval},
    "judge_on_real_answers": judges
    | {"answers A": real["answers A"], "ties": len(labelled) - len(decided)},
}
run_info = finish_lab(
    LAB,
    results,
    lab_start,
    config={"profile": PROFILE, "smoke": SMOKE, "batch": BATCH, "steps": STEPS, "general": GENERAL},
    seed=SEED,
    device=hardware.device,
    dtype=next(model.parameters()).dtype,
    model_fingerprint=BASE_FINGERPRINT,
)

# %% [markdown]
# ## Takeaways
# The numbers below are this run's.

# %%
above = [r["benchmark"] for r in general_rows if r["score"] - r["chance"] > 2 * r["stderr"]]
print(f"- Above chance by more than two standard errors: {', '.join(above) or 'none'}.")
xcopa_acc = [r["acc"] for r in template_rows if r["benchmark"] == "XCOPA"]
print(
    f"- The prompt template alone moved PIQA's acc_norm by {spread:.1f} points"
    + (
        f", less than one standard error ({piqa_stderr:.1f}): on these items the sample"
        " mattered more than the template"
        if spread < piqa_stderr
        else f", more than one standard error ({piqa_stderr:.1f}): report a score with its prompt"
    )
    + f"; XCOPA's connectives moved acc by {100 * abs(xcopa_acc[0] - xcopa_acc[1]):.1f} points."
)
measured = [r["fine-tune"] for r in table if r["high"] < 0]
print(
    "- General ability lost, beyond the interval: "
    + (", ".join(measured) if measured else "no fine-tune")
    + f"; within it: {len(table) - len(measured)} of {len(table)}."
)
flagged = sum(r["flagged"] for r in contamination_rows[:-1])
print(f"- Benchmark items sharing {N_WORDS} words with the kit's training texts: {flagged}.")
print(
    f"- On Lab 06's real answers the hand labels favour the fine-tuned description in "
    f"{judges['after wins, by hand']:.0%} of pairs; chrF agreed with them for "
    f"{judges['chrF agrees with the hand label']:.0%}, the model judge (the same verdict in both "
    f"orders) for {judges['model judge agrees with the hand label in both orders']:.0%}."
)
print(
    f"- The embedded model as a judge was right in both orders for "
    f"{judged['right in both orders']:.0%} of pairs where a coin is right for 25 %"
    + (
        ": not a judge to trust on this kind of answer."
        if judge_interval["low"] <= 0
        else "; check it on pairs you can verify before trusting it on pairs you cannot."
    )
)
