"""Selective fine-tuning (Lab 02): one training epoch on the frozen-prefix cache vs the full
forward.

    .venv/bin/python bench/selective_cache.py

The embedded model with a new 2-class head, everything frozen but the last block, the final norm and
the head; the whole ``sms_spam`` train split, batch 16, AdamW, the same seed on both paths. Blocks
0-28 never change, so their output can be computed once
(``utils.train.classifier.cache_hidden_states``) and each step runs only block 29 + norm + head.
Prints the epoch time of each path, their ratio (target >= 5x), the one-off cache time and the ratio
with it included over Lab 02's 3 epochs, and checks both paths compute the same logits. Writes
outputs/bench/selective_cache.json.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine, write_result  # noqa: E402


def main() -> int:
    import torch

    from utils.data.batching import load_classification_data, pad_batch
    from utils.runtime.models import load_model
    from utils.train.classifier import (
        ClassifierSettings,
        cache_hidden_states,
        classifier_logits,
        logits_from_hidden,
        replace_head,
        train_classifier,
    )
    from utils.train.params import freeze_all_but

    config = ClassifierSettings(
        epochs=1, learning_rate=5e-4, batch_size=16, weight_decay=0.01, seed=0
    )
    times = {}

    def fresh():
        model, tokenizer = load_model("cpu")
        replace_head(model, 2, seed=0)
        freeze_all_but(model, 1)
        return model, tokenizer

    model, tokenizer = fresh()
    depth = model.config.num_hidden_layers - 1
    _, ids, y = load_classification_data(tokenizer, "sms_spam", {"train": None})
    start = time.perf_counter()
    cache = cache_hidden_states(
        model, ids["train"], [depth], tokenizer.pad_token_id, progress=False
    )[depth]
    times["cache"] = time.perf_counter() - start
    batch_ids, batch_mask = pad_batch(ids["train"][:8], tokenizer.pad_token_id)
    hidden, hidden_mask = pad_batch(cache[:8], 0.0)
    with torch.no_grad():
        difference = float(
            (
                classifier_logits(model, batch_ids, batch_mask)
                - logits_from_hidden(model, hidden, hidden_mask, depth)
            )
            .abs()
            .max()
        )
    run = train_classifier(
        model,
        lambda h, m: logits_from_hidden(model, h, m, depth),
        cache,
        y["train"],
        config,
        pad_value=0.0,
        progress=False,
    )
    times["epoch_cached"] = run["seconds"]
    cached_loss = run["loss"]

    model, tokenizer = fresh()
    run = train_classifier(
        model,
        lambda i, m: classifier_logits(model, i, m),
        ids["train"],
        y["train"],
        config,
        pad_value=tokenizer.pad_token_id,
        progress=False,
    )
    times["epoch_full_forward"] = run["seconds"]
    same_losses = max(abs(a - b) for a, b in zip(cached_loss, run["loss"], strict=True))

    ratio = times["epoch_full_forward"] / times["epoch_cached"]
    with_cache = 3 * times["epoch_full_forward"] / (times["cache"] + 3 * times["epoch_cached"])
    result = {
        "examples": len(ids["train"]),
        "steps_per_epoch": len(cached_loss),
        "seconds": times,
        "epoch_speedup": ratio,
        "three_epoch_speedup_incl_cache": with_cache,
        "max_logit_difference": difference,
        "max_step_loss_difference": same_losses,
        "machine": machine(),
    }
    print(f"{len(ids['train'])} messages, {len(cached_loss)} steps per epoch")
    print(
        f"epoch on the cache {times['epoch_cached']:.1f} s vs full forward "
        f"{times['epoch_full_forward']:.1f} s: "
        f"{ratio:.1f}x (target 5x); building the cache once {times['cache']:.1f} s; over Lab 02's "
        "3 epochs "
        f"with the cache build included: {with_cache:.1f}x"
    )
    print(
        f"same computation: max logit difference {difference:.2e}, max per-step loss difference "
        f"{same_losses:.2e}"
    )
    write_result("selective_cache", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
