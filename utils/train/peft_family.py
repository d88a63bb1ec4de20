"""The PEFT family side by side (Lab 07): each method's set-up on a causal LM — PEFT's own configs
where PEFT has the method, biases (or norms) for BitFit, everything for full fine-tuning — one
short training budget per run, the label-word score that works for every method (soft prompts
included), and what a method costs: trainable parameters, bytes on disk, inference latency."""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from utils.data.batching import pad_batch
from utils.data.prompting import DATASET_FORMATS, build_prompt
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


# --- the task: a message and its label word, scored the same way for every method ---------------


def task_format():
    """Lab 01's SMS format without its instruction (``Message: ...`` / ``Label:``): the
    instruction is what a soft prompt learns; text-initialised prompt tuning starts from it."""
    return replace(DATASET_FORMATS["sms_spam"], instruction=None)


def instruction_text() -> str:
    """Lab 01's instruction, the starting text of text-initialised prompt tuning."""
    return DATASET_FORMATS["sms_spam"].instruction


def prompt_text(row: dict, labels: Sequence[str]) -> str:
    """The prompt for one message, ending at ``Label:`` (the label word follows after a space)."""
    prompt = build_prompt(task_format(), [], row["text"], tuple(labels))
    return prompt.prefix + prompt.suffix


def label_token_ids(tokenizer, labels: Sequence[str]) -> list[int]:
    """The first token of `` <label>`` for each label; they must differ to tell labels apart."""
    ids = [tokenizer(" " + label, add_special_tokens=False)["input_ids"][0] for label in labels]
    if len(set(ids)) != len(ids):
        raise ValueError(f"labels {list(labels)} start with the same token: cannot score them")
    return ids


def encode_rows(tokenizer, rows: Sequence[dict], labels: Sequence[str]) -> list[tuple]:
    """Each row as ``(prompt ids, label token id)``."""
    label_ids = dict(zip(labels, label_token_ids(tokenizer, labels), strict=True))
    encode = lambda r: tokenizer(prompt_text(r, labels), add_special_tokens=False)["input_ids"]  # noqa: E731
    return [(encode(r), label_ids[r["label"]]) for r in rows]


def label_logits(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The logits after each row's last token (right padding), one row each. Only the last few
    positions go through the LM head (``logits_to_keep``): the rest would be thrown away."""
    lengths, width = mask.sum(1), ids.shape[1]
    keep = int(width - lengths.min()) + 1
    logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits
    return logits[torch.arange(len(ids)), keep - 1 - (width - lengths).to(logits.device)]


def label_loss(model, examples: Sequence[tuple], pad_id: int) -> torch.Tensor:
    """Cross-entropy of each example's label token after its prompt, averaged over the batch."""
    device = next(model.parameters()).device
    ids, mask = pad_batch([p for p, _ in examples], pad_id)
    logits = label_logits(model, ids.to(device), mask.to(device))
    gold = torch.tensor([label for _, label in examples], device=device)
    return torch.nn.functional.cross_entropy(logits.float(), gold)


@torch.inference_mode()
def evaluate_labels(model, tokenizer, rows: Sequence[dict], labels: Sequence[str], batch_size=16):
    """Accuracy (the label whose word is likelier after ``Label:``) and the mean loss of the gold
    label token, by the model's own forward pass — so soft prompts and prefixes take part."""
    examples = encode_rows(tokenizer, rows, labels)
    label_ids = torch.tensor(label_token_ids(tokenizer, labels))
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))  # less padding
    device = next(model.parameters()).device
    correct, loss = 0, 0.0
    for start in range(0, len(order), batch_size):
        chunk = [examples[i] for i in order[start : start + batch_size]]
        ids, mask = pad_batch([p for p, _ in chunk], tokenizer.pad_token_id)
        last = label_logits(model, ids.to(device), mask.to(device)).float().cpu().log_softmax(-1)
        gold = torch.tensor([label for _, label in chunk])
        correct += int((label_ids[last[:, label_ids].argmax(1)] == gold).sum())
        loss -= float(last[torch.arange(len(chunk)), gold].sum())
    return {"accuracy": correct / len(examples), "loss": loss / len(examples), "n": len(examples)}


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


def training_batches(examples: Sequence[tuple], batch_size: int, steps: int, seed: int) -> list:
    """``steps`` batches, the same for every method with the same seed: each pass over the data in
    a random order, every 4 batches' worth sorted by length before it is cut (less padding, and
    the batches stay mixed); a pass's last incomplete group is left out, as ``drop_last``."""
    rng, batches, pool = random.Random(seed), [], 4 * batch_size
    while len(batches) < steps:
        order = rng.sample(range(len(examples)), len(examples))
        for begin in range(0, len(order) - pool + 1, pool):
            group = sorted(order[begin : begin + pool], key=lambda i: len(examples[i][0]))
            chunks = [group[j : j + batch_size] for j in range(0, pool, batch_size)]
            rng.shuffle(chunks)
            batches += [[examples[i] for i in chunk] for chunk in chunks]
    return batches[:steps]


def autocast_like(model):
    """Autocast to the base's half precision on a GPU (trainable weights stay fp32); nothing on a
    CPU, where the kit trains in fp32."""
    first = next(model.parameters())
    half = [p.dtype for p in model.parameters() if p.dtype in (torch.float16, torch.bfloat16)]
    if first.is_cuda and half:
        return torch.autocast("cuda", dtype=half[0])
    return torch.autocast("cpu", enabled=False)


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
    decay = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / len(batches))
    model.train()
    losses = []
    for batch in tqdm(batches, desc=f"{name} {lr:g}", leave=False):
        with autocast_like(model):
            loss = label_loss(model, batch, pad_id)
        loss.backward()
        optimizer.step()
        decay.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return model.eval(), losses


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
