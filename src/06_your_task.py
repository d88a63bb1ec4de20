# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lab 06 — Capstone: your task, your model
#
# {{colab_badge}}
#
# Everything so far used the course's datasets. Now you bring **your own task**: a file of
# examples, an instruct model as the base, LoRA on a reasonable number of examples — and an
# honest before/after on a test split the training never saw, a PDF report, and a submission your
# instructor can reproduce.
#
# The parameters cell below is the whole interface. It starts on one of two **worked examples**
# that ship with the course, on real data:
# - `cyrillic_langid` — **classification**, not in English: is a sentence Belarusian, Bulgarian,
#   Macedonian, Russian, Serbian or Ukrainian? (FLORES-200 sentences from SIB-200, CC BY-SA 4.0;
#   701 / 99 / 204 sentences).
# - `e2e_nlg` — **generation** in English: write a restaurant description from its attributes
#   (E2E NLG, CC BY-SA 4.0; 547 inputs, split here).
#
# To use your own data, set `EXAMPLE = None` and fill in `DATA` and `TASK`: a JSONL, JSON, CSV,
# TSV or Parquet file (or a folder with `train.*`, `dev.*`/`validation.*`, `test.*` files, or a
# Hugging Face dataset id on Colab), with the column names of your file mapped to the kit's.
#
# **Time** (embedded model, 2 CPU cores, 320 training examples, two epochs): about 9 minutes for
# `e2e_nlg`, 13 for `cyrillic_langid` (`SMOKE = True`: about a minute). On Colab set
# `MODEL = "qwen-t4"` (Qwen2.5-3B-Instruct in 4-bit on a T4) or `"qwen-a100"`.
# **Expected** (embedded model, full run): `cyrillic_langid` accuracy 0.00 → about 0.9;
# `e2e_nlg` chrF about 33 → about 57.

# %% tags=["colab-install"]
# (filled in by tools/build_labs.py)

# %% tags=["parameters"]
import os

from utils.data.own_data import TaskConfig

SMOKE = os.environ.get("FTKIT_SMOKE", "0") == "1"  # True: a few examples and steps
SEED = int(os.environ.get("FTKIT_SEED", "0"))  # splitting, sampling, adapter initialisation
STUDENT_ID = os.environ.get("FTKIT_STUDENT", "your-student-id")  # names your submission zip
MODEL = os.environ.get("FTKIT_MODEL", "embedded")  # "embedded" | "qwen-t4" | "qwen-a100" | any id
EXAMPLE = os.environ.get("FTKIT_EXAMPLE", "cyrillic_langid") or None  # or "e2e_nlg"; None: yours
# your own task (used when EXAMPLE is None):
DATA = "my_data.jsonl"  # a file, a folder of split files, or a hub dataset id
TASK = TaskConfig(
    kind="classification",  # "classification" | "extraction" | "generation"
    columns={"text": "text", "label": "label"},  # the kit's field -> your column
    instruction="",  # the system prompt; empty: a default for the kind
)
TRAIN_EXAMPLES = 320  # at most this many training examples (None: all); see section 3
EPOCHS = 2  # the validation split picks the better epoch
LEARNING_RATE = 1e-3  # LoRA's usual range: 2e-4 (large models) to 1e-3 (small ones)
HAND_IN_TEST = True  # False: the submission carries the test split's fingerprint only

# %% [markdown]
# ### Choosing a base model
# - **Instruct, not base**, for a first capstone: an instruct model already follows the chat
#   template and answers in a turn, so your before is meaningful and a few hundred examples
#   suffice; a base model has to learn the format too.
# - **Size for your hardware**: the run plan below estimates memory before training. As a rule
#   of thumb, LoRA on a 3B model in 4-bit fits a 16 GB T4 (`"qwen-t4"`), 8B in bf16 wants an
#   A100; on a laptop CPU stay near the embedded 135M model.
# - **The licence**: your adapter is used under the base model's terms — SmolLM2 is Apache-2.0;
#   most Qwen2.5 sizes are Apache-2.0 but the 3B has its own research licence; Llama and Gemma
#   have their own licences. Read the model card before you build on it.
# - **Any architecture**: the kit reads the model's own linear layers for LoRA (e.g. Phi-3's
#   fused `qkv_proj`, GPT-2's `c_attn`), uses Unsloth where it has a fast path for the
#   architecture and plain transformers + PEFT + TRL otherwise, and prints which it chose.

