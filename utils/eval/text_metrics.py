"""Scores for free-text answers, from maintained implementations: chrF (``sacrebleu``) and ROUGE-L
(``rouge-score``), per example and for a whole split, plus exact match.

rouge-score's own tokenizer keeps only ``[a-z0-9]`` and so scores every Russian or Chinese answer
0; the kit hands it ``UnicodeTokenizer`` instead (words of any script, one token per CJK
character).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

WORD = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|\w+", re.UNICODE)


class UnicodeTokenizer:
    """Lower-cased words of any script, each CJK character its own token (for rouge-score)."""

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text``."""
        return WORD.findall(text.lower())


def _check_lengths(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references) or not references:
        raise ValueError("predictions and references must be non-empty and of equal length")


def chrf_scores(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """Sentence-level chrF (0-100, sacrebleu's defaults: character 6-grams, beta 2) per pair."""
    from sacrebleu.metrics import CHRF

    _check_lengths(predictions, references)
    metric = CHRF()
    return [
        metric.sentence_score(p, [r]).score for p, r in zip(predictions, references, strict=True)
    ]


def corpus_chrf(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Corpus-level chrF (0-100): n-gram statistics summed over the split, as in MT papers."""
    from sacrebleu.metrics import CHRF

    _check_lengths(predictions, references)
    return CHRF().corpus_score(list(predictions), [list(references)]).score


def rouge_l_scores(predictions: Sequence[str], references: Sequence[str]) -> list[float]:
    """ROUGE-L F-measure (0-1) per pair, with ``UnicodeTokenizer``."""
    from rouge_score import rouge_scorer

    _check_lengths(predictions, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=UnicodeTokenizer())
    return [
        scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references, strict=True)
    ]


def exact_matches(predictions: Sequence[str], references: Sequence[str]) -> list[bool]:
    """Whether each prediction equals its reference after stripping whitespace."""
    _check_lengths(predictions, references)
    return [p.strip() == r.strip() for p, r in zip(predictions, references, strict=True)]
