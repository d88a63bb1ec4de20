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
    assert plan["estimated_memory_gb"] > 0 and "peak" in plan["memory_kind"]


def test_a_cpu_plan_is_the_process_now_plus_the_training_state(tokenizer, monkeypatch):
    """On a CPU the plan is the process's peak: its RSS now (weights already loaded) plus what
    training adds, the activations scaled by the factor measured on this kind of machine."""
    from utils.train import budget
    from utils.train.memory_estimate import estimate_memory, shape_from_config

    trainer, settings = tiny_trainer(tokenizer)
    model = trainer.model

    class Process:  # the process holds 3 GB now
        def memory_info(self):
            return type("Info", (), {"rss": 3e9})()

    monkeypatch.setattr(budget.psutil, "Process", Process)
    plan = plan_run(model, settings, n_examples=30, seq_len=64, step_seconds=6.0)
    state = estimate_memory(
        shape_from_config(model.config.to_dict(), model.config.model_type),
        method="lora",
        weights="fp32",
        lora_r=settings.r,
        lora_targets=settings.target_modules,
        lora_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        batch_size=settings.batch_size,
        seq_len=64,
        activation_bytes=4.0,
        overhead_gb=0.0,
    )
    extra = state.total - state.weights + (budget.CPU_ACTIVATION_FACTOR - 1) * state.activations
    assert plan["estimated_memory_gb"] == pytest.approx(3.0 + extra, abs=0.01)
    assert plan["memory_kind"] == "RAM, the process's peak"


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
