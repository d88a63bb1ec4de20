"""Which parameters train: freezing a model but its last blocks, attaching PEFT LoRA adapters (the
one set-up path of instruction tuning and continual pre-training), keeping adapters in fp32 on a
CPU, and counting what trains. The from-scratch LoRA of Lab 03 is ``utils.train.lora``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers.pytorch_utils import Conv1D

from utils.runtime.models import model_backend

# Llama's layer names (SmolLM2, Llama, Qwen2, Mistral, Gemma share them): the labs that teach this
# layout name them; code that takes any model asks it with linear_layer_names / embedding_names.
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
EMBEDDINGS = ("embed_tokens", "lm_head")  # trained as full copies (PEFT's modules_to_save)


PEFT_PARTS = {"lora_A", "lora_B", "lora_magnitude_vector", "modules_to_save", "original_module"}


def is_linear(module: torch.nn.Module) -> bool:
    """A layer LoRA can adapt as a matrix: ``nn.Linear`` (bitsandbytes' 4/8-bit layers subclass it)
    or GPT-2's ``Conv1D`` (a linear layer with its weight stored transposed)."""
    return isinstance(module, (torch.nn.Linear, Conv1D))


def linear_layer_names(model) -> tuple[str, ...]:
    """The leaf names of "every linear layer" of ``model``, in the order the model defines them,
    without the output head: ``q_proj … down_proj`` for Llama, ``qkv_proj, o_proj, gate_up_proj,
    down_proj`` for Phi-3, ``c_attn, c_proj, c_fc`` for GPT-2 (what PEFT's ``"all-linear"``
    selects, as concrete names that ``adapter_config.json`` records). Reads through a PEFT
    wrapper."""
    head = model.get_output_embeddings()
    names: dict[str, None] = {}
    for name, module in model.named_modules():
        parts = name.removesuffix(".base_layer").split(".")  # PEFT keeps the layer as base_layer
        if is_linear(module) and module is not head and not PEFT_PARTS.intersection(parts):
            names.setdefault(parts[-1])
    if not names:
        raise ValueError(f"{type(model).__name__} has no linear layers besides its output head")
    return tuple(names)


def embedding_names(model) -> tuple[str, ...]:
    """The leaf names of the input embedding and the output head (``embed_tokens``/``lm_head`` for
    Llama, ``wte``/``lm_head`` for GPT-2), read from the model: PEFT's ``modules_to_save`` for
    continual pre-training."""
    wanted = (model.get_input_embeddings(), model.get_output_embeddings())
    found = {id(m): name.rsplit(".", 1)[-1] for name, m in model.named_modules() if m in wanted}
    return tuple(dict.fromkeys(found[id(m)] for m in wanted if m is not None and id(m) in found))


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


def lora_config_for(
    model,
    r: int,
    alpha: float,
    target_modules: Sequence[str] | None = None,
    *,
    modules_to_save: Sequence[str] = (),
    use_rslora: bool = False,
):
    """The kit's PEFT ``LoraConfig`` (dropout 0, no bias): ``target_modules`` default every linear
    layer of this model (``linear_layer_names``); ``modules_to_save`` (e.g. ``EMBEDDINGS``) are
    trained as full copies; ``use_rslora`` scales the update by ``alpha / sqrt(r)`` (rsLoRA)
    instead of ``alpha / r``."""
    from peft import LoraConfig

    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=0.0,
        bias="none",
        target_modules=list(target_modules or linear_layer_names(model)),
        modules_to_save=list(modules_to_save) or None,
        use_rslora=use_rslora,
        task_type="CAUSAL_LM",
    )


def add_peft_lora(
    model,
    r: int,
    alpha: float,
    target_modules: Sequence[str] | None = None,
    *,
    seed: int = 0,
    gradient_checkpointing: bool = False,
    **options,
):
    """Wrap ``model`` with fresh LoRA adapters and return the PEFT model: ``lora_config_for``
    these settings (``options``: its ``modules_to_save``, ``use_rslora``), attached by
    ``attach_lora``."""
    config = lora_config_for(model, r, alpha, target_modules, **options)
    return attach_lora(model, config, seed=seed, gradient_checkpointing=gradient_checkpointing)


def attach_lora(model, config, seed: int = 0, gradient_checkpointing: bool = False):
    """Fresh LoRA adapters on ``model`` as PEFT's ``config`` (a ``LoraConfig``) says, the
    adapters' random start drawn from ``seed``. A model that ``load_model`` loaded through Unsloth
    goes through Unsloth's ``get_peft_model`` (its fast paths) with the same settings; any other
    through ``peft.get_peft_model`` — the same adapters either way. Target names that match no
    linear layer of the model raise a ``ValueError`` listing the ones it has."""
    targets = config.target_modules  # None: PEFT's default for the model; a string: a regex
    if targets is not None and not isinstance(targets, str):
        available = linear_layer_names(model)
        missing = sorted(set(targets) - set(available))
        if missing:
            raise ValueError(
                f"target modules {missing} are not linear layers of this {type(model).__name__}; "
                f"it has {list(available)} (leave target_modules out for all of them)"
            )
        targets = sorted(targets)
    if model_backend(model) == "unsloth":
        from unsloth import FastLanguageModel

        return FastLanguageModel.get_peft_model(
            model,
            r=config.r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            bias=config.bias,
            target_modules=targets,
            modules_to_save=config.modules_to_save,
            use_rslora=config.use_rslora,
            random_state=seed,
            use_gradient_checkpointing="unsloth" if gradient_checkpointing else False,
        )
    from peft import get_peft_model

    torch.manual_seed(seed)
    return get_peft_model(model, config)


def keep_adapters_fp32(model) -> None:
    """TRL casts LoRA weights of quantized models to bf16; on a CPU bf16 is emulated (~100x slower
    matmuls), so trainable parameters go back to fp32 there. GPUs keep TRL's choice."""
    for param in model.parameters():
        if param.requires_grad and not param.is_cuda and param.dtype != torch.float32:
            param.data = param.data.float()
