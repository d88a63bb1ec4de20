"""The PEFT family side by side (Lab 07): each method's set-up on a causal LM — PEFT's own configs
where PEFT has the method, biases (or norms) for BitFit, everything for full fine-tuning — one
short training budget per run, the label-word score that works for every method (soft prompts
included), and what a method costs: trainable parameters, bytes on disk, inference latency."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from utils.eval.label_task import instruction_text, label_logits
from utils.train.loop import linear_decay, train_label_steps
from utils.train.memory_estimate import shape_from_config
from utils.train.quantization import nf4_roundtrip_linears

NUM_VIRTUAL_TOKENS = 20  # soft prompts and prefixes: 20 learned positions
P_TUNING_HIDDEN = 128  # width of P-tuning's MLP prompt encoder
IA3_TARGETS = ("k_proj", "v_proj", "down_proj")  # PEFT's default for Llama models
IA3_FEEDFORWARD = ("down_proj",)  # scaled on its input, the others on their output


@dataclass(frozen=True)
class Method:
    """One row of the comparison: how it is set up, whether it merges into the base, and the
    learning rates tried on validation (soft prompts need far higher rates than LoRA)."""

    name: str
    family: str  # soft prompt | additive | selective | reparameterised | full
    mergeable: bool  # folds into the base weights: no extra inference cost after merging
    learning_rates: tuple[float, ...]


METHODS = {
    m.name: m
    for m in (
        Method("prompt tuning (random init)", "soft prompt", False, (1e-1, 3e-1, 1.0)),
        Method("prompt tuning (text init)", "soft prompt", False, (3e-2, 1e-1, 3e-1)),
        Method("P-tuning", "soft prompt", False, (1e-2, 3e-2, 1e-1)),
        Method("prefix tuning", "soft prompt", False, (1e-2, 3e-2, 1e-1)),
        Method("IA3", "additive", True, (1e-2, 3e-2, 1e-1)),
        Method("bottleneck adapter", "additive", False, (3e-4, 1e-3, 3e-3)),
        Method("BitFit", "selective", True, (1e-3, 3e-3, 1e-2)),
        Method("LoRA", "reparameterised", True, (1e-3, 3e-3, 1e-2)),
        Method("rsLoRA", "reparameterised", True, (1e-3, 3e-3, 1e-2)),
        Method("DoRA", "reparameterised", True, (1e-3, 3e-3, 1e-2)),
        Method("full fine-tuning", "full", True, (3e-5, 1e-4, 3e-4)),
    )
}


# --- setting a method up -------------------------------------------------------------------------


def peft_config(name: str, tokenizer_path: str, r: int = 8, alpha: int = 16):
    """PEFT's config for a method PEFT ships (None for the others)."""
    from peft import (
        IA3Config,
        LoraConfig,
        PrefixTuningConfig,
        PromptEncoderConfig,
        PromptTuningConfig,
        PromptTuningInit,
    )

    lora = {"r": r, "lora_alpha": alpha, "lora_dropout": 0.0, "target_modules": "all-linear"}
    configs = {
        "prompt tuning (random init)": lambda: PromptTuningConfig(
            task_type="CAUSAL_LM", num_virtual_tokens=NUM_VIRTUAL_TOKENS
        ),
        "prompt tuning (text init)": lambda: PromptTuningConfig(
            task_type="CAUSAL_LM",
            num_virtual_tokens=NUM_VIRTUAL_TOKENS,
            prompt_tuning_init=PromptTuningInit.TEXT,
            prompt_tuning_init_text=instruction_text(),
            tokenizer_name_or_path=tokenizer_path,
        ),
        "P-tuning": lambda: PromptEncoderConfig(
            task_type="CAUSAL_LM",
            num_virtual_tokens=NUM_VIRTUAL_TOKENS,
            encoder_hidden_size=P_TUNING_HIDDEN,
        ),
        "prefix tuning": lambda: PrefixTuningConfig(
            task_type="CAUSAL_LM", num_virtual_tokens=NUM_VIRTUAL_TOKENS
        ),
        "IA3": lambda: IA3Config(
            task_type="CAUSAL_LM",
            target_modules=list(IA3_TARGETS),
            feedforward_modules=list(IA3_FEEDFORWARD),
        ),
        "LoRA": lambda: LoraConfig(task_type="CAUSAL_LM", **lora),
        "rsLoRA": lambda: LoraConfig(task_type="CAUSAL_LM", use_rslora=True, **lora),
        "DoRA": lambda: LoraConfig(task_type="CAUSAL_LM", use_dora=True, **lora),
    }
    return configs[name]() if name in configs else None


