"""A model as a pairwise judge, and how far to trust it: pairs whose better answer is known by
construction (a restaurant description and the same description with one fact changed), each
shown in both orders, so the judge's accuracy, its consistency when the two answers swap places
and its preference for a position are measured rather than assumed."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

JUDGE_INSTRUCTION = (
    "You compare two descriptions of a restaurant with its data. Which description states the "
    "data correctly? Answer with one letter: A or B."
)
ATTRIBUTE = re.compile(r"(\w[\w ]*)\[([^\]]*)\]")


def attributes(data: str) -> dict[str, str]:
    """``name[Alimentum], area[city centre]`` -> {"name": "Alimentum", "area": "city centre"}."""
    return {key.strip(): value for key, value in ATTRIBUTE.findall(data)}


def factual_swap_pairs(rows: Sequence[dict], n: int, seed: int = 0) -> list[dict]:
    """``n`` pairs from (``mr``, ``ref``) rows: the human description, and the same text with one
    value the description states verbatim (a name, an area, a food, a landmark) replaced by
    another value of that attribute seen in the data. The first is right by construction."""
    values: dict[str, set[str]] = {}
    for row in rows:
        for key, value in attributes(row["mr"]).items():
            values.setdefault(key, set()).add(value)
    rng, pairs = random.Random(seed), []
    for row in rng.sample(list(rows), len(rows)):
        stated = [
            (key, value)
            for key, value in attributes(row["mr"]).items()
            if key in ("name", "area", "food", "near") and value in row["ref"]
        ]
        if not stated:
            continue
        key, value = rng.choice(stated)
        other = rng.choice(sorted(values[key] - {value}))
        pairs.append(
            {
                "data": row["mr"],
                "good": row["ref"],
                "bad": row["ref"].replace(value, other),
                "changed": f"{key}: {value} -> {other}",
            }
        )
        if len(pairs) == n:
            break
    return pairs


def judge_items(tokenizer, pairs: Sequence[dict]) -> list[dict]:
    """Two multiple-choice items per pair (the right description as A, then as B), in the form
    ``harness.score_requests`` scores: the chat prompt as context, " A"/" B" as the choices."""
    items = []
    for pair in pairs:
        for gold, (first, second) in enumerate(
            ((pair["good"], pair["bad"]), (pair["bad"], pair["good"]))
        ):
            user = (
                f"Data: {pair['data']}\n\nDescription A: {first}\nDescription B: {second}\n\n"
                "Which description states the data correctly, A or B?"
            )
            messages = [
                {"role": "system", "content": JUDGE_INSTRUCTION},
                {"role": "user", "content": user},
            ]
            context = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            items.append(
                {
                    "context": context,
                    "continuations": ["A", "B"],
                    "choices": ["A", "B"],
                    "gold": gold,
                }
            )
    return items


def judge_reliability(loglikelihoods: Sequence[Sequence[float]]) -> dict:
    """From the judge's (A, B) log-likelihoods on ``judge_items`` (two per pair): how often it
    picks the right description, how often its verdict survives swapping the two (the same
    description wins in both orders), and how often it answers A."""
    picks = [0 if a >= b else 1 for a, b in loglikelihoods]
    right = [pick == i % 2 for i, pick in enumerate(picks)]  # gold alternates 0, 1 per pair
    pairs = len(picks) // 2
    consistent = [right[2 * k] == right[2 * k + 1] for k in range(pairs)]
    return {
        "pairs": pairs,
        "accuracy": sum(right) / len(right),
        "consistency": sum(consistent) / pairs,
        "right in both orders": sum(right[2 * k] and right[2 * k + 1] for k in range(pairs))
        / pairs,
        "answers A": picks.count(0) / len(picks),
        "per_pair_right": [int(right[2 * k] and right[2 * k + 1]) for k in range(pairs)],
        "per_pair_verdict": [
            ("right" if right[2 * k] else "wrong") if consistent[k] else "split"
            for k in range(pairs)
        ],
    }


def compare_judges(
    better: Sequence[str], chrf_before: Sequence[float], chrf_after: Sequence[float], verdicts
) -> dict:
    """Three judges of the same (before, after) pairs, hand labels taken as the truth (``better``:
    "before" or "after" per pair, ties left out): chrF against the reference (the higher wins)
    and the model judge (``judge_reliability``'s ``per_pair_verdict`` on the pairs ordered
    right-answer-first by the hand label). How often each picks the hand-labelled answer, how
    often each says "after" wins, and how often the model judge and chrF agree."""
    n = len(better)
    chrf_picks = [
        "after" if a > b else "before" for b, a in zip(chrf_before, chrf_after, strict=True)
    ]
    other = {"before": "after", "after": "before"}
    judge_picks = [
        hand if verdict == "right" else other[hand] if verdict == "wrong" else None
        for hand, verdict in zip(better, verdicts, strict=True)
    ]
    decided = [(j, c) for j, c in zip(judge_picks, chrf_picks, strict=True) if j is not None]
    return {
        "pairs": n,
        "after wins, by hand": sum(b == "after" for b in better) / n,
        "after wins, by chrF": chrf_picks.count("after") / n,
        "after wins, by the model judge in both orders": judge_picks.count("after") / n,
        "chrF agrees with the hand label": sum(
            c == b for c, b in zip(chrf_picks, better, strict=True)
        )
        / n,
        "model judge agrees with the hand label in both orders": sum(
            j == b for j, b in zip(judge_picks, better, strict=True)
        )
        / n,
        "model judge consistent under swap": len(decided) / n,
        "model judge agrees with chrF, where consistent": (
            sum(j == c for j, c in decided) / len(decided) if decided else None
        ),
    }
