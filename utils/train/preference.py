"""Preference tuning's measurable pieces: an answer's log-probability after its prompt, the DPO loss
with its implicit reward, and preference accuracy on held-out pairs.

Pairs are in TRL's conversational form, ``{"prompt": [messages], "chosen": [assistant message],
"rejected": [assistant message]}``, and are tokenized as TRL's ``DPOTrainer`` tokenizes them
(the prompt with the generation prompt; an answer is what follows where the prompt and the prompt
plus that answer stop sharing tokens), so the numbers here are the trainer's numbers: the tests
check the loss, rewards and log-probabilities against its own on the same batch. The DPO objective
is Rafailov et al. (2023), "Direct Preference Optimization: Your Language Model is Secretly a
Reward Model".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from utils.data.batching import pad_batch
from utils.eval.decoding import sample_completions_batch
from utils.eval.metrics import (
    decoder_and_head,
    evaluate_extraction,
    field_scores,
    parse_json_object,
)
from utils.train.params import add_peft_lora
from utils.train.sft import (
    SFTSettings,
    build_trainer,
    chat_dataset,
    extraction_messages,
    extraction_prompts,
    train,
)

# The policy preference tuning starts from, and the bundled pairs were sampled from: Lab 03B's
# LoRA SFT recipe on the extraction task, stopped early (10 steps) so that its answers still differ
# enough to be ranked (tools/make_preference_pairs.py).
POLICY_SFT = SFTSettings(max_steps=10, batch_size=8, learning_rate=1e-3)


def train_policy(
    model, tokenizer, rows: Sequence[dict], fields: Sequence[str], settings=POLICY_SFT
):
    """A LoRA adapter on ``model`` trained on extraction ``rows`` with ``settings``: the SFT
    policy. Returns the PEFT model in eval mode and the training history."""
    model = add_peft_lora(model, **settings.lora_arguments())
    data = chat_dataset(rows, tokenizer, lambda row: extraction_messages(row, fields))
    history = train(build_trainer(model, tokenizer, data, settings))
    model.eval()
    return model, history


def answer_score(answer: str, target: dict, fields: Sequence[str]) -> float:
    """The share of ``fields`` an extraction answer gets right (0 for text that is not a JSON
    object): the ranking on-policy pairs are made from."""
    scores = field_scores([answer], [target], fields)["field_accuracy"]
    return sum(scores.values()) / len(fields)


def extraction_scores(
    model, tokenizer, rows: Sequence[dict], fields: Sequence[str], progress: bool = True
) -> dict:
    """Greedy answers to extraction ``rows`` (``evaluate_extraction``), scored three ways: exact
    match (every field right), the mean ``answer_score`` and the mean answer length in
    characters; with the answers."""
    prompts = extraction_prompts(tokenizer, rows, fields)
    targets = [row["target"] for row in rows]
    out = evaluate_extraction(model, tokenizer, prompts, targets, fields, progress=progress)
    answers = out["outputs"]
    scores = [answer_score(a, t, fields) for a, t in zip(answers, targets, strict=True)]
    return {
        "exact_match": out["exact_match"],
        "field_score": sum(scores) / len(scores),
        "answer_chars": sum(len(a) for a in answers) / len(answers),
        "answers": answers,
    }


def on_policy_pairs(
    model,
    tokenizer,
    rows: Sequence[dict],
    fields: Sequence[str],
    samples: int = 4,
    seed: int = 0,
    max_new_tokens: int = 64,
    temperature: float = 0.9,
    right_chosen: bool = False,
) -> tuple[list[dict], dict]:
    """Preference pairs from the model's own answers to extraction ``rows``: ``samples`` sampled
    answers per prompt (``utils.eval.decoding.sample_completions_batch``), scored by
    ``answer_score``; where they differ, the best-scored answer is ``chosen`` and the worst
    ``rejected`` (the first sampled on a tie). ``right_chosen``: pair only where the best answer
    gets every field right (a right answer over a wrong one, never a less-wrong one). Returns the
    pairs and counts: prompts, pairs, prompts whose answers all scored the same, prompts left
    out for having no right answer, and the mean score."""
    prompts = extraction_prompts(tokenizer, rows, fields)
    sampled = sample_completions_batch(
        model, tokenizer, prompts, samples, max_new_tokens, temperature, seed=seed
    )
    pairs, same, none_right, total = [], 0, 0, 0.0
    for row, answers in zip(rows, sampled, strict=True):
        scores = [answer_score(a, row["target"], fields) for a in answers]
        total += sum(scores) / len(scores)
        best = max(range(len(answers)), key=lambda i: (scores[i], -i))
        worst = min(range(len(answers)), key=lambda i: (scores[i], i))
        if scores[best] == scores[worst]:
            same += 1
            continue
        if right_chosen and scores[best] < 1:
            none_right += 1
            continue
        pairs.append(
            {
                "prompt": extraction_messages(row, fields, with_answer=False),
                "chosen": [{"role": "assistant", "content": answers[best].strip()}],
                "rejected": [{"role": "assistant", "content": answers[worst].strip()}],
                "scores": [scores[best], scores[worst]],
                "id": row["id"],
            }
        )
    counts = {
        "prompts": len(rows),
        "pairs": len(pairs),
        "all answers scored the same": same,
        "no right answer": none_right,
        "mean answer score": total / max(1, len(rows)),
    }
    return pairs, counts


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def chat_ids(tokenizer, messages: list[dict], generation_prompt: bool = False) -> list[int]:
    """Token ids of ``messages`` under the tokenizer's chat template."""
    ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=generation_prompt, tokenize=True, return_dict=True
    )["input_ids"]
    return list(ids)


