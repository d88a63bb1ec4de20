"""Token statistics of a chat dataset under the model's own tokenizer and chat template: per
example the total and the assistant's tokens, the distribution, what a context limit would cut —
and what a hosted fine-tuning run of it would bill.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from utils.data.chat_format import chat_token_ids


def example_lengths(tokenizer, lines: Sequence[dict]) -> list[dict]:
    """Per chat line: ``total`` tokens under the chat template, ``prompt`` tokens (everything
    before the last assistant message, with its header) and ``answer`` = total - prompt."""
    rows = []
    for line in lines:
        messages = line["messages"]
        total = len(chat_token_ids(tokenizer, messages))
        prompt = len(
            tokenizer.apply_chat_template(
                messages[:-1], tokenize=True, add_generation_prompt=True, return_dict=False
            )
        )
        rows.append({"total": total, "prompt": prompt, "answer": total - prompt})
    return rows


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(values: Sequence[float]) -> dict:
    """min, p5, median, mean, p95, max and the count."""
    return {
        "n": len(values),
        "min": min(values),
        "p5": percentile(values, 5),
        "median": statistics.median(values),
        "mean": statistics.fmean(values),
        "p95": percentile(values, 95),
        "max": max(values),
    }


def truncation_report(lengths: Sequence[dict], limit: int) -> dict:
    """What a ``limit`` on total tokens does: how many examples are longer, and of those how
    many would lose part of the answer (cut them and the model learns truncated answers: drop
    such examples instead) or even the whole answer (the prompt alone is over the limit)."""
    over = [row for row in lengths if row["total"] > limit]
    return {
        "limit": limit,
        "over the limit": len(over),
        "answer cut": sum(1 for row in over if row["prompt"] < limit),
        "answer lost entirely": sum(1 for row in over if row["prompt"] >= limit),
        "tokens cut": sum(row["total"] - limit for row in over),
    }


# --- what a hosted run bills -----------------------------------------------------------------

EPOCH_TARGET_EXAMPLES = (100, 25_000)  # below / above: more / fewer epochs than the default 3


def default_epochs(n_examples: int, base: int = 3) -> int:
    """The epoch heuristic of OpenAI's chat fine-tuning data-preparation guide: 3 epochs by
    default; if that shows fewer than 100 examples in all, 100 // n epochs (at most 25); if more
    than 25,000, 25,000 // n (at least 1)."""
    low, high = EPOCH_TARGET_EXAMPLES
    if n_examples * base < low:
        return min(25, low // max(n_examples, 1))
    if n_examples * base > high:
        return max(1, high // n_examples)
    return base


MAX_BILLED_TOKENS_PER_EXAMPLE = 16_385  # the same guide: a longer example is cut to this


def billed_tokens(
    example_tokens: Sequence[int], epochs: int, max_per_example: int = MAX_BILLED_TOKENS_PER_EXAMPLE
) -> int:
    """Training tokens a service bills, as the same guide estimates them: each example's tokens
    up to the per-example limit (the rest is cut and not trained on), once per epoch."""
    return sum(min(n, max_per_example) for n in example_tokens) * epochs
