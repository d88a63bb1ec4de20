"""The evaluation core: one function per task type, used the same way before and after training.

- ``score_candidates`` / ``evaluate_classification``: log-likelihood of each label word.
- ``generate_batch`` / ``exact_match`` / ``field_scores``: batched greedy generation
  (``utils.eval.decoding``), optionally checked against drafts (the references) to decode less.
- ``perplexity`` / ``block_perplexity``: exp of the mean token negative log-likelihood (texts /
  packed blocks).

All are deterministic for the same inputs (fixed order, fixed batches, no sampling).
"""

from __future__ import annotations

import copy
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from utils.data.batching import batches, pad_batch
from utils.data.prompting import Prompt
from utils.eval.decoding import greedy_decode


class ScaledHead(torch.nn.Module):
    """An LM head followed by what the model's own forward does to its logits (Cohere and
    Granite scale them, Gemma 2 and later cap them with a tanh), so logits computed from the
    body's hidden states equal the model's."""

    def __init__(self, head, scale: float = 1.0, softcap: float | None = None):
        super().__init__()
        self.head, self.scale, self.softcap = head, scale, softcap

    @property
    def weight(self) -> torch.Tensor:
        return self.head.weight

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.head(hidden)
        if self.scale != 1.0:
            logits = logits * self.scale
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits


def decoder_and_head(model):
    """The transformer body and the LM head, so logits are computed only where they are needed;
    the head applies the model's own logit scaling or capping where its config sets one."""
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    config = model.config.get_text_config()
    scale = float(getattr(config, "logit_scale", None) or 1.0)  # Cohere multiplies
    scale /= float(getattr(config, "logits_scaling", None) or 1.0)  # Granite, MiniCPM3 divide
    softcap = getattr(config, "final_logit_softcapping", None)  # Gemma 2 and later
    if scale == 1.0 and not softcap:
        return decoder, head
    return decoder, ScaledHead(head, scale, softcap)


def _encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


@torch.inference_mode()
def prefix_cache(decoder, prefix_ids: list[int], past=None):
    """Run the shared prefix once and return its key/value cache (None for an empty prefix);
    with ``past``, a copy of that cache extended by the prefix (``past`` itself is untouched)."""
    past = copy.deepcopy(past) if past is not None else None
    if not prefix_ids:
        return past
    device = decoder.get_input_embeddings().weight.device  # a GPU profile's model: inputs there
    ids = torch.tensor([prefix_ids], device=device)
    return decoder(input_ids=ids, past_key_values=past, use_cache=True).past_key_values


@torch.inference_mode()
def row_logprobs(
    model,
    rows: list[list[int]],
    groups: list[list[list[tuple[int, int]]]],
    prefix_ids: list[int],
    cache,
    pad_id: int,
) -> list[list[float]]:
    """For each row, the sum of log p(token | row[:pos+1]) over each of its candidates'
    (position, token) targets, in one forward: candidates that share a row share its pass."""
    decoder, head = decoder_and_head(model)
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), len(prefix_ids) + width), dtype=torch.long)
    mask[:, : len(prefix_ids)] = 1
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, len(prefix_ids) : len(prefix_ids) + len(row)] = 1
    past = None
    if cache is not None:
        past = copy.deepcopy(cache)
        past.batch_repeat_interleave(len(rows))
    device = head.weight.device
    hidden = decoder(
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        past_key_values=past,
        use_cache=past is not None,
    )[0]
    # the positions any candidate needs, each through the LM head once
    needed = sorted({(i, p) for i, group in enumerate(groups) for t in group for p, _ in t})
    where = {key: n for n, key in enumerate(needed)}
    logprobs = torch.log_softmax(
        head(hidden[[i for i, _ in needed], [p for _, p in needed]]).float(), dim=-1
    )
    logprobs = logprobs.cpu()
    return [
        [sum(float(logprobs[where[(i, p)], tok]) for p, tok in t) for t in group]
        for i, group in enumerate(groups)
    ]


def _plan_rows(suffix_ids: list[int], cand_ids: list[list[int]]):
    """Rows to run for one prompt: candidates sharing all but their last token share a row."""
    rows: dict[tuple[int, ...], list[tuple[int, list[tuple[int, int]]]]] = {}
    for c, cand in enumerate(cand_ids):
        row = tuple(suffix_ids + cand[:-1])
        start = len(suffix_ids) - 1
        rows.setdefault(row, []).append((c, [(start + j, tok) for j, tok in enumerate(cand)]))
    return rows


