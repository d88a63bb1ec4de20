"""Turning texts into batches: token ids, padding with an attention mask, labelled splits, and
the batches a classifier trains and is scored on."""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from utils.data.datasets import get_spec, load_split


def tokenize_texts(tokenizer, texts: Sequence[str], max_length: int = 128) -> list[list[int]]:
    """Token ids of each text (no special tokens), truncated to ``max_length``."""
    return [
        ids[:max_length] for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    ]


def load_classification_data(tokenizer, dataset: str, sizes: dict[str, int | None]):
    """Rows, token ids and class indices of each split in ``sizes`` (first N rows; None = all).

    Class ``i`` is the dataset's ``labels[i]``.
    """

    labels = get_spec(dataset).labels
    rows = {split: load_split(dataset, split)[:size] for split, size in sizes.items()}
    ids = {
        split: tokenize_texts(tokenizer, [r["text"] for r in split_rows])
        for split, split_rows in rows.items()
    }
    classes = {
        split: [labels.index(r["label"]) for r in split_rows] for split, split_rows in rows.items()
    }
    return rows, ids, classes


def pad_batch(
    sequences: Sequence[torch.Tensor | list[int]], pad_value=0, side: str = "right"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token-id lists or (len, hidden) tensors on ``side``; return (padded, attention_mask)."""
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    tensors = [torch.as_tensor(s) for s in sequences]
    width = max(t.shape[0] for t in tensors)
    padded = torch.full(
        (len(tensors), width, *tensors[0].shape[1:]), pad_value, dtype=tensors[0].dtype
    )
    mask = torch.zeros((len(tensors), width), dtype=torch.long)
    for i, t in enumerate(tensors):
        span = slice(0, t.shape[0]) if side == "right" else slice(width - t.shape[0], width)
        padded[i, span] = t
        mask[i, span] = 1
    return padded, mask


def batches(
    items: Sequence,
    labels: Sequence[int],
    batch_size: int,
    pad_value=0,
    shuffle_seed: int | None = None,
):
    """Yield ``(padded, attention_mask, labels, indices)``; shuffled with ``shuffle_seed``, else by
    length."""
    order = list(range(len(items)))
    if shuffle_seed is None:
        order.sort(key=lambda i: len(items[i]))
    else:
        random.Random(shuffle_seed).shuffle(order)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        padded, mask = pad_batch([items[i] for i in idx], pad_value)
        yield padded, mask, torch.tensor([labels[i] for i in idx]), idx


def training_batches(examples: Sequence[tuple], batch_size: int, steps: int, seed: int) -> list:
    """``steps`` batches of ``(ids, ...)`` examples, the same for every run with the same seed:
    each pass over the data in a random order, every 4 batches' worth sorted by length before it
    is cut (less padding, and the batches stay mixed); a pass's last incomplete group is left
    out, as ``drop_last``. Fewer than 4 batches' worth of examples: one group of the whole
    batches they fill."""
    if len(examples) < batch_size:
        raise ValueError(f"{len(examples)} examples cannot fill one batch of {batch_size}")
    pool = min(4 * batch_size, len(examples) // batch_size * batch_size)
    rng, batches = random.Random(seed), []
    while len(batches) < steps:
        order = rng.sample(range(len(examples)), len(examples))
        for begin in range(0, len(order) - pool + 1, pool):
            group = sorted(order[begin : begin + pool], key=lambda i: len(examples[i][0]))
            chunks = [group[j : j + batch_size] for j in range(0, pool, batch_size)]
            rng.shuffle(chunks)
            batches += [[examples[i] for i in chunk] for chunk in chunks]
    return batches[:steps]