def pair_tokens(tokenizer, pair: dict) -> dict[str, list[int]]:
    """``prompt_ids``, ``chosen_ids`` and ``rejected_ids`` of one pair, split as TRL's
    ``DPOTrainer`` splits them (the answers keep the template's end-of-turn tokens)."""
    prompt = chat_ids(tokenizer, pair["prompt"], generation_prompt=True)
    chosen = chat_ids(tokenizer, pair["prompt"] + pair["chosen"])
    rejected = chat_ids(tokenizer, pair["prompt"] + pair["rejected"])
    start = min(common_prefix_length(prompt, chosen), common_prefix_length(prompt, rejected))
    return {
        "prompt_ids": prompt[:start],
        "chosen_ids": chosen[start:],
        "rejected_ids": rejected[start:],
    }


def answer_batches(
    prompts: Sequence[list[int]], answers: Sequence[list[int]], batch_size: int, device
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(ids, attention mask, answer mask)`` per batch of prompt + answer rows, right-padded; the
    answer mask marks the positions whose next token is an answer token."""
    for start in range(0, len(prompts), batch_size):
        chunk = list(zip(prompts[start : start + batch_size], answers[start : start + batch_size]))
        ids, mask = pad_batch([p + a for p, a in chunk], 0)
        answer_mask = torch.zeros(ids.shape[0], ids.shape[1] - 1)
        for row, (prompt, answer) in enumerate(chunk):
            answer_mask[row, len(prompt) - 1 : len(prompt) - 1 + len(answer)] = 1
        yield ids.to(device), mask.to(device), answer_mask.to(device)


def answer_distributions(model, ids, mask, rows, cols) -> torch.Tensor:
    """Log-probabilities over the vocabulary at positions ``(rows, cols)`` of a batch (one row
    each, float32): only those positions go through the LM head."""
    decoder, head = decoder_and_head(model)
    hidden = decoder(input_ids=ids, attention_mask=mask)[0]
    return head(hidden[rows, cols]).float().log_softmax(-1)


def answer_logps(
    model, prompts: Sequence[list[int]], answers: Sequence[list[int]], batch_size: int = 8
) -> torch.Tensor:
    """Sum over each answer's tokens of log p(token | everything before it): one value per
    (prompt, answer), in float32, with gradients when the model has them and they are on. Only
    the answer's positions go through the LM head (the prompt's logits are never needed)."""
    device = next(model.parameters()).device
    totals = []
    for ids, mask, answer_mask in answer_batches(prompts, answers, batch_size, device):
        rows, cols = answer_mask.nonzero(as_tuple=True)
        logps = answer_distributions(model, ids, mask, rows, cols)
        token_logps = logps.gather(1, ids[rows, cols + 1][:, None]).squeeze(1)
        totals.append(torch.zeros(ids.shape[0], device=device).index_add(0, rows, token_logps))
    return torch.cat(totals) if totals else torch.zeros(0)


def pair_logps(model, tokens: Sequence[dict], batch_size: int = 8) -> dict[str, torch.Tensor]:
    """``answer_logps`` of the chosen and of the rejected answers of pairs already split by
    ``pair_tokens``: ``{"chosen": tensor, "rejected": tensor}``, one value per pair."""
    prompts = [t["prompt_ids"] for t in tokens]
    return {
        which: answer_logps(model, prompts, [t[f"{which}_ids"] for t in tokens], batch_size)
        for which in ("chosen", "rejected")
    }


@torch.no_grad()
def policy_logps(model, tokenizer, pairs: Sequence[dict], batch_size: int = 8) -> dict:
    """``pair_logps`` of ``pairs`` under ``model``, for ``preference_scores``'s ``reference``:
    a frozen reference scored once, however many policies are compared with it."""
    return pair_logps(model, [pair_tokens(tokenizer, pair) for pair in pairs], batch_size)


@torch.no_grad()
def answer_kl(model, reference, tokenizer, pairs: Sequence[dict], batch_size: int = 8) -> float:
    """Mean per-token KL(policy || reference) between the two models' next-token distributions
    along the pairs' chosen answers (teacher-forced): how far training moved the policy, where
    the task's answers are. ``reference`` None: ``model`` with its adapter off."""
    tokens = [pair_tokens(tokenizer, pair) for pair in pairs]
    prompts, answers = [t["prompt_ids"] for t in tokens], [t["chosen_ids"] for t in tokens]
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for ids, mask, answer_mask in answer_batches(prompts, answers, batch_size, device):
        rows, cols = answer_mask.nonzero(as_tuple=True)
        policy = answer_distributions(model, ids, mask, rows, cols)
        if reference is None:
            with model.disable_adapter():
                ref = answer_distributions(model, ids, mask, rows, cols)
        else:
            ref = answer_distributions(reference, ids, mask, rows, cols)
        total += float((policy.exp() * (policy - ref)).sum())
        count += len(rows)
    return total / max(count, 1)


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
) -> dict[str, torch.Tensor]:
    """DPO's sigmoid loss per pair, and the implicit rewards it reads: an answer's reward is
    ``beta`` times how much likelier the policy makes it than the reference (log ratio), and the
    loss is ``-log sigmoid(reward(chosen) - reward(rejected))``."""
    chosen = beta * (policy_chosen - reference_chosen)
    rejected = beta * (policy_rejected - reference_rejected)
    return {
        "losses": -F.logsigmoid(chosen - rejected),
        "chosen_rewards": chosen,
        "rejected_rewards": rejected,
    }


