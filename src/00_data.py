# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lab 00 — Data for fine-tuning: formats, checks, tokens, cost, making and cleaning data
#
# {{colab_badge}}
#
# Fine-tuning quality is mostly data quality. Every later lab starts from clean, split datasets;
# this one shows what it takes to get there, on the same data and model. You will:
# 1. convert between the chat `messages` format, Alpaca rows and the kit's rows, and write the
#    part of a validator that checks the order of roles (task 0.1), against a file of broken
#    lines with known answers;
# 2. measure token lengths with the model's own tokenizer and chat template, find what the chat
#    template adds to every example (task 0.2) and what a context limit would cut;
# 3. estimate what fine-tuning costs: billed tokens on a hosted service (task 0.3) and GPU hours
#    on the course's T4 and A100 profiles;
# 4. make data with the model itself (self-instruct, and question–answer pairs from a text) and
#    filter it;
# 5. clean a dataset rule by rule and check it for leakage into the test split;
# 6. draw a learning curve — the same LoRA recipe on 25 to all training examples — to see how
#    much data is enough.
#
# **Time**: about 10 minutes on 2 CPU cores (`SMOKE = True`: about a minute).

# %% tags=["colab-install"]
# (filled in by tools/build_labs.py)

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("FTKIT_PROFILE", "cpu")  # "cpu" (SmolLM2-135M, offline) | "t4" | "a100"
SMOKE = os.environ.get("FTKIT_SMOKE", "0") == "1"  # True: small samples, 1 min
SEED = int(os.environ.get("FTKIT_SEED", "0"))  # sampling, data order, adapter initialisation

# %%
from utils.runtime.hardware import preflight

hardware = preflight(PROFILE)

# %%
import json
import statistics
import time

import torch

from utils.data.batching import tokenize_texts
from utils.data.chat_format import (
    alpaca_to_messages,
    chat_token_ids,
    messages_to_alpaca,
    row_to_messages,
    validate_chat_file,
)
from utils.data.cleaning import clean, jaccard, leaked
from utils.data.datasets import get_spec, load_split
from utils.data.jsonl import read_jsonl, write_jsonl
from utils.data.token_stats import (
    default_epochs,
    example_lengths,
    summarize,
    truncation_report,
)
from utils.eval.decoding import sample_completions
from utils.eval.metrics import classifier_accuracy, generate_batch
from utils.lab.checks import check_close, check_equal, report
from utils.lab.expected import expected
from utils.lab.plots import plot_histograms, plot_sweep, show
from utils.lab.results import finish_lab, format_table
from utils.runtime.models import load_model
from utils.runtime.profiles import get_profile
from utils.runtime.storage import REPO_ROOT, lab_output_dir
from utils.train import sft
from utils.train.classifier import classifier_logits, replace_head
from utils.train.learning_curve import learning_curve, lora_classifier
from utils.train.memory_estimate import SHAPES

LAB = "00_data"
OUT = lab_output_dir(LAB)
lab_start = time.perf_counter()
torch.manual_seed(SEED)
model, tokenizer = load_model(PROFILE)

# %% [markdown]
# ## 1. Formats
# Hosted fine-tuning services and TRL take **chat JSONL**: one JSON object per line, holding the
# conversation as `messages`, each with a `role` (`system`, `user` or `assistant`) and a `content`
# string; the model learns to produce the assistant turns. Older instruction data (Alpaca) uses
# `instruction` / `input` / `output`; the kit's datasets use `text` + `label` (or `target`). The
# same SMS message in all three:

# %%
row = load_split("sms_spam", "train")[0]
chat = row_to_messages(row, sft.SPAM_INSTRUCTION)  # the layout Labs 03B-04 train on
alpaca = messages_to_alpaca(chat)
print("kit row:  ", json.dumps({"text": row["text"], "label": row["label"]}))
print("alpaca:   ", json.dumps(alpaca))
print("chat line:", json.dumps(chat))
check_equal(
    "round trip",
    alpaca_to_messages(alpaca),
    chat,
    what="chat -> Alpaca -> chat (the instruction is the system message, the SMS the input)",
)
train_rows = load_split("sms_spam", "train")
chat_path = write_jsonl(
    OUT / "sms_train_chat.jsonl", [row_to_messages(r, sft.SPAM_INSTRUCTION) for r in train_rows]
)
check_equal("JSONL", len(read_jsonl(chat_path)), len(train_rows), what="lines written and read")

