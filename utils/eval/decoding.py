"""Batched greedy decoding for evaluation, with less work than ``model.generate`` on a CPU.

On a CPU, decoding a batch of 64 is compute-bound: every token fed through the model costs about
the same, in the prompt or in the answer. So what saves time is feeding fewer tokens:

- the prompts' shared prefix (the system instruction) runs once, its key/value cache is copied;
- a row leaves the batch when it reaches eos or its token limit (``generate`` keeps computing it);
- optional **drafts** (a guess of each answer, e.g. the reference) are checked ``chunk`` tokens per
  forward pass: the model's argmax after every draft token shows how far greedy decoding would
  follow the draft; the row keeps what it follows plus the model's own next token, and decodes one
  token per pass once it parts from its draft (speculative decoding with a given guess).

Every row attends to exactly its own prompt and its own decided tokens at their own positions
(fed-but-rejected draft tokens and padding stay in the cache, masked out), so the result is greedy
decoding's, up to floating-point summation order — tests compare it with ``model.generate``.
``generate`` offers draft checking (prompt lookup, assistant models) for one sequence at a time
only, hence this loop.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm


@dataclass
class _Row:
    index: int
    pending: list[int]  # tokens decided but not yet in the cache (the prompt's own part at first)
    position: int  # position id of pending[0]
    draft: list[int]  # draft tokens not checked yet ([] once the model parts from its draft)
    out: list[int] = field(default_factory=list)  # the decoded tokens


def shared_prefix(rows: Sequence[Sequence[int]]) -> list[int]:
    """The longest common token prefix of ``rows``, leaving every row at least one token of its
    own."""
    if not rows:
        return []
    common = os.path.commonprefix([list(r) for r in rows])
    return list(common[: min(len(r) for r in rows) - 1])


@torch.inference_mode()
def greedy_decode(
    model,
    prompt_ids: Sequence[Sequence[int]],
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    drafts: Sequence[Sequence[int]] | None = None,
    batch_size: int = 16,
    chunk: int = 8,
    progress: bool = False,
) -> list[list[int]]:
    """Greedy new tokens for every prompt (token ids, each non-empty), ending with eos where the
    model stopped, at most ``max_new_tokens``; ``drafts`` are token-id guesses of the answers."""
    if any(len(p) == 0 for p in prompt_ids):
        raise ValueError("every prompt needs at least one token")
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    device = head.weight.device
    prefix = shared_prefix(prompt_ids)
    prefix_cache = (
        decoder(input_ids=torch.tensor([prefix], device=device), use_cache=True).past_key_values
        if prefix
        else None
    )
    guesses = (
        [list(d)[:max_new_tokens] for d in drafts]
        if drafts is not None
        else [[] for _ in prompt_ids]
    )
    order = sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i]) + len(guesses[i]))
    results: list[list[int]] = [[] for _ in prompt_ids]
    bar = tqdm(total=len(order), desc="generating", disable=not progress, leave=False)
    for start in range(0, len(order), batch_size):
        rows = [
            _Row(i, list(prompt_ids[i][len(prefix) :]), len(prefix), guesses[i])
            for i in order[start : start + batch_size]
        ]
        for row in _decode_rows(
            decoder, head, rows, prefix_cache, len(prefix), max_new_tokens, eos_id, pad_id, chunk
        ):
            results[row.index] = row.out
        bar.update(len(rows))
    bar.close()
    return results


def _decode_rows(
    decoder,
    head,
    rows: list[_Row],
    prefix_cache,
    prefix_len: int,
    max_new_tokens: int,
    eos_id: int,
    pad_id: int,
    chunk: int,
) -> list[_Row]:
    """Decode one batch of rows until each reaches eos or the limit; returns them all."""
    device = head.weight.device
    if prefix_cache is not None:
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(len(rows))
    else:
        cache = None
    mask = torch.ones((len(rows), prefix_len), dtype=torch.long, device=device)
    live = rows
    while live:
        feeds = [r.pending + r.draft[:chunk] for r in live]
        width = max(len(f) for f in feeds)
        ids = torch.full((len(live), width), pad_id, device=device)
        step_mask = torch.zeros((len(live), width), dtype=torch.long, device=device)
        for b, f in enumerate(feeds):
            ids[b, : len(f)] = torch.tensor(f, device=device)
            step_mask[b, : len(f)] = 1
        positions = torch.tensor([r.position for r in live], device=device)[:, None] + torch.arange(
            width, device=device
        )
        mask = torch.cat([mask, step_mask], dim=1)
        out = decoder(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
        )
        cache, hidden = out.past_key_values, out[0]
        keep, spans = (
            [],
            [range(len(r.pending) - 1, len(f)) for r, f in zip(live, feeds, strict=True)],
        )
        picked = hidden[
            [b for b, span in enumerate(spans) for _ in span], [j for span in spans for j in span]
        ]
        argmax = head(picked).argmax(-1).tolist()  # one LM-head product for the whole batch
        for b, (row, fed) in enumerate(zip(live, feeds, strict=True)):
            n_pending, checked = len(row.pending), fed[len(row.pending) :]
            predicted, argmax = argmax[: len(spans[b])], argmax[len(spans[b]) :]
            agree = next(
                (j for j, (p, d) in enumerate(zip(predicted, checked)) if p != d), len(checked)
            )
            mask[b, mask.shape[1] - width + n_pending + agree :] = (
                0  # rejected draft tokens and padding
            )
            row.out += checked[:agree] + [predicted[agree]]
            following = agree < len(row.draft) and row.draft[agree] == predicted[agree]
            row.draft = row.draft[agree + 1 :] if following else []
            row.position += n_pending + agree
            row.pending = [predicted[agree]]
            if eos_id in row.out:
                row.out = row.out[: row.out.index(eos_id) + 1]
            row.out = row.out[:max_new_tokens]
            if eos_id not in row.out and len(row.out) < max_new_tokens:
                keep.append(b)
        if keep and len(keep) < len(live):  # finished rows leave the batch and its cache
            cache.batch_select_indices(torch.tensor(keep, device=device))
            mask = mask[keep]
        live = [live[b] for b in keep]
    return rows


def sample_completions(
    model,
    tokenizer,
    prompt: str,
    n: int,
    max_new_tokens: int = 48,
    temperature: float = 0.9,
    top_p: float = 0.95,
    seed: int = 0,
) -> list[str]:
    """``n`` sampled completions of one ``prompt`` (nucleus sampling, one batch), reproducible for
    a given ``seed`` on the same machine and library versions."""
    return sample_completions_batch(
        model, tokenizer, [prompt], n, max_new_tokens, temperature, top_p, seed
    )[0]


@torch.no_grad()
def sample_completions_batch(
    model,
    tokenizer,
    prompts: Sequence[str],
    n: int,
    max_new_tokens: int = 48,
    temperature: float = 0.9,
    top_p: float = 0.95,
    seed: int = 0,
    batch_size: int = 8,
) -> list[list[str]]:
    """``n`` sampled completions for each prompt (nucleus sampling), ``batch_size`` prompts per
    ``generate`` call, left-padded (the tokenizer's padding side is restored); reproducible for a
    given ``seed`` on the same machine and library versions."""
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    device = next(model.parameters()).device
    completions: list[list[str]] = []
    try:
        for start in range(0, len(prompts), batch_size):
            encoded = tokenizer(
                list(prompts[start : start + batch_size]),
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,
            ).to(device)
            torch.manual_seed(seed + start)
            output = model.generate(
                **encoded,
                do_sample=True,
                temperature=temperature,
                top_p=top_p,
                max_new_tokens=max_new_tokens,
                num_return_sequences=n,
                pad_token_id=tokenizer.pad_token_id,
            )
            texts = tokenizer.batch_decode(
                output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True
            )
            completions += [texts[i : i + n] for i in range(0, len(texts), n)]
    finally:
        tokenizer.padding_side = side
    return completions
