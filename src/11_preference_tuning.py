# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lab 11 — Preference tuning: DPO from the loss up, and RL with a reward a program checks
#
# {{colab_badge}}
#
# Supervised fine-tuning (Labs 03–06) teaches a model to imitate answers. **Preference tuning**
# teaches it which of two answers is better; **reinforcement learning with a verifiable reward**
# teaches it to reach answers a program can check. This lab starts from a short SFT run on Lab
# 03B's extraction task (sentence → JSON with who, what, when, where) and measures both.
#
# 1. **Preference data**: pairs of the SFT model's own answers, ranked by the task's metric.
# 2. **Task 11.1**: the DPO loss by hand, from log-probabilities (Rafailov et al., 2023).
# 3. **Task 11.2**: predict the loss before the first step, then measure it.
# 4. **DPO with TRL**: `DPOTrainer` on the pairs, β chosen on validation pairs.
# 5. **Task 11.3**: a reward a program can check, then **GRPO** with TRL's `GRPOTrainer`
#    (Shao et al., 2024): answers sampled, rewarded, compared within their group.
# 6. **One comparison on the same test split**: base, SFT, SFT + DPO, SFT + GRPO.
#
# **Time**: about 40 minutes on 2 CPU cores (`SMOKE = True`: about 3 minutes).

# %% tags=["colab-install"]
# (filled in by tools/build_labs.py)

# %% tags=["parameters"]
import os

PROFILE = os.environ.get("FTKIT_PROFILE", "cpu")  # "cpu" (SmolLM2-135M, offline) | "t4" | "a100"
SMOKE = os.environ.get("FTKIT_SMOKE", "0") == "1"  # True: a few pairs and steps, ~2 min
SEED = int(os.environ.get("FTKIT_SEED", "0"))  # adapter initialisation, batch order, sampling
STUDENT_ID = os.environ.get("FTKIT_STUDENT", "your-student-id")  # names your submission zip
SUBMIT = os.environ.get("FTKIT_SUBMIT_METHOD", "DPO")  # the adapter you hand in: "DPO" or "GRPO"

# %%
from utils.runtime.hardware import preflight

hardware = preflight(PROFILE)

# %%
import math
import time
from dataclasses import replace

import torch
from datasets import Dataset
from peft import PeftModel
from trl import DPOConfig, DPOTrainer, GRPOConfig, GRPOTrainer

from utils.data.datasets import get_spec, load_split
from utils.data.preference_pairs import load_pairs
from utils.eval.metrics import normalise_answer, parse_json_object
from utils.lab.checks import check_close, checking
from utils.lab.expected import yours_or_kit
from utils.lab.plots import plot_grouped_bars, plot_lines, show
from utils.lab.results import finish_lab, format_table
from utils.lab.submission import make_submission
from utils.lab.task_checks import check_dpo_loss, check_reward
from utils.runtime.memory import release_memory
from utils.runtime.models import load_model, model_fingerprint
from utils.runtime.profiles import get_profile
from utils.runtime.storage import lab_output_dir
from utils.train import preference, sft

LAB = "11_preference_tuning"
OUT = lab_output_dir(LAB)
lab_start = time.perf_counter()
FIELDS = get_spec("news_events").fields  # who, what, when, where
model, tokenizer = load_model(PROFILE)
BASE_FINGERPRINT = model_fingerprint(model)

# %% [markdown]
# ## 1. Preference data
# A preference pair is a prompt and two answers, one **chosen** and one **rejected** — TRL's
# conversational form, `{"prompt": [...], "chosen": [...], "rejected": [...]}`. Public datasets
# get the ranking from people (Anthropic's HH-RLHF) or from a strong model (UltraFeedback, the
# data Zephyr was tuned on; Tunstall et al., 2023). Here the ranking comes from the task itself:
# the kit's short SFT policy sampled four answers per sentence, each answer was scored by the
# share of fields it gets right, and the best answer became `chosen`, the worst `rejected`.
# These are **on-policy** pairs: answers the model itself gives, so DPO pushes on its own
# mistakes. The kit ships them (`data/preference_pairs/`, with `SOURCE.md`), because sampling
# them takes about 3 s per prompt on a CPU.

# %%
pairs = {split: load_pairs(split) for split in ("train", "validation", "test")}
if SMOKE:
    pairs = {split: rows[: 4 if split == "train" else 8] for split, rows in pairs.items()}
