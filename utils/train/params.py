"""Which parameters train: freezing a model but its last blocks, attaching PEFT LoRA adapters (the
one set-up path of instruction tuning and continual pre-training), keeping adapters in fp32 on a
CPU, and counting what trains. The from-scratch LoRA of Lab 03 is ``utils.train.lora``."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from utils.runtime.models import model_backend

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
EMBEDDINGS = ("embed_tokens", "lm_head")  # trained as full copies (PEFT's modules_to_save)


def count_trainable(model) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def freeze_all_but(
    model,
    last_blocks: int,
    train_norm: bool = True,
    train_head: bool = True,
    train_embeddings: bool = False,
) -> int:
    """Freeze every parameter, then unfreeze the last ``last_blocks`` blocks, final norm and head.

    Returns the number of trainable parameters.
    """
    base = model.get_decoder()
    for param in model.parameters():
        param.requires_grad = False
    modules = list(base.layers[len(base.layers) - last_blocks :]) if last_blocks > 0 else []
    modules += [base.norm] if train_norm else []
    modules += [model.lm_head] if train_head else []
    modules += [base.embed_tokens] if train_embeddings else []
    for module in modules:
        for param in module.parameters():
            param.requires_grad = True
    return count_trainable(model)[0]


def add_peft_lora(
    model,
    r: int,
    alpha: float,
    target_modules: Sequence[str] = ALL_LINEAR,
    *,
    modules_to_save: Sequence[str] = (),
    seed: int = 0,
    gradient_checkpointing: bool = False,
):
    """Wrap ``model`` with fresh LoRA adapters (dropout 0, no bias) and return the PEFT model.

    ``modules_to_save`` (e.g. ``EMBEDDINGS``) are trained as full copies. A model that
    ``load_model`` loaded through Unsloth goes through Unsloth's ``get_peft_model`` (its fast
    paths); any other through ``peft.get_peft_model`` — the same adapters either way.
    """
    if model_backend(model) == "unsloth":
        from unsloth import FastLanguageModel

        return FastLanguageModel.get_peft_model(
            model,
            r=r,
            lora_alpha=alpha,
            lora_dropout=0.0,
            bias="none",
            target_modules=list(target_modules),
            modules_to_save=list(modules_to_save) or None,
            random_state=seed,
            use_gradient_checkpointing="unsloth" if gradient_checkpointing else False,
        )
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=0.0,
        bias="none",
        target_modules=list(target_modules),
        modules_to_save=list(modules_to_save) or None,
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(seed)
    return get_peft_model(model, config)


def keep_adapters_fp32(model) -> None:
    """TRL casts LoRA weights of quantized models to bf16; on a CPU bf16 is emulated (~100x slower
    matmuls), so trainable parameters go back to fp32 there. GPUs keep TRL's choice."""
    for param in model.parameters():
        if param.requires_grad and not param.is_cuda and param.dtype != torch.float32:
            param.data = param.data.float()