# %%
import time

from utils.runtime.hardware import preflight
from utils.runtime.profiles import resolve_model

lab_start = time.perf_counter()
profile = resolve_model(MODEL)
hardware = preflight(profile)

# %%
import json

from utils.data.own_data import (
    data_summary,
    examples_fingerprint,
    load_task_data,
    load_worked_example,
    sample_train,
    task_messages,
    write_examples,
)
from utils.eval import harness
from utils.eval.compare import paired_bootstrap
from utils.eval.task_eval import answer_budget, evaluate_task, label_baselines
from utils.lab.capstone_report import capstone_report, write_markdown, write_pdf
from utils.lab.checks import check_equal, report
from utils.lab.diagrams import Changes, draw_model
from utils.lab.plots import plot_grouped_bars, plot_heatmap, plot_lines, show
from utils.lab.results import finish_lab, format_table
from utils.lab.submission import make_submission
from utils.runtime.memory import PeakMemory
from utils.runtime.models import load_model, model_fingerprint
from utils.runtime.storage import lab_output_dir
from utils.train import sft
from utils.train.budget import measure_step_seconds, plan_run
from utils.train.params import (
    attach_lora,
    count_trainable,
    keep_adapters_fp32,
    linear_layer_names,
    lora_config_for,
)

LAB = "06_your_task"
RUN = EXAMPLE or "own"
OUT = lab_output_dir(f"{LAB}-{RUN}")

# %% [markdown]
# ## 1. Your data
# The loader checks every row and **names the file and line** of each bad one; it leaves bad rows
# out but counts them, drops duplicate inputs (and inputs that appear with two different
# answers), and removes from train and validation anything that is also in test. Data that is
# not split is split **70 / 10 / 20**, seeded, stratified by label for classification. The
# validation split chooses settings; the test split is used twice — before and after — and for
# nothing else.

# %%
if EXAMPLE:
    DATA, TASK, description = load_worked_example(EXAMPLE)
    print(f"worked example {EXAMPLE!r}: {description}")
data = load_task_data(DATA, TASK, seed=SEED)
task = data.task  # labels (classification) or fields (extraction) read from the data
summary = data_summary(data)
for problem in data.problems[:10]:
    print("bad row:", problem)
print(json.dumps(summary, indent=1, ensure_ascii=False))
splits = dict(data.splits)
splits["train"] = sample_train(splits["train"], TRAIN_EXAMPLES, SEED)
if SMOKE:
    splits = {"train": splits["train"][:16], "validation": splits["validation"][:6],
              "test": splits["test"][:8]}
for example in splits["train"][:3]:
    print(f"{example['text'][:100]!r}\n    -> {example['answer'][:100]!r}")

# %% [markdown]
# ## 2. The base model, zero-shot, on the test split
# Each example becomes a conversation: your instruction as the system turn, the input as the
# user turn, and — for training — the answer as the assistant turn, ending at the eos token.
# The model answers greedily; the same function scores it now and after training.

# %%
model, tokenizer = load_model(profile)
BASE_FINGERPRINT = model_fingerprint(model)
print(sft.chat_text(tokenizer, task_messages(task, splits["train"][0])))
MAX_NEW_TOKENS = answer_budget(tokenizer, splits["train"])
before = evaluate_task(model, tokenizer, task, splits["test"], MAX_NEW_TOKENS)
print(f"before: {before['primary']} = {before['score']:.3f} on {len(splits['test'])} test examples")
for example, output in list(zip(splits["test"], before["outputs"], strict=True))[:3]:
    print(f"  {example['text'][:70]!r}\n    model: {output[:90]!r}\n    reference: "
          f"{example['answer'][:90]!r}")

