"""Continual pre-training helpers on the tiny random model: replay mixing, block perplexity,
recipes, the trainer with its embedding learning rate, and perplexity tracking."""

import math

import pytest
import torch

from utils.eval.metrics import block_perplexity
from utils.runtime.models import build_tiny_model
from utils.train import cpt, sft


def test_replay_keeps_the_token_budget_and_mixes_the_share_asked():
    domain, general = [[1] * 4 for _ in range(20)], [[2] * 4 for _ in range(20)]
    mixed = cpt.mix_replay(domain, general, 12, 0.25, seed=0)
    assert len(mixed) == 12 and sum(b[0] == 2 for b in mixed) == 3
    assert cpt.mix_replay(domain, general, 12, 0.25, seed=0) == mixed
    assert [b[0] for b in mixed] == [1, 1, 1, 2] * 3  # spread evenly
    domain = [[i] * 4 for i in range(20)]
    assert cpt.mix_replay(domain, general, 12, 0.0)[:5] == cpt.mix_replay(
        domain, general, 5, 0.0
    )  # prefix
    with pytest.raises(ValueError, match="need 30 domain"):
        cpt.mix_replay(domain, general, 30, 0.0)


def test_settings_and_blocks_are_checked():
    with pytest.raises(ValueError, match="method must be"):
        cpt.CPTSettings(method="adapter")
    with pytest.raises(ValueError, match="replay_fraction"):
        cpt.CPTSettings(replay_fraction=1.0)
    with pytest.raises(ValueError, match="same length"):
        cpt.block_dataset([[1, 2, 3], [1, 2]])


def test_block_perplexity_is_exp_of_the_models_own_loss(tiny_model):
    blocks = [list(range(10 + i, 42 + i)) for i in range(5)]
    with torch.no_grad():
        losses = [
            tiny_model(input_ids=torch.tensor([b]), labels=torch.tensor([b])).loss.item()
            for b in blocks
        ]
    assert block_perplexity(tiny_model, blocks, batch_size=2) == pytest.approx(
        math.exp(sum(losses) / 5), rel=1e-4
    )


def test_lora_recipe_trains_adapters_and_embedding_copies_only(tokenizer):
    model = cpt.prepare_model(
        build_tiny_model(tokenizer), cpt.CPTSettings(method="lora", r=4, alpha=4)
    )
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in trainable) and any("embed_tokens" in n for n in trainable)
    assert all("lora_" in n or "modules_to_save" in n for n in trainable)
    full = cpt.prepare_model(build_tiny_model(tokenizer), cpt.CPTSettings(method="full"))
    assert all(p.requires_grad for p in full.parameters())


def cpt_trainer(model, tokenizer, blocks, settings):
    """Unsloth's trainer as Lab 05 builds it, on pre-packed blocks."""
    from unsloth import UnslothTrainer, UnslothTrainingArguments

    arguments = sft.trainer_defaults(model) | {
        "disable_tqdm": True,
        "per_device_train_batch_size": settings.batch_size,
        "max_steps": settings.max_steps,
        "learning_rate": settings.learning_rate,
        "embedding_learning_rate": settings.embedding_learning_rate,
        "lr_scheduler_type": settings.scheduler,
        "warmup_steps": settings.warmup_steps,
        "dataset_text_field": "text",
        "max_length": len(blocks[0]),
    }
    return UnslothTrainer(
        model=model,
        args=UnslothTrainingArguments(**arguments),
        train_dataset=cpt.block_dataset(blocks),
        processing_class=tokenizer,
    )


def test_training_lowers_the_loss_tracks_perplexity_and_uses_the_embedding_learning_rate(tokenizer):
    import unsloth  # noqa: F401  (its CPU backend patches TRL)

    model = cpt.prepare_model(
        build_tiny_model(tokenizer), cpt.CPTSettings(method="lora", r=4, alpha=4)
    )
    settings = cpt.CPTSettings(
        method="lora",
        r=4,
        alpha=4,
        learning_rate=1e-2,
        embedding_learning_rate=1e-3,
        max_steps=6,
        batch_size=2,
        warmup_steps=0,
    )
    blocks = [[5, 6, 7, 8, 9, 10, 11, 12] * 2 for _ in range(12)]
    trainer = cpt_trainer(model, tokenizer, blocks, settings)
    tracker = cpt.PerplexityTracker(model, {"domain": blocks[:2]}, every=3)
    history = cpt.run_cpt(trainer, tracker)
    assert [h["step"] for h in history["perplexity"]] == [0, 3, 6]
    assert history["perplexity"][-1]["domain"] < history["perplexity"][0]["domain"]
    assert history["loss"][-1] < history["loss"][0]
    rates = sorted(
        {
            group["initial_lr"] if "initial_lr" in group else group["lr"]
            for group in trainer.optimizer.param_groups
        }
    )
    assert rates[0] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-2)
