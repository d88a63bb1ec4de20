"""LoRA from scratch: the reference the LoRA lab checks the learner's code against.

A frozen linear layer ``W`` gets a trainable low-rank update: ``y = W x + (alpha / r) * B A x``,
with ``A`` (r x in) random and ``B`` (out x r) zero, so the model is unchanged at initialisation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


class LoRALayer(nn.Module):
    """The low-rank update ``(alpha / r) * B A`` on its own."""

    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.A = nn.Parameter(torch.empty(rank, in_features))
        self.B = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.scaling = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.A.T @ self.B.T) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """The update as a full matrix, shaped like the wrapped layer's weight."""
        return (self.B @ self.A) * self.scaling


class LinearWithLoRA(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable ``LoRALayer``."""

    def __init__(self, linear: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.linear = linear
        for param in linear.parameters():
            param.requires_grad = False
        self.lora = LoRALayer(linear.in_features, linear.out_features, rank, alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.lora(x)

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with ``W + (alpha/r) B A`` folded in (the adapter is gone)."""
        merged = nn.Linear(
            self.linear.in_features, self.linear.out_features, bias=self.linear.bias is not None
        )
        with torch.no_grad():
            merged.weight.copy_(self.linear.weight + self.lora.delta_weight())
            if self.linear.bias is not None:
                merged.bias.copy_(self.linear.bias)
        return merged


def replace_modules(model: nn.Module, match, build) -> list[str]:
    """Replace every submodule for which ``match(name, module)`` holds by ``build(module)``."""
    replaced = []
    for name, module in list(model.named_modules()):
        if name and match(name, module):
            parent_name, _, child = name.rpartition(".")
            setattr(
                model.get_submodule(parent_name) if parent_name else model, child, build(module)
            )
            replaced.append(name)
    return replaced


def apply_lora(
    model: nn.Module, target_modules: Iterable[str], rank: int, alpha: float
) -> list[str]:
    """Wrap every ``nn.Linear`` whose name ends in one of ``target_modules`` (e.g. ``q_proj``).

    Returns the wrapped names; raises if none matched (a typo would otherwise train nothing).
    """
    targets = tuple(target_modules)
    replaced = replace_modules(
        model,
        lambda name, m: isinstance(m, nn.Linear) and name.split(".")[-1] in targets,
        lambda m: LinearWithLoRA(m, rank, alpha),
    )
    if not replaced:
        raise ValueError(f"no nn.Linear named {targets} in the model: nothing to adapt")
    return replaced


def merge_lora(model: nn.Module) -> list[str]:
    """Fold every adapter into its linear layer (inference gets the plain architecture back)."""
    return replace_modules(model, lambda _, m: isinstance(m, LinearWithLoRA), lambda m: m.merged())


def remove_lora(model: nn.Module) -> list[str]:
    """Drop every adapter, restoring the original linear layers exactly."""
    return replace_modules(model, lambda _, m: isinstance(m, LinearWithLoRA), lambda m: m.linear)