# %% [markdown]
# A validator should report **every** bad line, with its number and every reason, so a file can be
# fixed in one pass. The kit's `validate_chat_file` checks JSON, keys, roles, contents, the order
# of roles and (with a tokenizer) the length. The order of roles is yours to write.
#
# ### Task 0.1 — the order of roles
# Given the list of a line's roles (each already one of `system`, `user`, `assistant`), return a
# list of problems, in this order, using exactly these sentences:
# - `"a system message appears after the first message"` if any `system` comes after position 0;
# - `"roles must alternate user, assistant, ... starting with user"` if, once system messages are
#   left out, the roles are not `user`, `assistant`, `user`, ... (a conversation may end on
#   either);
# - `"no assistant message: nothing to learn from"` if there is no `assistant` at all.
#
# An empty list means the order is fine.


# %%
def role_problems(roles: list[str]) -> list[str]:
    # BEGIN SOLUTION: ...
    problems = []
    if "system" in roles[1:]:
        problems.append("a system message appears after the first message")
    turns = [r for r in roles if r != "system"]
    if any(role != ("user", "assistant")[i % 2] for i, role in enumerate(turns)):
        problems.append("roles must alternate user, assistant, ... starting with user")
    if "assistant" not in turns:
        problems.append("no assistant message: nothing to learn from")
    return problems
    # END SOLUTION


# %%
BROKEN = REPO_ROOT / "data" / "chat_format" / "broken.jsonl"
_cases = [
    [m["role"] for m in line["messages"]]
    for line in map(json.loads, BROKEN.read_text().splitlines()[4:8])
] + [["system", "user", "assistant", "user"], ["assistant"], []]
for _roles in _cases:
    check_equal(
        "Task 0.1", role_problems(_roles), expected("Task 0.1", _roles), what=f"roles {_roles}"
    )

# %% [markdown]
# The whole validator on the file of broken lines (a 128-token limit), against its known answers:

# %%
MAX_TOKENS = 128
problems = validate_chat_file(BROKEN, tokenizer, MAX_TOKENS)
print(format_table([{"line": p.line, "reason": p.reason} for p in problems], ["line", "reason"]))
known = json.loads(BROKEN.with_suffix(".expected.json").read_text())
found: dict[str, list[str]] = {}
for p in problems:
    found.setdefault(str(p.line), []).append(p.reason)
check_equal("validator", found, known, what="every problem of every line vs the known answers")

# %% [markdown]
# ## 2. Tokens
# Everything is counted in the model's tokens *under its chat template*: the template wraps each
# message in role headers and end markers, and those tokens are trained on and billed too.
#
# ### Task 0.2 — what the template adds
# Write `template_overhead(tokenizer, messages)`: the number of tokens of the whole conversation
# under the chat template (`chat_token_ids(tokenizer, messages)`) minus the tokens of the message
# contents alone (each `content` tokenized with `add_special_tokens=False`). Predict first: for an
# SMS line (the instruction as the system message, the SMS, the label), is it nearer 5, 15 or 50
# tokens? And for the same line without its system message? (Read the template: what does it do
# when a conversation has no system message?)


# %%
def template_overhead(tokenizer, messages: list[dict]) -> int:
    # BEGIN SOLUTION: ...
    contents = sum(
        len(tokenizer(m["content"], add_special_tokens=False)["input_ids"]) for m in messages
    )
    return len(chat_token_ids(tokenizer, messages)) - contents
    # END SOLUTION


# %%
sms_lines = read_jsonl(chat_path)
without_system = sms_lines[0]["messages"][1:]  # the same line, no system message
two_exchanges = sms_lines[0]["messages"] + sms_lines[1]["messages"][1:]  # a second SMS and label
for _messages in (sms_lines[0]["messages"], without_system, two_exchanges):
    check_equal(
        "Task 0.2",
        template_overhead(tokenizer, _messages),
        expected("Task 0.2", tokenizer, _messages),
        what=f"overhead of a {len(_messages)}-message conversation",
    )
print(
    f"the chat template adds {template_overhead(tokenizer, sms_lines[0]['messages'])} tokens to "
    f"an SMS line, {template_overhead(tokenizer, without_system)} without its system message"
)

# %% [markdown]
# Two datasets side by side: the SMS messages (short answers: one word) and the event
# extraction of Labs 03B–04 (longer answers: JSON). For each example, the total and the answer's
# tokens:

# %%
news_lines = [
    row_to_messages(r, sft.EXTRACTION_INSTRUCTION) for r in load_split("news_events", "train")
]
lengths = {
    "sms_spam": example_lengths(tokenizer, sms_lines),
    "news_events": example_lengths(tokenizer, news_lines),
}
token_rows = [
    {"dataset": name, "part": part, **summarize([r[part] for r in rows])}
    for name, rows in lengths.items()
    for part in ("total", "answer")
]
print(
    format_table(
        token_rows,
        ["dataset", "part", "n", "min", "p5", "median", "mean", "p95", "max"],
        floats="{:.1f}",
    )
)
show(
    plot_histograms(
        {name: [r["total"] for r in rows] for name, rows in lengths.items()},
        OUT / "token_lengths.png",
        title="tokens per example under the chat template",
        xlabel="tokens",
    )
)

# %% [markdown]
# A context limit cuts whatever is past it — the end of the example, where the answer is. An
# example cut inside its answer teaches a truncated answer; one cut before its answer teaches
# nothing. Drop such examples, or raise the limit; do not truncate them silently.

# %%
LIMIT = int(statistics.median(r["total"] for r in lengths["news_events"]))
truncation = [{"dataset": name, **truncation_report(rows, LIMIT)} for name, rows in lengths.items()]
print(f"a limit of {LIMIT} tokens (the median extraction example):")
print(
    format_table(
        truncation,
        ["dataset", "over the limit", "answer cut", "answer lost entirely", "tokens cut"],
    )
)

# %% [markdown]
# ## 3. Cost
# A hosted service bills every token of the training file once per epoch. Its default number of
# epochs follows a heuristic (`default_epochs`): 3, unless that shows the model fewer than 100
# examples (then 100 // n, at most 25) or more than 25,000 (then 25,000 // n, at least 1). And an
# example longer than the service's limit per example is cut, as in section 2: OpenAI's
# data-preparation guide counts at most 16,385 tokens of each example towards the bill.
#
# ### Task 0.3 — the bill
# Write `hosted_training_cost(example_tokens, usd_per_1k_tokens)`: given the token count of each
# example, return `(epochs, billed, usd)` — the default epochs for that many examples, the billed
# tokens (each example counted up to `MAX_TOKENS_PER_EXAMPLE`, once per epoch) and the price at
# `usd_per_1k_tokens` per 1,000 billed tokens. Before running the check, work out by hand what a
# file of 20 examples costs when one of them is 40,000 tokens long and the others 500: two rules
# above change its bill, and the check holds your function to both.


# %%
MAX_TOKENS_PER_EXAMPLE = 16_385


def hosted_training_cost(
    example_tokens: list[int], usd_per_1k_tokens: float
) -> tuple[int, int, float]:
    # BEGIN SOLUTION: ...
    epochs = default_epochs(len(example_tokens))
    per_epoch = sum(min(n, MAX_TOKENS_PER_EXAMPLE) for n in example_tokens)
    billed = per_epoch * epochs
    return epochs, billed, billed / 1000 * usd_per_1k_tokens
    # END SOLUTION


# %%
def _bill(example_tokens: list[int]) -> tuple:
    cost = hosted_training_cost(example_tokens, 0.008)
    return cost if isinstance(cost, tuple) and len(cost) == 3 else (None, None, None)


_worked = [700] * 1_000 + [735] * 2_000  # about 2.17 M tokens in 3,000 examples
check_equal("Task 0.3", _bill(_worked)[:2], (3, 6_510_000), what="epochs and billed tokens")
check_close("Task 0.3", _bill(_worked)[2], 52.08, tol=0.01, what="USD")
_small = [40_000] + [500] * 19  # 20 examples, one past the limit
check_equal(
    "Task 0.3",
    _bill(_small)[:2],
    expected("Task 0.3", _small, 0.008)[:2],
    what="epochs and billed tokens of 20 examples, one of them 40,000 tokens long",
)
sms_lengths = [r["total"] for r in lengths["sms_spam"]]
sms_tokens = sum(sms_lengths)
sms_cost = expected("Task 0.3", sms_lengths, 0.008)
print(
    f"this SMS file: {sms_tokens:,} tokens × {sms_cost[0]} epochs = {sms_cost[1]:,} billed "
    f"tokens ≈ USD {sms_cost[2]:.2f}"
)