@torch.inference_mode()
def score_candidates(
    model,
    tokenizer,
    prompts: Sequence[Prompt],
    batch_size: int = 16,
    normalize: bool = False,
    progress: bool = True,
) -> list[list[float]]:
    """Log-likelihood of every candidate continuation of every prompt.

    Prompts that share a prefix (the instruction and demonstrations) reuse one key/value cache for
    it, so k-shot costs little more than zero-shot. Set ``normalize`` to divide by candidate length.
    """
    model.eval()
    decoder, _ = decoder_and_head(model)
    scores: list[list[float]] = [[0.0] * len(p.candidates) for p in prompts]
    by_prefix: dict[str, list[int]] = {}
    for i, prompt in enumerate(prompts):
        by_prefix.setdefault(prompt.prefix, []).append(i)
    cand_cache: dict[str, list[int]] = {}
    bar = tqdm(total=len(prompts), desc="scoring", disable=not progress, leave=False)
    for prefix, members in by_prefix.items():
        prefix_ids = _encode(tokenizer, prefix)
        cache = prefix_cache(decoder, prefix_ids)
        work = []  # (row ids, prompt index, [(candidate index, targets)])
        for i in members:
            suffix_ids = _encode(tokenizer, prompts[i].suffix)
            if not suffix_ids:
                raise ValueError(
                    f"prompt {i} has an empty suffix: the query must follow the prefix"
                )
            cands = [cand_cache.setdefault(c, _encode(tokenizer, c)) for c in prompts[i].candidates]
            for row, group in _plan_rows(suffix_ids, cands).items():
                work.append((list(row), i, group))
        work.sort(key=lambda w: len(w[0]))  # similar lengths together: less padding
        for start in range(0, len(work), batch_size):
            chunk = work[start : start + batch_size]
            sums = row_logprobs(
                model,
                [row for row, _, _ in chunk],
                [[t for _, t in group] for _, _, group in chunk],
                prefix_ids,
                cache,
                tokenizer.pad_token_id,
            )
            for (_, i, group), values in zip(chunk, sums, strict=True):
                for (c, t), value in zip(group, values, strict=True):
                    scores[i][c] = value / len(t) if normalize else value
            bar.update(len({w[1] for w in chunk}))
    bar.close()
    return scores


def majority_share(labels: Sequence[str]) -> float:
    """What answering the most common label every time scores on ``labels`` (a classifier's
    floor: accuracy below it learned nothing a constant answer does not)."""
    if not labels:
        raise ValueError("no labels: the majority share of nothing is undefined")
    return Counter(labels).most_common(1)[0][1] / len(labels)