# %% [markdown]
# A free-generation "before" of 0 can mean a model that knows nothing, or one that knows but does
# not answer in your format. For a classification task, two baselines tell them apart: the
# majority label of the training split (no model at all), and the base model **constrained** to
# your labels (the label whose tokens it finds likeliest as its answer). Your gain over these is
# what training taught beyond the format.

# %%
baselines = None
if task.kind == "classification":
    baselines = label_baselines(model, tokenizer, task, splits["train"], splits["test"])
    print(f"majority label ({baselines['majority_label']!r}): accuracy "
          f"{baselines['majority']:.3f}; base model constrained to the labels: "
          f"{baselines['constrained_zero_shot']:.3f}; free generation: {before['accuracy']:.3f}")

# %% [markdown]
# ## 3. Plan the run before it starts
# How long will training take, and will it fit? The kit times a few forward/backward passes on
# your own batches and estimates memory from the model's shape and your longest example. On a GPU
# the estimate is the GPU's memory (the process's RAM comes on top); on a CPU it is the whole
# process's peak, what it holds now plus the training state. If the estimate is more than you
# can spend, lower `TRAIN_EXAMPLES` in the parameters cell (a few hundred good examples usually
# beat thousands of noisy ones) or shorten `max_length`, and re-run from the top.

# %%
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer  # after the model is loaded: Unsloth patches TRL first

SETTINGS = sft.SFTSettings(
    r=16,  # LoRA rank
    alpha=32,  # scale alpha / r = 2
    target_modules=linear_layer_names(model),  # every linear layer of the blocks, as this model
    #                                            names them (q_proj … down_proj in Llama/Qwen)
    learning_rate=LEARNING_RATE,  # LoRA takes ~10x the rate of full fine-tuning
    epochs=1 if SMOKE else EPOCHS,  # the validation split picks the better epoch (section 4)
    max_steps=2 if SMOKE else -1,  # > 0 stops earlier (the SMOKE run)
    batch_size=8,  # examples per step
    max_length=512,  # longer rows are cut (the label check below catches a cut answer)
    seed=SEED,
)
lora_config = LoraConfig(
    r=SETTINGS.r,  # rank: A is r x in_features, B is out_features x r
    lora_alpha=SETTINGS.alpha,  # the update B.A is scaled by alpha / r
    lora_dropout=0.0,  # dropout on the adapter's input; 0 for a short run
    bias="none",  # biases stay frozen
    target_modules=list(SETTINGS.target_modules),  # which layers get an adapter
    task_type="CAUSAL_LM",  # a decoder trained on next-token prediction
)
check_equal("set-up", lora_config.to_dict(), lora_config_for(model, SETTINGS.r, SETTINGS.alpha,
            SETTINGS.target_modules).to_dict(), what="this LoraConfig vs the kit's (Lab 03B's)")
# PEFT's get_peft_model (Unsloth's, where Unsloth loaded the model); A starts random from the
# seed, B at zero: the model starts unchanged
model = attach_lora(model, lora_config, seed=SETTINGS.seed)
train_dataset = sft.chat_dataset(splits["train"], tokenizer, lambda e: task_messages(task, e))
training_args = SFTConfig(
    **sft.trainer_defaults(model),  # scratch output folder, no checkpoints, AdamW, fp16/bf16 on GPU
    dataset_text_field="text",  # the column with each chat-formatted example
    max_length=SETTINGS.max_length,
    per_device_train_batch_size=SETTINGS.batch_size,
    per_device_eval_batch_size=SETTINGS.batch_size,
    num_train_epochs=SETTINGS.epochs,
    max_steps=SETTINGS.max_steps,
    learning_rate=SETTINGS.learning_rate,
    lr_scheduler_type="linear",  # decays to 0 at the last step, after a short warm-up
    warmup_steps=SETTINGS.warmup_steps,
    seed=SETTINGS.seed,  # model-side randomness
    data_seed=SETTINGS.seed,  # batch order
    packing=False,  # one example per row: each answer keeps its own prompt
    gradient_checkpointing=SETTINGS.gradient_checkpointing,  # off on a CPU: faster, memory allows
)
check_equal("set-up", training_args.to_dict(), sft.sft_config(model, SETTINGS).to_dict(),
            what="these training arguments vs the kit's sft.sft_config (Lab 03B's)")