# %% [markdown]
# On your own GPU the bill is hours. A LoRA step costs about **4 × parameters × tokens**
# floating-point operations (forward 2, backward through the frozen weights 2; the adapters'
# own gradients are negligible), and a GPU sustains a fraction of its peak — 35 % is typical of
# a fine-tuning run. The same SMS file, three epochs, on the course's GPU profiles:

# %%
GPUS = {  # profile: (the shape of its model, peak dense fp16/bf16 tensor FLOP/s)
    "t4": ("llama-3.2-3b", 65e12),
    "a100": ("llama-3.1-8b", 312e12),
}
gpu_rows = []
for name, (shape_name, peak) in GPUS.items():
    profile = get_profile(name)
    shape = SHAPES[shape_name]
    flops = 4 * shape.params() * sms_tokens * 3
    gpu_rows.append(
        {
            "profile": name,
            "model": profile.model_id,
            "parameters (B)": shape.params() / 1e9,
            "PFLOP": flops / 1e15,
            "minutes at 35 % of peak": flops / (0.35 * peak) / 60,
        }
    )
print(
    format_table(
        gpu_rows,
        ["profile", "model", "parameters (B)", "PFLOP", "minutes at 35 % of peak"],
        floats="{:.2f}",
    )
)

# %% [markdown]
# ## 4. Making data
# When examples are scarce, a model can write more (self-instruct): show it a few seed tasks,
# sample new ones, **parse** them and **filter** hard. A 135M model writes mostly bad data — the
# lesson is the filter: how many samples survive, and why the rest do not.

# %%
SEEDS = [
    ("Give the opposite of the word 'cold'.", "hot"),
    ("Name the capital of France.", "Paris"),
    ("Add 12 and 7.", "19"),
    ("Translate 'thank you' into Spanish.", "gracias"),
    ("Name a fruit that is yellow.", "banana"),
]
N_SAMPLES = 6 if SMOKE else 32