def classification_metrics(predictions: list[str], gold: list[str], labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1, per-label recall and the confusion counts."""
    if len(predictions) != len(gold) or not gold:
        raise ValueError("predictions and gold must be non-empty and of equal length")
    confusion = Counter(zip(gold, predictions, strict=True))
    f1s, recall = [], {}
    for label in labels:
        tp = confusion[(label, label)]
        n_gold = sum(1 for g in gold if g == label)
        n_pred = sum(1 for p in predictions if p == label)
        recall[label] = tp / n_gold if n_gold else 0.0
        f1s.append(2 * tp / (n_gold + n_pred) if n_gold + n_pred else 0.0)
    return {
        "accuracy": sum(p == g for p, g in zip(predictions, gold, strict=True)) / len(gold),
        "macro_f1": sum(f1s) / len(f1s),
        "recall": recall,
        "confusion": {f"{g}->{p}": n for (g, p), n in sorted(confusion.items())},
        "n": len(gold),
    }


def evaluate_classification(
    model,
    tokenizer,
    rows: list[dict],
    prompts: Sequence[Prompt],
    labels: Sequence[str],
    batch_size: int = 16,
    progress: bool = True,
) -> dict:
    """Predict the label whose word is most likely, for every row; return metrics + predictions."""
    if len(rows) != len(prompts):
        raise ValueError(f"{len(rows)} rows but {len(prompts)} prompts")
    scores = score_candidates(model, tokenizer, prompts, batch_size=batch_size, progress=progress)
    predictions = [labels[max(range(len(s)), key=s.__getitem__)] for s in scores]
    result = classification_metrics(predictions, [r["label"] for r in rows], labels)
    result["predictions"] = {r["id"]: p for r, p in zip(rows, predictions, strict=True)}
    return result


def _answer_logits(model, pairs: Sequence[tuple[list[int], list[int]]], pad_id: int):
    """For (prompt ids, answer ids) pairs, one right-padded forward pass; yields, row by row,
    the fp32 logits that predict each answer token from everything before it (LM head only
    there)."""
    decoder, head = decoder_and_head(model)
    ids, mask = pad_batch([p + a for p, a in pairs], pad_id)  # right: positions start at 0
    device = head.weight.device
    hidden = decoder(input_ids=ids.to(device), attention_mask=mask.to(device))[0]
    spans = [range(len(p) - 1, len(p) + len(a) - 1) for p, a in pairs]
    picked = hidden[
        [row for row, span in enumerate(spans) for _ in span], [j for span in spans for j in span]
    ]
    yield from (
        head(picked).float().split([len(span) for span in spans])
    )  # one LM-head product per batch


def generate_batch(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int = 64,
    batch_size: int = 16,
    progress: bool = True,
    drafts: Sequence[str] | None = None,
) -> list[str]:
    """Greedy completions of ``prompts`` (batches of similar length, stops at eos; pad must differ
    from eos). On a CPU they are decoded by ``utils.eval.decoding.greedy_decode``: the shared prompt
    prefix runs once and finished rows leave the batch. On a GPU, where decoding is bound by memory
    rather than compute, ``model.generate`` (and Unsloth's fast inference path) does it.

    ``drafts`` (one guess per prompt, e.g. the reference answers) make CPU decoding faster without
    changing what it returns: each forward pass checks several draft tokens at once against the
    model's argmax, and one-token-per-pass decoding runs only from where the model parts from its
    draft (speculative decoding with the draft as the guess). A GPU ignores them.
    """
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        raise ValueError(
            "generate_batch needs a pad token distinct from eos (see "
            "utils.runtime.models.set_special_tokens)"
        )
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if drafts is not None and len(drafts) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(drafts)} drafts")
    model.eval()
    if model.get_output_embeddings().weight.device.type != "cpu":
        return hf_generate_batch(model, tokenizer, prompts, max_new_tokens, batch_size, progress)
    prompt_ids = [_encode(tokenizer, p) for p in prompts]
    guesses = (
        None
        if drafts is None
        else [_encode(tokenizer, d) + [tokenizer.eos_token_id] for d in drafts]
    )
    new = greedy_decode(
        model,
        prompt_ids,
        max_new_tokens,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
        drafts=guesses,
        batch_size=batch_size,
        progress=progress,
    )
    return [tokenizer.decode(tokens, skip_special_tokens=True).strip() for tokens in new]


@torch.inference_mode()
def hf_generate_batch(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int = 64,
    batch_size: int = 16,
    progress: bool = True,
) -> list[str]:
    """Greedy completions with ``model.generate`` on left-padded batches of prompts sorted by length
    (``generate_batch``'s path on a GPU; on a CPU the slower reference it is tested against)."""
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list[str] = [""] * len(prompts)
    device = model.get_output_embeddings().weight.device
    try:
        for start in tqdm(
            range(0, len(order), batch_size), desc="generating", disable=not progress, leave=False
        ):
            idx = order[start : start + batch_size]
            enc = tokenizer(
                [prompts[i] for i in idx],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            ).to(device)
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            texts = tokenizer.batch_decode(
                out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True
            )
            for i, text in zip(idx, texts, strict=True):
                outputs[i] = text.strip()
    finally:
        tokenizer.padding_side = side
    return outputs


def parse_json_object(text: str) -> dict | None:
    """The first JSON object in ``text``, or None if there is none."""
    start = text.find("{")
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def normalise_answer(value: object) -> object:
    """Compare answers like SQuAD does: case-folded, whitespace folded, outer punctuation dropped.
    ``None`` (JSON null) stays ``None``; non-strings are kept as they are."""
    if not isinstance(value, str):
        return value
    return re.sub(r"\s+", " ", value).strip().strip(".,;:!?\"'").strip().casefold()


def field_scores(
    predictions: Sequence[str], references: Sequence[dict], fields: Sequence[str]
) -> dict:
    """JSON validity, exact match of all fields, and per-field accuracy for structured outputs.

    A field matches when its normalised value equals the reference's (``normalise_answer``); an
    output that is not a JSON object matches nothing.
    """
    if len(predictions) != len(references) or not references:
        raise ValueError("predictions and references must be non-empty and of equal length")
    parsed = [parse_json_object(p) for p in predictions]

    def same(pred: dict | None, ref: dict, name: str) -> bool:
        return pred is not None and normalise_answer(pred.get(name)) == normalise_answer(
            ref.get(name)
        )

    per_field = {
        f: sum(same(p, r, f) for p, r in zip(parsed, references, strict=True)) / len(references)
        for f in fields
    }
    exact = [all(same(p, r, f) for f in fields) for p, r in zip(parsed, references, strict=True)]
    return {
        "json_valid": sum(p is not None for p in parsed) / len(parsed),
        "exact_match": sum(exact) / len(references),
        "field_accuracy": per_field,
        "n": len(references),
        "correct": exact,
    }


def target_json(target: dict, fields: Sequence[str]) -> str:
    """The canonical answer string for an extraction target (keys in ``fields`` order)."""
    return json.dumps({name: target[name] for name in fields}, ensure_ascii=False)


def evaluate_extraction(
    model,
    tokenizer,
    prompts: Sequence[str],
    references: Sequence[dict],
    fields: Sequence[str],
    max_new_tokens: int = 64,
    batch_size: int = 16,
    progress: bool = True,
) -> dict:
    """Greedy-generate an answer for every prompt and score it with ``field_scores``.
    (The references' canonical JSON serves as ``generate_batch``'s drafts: faster, same outputs;
    a field a reference lacks is drafted as null, as ``field_scores`` reads it.)"""
    drafts = [target_json({name: r.get(name) for name in fields}, fields) for r in references]
    outputs = generate_batch(
        model,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        progress=progress,
        drafts=drafts,
    )
    return {**field_scores(outputs, references, fields), "outputs": outputs}


def evaluate_label_generation(
    model,
    tokenizer,
    prompts: Sequence[str],
    gold: Sequence[str],
    labels: Sequence[str],
    batch_size: int = 16,
    progress: bool = True,
) -> dict:
    """Generate a short answer; its first word (normalised) must be the gold label.
    Answers that are no label count as wrong and are reported under ``invalid``.
    (The gold labels serve as ``generate_batch``'s drafts: faster, same outputs.)"""
    outputs = generate_batch(
        model,
        tokenizer,
        prompts,
        max_new_tokens=4,
        batch_size=batch_size,
        progress=progress,
        drafts=list(gold),
    )
    words = [normalise_answer((o.split() or [""])[0]) for o in outputs]
    return {
        "accuracy": sum(w == g for w, g in zip(words, gold, strict=True)) / len(gold),
        "invalid": sum(w not in labels for w in words) / len(gold),
        "n": len(gold),
        "outputs": outputs,
    }


@torch.inference_mode()
def teacher_forced_match(
    model,
    tokenizer,
    prompts: Sequence[str],
    answers: Sequence[str],
    batch_size: int = 16,
    append_eos: bool = True,
    progress: bool = True,
) -> dict:
    """Fraction of answers the model would generate exactly, from one forward pass each.

    Feed prompt + answer (+ eos) and check that the argmax at every answer position is the next
    answer token. That holds exactly when greedy decoding reproduces the answer token by token and
    then stops, so it equals greedy exact match on tokens without a generation loop: a cheap
    score for sweeps. ``append_eos=False`` checks a continuation without requiring the stop.
    Also returns the fraction of answer tokens predicted right and the mean answer-token loss,
    which still separate settings when few answers are right as a whole.
    """
    model.eval()
    correct, total_nll, total_tokens, right_tokens = [], 0.0, 0, 0
    stop = [tokenizer.eos_token_id] if append_eos else []
    pairs = [
        (_encode(tokenizer, p), _encode(tokenizer, a) + stop)
        for p, a in zip(prompts, answers, strict=True)
    ]
    for start in tqdm(
        range(0, len(pairs), batch_size), desc="teacher-forced", disable=not progress, leave=False
    ):
        chunk = pairs[start : start + batch_size]
        for (_, a), logits in zip(
            chunk, _answer_logits(model, chunk, tokenizer.pad_token_id), strict=True
        ):
            target = torch.tensor(a, device=logits.device)
            hits = logits.argmax(-1) == target
            correct.append(bool(hits.all()))
            right_tokens += int(hits.sum())
            total_nll += torch.nn.functional.cross_entropy(logits, target, reduction="sum").item()
            total_tokens += len(a)
    return {
        "exact_match": sum(correct) / len(correct),
        "token_accuracy": right_tokens / total_tokens,
        "answer_loss": total_nll / total_tokens,
        "n": len(correct),
        "correct": correct,
    }


def _next_token_nll(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[float, int]:
    """Summed next-token negative log-likelihood over positions whose token and target are both real
    (mask 1), and their count; LM-head logits only at those positions, the loss in fp32."""
    decoder, head = decoder_and_head(model)
    device = head.weight.device
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    hidden = decoder(input_ids=input_ids, attention_mask=attention_mask)[0]
    mask = (attention_mask[:, 1:] * attention_mask[:, :-1]).bool()
    logits = head(hidden[:, :-1][mask]).float()
    nll = torch.nn.functional.cross_entropy(logits, input_ids[:, 1:][mask], reduction="sum").item()
    return nll, int(mask.sum())


MAX_EXP_ARGUMENT = math.log(sys.float_info.max)  # ~709.8: e to more overflows a float


def _perplexity_result(total_nll: float, total_tokens: int) -> dict:
    if total_tokens == 0:
        raise ValueError("perplexity needs texts with at least two tokens")
    mean = total_nll / total_tokens
    perplexity = math.inf if mean >= MAX_EXP_ARGUMENT else math.exp(mean)  # NaN stays NaN
    return {"perplexity": perplexity, "nll_per_token": mean, "tokens": total_tokens}


@torch.inference_mode()
def perplexity(
    model,
    tokenizer,
    texts: Sequence[str],
    max_length: int = 512,
    batch_size: int = 8,
    progress: bool = True,
) -> dict:
    """Perplexity over all tokens of ``texts`` (each truncated to ``max_length``), summed
    exactly."""
    model.eval()
    total_nll, total_tokens = 0.0, 0
    for start in tqdm(
        range(0, len(texts), batch_size), desc="perplexity", disable=not progress, leave=False
    ):
        enc = tokenizer(
            list(texts[start : start + batch_size]),
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=max_length,
            add_special_tokens=False,
        )
        nll, count = _next_token_nll(model, enc["input_ids"], enc["attention_mask"])
        total_nll, total_tokens = total_nll + nll, total_tokens + count
    return _perplexity_result(total_nll, total_tokens)


@torch.inference_mode()
def block_perplexity(
    model, blocks: Sequence[Sequence[int]], batch_size: int = 8, progress: bool = False
) -> float:
    """Perplexity over every next-token prediction in equal-length token blocks (packed text, no
    padding); the model's train/eval mode is left as it was."""
    was_training = model.training
    model.eval()
    total_nll, total_tokens = 0.0, 0
    for start in tqdm(
        range(0, len(blocks), batch_size), desc="perplexity", disable=not progress, leave=False
    ):
        ids = torch.tensor([list(b) for b in blocks[start : start + batch_size]])
        nll, count = _next_token_nll(model, ids, torch.ones_like(ids))
        total_nll, total_tokens = total_nll + nll, total_tokens + count
    model.train(was_training)
    return _perplexity_result(total_nll, total_tokens)["perplexity"]


@torch.inference_mode()
def classifier_accuracy(
    logits_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    items: Sequence,
    labels: Sequence[int],
    batch_size: int = 32,
    pad_value=0,
) -> dict:
    """Accuracy and mean loss of a classifier over all ``items`` (fixed order: deterministic)."""
    correct, loss_sum, predictions = 0, 0.0, [0] * len(items)
    for padded, mask, gold, idx in batches(items, labels, batch_size, pad_value):
        logits = logits_fn(padded, mask).float()
        loss_sum += torch.nn.functional.cross_entropy(logits, gold, reduction="sum").item()
        predicted = logits.argmax(dim=-1)
        correct += int((predicted == gold).sum())
        for i, value in zip(idx, predicted.tolist(), strict=True):
            predictions[i] = value
    return {
        "accuracy": correct / len(items),
        "loss": loss_sum / len(items),
        "predictions": predictions,
        "n": len(items),
    }