def train_biases_or_norms(model) -> str:
    """BitFit: freeze everything but the bias vectors. A model without biases (Llama-style, as
    SmolLM2) trains its normalisation weights instead; returns which of the two it did."""
    for param in model.parameters():
        param.requires_grad = False
    biases = [p for n, p in model.named_parameters() if n.endswith(".bias")]
    chosen = biases or [p for n, p in model.named_parameters() if "norm" in n]
    for param in chosen:
        param.requires_grad = True
    return "biases" if biases else "norms (the model has no biases)"


def set_up_method(
    base, name: str, tokenizer_path: str, adapter: Callable | None = None, seed=0, config=None
):
    """A fresh copy of ``base`` with method ``name`` attached and only its parameters trainable.

    ``config``: the PEFT config to attach (default: ``peft_config(name)``, the kit's). ``adapter(
    model)`` puts the bottleneck adapter in (the lab's own, from scratch). Lab 07 writes the
    training loop on its page."""
    torch.manual_seed(seed)
    model = copy.deepcopy(base)
    config = config if config is not None else peft_config(name, tokenizer_path)
    if config is not None:
        from peft import get_peft_model

        model = get_peft_model(model, config)
    elif name == "BitFit":
        train_biases_or_norms(model)
    elif name == "bottleneck adapter":
        if adapter is None:
            raise ValueError("the bottleneck adapter needs the lab's adapter function")
        for param in model.parameters():
            param.requires_grad = False
        adapter(model)
    elif name == "full fine-tuning":
        for param in model.parameters():
            param.requires_grad = True
    else:
        raise ValueError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    for param in model.parameters():  # trainable weights in fp32 (GPU bases may be fp16/bf16)
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    return model


def trainable_state(model) -> dict[str, torch.Tensor]:
    """CPU copies of the trainable tensors (what a method learned)."""
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


# --- one training budget -------------------------------------------------------------------------


def train_briefly(
    base, name: str, lr: float, batches: Sequence, pad_id: int, tokenizer_path: str, seed: int = 0
):
    """A fresh copy of ``base`` with method ``name``, trained one AdamW step per batch (rate
    decaying linearly to 0) on the label loss: Lab 07's loop, for labs that need a fine-tuned
    model rather than teach how to train one. Returns the model (in eval mode) and its losses."""
    model = set_up_method(base, name, tokenizer_path, seed=seed)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0
    )
    schedule = linear_decay(optimizer, len(batches))
    run = train_label_steps(
        model, batches, pad_id, optimizer, schedule=schedule, desc=f"{name} {lr:g}"
    )
    return model, run["loss"]


# --- what a method costs -------------------------------------------------------------------------


@torch.inference_mode()
def relative_latency(model, base, ids: torch.Tensor, mask: torch.Tensor, repeats: int = 5) -> float:
    """Forward time of ``model`` over ``base``'s for the same batch of prompts (the next-token
    logits, as when serving): the two are timed in turns, after a warm-up pass each, and their
    fastest passes compared — the usual statistic on a shared machine, where a busy moment only
    ever adds time."""
    times: dict[int, list[float]] = {id(model): [], id(base): []}
    for turn in range(repeats + 1):
        for which in (model, base):
            device = next(which.parameters()).device
            start = time.perf_counter()
            label_logits(which, ids.to(device), mask.to(device))
            if device.type == "cuda":
                torch.cuda.synchronize()
            if turn:  # the first turn warms up
                times[id(which)].append(time.perf_counter() - start)
    return min(times[id(model)]) / min(times[id(base)])


