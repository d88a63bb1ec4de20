"""Planning a run before it starts, and training that keeps the epoch validation chose."""

import pytest
import torch

from utils.data.datasets import load_split
from utils.runtime.models import build_tiny_model
from utils.train import sft
from utils.train.budget import (
    examples_for_minutes,
    measure_step_seconds,
    plan_run,
    training_steps,
)
from utils.train.params import add_peft_lora

FIELDS = ("who", "what", "when", "where")


def tiny_trainer(tokenizer, epochs=1.0, max_steps=-1):
    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    settings = sft.SFTSettings(
        r=4,
        alpha=8,
        batch_size=2,
        epochs=epochs,
        max_steps=max_steps,
        warmup_steps=0,
        max_length=128,
    )
    model = add_peft_lora(model, **settings.lora_arguments())
    rows = load_split("news_events", "train")[:4]
    dataset = sft.chat_dataset(rows, tokenizer, lambda r: sft.extraction_messages(r, FIELDS))
    trainer = sft.build_trainer(model, tokenizer, dataset, settings)
    trainer.args.disable_tqdm = True
    return trainer, settings


def test_steps_and_examples_arithmetic():
    assert training_steps(100, 8, 2.0) == 26  # ceil(100 / 8) = 13 per epoch
    assert training_steps(100, 8, 0.5) == 7 and training_steps(100, 8, 2.0, max_steps=5) == 5
    assert examples_for_minutes(2, step_seconds=3.0, batch_size=8) == 320


def test_measuring_leaves_the_model_untouched_and_the_plan_adds_up(tokenizer):
    trainer, settings = tiny_trainer(tokenizer)
    model = trainer.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    seconds = measure_step_seconds(trainer)
    assert seconds > 0 and not model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    plan = plan_run(model, settings, n_examples=30, seq_len=64, step_seconds=6.0)
    assert plan["steps"] == 15 and plan["estimated_minutes"] == pytest.approx(1.5)
    assert 0 < plan["estimated_memory_gb"] < 1


def test_training_keeps_the_weights_of_the_epoch_validation_preferred(tokenizer):
    trainer, _ = tiny_trainer(tokenizer, epochs=3)
    calls = []

    def score(model):  # epoch 2 is "best": its weights must be the ones left at the end
        calls.append(
            {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        )
        return [0.1, 0.9, 0.5][len(calls) - 1]

    history = sft.train_choosing_epoch(trainer, score)
    assert history["epoch_scores"] == [0.1, 0.9, 0.5] and history["best_epoch"] == 2
    final = {n: p for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert all(torch.equal(final[n], calls[1][n]) for n in final)
    assert not all(torch.equal(final[n], calls[2][n]) for n in final)
