"""A causal LM as a classifier: a new head read at the last non-pad token, the blocks run one by
one, the frozen-prefix cache that makes selective fine-tuning fast on a CPU, saving and applying a
trained classifier, and the classifier's training loop (language-model training goes through TRL:
``utils.train.sft`` and ``utils.train.cpt``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers.masking_utils import create_causal_mask

from utils.data.batching import batches, pad_batch


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-pad token of each row; right or left padding alike."""
    if attention_mask.dim() != 2:
        raise ValueError(
            f"attention_mask must be (batch, seq), got shape {tuple(attention_mask.shape)}"
        )
    if (attention_mask.sum(dim=1) == 0).any():
        raise ValueError("a row of the batch has no tokens at all")
    seq_len = attention_mask.shape[1]
    return seq_len - 1 - attention_mask.flip(dims=[1]).long().argmax(dim=1)


def replace_head(model, num_classes: int, seed: int = 0) -> nn.Linear:
    """Put a fresh ``hidden_size -> num_classes`` head where the LM head was (breaking the tie)."""
    torch.manual_seed(seed)
    head = nn.Linear(model.config.hidden_size, num_classes)
    model.lm_head = head
    model.config.tie_word_embeddings = False
    return head


def _layer_context(base, hidden: torch.Tensor, attention_mask: torch.Tensor):
    # Positions count real tokens only, so a left-padded row sees the positions an unpadded one
    # does.
    position_ids = (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)
    mask = create_causal_mask(
        config=base.config,
        inputs_embeds=hidden,
        attention_mask=attention_mask,
        past_key_values=None,
        position_ids=position_ids,
    )
    return {
        "attention_mask": mask,
        "position_ids": position_ids,
        "position_embeddings": base.rotary_emb(hidden, position_ids=position_ids),
    }


def run_blocks(
    model, hidden: torch.Tensor, attention_mask: torch.Tensor, start: int, stop: int
) -> torch.Tensor:
    """Run transformer blocks ``start..stop-1`` on hidden states (as the model's own forward
    does)."""
    base = model.get_decoder()
    context = _layer_context(base, hidden, attention_mask)
    for layer in base.layers[start:stop]:
        hidden = layer(hidden, **context)
    return hidden


def logits_from_hidden(
    model, hidden: torch.Tensor, attention_mask: torch.Tensor, start_block: int
) -> torch.Tensor:
    """Class logits from the hidden states entering block ``start_block``: the remaining blocks, the
    final norm, then the head at the last non-pad token only."""
    base = model.get_decoder()
    hidden = base.norm(run_blocks(model, hidden, attention_mask, start_block, len(base.layers)))
    pooled = hidden[torch.arange(hidden.shape[0]), last_token_index(attention_mask)]
    return model.lm_head(pooled)


def classifier_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Class logits for token ids: the full forward pass (what 'all layers' training runs)."""
    hidden = model.get_decoder().embed_tokens(input_ids)
    return logits_from_hidden(model, hidden, attention_mask, start_block=0)


@torch.inference_mode()
def cache_hidden_states(
    model,
    token_ids: Sequence[list[int]],
    depths: Sequence[int],
    pad_id: int,
    batch_size: int = 32,
    progress: bool = True,
) -> dict[int, list[torch.Tensor]]:
    """Hidden states entering block ``d`` for each depth ``d``, per example (unpadded), in one pass.

    Valid only while blocks ``0..d-1`` (and the embeddings) stay frozen: then they compute exactly
    the same thing every epoch, so computing it once is enough.
    """
    base = model.get_decoder()
    cache: dict[int, list[torch.Tensor]] = {d: [None] * len(token_ids) for d in depths}
    order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
    for start in tqdm(
        range(0, len(order), batch_size), desc="caching frozen layers", disable=not progress
    ):
        idx = order[start : start + batch_size]
        ids, mask = pad_batch([token_ids[i] for i in idx], pad_id)
        hidden, done = base.embed_tokens(ids), 0
        for depth in sorted(depths):
            hidden = run_blocks(model, hidden, mask, done, depth)
            done = depth
            for row, i in enumerate(idx):
                cache[depth][i] = hidden[row, : len(token_ids[i])].clone()
    return cache


CLASSIFIER_WEIGHTS, CLASSIFIER_CONFIG = "classifier.safetensors", "classifier_config.json"
LORA_SUFFIXES = (
    ".lora.A",
    ".lora.B",
)  # Lab 03A's from-scratch LoRA: <linear>.lora.A (r x in), .lora.B (out x r)


def save_classifier(
    folder, tensors: dict[str, torch.Tensor], labels: Sequence[str], lora: dict | None = None
):
    """Save what was trained — the head plus unfrozen base tensors, or LoRA A/B matrices — as
    ``classifier.safetensors`` + ``classifier_config.json`` (labels; ``lora``: rank and alpha)."""
    import json
    from pathlib import Path

    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {n: t.detach().contiguous().cpu() for n, t in tensors.items()}, folder / CLASSIFIER_WEIGHTS
    )
    config = {"labels": list(labels), "lora": lora, "tensors": sorted(tensors)}
    (folder / CLASSIFIER_CONFIG).write_text(json.dumps(config, indent=2))
    return folder


@torch.no_grad()
def apply_classifier(model, tensors: dict[str, torch.Tensor], config: dict) -> None:
    """Turn a base causal LM into a saved classifier, in place: a new head with one output per
    label, trained base tensors copied in, LoRA pairs merged into their weights (W += alpha/r · B
    A)."""
    params = dict(model.named_parameters())
    replace_head(model, len(config["labels"]))
    head = model.lm_head
    lora = config.get("lora") or {}
    for name, tensor in tensors.items():
        if name.startswith("lm_head."):
            getattr(head, name.split(".", 1)[1]).copy_(tensor)
        elif name.endswith(LORA_SUFFIXES[0]):
            linear = model.get_submodule(name[: -len(LORA_SUFFIXES[0])])
            b = tensors[name[:-1] + "B"]
            linear.weight += (lora["alpha"] / lora["rank"]) * (b.float() @ tensor.float()).to(
                linear.weight.dtype
            )
        elif not name.endswith(LORA_SUFFIXES[1]):
            params[name].copy_(tensor)


LogitsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class ClassifierSettings:
    """Hyper-parameters of ``train_classifier``; checked on construction."""

    epochs: int = 3
    learning_rate: float = 1e-4
    batch_size: int = 16
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"ClassifierSettings.epochs must be >= 1, got {self.epochs}")
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"ClassifierSettings.lr must be in (0, 1), got {self.learning_rate}")
        if self.batch_size < 1:
            raise ValueError(f"ClassifierSettings.batch_size must be >= 1, got {self.batch_size}")


def train_classifier(
    model,
    logits_fn: LogitsFn,
    items: Sequence,
    labels: Sequence[int],
    settings: ClassifierSettings,
    pad_value=0,
    progress: bool = True,
) -> dict:
    """AdamW over the model's trainable parameters, cross-entropy on class logits; returns the
    history."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: every parameter is frozen")
    torch.manual_seed(settings.seed)
    optimizer = torch.optim.AdamW(
        params, lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    model.train()
    history, start = {"step": [], "loss": [], "epoch_seconds": []}, time.perf_counter()
    steps_per_epoch = -(-len(items) // settings.batch_size)
    bar = tqdm(total=settings.epochs * steps_per_epoch, desc="training", disable=not progress)
    for epoch in range(settings.epochs):
        epoch_start = time.perf_counter()
        for padded, mask, gold, _ in batches(
            items, labels, settings.batch_size, pad_value, settings.seed + epoch
        ):
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