def saved_bytes(model) -> int:
    """Bytes of what a method must ship: PEFT's ``save_pretrained`` tensors for a PEFT model (a
    P-tuning encoder is folded into its prompt then), otherwise the trainable tensors."""
    from safetensors.torch import save

    if hasattr(model, "peft_config"):
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(model)
    else:
        state = trainable_state(model)
    return len(save({k: v.contiguous() for k, v in state.items()}))


def merged_for_serving(model, name: str):
    """The model as it would be served with its method merged: a copy with the method folded into
    the base weights (LoRA/rsLoRA/DoRA/IA3), the model itself where nothing is left to merge
    (BitFit, full fine-tuning), or None where the method cannot merge (soft prompts, adapters)."""
    if not METHODS[name].mergeable:
        return None
    if hasattr(model, "peft_config"):
        return copy.deepcopy(model).merge_and_unload()
    return model


def merged_saved_adapter(model, folder, nf4: bool = False):
    """``(copy of model with the PEFT adapter saved in folder merged in, the adapter's parameter
    count)``. ``nf4``: round the copy's linear weights through NF4 first — the weights a QLoRA
    adapter was trained on. ``model`` is unchanged; an adapter made for another base raises
    PEFT's own ValueError/RuntimeError."""
    from peft import PeftModel
    from safetensors import safe_open

    with safe_open(str(Path(folder) / "adapter_model.safetensors"), "pt") as saved:
        parameters = sum(math.prod(saved.get_slice(k).get_shape()) for k in saved.keys())
    base = copy.deepcopy(model)
    if nf4:
        nf4_roundtrip_linears(base)
    attached = PeftModel.from_pretrained(base, str(folder), is_trainable=False)
    return attached.merge_and_unload(), parameters


# --- the lab's from-scratch tasks: the kit's reference answers -----------------------------------


class BottleneckAdapter(torch.nn.Module):
    """Houlsby et al.'s adapter: ``h + up(relu(down(h)))``, ``up`` zero-initialised so the model is
    unchanged at the start."""

    def __init__(self, hidden: int, bottleneck: int):
        super().__init__()
        self.down = torch.nn.Linear(hidden, bottleneck)
        self.up = torch.nn.Linear(bottleneck, hidden)
        torch.nn.init.zeros_(self.up.weight), torch.nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(torch.relu(self.down(h)))


class WithAdapter(torch.nn.Module):
    """A block's MLP followed by a bottleneck adapter on its output."""

    def __init__(self, mlp: torch.nn.Module, adapter: torch.nn.Module):
        super().__init__()
        self.mlp, self.adapter = mlp, adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.mlp(x))


def add_bottleneck_adapters(model, bottleneck: int = 64) -> int:
    """An adapter after every block's MLP (in fp32, on the block's device); returns how many.
    The default bottleneck, 64, gives about the parameters of LoRA r = 8 on SmolLM2-135M."""
    blocks = model.get_decoder().layers
    for block in blocks:
        device = next(block.mlp.parameters()).device
        adapter = BottleneckAdapter(model.config.hidden_size, bottleneck).to(device)
        block.mlp = WithAdapter(block.mlp, adapter)
    return len(blocks)


def model_shape(config):
    """The kit's ``ModelShape`` of a Llama-style model (its linear layers' sizes, LoRA counts)."""

    return shape_from_config(config.to_dict())


def rank_for_budget(config, budget: int, targets: Sequence[str]) -> int:
    """The rank whose LoRA on ``targets`` comes closest to ``budget`` parameters."""
    per_rank = model_shape(config).lora_params(1, tuple(targets))
    return max(1, round(budget / per_rank))


def lora_model(base, targets: Sequence[str], r: int, seed: int = 0):
    """A fresh copy of ``base`` with LoRA of rank ``r`` (alpha = 2r) on ``targets``."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    config = LoraConfig(
        task_type="CAUSAL_LM", r=r, lora_alpha=2 * r, lora_dropout=0.0, target_modules=list(targets)
    )
    return get_peft_model(copy.deepcopy(base), config)