def chat_prompt(content: str, start: str = "") -> str:
    """A one-turn chat prompt for the model, its answer started with ``start``."""
    messages = [{"role": "user", "content": content}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text + start


prompt = chat_prompt(
    "Here are some tasks with their answers:\n"
    + "\n".join(f"Task: {t}\nAnswer: {a}" for t, a in SEEDS)
    + "\nWrite one new, different task and its answer in the same format.",
    "Task:",  # start the answer in the format: a small model then follows it far more often
)
samples = sample_completions(model, tokenizer, prompt, N_SAMPLES, 48, seed=SEED)
samples = ["Task:" + s for s in samples]  # the start we wrote is part of each sample


def field(sample: str, name: str) -> str:
    """The text after the first line starting with ``name:`` (empty if there is none)."""
    lines = (line.strip() for line in sample.splitlines())
    return next((ln[len(name) + 1 :].strip() for ln in lines if ln.startswith(name + ":")), "")


def parse_task(sample: str) -> tuple[str, str] | None:
    """``(task, answer)`` from the 'Task: ...' and 'Answer: ...' lines, or None."""
    task, answer = field(sample, "Task"), field(sample, "Answer")
    return (task, answer) if task and answer else None


def reject_reason(pair, kept: list[tuple[str, str]]) -> str | None:
    """Why a generated pair is refused, or None: unparseable, too short or long, a copy of a seed
    or of an accepted pair (word 3-gram Jaccard ≥ 0.5), or an answer longer than its task."""
    if pair is None:
        return "not in the 'Task: ... Answer: ...' format"
    task, answer = pair
    if not 3 <= len(task.split()) <= 30:
        return "task length outside 3–30 words"
    if any(jaccard(task, t) >= 0.5 for t, _ in [*SEEDS, *kept]):
        return "a copy of a seed or an accepted task"
    if len(answer.split()) > len(task.split()) + 10:
        return "answer much longer than the task"
    return None


accepted, rejected = [], []
for sample in samples:
    pair = parse_task(sample)
    reason = reject_reason(pair, accepted)
    if reason is None:
        accepted.append(pair)
    else:
        rejected.append({"reason": reason, "sample": sample.strip().replace("\n", " | ")[:90]})
print(f"accepted {len(accepted)} of {len(samples)} ({100 * len(accepted) / len(samples):.0f} %)")
for task, answer in accepted[:5]:
    print(f"  ✓ {task} -> {answer}")
print(format_table(rejected[:8], ["reason", "sample"]))

# %% [markdown]
# Question–answer pairs from a document, in two steps: sample questions about a text, then let
# the model answer each one from the text (greedy). Keep a pair only if the question is a question
# and its answer is **in the text** (grounded) — an answer the text does not contain would teach
# the model to invent.

# %%
DOCUMENT = (
    "The lighthouse on Gull Rock was built in 1874 from granite blocks carried by boat from the "
    "mainland. Its lamp burned whale oil until 1902, when it was replaced by a kerosene lamp. "
    "The last keeper, Ada Morrow, left the island in 1961, when the light was automated."
)


ask = chat_prompt(f"Text: {DOCUMENT}\nAsk one question about the text.", "Question:")
questions = [
    field("Question:" + q, "Question")
    for q in sample_completions(model, tokenizer, ask, N_SAMPLES, 32, seed=SEED)
]
answers = generate_batch(
    model,
    tokenizer,
    [
        chat_prompt(f"Text: {DOCUMENT}\nQuestion: {q}\nAnswer with a few words from the text.")
        for q in questions
    ],
    16,
    progress=False,
)
qa_rows = []
for question, answer in zip(questions, answers):
    answer = answer.strip().rstrip(".")
    grounded = bool(answer) and answer.lower() in DOCUMENT.lower()
    kept_pair = grounded and question.endswith("?")
    qa_rows.append({"question": question[:60], "answer": answer[:30], "kept": kept_pair})
print(f"kept {sum(r['kept'] for r in qa_rows)} of {len(qa_rows)} question-answer pairs")
print(format_table(qa_rows[:8], ["kept", "question", "answer"]))

# %% [markdown]
# ## 5. Cleaning
# Real data arrives with copies, near-copies, fragments and other languages. The SMS training set
# plus some of each (made reproducibly here), cleaned rule by rule — each rule sees what the one
# before kept, so the counts add up. Near-duplicates are found with MinHash + LSH (`datasketch`)
# on word 3-grams and confirmed on the exact sets; languages by `langid`.
#
# Predict before running: the generated SMS messages come from a few hundred templates. Which
# rule will remove the most rows, and is removing them right for *this* data?

# %%
dirty = list(train_rows)
dirty += [dict(r) for r in train_rows[:20]]  # exact copies
dirty += [{**r, "text": r["text"] + " ok?"} for r in train_rows[20:40]]  # near copies
dirty += [{"text": t, "label": "ham"} for t in ("ok", "k thx", "?")]  # fragments
dirty += [
    {"text": t, "label": "ham"}
    for t in (
        "¿Nos vemos mañana en la estación a las ocho?",
        "Kannst du mir bitte das Buch morgen mitbringen?",
        "Je serai en retard ce soir, commence sans moi.",
        "Ci vediamo domani al bar vicino alla stazione?",
    )
]  # other languages
kept, clean_counts = clean(dirty, min_words=3, max_words=80, languages=("en",))
print(f"{len(dirty)} rows -> {len(kept)} after cleaning")
print(format_table(clean_counts, ["rule", "before", "removed"]))
for count in clean_counts:  # read what each rule removed before trusting it
    print(f"{count['rule']}: e.g. {[text[:60] for text in count['e.g.']]}")
# %% [markdown]
# Read the examples each rule removed. A filter is a model too, and it makes mistakes: check
# whether the language filter removed only the planted foreign messages, and whether every
# near-duplicate is really a copy — for data generated from templates, "near-duplicates" may be
# the variety you want to keep.

# %%
test_rows = load_split("sms_spam", "test")
planted = [kept[0]["text"]]  # one training message copied into the test set
leaks = leaked([r["text"] for r in kept], [r["text"] for r in test_rows] + planted)
print(f"test positions found in training: {leaks} ({len(test_rows)} is the planted copy)")
report(
    "leakage",
    leaks == [len(test_rows)],
    "only the planted copy is found: the real test split is clean",
    f"unexpected leaks at {leaks}",
)

# %% [markdown]
# ## 6. How much data?
# The Lab 03 recipe — LoRA r = 8 on `q_proj` and `v_proj` plus a new head — trained on the first
# 25, 50, 100, 200 and all training messages, twice with different seeds. Every size gets at
# least 200 example-passes (small sets repeat for more epochs), so small sets are not starved of
# steps. The curve is drawn on the **validation** split: it is a decision ("how many examples do
# I need?"), and decisions are made on validation. Test is touched once, for the full-data model.

# %%
SIZES_CURVE = [8, 16] if SMOKE else [25, 50, 100, 200, None]
CURVE_SEEDS = [SEED] if SMOKE else [SEED, SEED + 1]
MIN_PASSES = 16 if SMOKE else 200
labels = get_spec("sms_spam").labels
val_rows = load_split("sms_spam", "validation")[: 24 if SMOKE else None]
val_ids = tokenize_texts(tokenizer, [r["text"] for r in val_rows])
val_y = [labels.index(r["label"]) for r in val_rows]
train_ids_all = tokenize_texts(tokenizer, [r["text"] for r in train_rows])
train_y_all = [labels.index(r["label"]) for r in train_rows]
pad = tokenizer.pad_token_id


curve, final_model = learning_curve(
    lambda seed: lora_classifier(load_model(PROFILE)[0], len(labels), seed),  # Lab 03's recipe
    (train_ids_all, train_y_all),
    (val_ids, val_y),
    SIZES_CURVE,
    CURVE_SEEDS,
    MIN_PASSES,
    pad,
)
print(format_table(curve, ["examples", "seed", "epochs", "validation accuracy", "train seconds"]))
sizes = sorted({r["examples"] for r in curve})
by_size = {s: [r["validation accuracy"] for r in curve if r["examples"] == s] for s in sizes}
show(
    plot_sweep(
        sizes,
        {
            "LoRA r=8 (mean, spread over seeds)": (
                [statistics.mean(v) for v in by_size.values()],
                [statistics.pstdev(v) for v in by_size.values()],
            )
        },
        OUT / "learning_curve.png",
        title="Lab 00: validation accuracy vs training examples",
        xlabel="training examples",
        ylabel="validation accuracy",
    )
)

# %% [markdown]
# Before and after for the full-data model, on the test split (touched here only):

# %%
test_ids = tokenize_texts(tokenizer, [r["text"] for r in test_rows[: 24 if SMOKE else None]])
test_y = [labels.index(r["label"]) for r in test_rows[: 24 if SMOKE else None]]
fresh, _ = load_model(PROFILE)
replace_head(fresh, len(labels), seed=SEED)
before = classifier_accuracy(
    lambda i, m: classifier_logits(fresh, i, m), test_ids, test_y, pad_value=pad
)
after = classifier_accuracy(
    lambda i, m: classifier_logits(final_model, i, m), test_ids, test_y, pad_value=pad
)
print(f"test accuracy: {before['accuracy']:.3f} (fresh head) -> {after['accuracy']:.3f}")

# %% [markdown]
# ### Explain what you measured
# From your curve: how many examples would you collect for a task like this one, and why? Which
# part of the curve (small sizes or large) has the larger spread between seeds, and what does that
# say about a single run's number? And from section 5: would you keep the language filter as it
# is for text messages? What did it remove besides the planted foreign messages?

# %% [markdown]
# *YOUR ANSWER HERE*

# %%
results = {
    "validator": {"lines": len(BROKEN.read_text().splitlines()), "problems": len(problems)},
    "tokens": token_rows,
    "template_overhead": template_overhead(tokenizer, sms_lines[0]["messages"]),
    "template_overhead_without_system": template_overhead(tokenizer, without_system),
    "truncation": truncation,
    "hosted_cost": {"sms_tokens": sms_tokens, "epochs": sms_cost[0], "usd": sms_cost[2]},
    "gpu_minutes": gpu_rows,
    "self_instruct": {"samples": len(samples), "accepted": len(accepted)},
    "qa_pairs": {"samples": len(qa_rows), "kept": sum(r["kept"] for r in qa_rows)},
    "cleaning": clean_counts,
    "curve": curve,
    "before": before,
    "after": after,
}
info = finish_lab(
    LAB,
    results,
    lab_start,
    config={"profile": PROFILE, "smoke": SMOKE, "min_passes": MIN_PASSES, "limit": LIMIT},
    seed=SEED,
    device=hardware.device,
    dtype=hardware.dtype,
)

# %% [markdown]
# ## Takeaways
# - Check a training file completely before training: every line, every reason, in one pass.
# - Count tokens with the model's own tokenizer and chat template; the template's tokens are
#   trained on and billed too. Drop examples a context limit would cut inside the answer.
# - A hosted run's price is billed tokens × price: tokens per epoch × epochs.
# - Generated data needs a filter; on a small model most samples fail it — read the rejects.
# - Clean rule by rule and count what each rule removes; check for leakage after cleaning.
# - Read how many examples you need off a learning curve drawn on validation, seeds included.