example = pairs["train"][0]
print("prompt:  ", example["prompt"][-1]["content"])
print("chosen:  ", example["chosen"][0]["content"], f"  (fields right: {example['scores'][0]:.2f})")
print(
    "rejected:", example["rejected"][0]["content"], f"  (fields right: {example['scores'][1]:.2f})"
)
pair_counts = {
    split: {
        "pairs": len(rows),
        "chosen fully right": sum(p["scores"][0] == 1 for p in rows),
        "mean chosen score": sum(p["scores"][0] for p in rows) / len(rows),
        "mean rejected score": sum(p["scores"][1] for p in rows) / len(rows),
    }
    for split, rows in pairs.items()
}
print(
    format_table(
        [{"split": s, **c} for s, c in pair_counts.items()],
        ["split", "pairs", "chosen fully right", "mean chosen score", "mean rejected score"],
        floats="{:.2f}",
    )
)

# %% [markdown]
# ## 2. The starting policy
# Preference tuning starts from an instruction-tuned model. Here that is Lab 03B's LoRA SFT
# recipe on the extraction task, stopped after 10 steps — the same run the pairs were sampled
# from (on this CPU it is reproduced exactly; on a GPU the pairs are slightly off-policy, which
# DPO allows). The adapter is saved: each preference run below starts from a fresh copy of it,
# and it is also the **reference model** DPO compares the policy with.

# %%
splits = {s: load_split("news_events", s) for s in ("train", "test")}
POLICY_SFT = replace(preference.POLICY_SFT, max_steps=2) if SMOKE else preference.POLICY_SFT
policy, sft_history = preference.train_policy(model, tokenizer, splits["train"], FIELDS, POLICY_SFT)
policy.save_pretrained(str(OUT / "adapter_sft"))
print(f"SFT: {sft_history['global_steps']} steps in {sft_history['seconds']:.0f} s")


def fresh_policy():
    """A trainable copy of the SFT adapter on a freshly loaded base: where each run starts."""
    release_memory()
    base, _ = load_model(PROFILE)
    return PeftModel.from_pretrained(base, str(OUT / "adapter_sft"), is_trainable=True)


# %% [markdown]
# ## 3. Task 11.1 — the DPO loss by hand
# DPO (Rafailov et al., 2023) never trains a reward model. It reads an **implicit reward** off
# the policy $\pi_\theta$ and a frozen reference $\pi_{ref}$ (here: the SFT adapter):
#
# $$r(x, y) = \beta \left[\log \pi_\theta(y \mid x) - \log \pi_{ref}(y \mid x)\right]$$
#
# and the loss asks the chosen answer's reward to beat the rejected one's:
#
# $$\mathcal{L} = -\log \sigma\big(r(x, y_{chosen}) - r(x, y_{rejected})\big)$$
#
# $\log \pi(y \mid x)$ is the sum of the log-probabilities of the answer's tokens after the
# prompt. Write `my_dpo_loss`: from four tensors of such sums (one value per pair) and β, return
# the loss per pair and the two rewards. The check compares it with TRL's loss on random values
# and on real log-probabilities of the validation pairs.


# %%
def my_dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta):
    """DPO's loss per pair and the implicit rewards: a dict with ``losses``,
    ``chosen_rewards`` and ``rejected_rewards`` (tensors, one value per pair)."""
    # BEGIN SOLUTION
    chosen_rewards = beta * (policy_chosen - reference_chosen)
    rejected_rewards = beta * (policy_rejected - reference_rejected)
    losses = -torch.nn.functional.logsigmoid(chosen_rewards - rejected_rewards)
    return {
        "losses": losses,
        "chosen_rewards": chosen_rewards,
        "rejected_rewards": rejected_rewards,
    }
    # END SOLUTION


# %%
check_dpo_loss(my_dpo_loss, policy, tokenizer, pairs["validation"])

# %% [markdown]
# ## 4. Task 11.2 — the loss before the first step
# Training starts with the policy equal to the reference (both are the SFT adapter). Predict the
# mean DPO loss on the validation pairs at that moment, to three decimals — it needs no
# computer. Then the cell measures it with the kit's scorer (the same log-probabilities TRL
# computes).

# %%
# BEGIN SOLUTION: PREDICTED_START_LOSS = ...  # a number
PREDICTED_START_LOSS = math.log(2)
# END SOLUTION