trainer = SFTTrainer(model=model, args=training_args, train_dataset=train_dataset,
                     processing_class=tokenizer)  # TRL tokenizes the chat texts with it
trainer = sft.mask_prompts(trainer, tokenizer)  # loss on the answers only; no row lost every label
keep_adapters_fp32(trainer.model)  # a CPU trains in fp32 (TRL may cast adapters to bf16)
lengths = sorted(len(ids) for ids in trainer.train_dataset["input_ids"])
step_seconds = measure_step_seconds(trainer, repeats=1 if SMOKE else 2)  # passes timed
plan = plan_run(model, SETTINGS, len(splits["train"]),
                lengths[-1],  # tokens of the longest example: its batch sets the memory peak
                step_seconds)
trainable, total = count_trainable(model)
print(f"trainable: {trainable:,} of {total:,} parameters ({100 * trainable / total:.2f} %)")
print(f"tokens per example: median {lengths[len(lengths) // 2]}, max {lengths[-1]}")
print(json.dumps(plan, indent=1))

# %% [markdown]
# What this lab changes in the network, drawn from its settings:

# %%
show(
    draw_model(
        Changes(layers=model.config.num_hidden_layers, lora=SETTINGS.target_modules),
        OUT / "model.png",
        "Lab 06: LoRA on every linear layer of your base model",
    )
)

# %% [markdown]
# ## 4. Train, and let the validation split choose the epoch
# After every epoch the kit scores the validation split with the same metric as the test, and
# keeps the adapter of the better epoch — a choice made on validation, never on test.

# %%
peak = PeakMemory().start()
history = sft.train_choosing_epoch(
    trainer,
    lambda m: evaluate_task(m, tokenizer, task, splits["validation"], MAX_NEW_TOKENS,
                            progress=False)["score"],
)
memory = peak.stop()
print(f"{history['global_steps']} steps in {history['seconds'] / 60:.1f} min (planned "
      f"{plan['estimated_minutes']}); peak {memory['kind']} {memory['peak_gb']:.2f} GB")
print(f"validation {before['primary']} per epoch: {[round(s, 3) for s in history['epoch_scores']]}"
      f" -> keeping epoch {history['best_epoch']}")
LOSS_PLOT = plot_lines(
    {"training loss (answer tokens)": (history["steps"], history["loss"])},
    OUT / "loss.png",
    title="training loss",
    xlabel="step",
    ylabel="loss",
)
show(LOSS_PLOT)

# %% [markdown]
# ## 5. Before and after on the test split
# The same function, the same prompts, the same token budget. The gain comes with a **95 %
# bootstrap interval**: resample the test examples many times and see how much the gain moves —
# an interval that includes 0 means the test split cannot tell the two models apart.

# %%
after = evaluate_task(model, tokenizer, task, splits["test"], MAX_NEW_TOKENS)
interval = paired_bootstrap(before["per_example"], after["per_example"], seed=SEED)
METRICS = {
    "classification": ["accuracy", "macro_f1", "no_label"],
    "extraction": ["exact_match", "json_valid"],
    "generation": ["chrf", "corpus_chrf", "rouge_l", "exact_match"],
}[task.kind]
table = [{"metric": m, "before": before[m], "after": after[m], "gain": after[m] - before[m]}
         for m in METRICS]
