"""Before against after, per example: a paired bootstrap interval on the gain."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def paired_bootstrap(
    before: Sequence[float],
    after: Sequence[float],
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict:
    """The mean gain ``after - before`` and its percentile bootstrap interval.

    Both scores are per example on the same examples, so each resample draws examples (with
    replacement) and takes the mean difference on them: the interval says how much the gain could
    move with another test split of the same size. ``p_not_better`` is the share of resamples
    where the gain is zero or negative.
    """
    b, a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if b.shape != a.shape or b.size == 0:
        raise ValueError("before and after must be non-empty and of equal length")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    diff = a - b
    picks = np.random.default_rng(seed).integers(0, diff.size, size=(resamples, diff.size))
    means = diff[picks].mean(axis=1)
    tail = (1 - level) / 2
    return {
        "before": float(b.mean()),
        "after": float(a.mean()),
        "gain": float(diff.mean()),
        "low": float(np.quantile(means, tail)),
        "high": float(np.quantile(means, 1 - tail)),
        "level": level,
        "p_not_better": float((means <= 0).mean()),
        "n": int(diff.size),
    }
