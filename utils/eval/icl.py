"""Running one in-context-learning configuration end to end (demos -> prompts -> scores ->
metrics)."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from utils.data.prompting import PromptFormat, build_prompt, choose_demos
from utils.eval.metrics import classification_metrics, score_candidates

NULL_INPUT = "N/A"  # the content-free input of contextual calibration (Zhao et al., 2021)


def calibrate_scores(scores: list[list[float]], null_scores: list[float]) -> list[list[float]]:
    """Contextual calibration: subtract the label scores the prompt gives a content-free input."""
    return [[s - n for s, n in zip(row, null_scores, strict=True)] for row in scores]


def predict(scores: list[list[float]], labels: Sequence[str]) -> list[str]:
    """The label with the highest score in each row."""
    return [labels[max(range(len(row)), key=row.__getitem__)] for row in scores]


def evaluate_prompt(
    model,
    tokenizer,
    fmt: PromptFormat,
    demos: list[dict],
    rows: list[dict],
    labels: tuple[str, ...],
    batch_size: int = 16,
    progress: bool = True,
) -> dict:
    """Accuracy of one prompt (format + demonstrations, in order) on ``rows``, raw and
    calibrated."""
    prompts = [build_prompt(fmt, demos, row["text"], labels, tokenizer) for row in rows]
    null_prompt = build_prompt(fmt, demos, NULL_INPUT, labels, tokenizer)
    all_scores = score_candidates(
        model, tokenizer, [*prompts, null_prompt], batch_size=batch_size, progress=progress
    )
    scores, null_scores = all_scores[:-1], all_scores[-1]
    gold = [row["label"] for row in rows]
    metrics = classification_metrics(predict(scores, labels), gold, labels)
    calibrated = classification_metrics(
        predict(calibrate_scores(scores, null_scores), labels), gold, labels
    )
    return {
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "calibrated_accuracy": calibrated["accuracy"],
        "calibrated_macro_f1": calibrated["macro_f1"],
        "confusion": metrics["confusion"],
        "n": len(rows),
        "scores": scores,
        "null_scores": null_scores,
    }


def run_icl(
    model,
    tokenizer,
    fmt: PromptFormat,
    train: list[dict],
    test: list[dict],
    labels: tuple[str, ...],
    k: int,
    seed: int,
    order_seed: int | None = None,
    batch_size: int = 16,
) -> dict:
    """Evaluate one prompt configuration on ``test``: raw and calibrated accuracy, plus the scores.

    ``seed`` chooses the demonstrations; ``order_seed`` (if given) reshuffles the same ones.
    """
    start = time.perf_counter()
    demos = choose_demos(train, k, seed, labels)
    if order_seed is not None:
        random.Random(order_seed).shuffle(demos)
    result = evaluate_prompt(model, tokenizer, fmt, demos, test, labels, batch_size)
    return {
        "k": k,
        "seed": seed,
        "order_seed": order_seed,
        "demo_ids": [d["id"] for d in demos],
        "seconds": round(time.perf_counter() - start, 2),
        **result,
    }