print(format_table(table, ["metric", "before", "after", "gain"]))
print(f"gain in {before['primary']}: {interval['gain']:+.3f}, 95 % interval "
      f"[{interval['low']:+.3f}, {interval['high']:+.3f}] (n = {interval['n']})")
show(plot_grouped_bars(
    [m for m in METRICS if m != "corpus_chrf"],
    {name: [r[m] / (100 if m == "chrf" else 1) for m in METRICS if m != "corpus_chrf"]
     for name, r in (("before", before), ("after", after))},
    OUT / "before_after.png",
    title=f"test split (n = {len(splits['test'])})" + (" — chrF shown / 100"
                                                       if task.kind == "generation" else ""),
    ylabel="score",
))
if task.kind == "classification":
    gold_labels = list(task.labels)
    predicted = gold_labels + ["(no label)"]
    show(plot_heatmap(
        gold_labels, predicted,
        [[after["confusion"].get(f"{g}->{p}", 0) / max(1, sum(e["answer"] == g
                                                             for e in splits["test"]))
          for p in predicted] for g in gold_labels],
        OUT / "confusion.png",
        title="after training: share of each true label predicted as ...",
        xlabel="predicted", ylabel="true label",
    ))

# %% [markdown]
# ### What did the adapter cost elsewhere?
# A gain on your task can come with a loss everywhere else (Lab 09 measures it for several
# fine-tunes). The capstone checks one row of it: a fixed set of items from five general
# benchmarks shipped with the kit (grammar, physical and everyday common sense, misconceptions,
# Italian; `data/benchmarks`), each scored as the LM Evaluation Harness scores it, with your
# adapter switched off and on. An interval that contains 0 means no measured cost.

# %%
GENERAL_ITEMS = harness.general_set(  # the same items for every model scored on them
    2 if SMOKE else harness.GENERAL_PER_BENCHMARK  # items per benchmark (5 benchmarks)
)
with model.disable_adapter():  # the base model: the adapter off, nothing else changed
    general_before = harness.general_verdicts(model, tokenizer, GENERAL_ITEMS)
general_after = harness.general_verdicts(model, tokenizer, GENERAL_ITEMS)
general = paired_bootstrap(harness.pooled(general_before), harness.pooled(general_after),
                           seed=SEED) | {"per_benchmark": len(GENERAL_ITEMS["blimp"])}
print(f"general ability on {general['n']} items: {general['before']:.3f} -> "
      f"{general['after']:.3f}, change {general['gain']:+.3f}, 95 % interval "
      f"[{general['low']:+.3f}, {general['high']:+.3f}]")

# %% [markdown]
# ### Task 6.1 — the examples that flipped
# Averages hide what changed. Write `flips`: given per-example scores before and after (1/0 for
# right/wrong, or chrF for free text), return the indices of the `k` examples whose score went
# **up** most (`"fixed"`) and **down** most (`"broken"`), largest change first, ties broken by the
# lower index; an example whose score did not change is in neither list.

# %%
def flips(before_scores: list[float], after_scores: list[float], k: int = 3) -> dict:
    # BEGIN SOLUTION: ...
    change = [a - b for b, a in zip(before_scores, after_scores, strict=True)]
    up = sorted((i for i, c in enumerate(change) if c > 0), key=lambda i: (-change[i], i))
    down = sorted((i for i, c in enumerate(change) if c < 0), key=lambda i: (change[i], i))
    return {"fixed": up[:k], "broken": down[:k]}
    # END SOLUTION


# %%
check_equal("Task 6.1", flips([0, 1, 0, 1, 0], [1, 1, 0, 0, 1]), {"fixed": [0, 4], "broken": [3]},
            what="flips of five right/wrong examples")