# %%
BETA_GRID = (0.1,) if SMOKE else (0.1, 0.5)  # β candidates (TRL's default is 0.1)
# the reference (the SFT policy) is frozen: its log-probabilities of every validation and test
# answer are computed once, and every policy below is compared with them
sft_logps = {
    split: preference.policy_logps(policy, tokenizer, pairs[split])
    for split in ("validation", "test")
}
start = preference.logp_preferences(sft_logps["validation"], sft_logps["validation"], BETA_GRID[0])
with checking("Task 11.2"):
    check_close("Task 11.2", PREDICTED_START_LOSS, start["loss"], 5e-3, "your predicted loss")
print(
    f"measured: loss {start['loss']:.4f}, preference accuracy {start['accuracy']:.2f} (every "
    f"margin is 0), the SFT policy alone finds the chosen answer likelier in "
    f"{start['policy_prefers_chosen']:.0%} of validation pairs"
)

# %% [markdown]
# ## 5. DPO with TRL
# `DPOTrainer` computes exactly the loss of Task 11.1 on each batch of training pairs. Given a
# model that already has a LoRA adapter, it keeps a frozen copy of that adapter as the
# reference, so the reference is the SFT policy. One epoch over the training pairs for each β;
# β is chosen on the **validation** pairs' preference accuracy (how often the chosen answer's
# implicit reward is above the rejected one's), and the test pairs wait for the comparison.
#
# What differs from the published recipes: TRL's `DPOConfig` defaults to β 0.1 and a learning
# rate of 1e-6, and Zephyr (Tunstall et al., 2023) ran DPO on a 7B model over about 64,000
# UltraFeedback pairs with every weight trainable. Here a LoRA adapter on a 135M model gets 37
# steps over 146 pairs, at a rate (5e-5) chosen for that.

# %%
DPO_RATE = 5e-5  # learning rate of the LoRA weights (DPO uses rates ~10-100x below SFT's)
train_pairs = Dataset.from_list(
    [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs["train"]]
)


def train_dpo(beta: float):
    """One DPO run from the SFT adapter; returns the trained model and its training log."""
    config = DPOConfig(
        **sft.trainer_defaults(policy),  # no checkpoints or reports, precision from the weights
        beta=beta,  # scale of the implicit reward: higher keeps the policy closer to the reference
        loss_type=["sigmoid"],  # the loss of Task 11.1 (TRL also has IPO, hinge, robust, ...)
        learning_rate=DPO_RATE,  # see above
        per_device_train_batch_size=4,  # pairs per step
        num_train_epochs=1,  # one pass over the training pairs
        seed=SEED,  # batch order
    )
    trainer = DPOTrainer(
        model=fresh_policy(),  # the SFT adapter, trainable; TRL freezes a copy as the reference
        args=config,
        train_dataset=train_pairs,  # prompt / chosen / rejected, conversational
        processing_class=tokenizer,  # applies the chat template
    )
    trainer.train()
    trained = trainer.model.eval()
    log = [
        {"step": e["step"], "loss": e["loss"], "reward accuracy": e.get("rewards/accuracies")}
        for e in trainer.state.log_history
        if "loss" in e
    ]
    return trained, log


dpo_runs = {}
for beta in BETA_GRID:
    started = time.perf_counter()
    trained, log = train_dpo(beta)
    score = preference.preference_scores(
        trained, tokenizer, pairs["validation"], beta, sft_logps["validation"]
    )
    dpo_runs[beta] = {"model": trained, "log": log, "validation": score}
    print(
        f"β {beta}: {len(log)} steps in {time.perf_counter() - started:.0f} s; validation "
        f"preference accuracy {score['accuracy']:.3f}, margin {score['margin']:.3f}"
    )
BETA = max(
    BETA_GRID,
    key=lambda b: (
        dpo_runs[b]["validation"]["accuracy"],
        dpo_runs[b]["validation"]["policy_prefers_chosen"],
    ),
)
dpo_model = dpo_runs[BETA]["model"]
for beta in BETA_GRID:
    if beta != BETA:
        del dpo_runs[beta]["model"]
print(f"chosen on validation: β = {BETA}")

