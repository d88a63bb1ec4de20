"""LoRA's scale: the two conventions found in code, rsLoRA, the size of the update, merging at a
chosen strength and combining adapters (Lab 03C).

PEFT adds ``(lora_alpha / r) * B A`` to a weight (``lora_alpha / sqrt(r)`` with ``use_rslora``);
much from-scratch code adds ``alpha * (x @ A @ B)`` with no division, ``A`` being in x r there.
The same update written both ways differs only in what ``alpha`` means.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager

import torch

CONVENTIONS = ("peft", "rslora", "scratch")


def lora_scale(alpha: float, r: int, convention: str = "peft") -> float:
    """The factor the update ``B A`` is multiplied by: ``alpha / r`` (PEFT), ``alpha / sqrt(r)``
    (rsLoRA, Kalajdzievski 2023) or ``alpha`` (from-scratch code with no division)."""
    if r < 1:
        raise ValueError(f"LoRA rank must be >= 1, got {r}")
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    return {"peft": alpha / r, "rslora": alpha / math.sqrt(r), "scratch": float(alpha)}[convention]


def peft_alpha_from_scratch(alpha: float, r: int, rslora: bool = False) -> float:
    """PEFT's ``lora_alpha`` for an adapter written as ``alpha * (x @ A @ B)``: the same scale."""
    return alpha * (math.sqrt(r) if rslora else r)


def scratch_alpha_from_peft(lora_alpha: float, r: int, rslora: bool = False) -> float:
    """The from-scratch ``alpha`` of a PEFT adapter (``lora_alpha``, rank ``r``): the same scale."""
    return lora_scale(lora_alpha, r, "rslora" if rslora else "peft")


def scratch_forward(
    x: torch.Tensor, linear: torch.nn.Linear, A: torch.Tensor, B: torch.Tensor, alpha: float
) -> torch.Tensor:
    """A linear layer plus an adapter in the from-scratch convention: ``A`` is in x r, ``B`` is
    r x out, and the update is ``alpha * (x @ A @ B)``."""
    return linear(x) + alpha * (x @ A @ B)


def peft_linear(
    linear: torch.nn.Linear, A: torch.Tensor, B: torch.Tensor, lora_alpha: float, rslora=False
):
    """A PEFT model of one copy of ``linear`` whose LoRA factors are the from-scratch ``A``
    (in x r) and ``B`` (r x out), transposed to PEFT's layout; ``lora_alpha`` as given."""
    from peft import LoraConfig, get_peft_model

    holder = torch.nn.Sequential()
    holder.add_module("layer", copy.deepcopy(linear))
    config = LoraConfig(
        r=A.shape[1], lora_alpha=lora_alpha, target_modules=["layer"], use_rslora=rslora
    )
    model = get_peft_model(holder, config)
    layer = model.base_model.model.layer
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(A.T)  # PEFT's A: r x in
        layer.lora_B["default"].weight.copy_(B.T)  # PEFT's B: out x r
    return model.eval()


def lora_layers(model):
    """``(name, layer)`` for every PEFT LoRA layer of ``model``."""
    from peft.tuners.lora import LoraLayer

    return [(n, m) for n, m in model.named_modules() if isinstance(m, LoraLayer)]


@torch.no_grad()
def update_norm(model, adapter: str = "default") -> float:
    """The size of what an adapter adds to the model: the Frobenius norm of every layer's
    ``scale * B A`` together (the square root of the summed squares)."""
    total = 0.0
    for _, layer in lora_layers(model):
        if adapter in layer.lora_A:
            total += float(layer.get_delta_weight(adapter).float().pow(2).sum())
    return math.sqrt(total)


@contextmanager
def merged_at_scale(model, scale: float):
    """Inside the block, ``model``'s active adapter is merged into its weights at ``scale``
    (``W + scale * ΔW``: PEFT's ``merge_adapter`` inside ``rescale_adapter_scale``, so no LoRA
    product is computed at run time); on leaving, it is unmerged and the adapter is as before (to
    float rounding). In place, without a copy: a ``copy.deepcopy`` of a model Unsloth loaded keeps
    a ``forward`` bound to the original, so the copy's outputs would be the original's."""
    from peft.helpers import rescale_adapter_scale

    with rescale_adapter_scale(model, float(scale)):
        model.merge_adapter()
        try:
            yield model
        finally:
            model.unmerge_adapter()