check_equal("Task 6.1", flips([50.0, 20.0, 70.0, 10.0], [40.0, 60.0, 70.0, 90.0], k=1),
            {"fixed": [3], "broken": [0]}, what="flips of chrF scores with k = 1")
check_equal("Task 6.1", flips([1, 1], [1, 1]), {"fixed": [], "broken": []},
            what="flips when nothing changed")
flipped = flips(before["per_example"], after["per_example"]) or {"fixed": [], "broken": []}
for kind in ("fixed", "broken"):
    print(f"--- {kind} ({len(flipped[kind])} shown)")
    for i in flipped[kind]:
        print(f"  input: {splits['test'][i]['text'][:100]!r}\n  reference: "
              f"{splits['test'][i]['answer'][:80]!r}\n  before: {before['outputs'][i][:80]!r}"
              f"\n  after: {after['outputs'][i][:80]!r}")

# %% [markdown]
# ### Task 6.2 — your discussion
# Write the report's discussion in the cell below (3–6 sentences): what the model learned, what
# the interval says, what the broken examples have in common, and what you would try next (more
# data? a different instruction? a larger base model?). It goes into the PDF as you write it.

# %%
# BEGIN SOLUTION: DISCUSSION = """YOUR ANSWER HERE"""
DISCUSSION = (
    f"Zero-shot, the base model scored {before['score']:.3f} in {before['primary']}; after LoRA "
    f"on {len(splits['train'])} examples it scores {after['score']:.3f}, a gain of "
    f"{interval['gain']:+.3f} with a 95 % interval of [{interval['low']:+.3f}, "
    f"{interval['high']:+.3f}] on {interval['n']} test examples, so the test split "
    + ("does" if interval["low"] > 0 else "does not")
    + " show a real improvement. The examples that got worse are the ones to read first: they "
    "show what the adapter over-learned. Next steps: more (and more varied) training examples, "
    "a clearer instruction, or a larger base model such as Qwen2.5-3B-Instruct on a GPU."
)
# END SOLUTION

# %%
report(
    "Task 6.2",
    "YOUR ANSWER HERE" not in DISCUSSION and len(DISCUSSION.split()) >= 30,
    f"discussion of {len(DISCUSSION.split())} words",
    "write at least 30 words of discussion in DISCUSSION",
);

# %% [markdown]
# ## 6. The report and the submission
# `report.pdf` (and the same content as `report.md`) gathers the task, the data, the model, the
# settings, the cost, the before/after table with its interval, the loss curve, the flipped
# examples and your discussion. The submission zip holds the adapter, the settings, the test
# split (or, with `HAND_IN_TEST = False`, only its fingerprint), the predictions before and
# after, and the report; the grader re-runs before and after and checks it gets your numbers.

# %%
ADAPTER = OUT / "adapter"
model.save_pretrained(str(ADAPTER))
claimed = {
    "task": {"kind": task.kind, "instruction": task.system_prompt(), "labels": list(task.labels),
             "fields": list(task.fields)},
    "primary": before["primary"],
    "before": {m: before[m] for m in METRICS},
    "after": {m: after[m] for m in METRICS},
    "interval": interval,
    "max_new_tokens": MAX_NEW_TOKENS,
    "test_fingerprint": examples_fingerprint(splits["test"]),
    "test_size": len(splits["test"]),
    "baselines": baselines,
    "general": general,
}
(OUT / "claimed.json").write_text(json.dumps(claimed, indent=1, ensure_ascii=False))
(OUT / "predictions.json").write_text(json.dumps(
    [{"id": e["id"], "reference": e["answer"], "before": b, "after": a}
     for e, b, a in zip(splits["test"], before["outputs"], after["outputs"], strict=True)],
    indent=1, ensure_ascii=False))