# %% [markdown]
# ## 6. Task 11.3 — a reward a program can check
# GRPO needs no pairs: for each prompt it samples a group of answers, scores each with a
# **reward function**, and pushes up the answers that beat their group's mean. On this task a
# program can check an answer, so no learned reward model is needed.
#
# Write `my_reward`, the function `GRPOTrainer` calls with the sampled `completions` (each a list
# holding one assistant message, `{"role": "assistant", "content": ...}`) and the dataset's
# `target` column (the reference dicts). Per completion:
# - **0** when the text holds no JSON object (`parse_json_object` returns None);
# - otherwise **`PARSE_WEIGHT`** for parsing, plus `1 - PARSE_WEIGHT` times the share of the
#   four `FIELDS` whose value equals the reference's after `normalise_answer` (a missing field
#   reads as None).
#
# A reward that gives nothing for parsing would give a group of all-wrong answers nothing to
# learn from; one that pays mostly for parsing teaches format, not content.

# %%
PARSE_WEIGHT = 0.2  # reward for an answer that parses, before any field is right


def my_reward(completions, target, **kwargs) -> list[float]:
    """One reward per completion, in [0, 1]."""
    # BEGIN SOLUTION
    rewards = []
    for completion, truth in zip(completions, target, strict=True):
        answer = parse_json_object(completion[-1]["content"])
        if answer is None:
            rewards.append(0.0)
            continue
        right = sum(
            normalise_answer(answer.get(f)) == normalise_answer(truth.get(f)) for f in FIELDS
        )
        rewards.append(PARSE_WEIGHT + (1 - PARSE_WEIGHT) * right / len(FIELDS))
    return rewards
    # END SOLUTION


# %%
check_reward(my_reward, FIELDS, PARSE_WEIGHT, pairs["train"][:16], splits["train"])
reward = yours_or_kit("Task 11.3", my_reward, "reward function")

# %% [markdown]
# ## 7. GRPO with TRL
# Each step takes 2 training prompts, samples 4 answers for each, rewards them, and takes a
# policy-gradient step in which an answer's weight is its reward minus its group's mean, divided
# by the group's spread. Sampling makes a step slow on a CPU, so this run is short: read the
# reward curve for what it reached.
#
# TRL's `GRPOConfig` defaults to 8 answers per prompt at temperature 1.0, a rate of 1e-6 and no
# KL penalty; this run samples 4 per prompt at 0.9, with a rate of 2e-5, to fit a CPU.

# %%
GRPO_STEPS = 1 if SMOKE else 16  # optimizer steps
grpo_prompts = Dataset.from_list(
    [
        {"prompt": sft.extraction_messages(row, FIELDS, with_answer=False), "target": row["target"]}
        for row in splits["train"][-160:]  # the sentences the training pairs came from
    ]
)
grpo_config = GRPOConfig(
    **sft.trainer_defaults(policy),  # no checkpoints or reports, precision from the weights
    learning_rate=2e-5,  # of the LoRA weights
    max_steps=GRPO_STEPS,  # see above
    per_device_train_batch_size=8,  # completions per step: 2 prompts x 4 answers
    num_generations=4,  # answers sampled per prompt: the group its advantage is measured in
    max_completion_length=64,  # new tokens per answer (the longest reference needs ~45)
    temperature=0.9,  # sampling temperature: the answers of a group must differ to teach
    seed=SEED,  # prompt order and sampling
)
started = time.perf_counter()
grpo_trainer = GRPOTrainer(
    model=fresh_policy(),  # the SFT adapter, trainable
    reward_funcs=reward,  # Task 11.3 (or the kit's, if unfinished)
    args=grpo_config,
    train_dataset=grpo_prompts,  # prompts, and the target column the reward reads
    processing_class=tokenizer,
)
grpo_trainer.train()
grpo_model = grpo_trainer.model.eval()
grpo_log = [
    {"step": e["step"], "reward": e["reward"], "reward std": e.get("reward_std")}
    for e in grpo_trainer.state.log_history
    if "reward" in e
]
grpo_seconds = time.perf_counter() - started
print(f"GRPO: {GRPO_STEPS} steps in {grpo_seconds:.0f} s")
rewards = [e["reward"] for e in grpo_log]
show(
    plot_lines(
        {"GRPO: mean reward of the step's answers": ([e["step"] for e in grpo_log], rewards)},
        OUT / "grpo_reward.png",
        title="GRPO on the extraction task",
        xlabel="step",
        ylabel="reward",
    )
)
del grpo_trainer

# %% [markdown]
# ## 8. One comparison on the same test split
# Every model is scored the same way: on the **test pairs**, how often the policy alone finds
# the chosen answer likelier, the implicit reward's preference accuracy and margin against the
# SFT reference (at the chosen β), and the mean per-token KL divergence from the SFT policy
# along the chosen answers; on the **test sentences**, greedy answers scored by exact match
# (all four fields right), mean share of fields right, and length.

