"""Cleaning a training set rule by rule, counting what each rule removes: exact duplicates,
near-duplicates (MinHash + LSH from ``datasketch``), length and language filters (``langid``),
and leakage of test examples into training after cleaning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from utils.data.datasets import text_hash

NUM_PERM = 128  # MinHash permutations: the Jaccard estimate's error is about 1/sqrt(128) ≈ 0.09


def shingles(text: str, n: int = 3) -> set[str]:
    """Word ``n``-grams of the lower-cased text (the whole text if it has fewer words)."""
    words = re.findall(r"\w+", text.lower())
    return {" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}


def minhash(text: str, num_perm: int = NUM_PERM):
    """A ``datasketch.MinHash`` of the text's word 3-grams (seeded: the same text, the same
    signature on every machine)."""
    from datasketch import MinHash

    signature = MinHash(num_perm=num_perm, seed=1)
    signature.update_batch([s.encode("utf-8") for s in shingles(text)])
    return signature


def jaccard(a: str, b: str) -> float:
    """The exact Jaccard similarity of two texts' word 3-gram sets."""
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def near_duplicate_of(texts: Sequence[str], threshold: float = 0.7) -> dict[int, int]:
    """``{i: j}`` for every text ``i`` whose estimated Jaccard similarity to an earlier kept text
    ``j`` is at least ``threshold`` (candidates from LSH, confirmed on the exact 3-gram sets)."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    duplicate_of: dict[int, int] = {}
    for i, text in enumerate(texts):
        signature = minhash(text)
        matches = [
            int(j) for j in lsh.query(signature) if jaccard(text, texts[int(j)]) >= threshold
        ]
        if matches:
            duplicate_of[i] = min(matches)
        else:
            lsh.insert(str(i), signature)
    return duplicate_of


def language(text: str) -> str:
    """The ISO 639-1 code ``langid`` assigns to ``text``."""
    import langid

    return langid.classify(text)[0]


def clean(
    rows: Sequence[dict],
    *,
    min_words: int = 3,
    max_words: int = 200,
    languages: Sequence[str] = ("en",),
    near_threshold: float = 0.7,
    key: Callable[[dict], str] = lambda row: row["text"],
) -> tuple[list[dict], list[dict]]:
    """Apply the rules in order — exact duplicates, near-duplicates, length in words, language —
    and return ``(kept rows, one row per rule: before, removed and two removed texts)``; each
    rule sees only what the previous kept, so the counts add up."""
    counts = []

    def step(rule: str, kept: list[dict], before: list[dict]) -> list[dict]:
        kept_ids = {id(row) for row in kept}
        removed = [key(row) for row in before if id(row) not in kept_ids]
        counts.append(
            {"rule": rule, "before": len(before), "removed": len(removed), "e.g.": removed[:2]}
        )
        return kept

    seen: set[str] = set()
    exact = []
    for row in rows:
        if (digest := text_hash(key(row))) not in seen:
            seen.add(digest)
            exact.append(row)
    current = step("exact duplicate", exact, list(rows))
    near = near_duplicate_of([key(r) for r in current], near_threshold)
    current = step("near-duplicate", [r for i, r in enumerate(current) if i not in near], current)
    sized = [r for r in current if min_words <= len(key(r).split()) <= max_words]
    current = step(f"length outside {min_words}–{max_words} words", sized, current)
    spoken = [r for r in current if language(key(r)) in languages]
    current = step(f"language not in {list(languages)}", spoken, current)
    return current, counts


def leaked(train: Sequence[str], test: Sequence[str], threshold: float = 0.7) -> list[int]:
    """Positions of ``test`` texts that are exact or near copies of a training text."""
    from datasketch import MinHashLSH

    exact = {text_hash(t) for t in train}
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    for i, text in enumerate(train):
        lsh.insert(str(i), minhash(text))
    return [
        i
        for i, text in enumerate(test)
        if text_hash(text) in exact
        or any(jaccard(text, train[int(j)]) >= threshold for j in lsh.query(minhash(text)))
    ]