@torch.no_grad()
def preference_scores(
    model, tokenizer, pairs: Sequence[dict], beta: float, reference=None, batch_size: int = 8
) -> dict:
    """On held-out ``pairs``: the mean DPO loss, preference accuracy (the chosen answer's
    implicit reward above the rejected one's), the mean reward margin, how often the policy alone
    finds the chosen answer likelier (no reference in it, so it means something before training
    too), and the policy's mean log-probabilities of both answers. ``reference``: a frozen model,
    e.g. the SFT model DPO started from (TRL's reference when it is given a model that already
    has an adapter), or its ``policy_logps`` on the same pairs, computed once; None: ``model``
    with its PEFT adapter off, the base (TRL's reference when it adds the adapter)."""
    tokens = [pair_tokens(tokenizer, pair) for pair in pairs]
    policy = pair_logps(model, tokens, batch_size)
    if isinstance(reference, dict):
        if len(reference["chosen"]) != len(tokens):
            raise ValueError(
                f"the reference's log-probabilities cover {len(reference['chosen'])} pairs, "
                f"not these {len(tokens)}"
            )
        ref = reference
    elif reference is model:  # the policy against itself: the same numbers, not a second pass
        ref = policy
    elif reference is None:
        with model.disable_adapter():
            ref = pair_logps(model, tokens, batch_size)
    else:
        ref = pair_logps(reference, tokens, batch_size)
    return logp_preferences(policy, ref, beta)


def logp_preferences(
    policy: dict[str, torch.Tensor],
    reference: dict[str, torch.Tensor],
    beta: float,
    tie: float = 0.0,
) -> dict:
    """``preference_scores`` from the answers' log-probabilities (``pair_logps`` of the policy
    and of the reference): what the lab and the grader both report. A pair counts as preferred
    when its reward margin is above ``tie`` (the grader's 1e-3: merging an adapter into the base
    moves log-probabilities by ~1e-6, which must not count as a preference)."""
    out = dpo_loss(
        policy["chosen"], policy["rejected"], reference["chosen"], reference["rejected"], beta
    )
    margins = out["chosen_rewards"] - out["rejected_rewards"]
    return {
        "loss": float(out["losses"].mean()),
        "accuracy": float((margins > tie).float().mean()),
        "margin": float(margins.mean()),
        "policy_prefers_chosen": float((policy["chosen"] > policy["rejected"]).float().mean()),
        "logps_chosen": float(policy["chosen"].mean()),
        "logps_rejected": float(policy["rejected"].mean()),
        "pairs": len(margins),
    }


def extraction_reward(fields: Sequence[str], parse_weight: float = 0.2):
    """A reward a program can check, for RL on the extraction task (TRL's ``GRPOTrainer`` calls
    it with the sampled ``completions`` and the dataset's ``target`` column): 0 for an answer
    that is not a JSON object; otherwise ``parse_weight`` for parsing plus the rest in
    proportion to the fields it gets right (``answer_score``). Completions may be text or
    conversational (a list holding the assistant message)."""
    if not 0 <= parse_weight <= 1:
        raise ValueError(f"parse_weight must be in [0, 1], got {parse_weight}")

    def extraction_reward(completions, target, **_) -> list[float]:
        rewards = []
        for completion, truth in zip(completions, target, strict=True):
            text = completion if isinstance(completion, str) else completion[-1]["content"]
            if parse_json_object(text) is None:
                rewards.append(0.0)
                continue
            rewards.append(parse_weight + (1 - parse_weight) * answer_score(text, truth, fields))
        return rewards

    return extraction_reward