# %%
TEST_ROWS = splits["test"][:2] if SMOKE else splits["test"]
models = {"SFT": policy, f"SFT + DPO (β {BETA})": dpo_model, "SFT + GRPO": grpo_model}
comparison, started = [], time.perf_counter()
with policy.disable_adapter():
    base_task = preference.extraction_scores(policy, tokenizer, TEST_ROWS, FIELDS)
    base_pref = preference.preference_scores(policy, tokenizer, pairs["test"], BETA, policy)
comparison.append(
    {
        "model": "base (no adapter)",
        "policy prefers chosen": base_pref["policy_prefers_chosen"],
        "preference accuracy": None,
        "margin": None,
        "KL to SFT": None,
    }
    | {k: base_task[k] for k in ("exact_match", "field_score", "answer_chars")}
)
for name, candidate in models.items():
    trained = candidate is not policy
    scores = (
        preference.preference_scores(candidate, tokenizer, pairs["test"], BETA, sft_logps["test"])
        if trained
        else preference.logp_preferences(sft_logps["test"], sft_logps["test"], BETA)  # SFT itself
    )
    task = preference.extraction_scores(candidate, tokenizer, TEST_ROWS, FIELDS)
    comparison.append(
        {
            "model": name,
            "policy prefers chosen": scores["policy_prefers_chosen"],
            "preference accuracy": scores["accuracy"] if trained else None,
            "margin": scores["margin"] if trained else None,
            "KL to SFT": (
                preference.answer_kl(candidate, policy, tokenizer, pairs["test"])
                if trained
                else 0.0
            ),
        }
        | {k: task[k] for k in ("exact_match", "field_score", "answer_chars")}
    )
comparison_seconds = time.perf_counter() - started
print(
    f"{len(pairs['test'])} test pairs and {len(TEST_ROWS)} test sentences, four models: "
    f"{comparison_seconds:.0f} s"
)
COLUMNS = [
    "model",
    "policy prefers chosen",
    "preference accuracy",
    "margin",
    "KL to SFT",
    "exact_match",
    "field_score",
    "answer_chars",
]
shown = [{k: "—" if v is None else v for k, v in row.items()} for row in comparison]
print(format_table(shown, COLUMNS, floats="{:.3f}"))
show(
    plot_grouped_bars(
        [r["model"] for r in comparison],
        {
            "policy prefers chosen (test pairs)": [r["policy prefers chosen"] for r in comparison],
            "exact match (test)": [r["exact_match"] for r in comparison],
            "fields right (test)": [r["field_score"] for r in comparison],
        },
        OUT / "comparison.png",
        title="Lab 11: the same test split, four models",
    )
)

# %% [markdown]
# Reading the table:
# - **Preference accuracy** is what DPO optimises; on held-out pairs it shows whether the
#   preference generalised beyond the training pairs. Its standard error on a few dozen pairs is
#   several points: read small differences as noise.
# - **Policy prefers chosen** needs no reference, so it also reads for the base and SFT models.
# - **The task metric** is what the user sees. DPO raises the chosen answer's reward *relative*
#   to the rejected one's; it can do so while lowering both answers' probabilities (Pal et al.,
#   2024; Razin et al., 2025, "likelihood displacement"), and the greedy answer can then get
#   worse.
# - **Answer length**: preference-tuned models often grow longer answers (Park et al., 2024,
#   "Disentangling Length from Quality in DPO"); the `answer_chars` column measures it here.

# %%
n_pairs = len(pairs["test"])
sft_row, dpo_row, grpo_row = comparison[1], comparison[2], comparison[3]
results = {
    "pairs_table": [{"split": split, **counts} for split, counts in pair_counts.items()],
    "test_pairs": n_pairs,
    "test_sentences": len(TEST_ROWS),
    "sft": {k: v for k, v in sft_history.items() if k != "steps"},
    "start": start,
    "beta_search": [{"beta": b, **dpo_runs[b]["validation"]} for b in BETA_GRID],
    "beta": BETA,
    "dpo_log": dpo_runs[BETA]["log"],
    "grpo_log": grpo_log,
    "grpo_seconds": grpo_seconds,
    "comparison_seconds": comparison_seconds,
    "comparison": comparison,
}
run_info = finish_lab(
    LAB,
    results,
    lab_start,
    config={
        "profile": PROFILE,
        "smoke": SMOKE,
        "betas": list(BETA_GRID),
        "dpo_rate": DPO_RATE,
        "grpo_steps": GRPO_STEPS,
        "sft": POLICY_SFT.to_dict(),
    },
    seed=SEED,
    device=hardware.device,
    dtype=next(policy.parameters()).dtype,
    model_fingerprint=BASE_FINGERPRINT,
)

