"""A learning curve: the same training recipe on growing slices of the training set, several
seeds each, scored on validation — how much data a task needs, read off evidence (Lab 00)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from utils.eval.metrics import classifier_accuracy
from utils.train.classifier import (
    ClassifierSettings,
    classifier_logits,
    replace_head,
    train_classifier,
)
from utils.train.lora import apply_lora


def lora_classifier(
    model, num_classes: int, seed: int, targets=("q_proj", "v_proj"), rank=8, alpha=16
):
    """``model`` with a new ``num_classes`` head and from-scratch LoRA on ``targets`` (Lab 03's
    recipe): everything frozen except the adapters and the head. Returns the model."""
    replace_head(model, num_classes, seed=seed)
    for param in model.parameters():
        param.requires_grad = False
    torch.manual_seed(seed)
    apply_lora(model, targets, rank, alpha)
    for param in model.lm_head.parameters():
        param.requires_grad = True
    return model


def epochs_for(n_examples: int, min_passes: int) -> int:
    """Epochs so that ``n_examples`` are seen at least ``min_passes`` times in all (at least 1):
    small slices repeat, so they are not starved of steps."""
    return max(1, -(-min_passes // n_examples))


def learning_curve(
    make_model: Callable[[int], object],
    train: tuple[Sequence, Sequence[int]],
    validation: tuple[Sequence, Sequence[int]],
    sizes: Sequence[int | None],
    seeds: Sequence[int],
    min_passes: int,
    pad_value: int,
    learning_rate: float = 1e-3,
    batch_size: int = 16,
) -> tuple[list[dict], object]:
    """Train ``make_model(seed)`` on the first ``n`` training items (``None``: all) for every
    size and seed; return one row per run (examples, seed, epochs, validation accuracy, train
    seconds) and the model trained on the last size with the first seed."""
    rows, kept = [], None
    for n in sizes:
        ids, labels = train[0][:n], train[1][:n]
        for seed in seeds:
            model = make_model(seed)
            epochs = epochs_for(len(ids), min_passes)
            settings = ClassifierSettings(
                epochs=epochs, learning_rate=learning_rate, batch_size=batch_size, seed=seed
            )

            def logits(i, m, net=model):
                return classifier_logits(net, i, m)

            history = train_classifier(
                model, logits, ids, labels, settings, pad_value, progress=False
            )
            score = classifier_accuracy(logits, *validation, pad_value=pad_value)
            rows.append(
                {
                    "examples": len(ids),
                    "seed": seed,
                    "epochs": epochs,
                    "validation accuracy": score["accuracy"],
                    "train seconds": round(history["seconds"], 1),
                }
            )
            print(rows[-1])
            if n == sizes[-1] and seed == seeds[0]:
                kept = model
    return rows, kept
