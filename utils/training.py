"""A small, readable training loop for classifiers (the labs' LM training goes through TRL)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from utils.classifier import pad_batch

LogitsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class TrainConfig:
    """Hyper-parameters of ``train_classifier``; checked on construction."""

    epochs: int = 3
    lr: float = 1e-4
    batch_size: int = 16
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"TrainConfig.epochs must be >= 1, got {self.epochs}")
        if not 0 < self.lr < 1:
            raise ValueError(f"TrainConfig.lr must be in (0, 1), got {self.lr}")
        if self.batch_size < 1:
            raise ValueError(f"TrainConfig.batch_size must be >= 1, got {self.batch_size}")


def batches(items: Sequence, labels: Sequence[int], batch_size: int, pad_value=0, shuffle_seed: int | None = None):
    """Yield ``(padded, attention_mask, labels, indices)``; shuffled with ``shuffle_seed``, else by length."""
    order = list(range(len(items)))
    if shuffle_seed is None:
        order.sort(key=lambda i: len(items[i]))
    else:
        random.Random(shuffle_seed).shuffle(order)
    for start in range(0, len(order), batch_size):
        idx = order[start: start + batch_size]
        padded, mask = pad_batch([items[i] for i in idx], pad_value)
        yield padded, mask, torch.tensor([labels[i] for i in idx]), idx


@torch.inference_mode()
def classifier_accuracy(logits_fn: LogitsFn, items: Sequence, labels: Sequence[int], batch_size: int = 32,
                        pad_value=0) -> dict:
    """Accuracy and mean loss of a classifier over all ``items`` (fixed order: deterministic)."""
    correct, loss_sum, predictions = 0, 0.0, [0] * len(items)
    for padded, mask, gold, idx in batches(items, labels, batch_size, pad_value):
        logits = logits_fn(padded, mask).float()
        loss_sum += torch.nn.functional.cross_entropy(logits, gold, reduction="sum").item()
        predicted = logits.argmax(dim=-1)
        correct += int((predicted == gold).sum())
        for i, value in zip(idx, predicted.tolist(), strict=True):
            predictions[i] = value
    return {"accuracy": correct / len(items), "loss": loss_sum / len(items), "predictions": predictions,
            "n": len(items)}


def train_classifier(model, logits_fn: LogitsFn, items: Sequence, labels: Sequence[int], config: TrainConfig,
                     pad_value=0, progress: bool = True) -> dict:
    """AdamW over the model's trainable parameters, cross-entropy on class logits; returns the history."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: every parameter is frozen")
    torch.manual_seed(config.seed)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    model.train()
    history, start = {"step": [], "loss": [], "epoch_seconds": []}, time.perf_counter()
    steps_per_epoch = -(-len(items) // config.batch_size)
    bar = tqdm(total=config.epochs * steps_per_epoch, desc="training", disable=not progress)
    for epoch in range(config.epochs):
        epoch_start = time.perf_counter()
        for padded, mask, gold, _ in batches(items, labels, config.batch_size, pad_value, config.seed + epoch):
            loss = torch.nn.functional.cross_entropy(logits_fn(padded, mask).float(), gold)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            history["step"].append(len(history["step"]) + 1)
            history["loss"].append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        history["epoch_seconds"].append(time.perf_counter() - epoch_start)
    bar.close()
    model.eval()
    history["seconds"] = time.perf_counter() - start
    return history