# %% [markdown]
# ## Hand in
# Hand in the DPO adapter (or the GRPO one: `SUBMIT = "GRPO"` in the parameters cell). The
# grader merges it into the base model and scores it on preference pairs it keeps back, sampled
# the same way from sentences no split here uses: the share of pairs whose chosen answer gets
# the higher implicit reward, read against the same SFT policy as section 5, with forward
# passes only — as `preference accuracy` above. It also measures how far the adapter moved from
# that policy on the held-out answers (the mean |log-probability ratio| per answer token) and
# refuses an adapter that moved much further than DPO does, such as one that leaves the base
# model as it was: preference tuning starts from the SFT policy and stays near it.

# %%
handed_in = {"DPO": dpo_model, "GRPO": grpo_model}[SUBMIT]
if "ref" in handed_in.peft_config:  # DPO's frozen copy of the SFT adapter: not handed in
    handed_in.delete_adapter("ref")
handed_in.save_pretrained(str(OUT / "adapter_submitted"))
submission = make_submission(
    LAB,
    STUDENT_ID,
    {"adapter": OUT / "adapter_submitted"},
    run_info,
    base_model_id=get_profile(PROFILE).model_id,
    out_dir=OUT,
    training_config={
        "method": SUBMIT,
        "beta": BETA,
        "dpo_rate": DPO_RATE,
        "grpo_steps": GRPO_STEPS,
    },
    loss=[e["loss"] for e in dpo_runs[BETA]["log"]] if SUBMIT == "DPO" else None,
)

# %% [markdown]
# Before you upload: the grader's own checks on the zip you just wrote, and your adapter run on a
# few public pairs (a zip the grader refuses scores 0). From a terminal:
# `python grading/run.py --check <your zip>`.

# %%
from grading.run import check_submission

verdict = check_submission(submission, base=PROFILE)  # prints the verdict

# %% [markdown]
# ## Takeaways
# The numbers below are this run's.

# %%
stderr = math.sqrt(0.25 / max(1, n_pairs))
print(
    f"- DPO (β {BETA}) puts the chosen answer's implicit reward above the rejected one's on "
    f"{dpo_row['preference accuracy']:.0%} of {n_pairs} held-out test pairs, where chance is 50 % "
    f"(one standard error ≈ {stderr:.0%}): "
    + (
        "a held-out gain."
        if dpo_row["preference accuracy"] - 0.5 > 2 * stderr
        else "within two standard errors of chance."
    )
    + f" The policy alone finds the chosen answer likelier on "
    f"{dpo_row['policy prefers chosen']:.0%} of them (SFT: {sft_row['policy prefers chosen']:.0%})."
)
print(
    f"- Exact match on {len(TEST_ROWS)} test sentences: base {comparison[0]['exact_match']:.2f}, "
    f"SFT {sft_row['exact_match']:.2f}, DPO {dpo_row['exact_match']:.2f}, "
    f"GRPO {grpo_row['exact_match']:.2f}; fields right: SFT {sft_row['field_score']:.2f}, "
    f"DPO {dpo_row['field_score']:.2f}, GRPO {grpo_row['field_score']:.2f}."
)
print(
    f"- Answer length (characters): SFT {sft_row['answer_chars']:.0f}, DPO "
    f"{dpo_row['answer_chars']:.0f}, GRPO {grpo_row['answer_chars']:.0f}."
)
half = max(1, len(rewards) // 4)
print(
    f"- GRPO's mean reward over its first {half} steps {sum(rewards[:half]) / half:.2f}, over its "
    f"last {half} {sum(rewards[-half:]) / half:.2f}, in {GRPO_STEPS} steps ({grpo_seconds:.0f} s)."
)

# %% [markdown]
# ## Go further
# 🐢 Train DPO on the right-over-wrong pairs only (`scores[0] == 1`) and compare the test
# table; 🐕 add `"sft"` to `loss_type` (RPO: an NLL term on the chosen answers) and see whether
# the task metric holds; 🦁 KTO (Ethayarajh et al., 2024) learns from single answers marked good
# or bad: split each pair into two rows (`prompt`, `completion`, `label`) and train TRL's
# `KTOTrainer` on the same data.
