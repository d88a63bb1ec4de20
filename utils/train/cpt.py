"""Continual pre-training (Lab 05): packed blocks as a dataset, replay mixing, block perplexity,
LoRA-with-embeddings or full fine-tuning through Unsloth's trainer, and perplexity tracked during
training (the forgetting curve)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from utils.eval.metrics import block_perplexity
from utils.train.params import add_peft_lora, embedding_names, linear_layer_names
from utils.train.sft import train


@dataclass
class CPTSettings:
    """One continual pre-training run (saved with its results)."""

    method: str = "lora"  # "lora" (with embed_tokens + lm_head, Unsloth's recipe) or "full"
    r: int = 64
    alpha: int = 64
    learning_rate: float = 5e-4
    embedding_learning_rate: float | None = 5e-5  # LoRA: smaller step for the embedding and head
    max_steps: int = 30
    batch_size: int = 4
    warmup_steps: int = 2
    scheduler: str = "constant_with_warmup"  # constant: a run's step-k state equals a k-step run's
    replay_fraction: float = 0.0  # share of training blocks taken from general text
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("lora", "full"):
            raise ValueError(f"CPTSettings.method must be 'lora' or 'full', got {self.method!r}")
        if not 0 <= self.replay_fraction < 1:
            raise ValueError(
                f"CPTSettings.replay_fraction must be in [0, 1), got {self.replay_fraction}"
            )
        if self.max_steps < 1 or self.batch_size < 1:
            raise ValueError("CPTSettings.max_steps and batch_size must be at least 1")

    def to_dict(self) -> dict:
        return asdict(self)


def mix_replay(
    domain: Sequence[list[int]],
    general: Sequence[list[int]],
    n_blocks: int,
    replay_fraction: float,
    seed: int = 0,
) -> list[list[int]]:
    """``n_blocks`` training blocks: domain blocks in a seeded random order, with general blocks
    spread evenly among them so that ``replay_fraction`` of the stream is general text. The same
    token budget with or without replay; without replay, a shorter run sees a prefix of a longer
    one."""
    n_general = round(replay_fraction * n_blocks)
    n_domain = n_blocks - n_general
    if n_domain > len(domain) or n_general > len(general):
        raise ValueError(
            f"need {n_domain} domain and {n_general} general blocks; have {len(domain)} and "
            f"{len(general)}"
        )
    rng = random.Random(seed)
    domain_order, general_order = list(range(len(domain))), list(range(len(general)))
    rng.shuffle(domain_order)
    rng.shuffle(general_order)
    stream, used_general = [], 0
    for i in range(n_blocks):
        due = (i + 1) * n_general // n_blocks
        if due > used_general:
            stream.append(list(general[general_order[used_general]]))
            used_general += 1
        else:
            stream.append(list(domain[domain_order[i - used_general]]))
    return stream


def block_dataset(blocks: Sequence[list[int]]):
    """A ``datasets.Dataset`` of pre-tokenized, equal-length blocks (labels = inputs, set by the
    collator)."""
    from datasets import Dataset

    lengths = {len(b) for b in blocks}
    if len(lengths) != 1:
        raise ValueError(f"blocks must all have the same length, got lengths {sorted(lengths)[:5]}")
    return Dataset.from_dict(
        {"input_ids": [list(b) for b in blocks], "attention_mask": [[1] * len(b) for b in blocks]}
    )


def prepare_model(model, settings: CPTSettings):
    """LoRA on every linear layer plus trainable copies of the input embedding and the output head
    (Unsloth's continued-pretraining recipe; ``embed_tokens``/``lm_head`` in Llama), or every
    weight trainable for full fine-tuning."""
    if settings.method == "full":
        for param in model.parameters():
            param.requires_grad = True
        return model
    return add_peft_lora(
        model,
        settings.r,
        settings.alpha,
        linear_layer_names(model),
        modules_to_save=embedding_names(model),
        seed=settings.seed,
    )


class PerplexityTracker:
    """A ``TrainerCallback`` measuring domain and general perplexity every ``every`` steps (and at
    step 0), so forgetting shows as a curve over training, not only as a before/after pair."""

    def __init__(
        self,
        model,
        eval_sets: dict[str, Sequence[list[int]]],
        every: int,
        initial: dict | None = None,
    ):
        """``initial``: step-0 perplexities already measured on the same sets (the base model's),
        reused instead of measured again."""
        from transformers import TrainerCallback

        self.model, self.eval_sets, self.every = model, eval_sets, max(1, every)
        self.history: list[dict] = [{"step": 0, **initial}] if initial else []
        tracker = self

        class _Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                tracker.measure(0)

            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step % tracker.every == 0 or state.global_step == state.max_steps:
                    tracker.measure(state.global_step)

        self.callback = _Callback()

    def measure(self, step: int) -> None:
        if self.history and self.history[-1]["step"] == step:
            return
        self.history.append(
            {
                "step": step,
                **{
                    name: block_perplexity(self.model, blocks)
                    for name, blocks in self.eval_sets.items()
                },
            }
        )


def run_cpt(trainer, tracker: PerplexityTracker | None = None) -> dict:
    """Train (``utils.train.sft.train``); return the loss history, the wall time and the
    perplexity history that ``tracker`` recorded."""

    if tracker is not None:
        trainer.add_callback(tracker.callback)
    return {**train(trainer), "perplexity": tracker.history if tracker else []}