write_examples(OUT / "test.jsonl", splits["test"])
run = {
    "example": EXAMPLE,
    "data": str(DATA) if not EXAMPLE else f"worked example {EXAMPLE}",
    "model": profile.model_id,
    "summary": summary,
    "settings": {**SETTINGS.to_dict(), "train_examples": len(splits["train"])},
    "plan": plan,
    "history": history,
    "memory": memory,
    "trainable_parameters": trainable,
    "total_parameters": total,
}
report_doc = capstone_report(run, claimed, splits["test"], before, after, flipped, LOSS_PLOT,
                             DISCUSSION, student=STUDENT_ID)
write_markdown(report_doc, OUT / "report.md")
print(f"wrote {write_pdf(report_doc, OUT / 'report.pdf')}")

# %%
results = {
    "example": EXAMPLE,
    "task": task.kind,
    "data": summary,
    "primary": before["primary"],
    "before": claimed["before"],
    "after": claimed["after"],
    "interval": interval,
    "epoch_scores": history["epoch_scores"],
    "best_epoch": history["best_epoch"],
    "train_examples": len(splits["train"]),
    "train_seconds": round(history["seconds"], 1),
    "plan": plan,
    "peak_memory_gb": round(memory["peak_gb"], 2),
    "trainable_parameters": trainable,
    "loss": history["loss"],
    "baselines": baselines,
    "general": general,
}
info = finish_lab(
    f"{LAB}-{RUN}",
    results,
    lab_start,
    config={"smoke": SMOKE, "model": profile.model_id, "example": EXAMPLE,
            "settings": SETTINGS.to_dict()},
    seed=SEED,
    device=hardware.device,
    dtype=next(model.parameters()).dtype,
    model_fingerprint=BASE_FINGERPRINT,
    dataset_fingerprints={n: examples_fingerprint(r) for n, r in splits.items()},
)
artifacts = {"adapter": ADAPTER, "claimed.json": OUT / "claimed.json",
             "predictions.json": OUT / "predictions.json", "report.pdf": OUT / "report.pdf",
             "report.md": OUT / "report.md"}
if HAND_IN_TEST:
    artifacts["test.jsonl"] = OUT / "test.jsonl"
submission = make_submission(LAB, STUDENT_ID, artifacts, info, base_model_id=profile.model_id,
                             out_dir=OUT, training_config=run["settings"], loss=history["loss"])

# %% [markdown]
# Before you upload: the grader's own checks on the zip you just wrote, and your artifact run on a
# few public examples (a zip the grader refuses scores 0). From a terminal:
# `python grading/run.py --check <your zip>`.

# %%
from grading.run import check_submission

verdict = check_submission(submission, base=profile)  # prints the verdict

# %% [markdown]
# ## Takeaways
# - The recipe is the same for any task: a clean, de-duplicated split; a prompt format with the
#   answer as the only thing the loss sees; a zero-shot baseline; LoRA; the same evaluation after.
# - Zero-shot, the 135M base model does not follow either worked example's format: it echoes the
#   Cyrillic sentence instead of naming a language (accuracy 0.00), and writes flowery reviews
#   instead of a plain description. Much of the gain is the format — and on the language task,
#   the content too: macro-F1 rises with accuracy. The confusion matrix shows where the rest
#   go: Macedonian, the closest of the six to Bulgarian and Serbian, is the one most often missed.
# - Free text is never identical to its reference (exact match stays 0 on `e2e_nlg`), which is why
#   chrF and ROUGE-L exist. But read the outputs: overlap scores do not check faithfulness, and
#   the trained model still sometimes adds an attribute its input does not have.
# - A gain is only as good as its interval: with a few hundred test examples, a few points either
#   way is noise. The flipped examples tell you more about what to fix than the average does.
# - Measure the cost before you spend it: seconds per step times steps is the run's time, and the
#   estimate tells you whether a bigger base model will fit before you load it.
#
# **Go further**: 🐢 run the other worked example; 🐕 halve `TRAIN_EXAMPLES` and see how much of
# the gain remains; 🦁 run on Colab with `MODEL = "qwen-t4"` and compare the base model's
# zero-shot score with the 135M model's trained one.
