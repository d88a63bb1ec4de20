"""Memory levers on one device, as small measurable experiments: gradient accumulation (and why
each micro-step's loss is divided by their number), fp16 underflow and loss scaling, and the
bytes an optimizer keeps per parameter — counted by hand and read from the optimizer itself."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from utils.runtime.memory import PeakMemory, release_memory
from utils.train.loop import train_label_steps


def take_gradients(model) -> dict[str, torch.Tensor]:
    """Copies of the trainable parameters' gradients, then cleared."""
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


def token_loss_sum(model, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Next-token cross-entropy summed over the real (unpadded) target tokens, and their count."""
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    flat = logits.reshape(-1, logits.shape[-1])
    total = F.cross_entropy(flat, targets.reshape(-1), reduction="sum")
    return total, int((targets != -100).sum())


def full_batch_gradients(model, batch: tuple[torch.Tensor, torch.Tensor]) -> dict:
    """Gradients of the mean token loss of one whole batch."""
    total, count = token_loss_sum(model, *batch)
    (total / count).backward()
    return take_gradients(model)


def accumulated_gradients(model, micro_batches: Sequence[tuple], normalise: str = "micro") -> dict:
    """Gradients summed over micro-batches, one backward each (the memory of one micro-batch).

    ``normalise="micro"``: each micro-batch's mean token loss divided by the number of
    micro-batches (what most training loops do: right when every micro-batch has as many target
    tokens); ``"global"``: each micro-batch's summed loss divided by the tokens of all of them
    (right always: the full batch's mean)."""
    if normalise not in ("micro", "global"):
        raise ValueError(f"normalise must be 'micro' or 'global', got {normalise!r}")
    all_tokens = sum(int(mask[:, 1:].sum()) for _, mask in micro_batches)
    for ids, mask in micro_batches:
        total, count = token_loss_sum(model, ids, mask)
        loss = total / all_tokens if normalise == "global" else total / count / len(micro_batches)
        loss.backward()
    return take_gradients(model)


def largest_difference(a: dict, b: dict) -> float:
    """Largest absolute difference between two gradient dicts with the same keys."""
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def fp16_zero_gradients(scale: float, tiny: float = 1e-9, seed: int = 0) -> float:
    """Share of a weight's gradient entries that come out exactly zero when the forward pass runs
    in fp16 (autocast) and the loss is small enough that its gradients (about ``tiny``) fall below
    fp16's smallest number (6e-8): with ``scale`` 1 they flush to zero; a loss scale (as
    ``torch.amp.GradScaler`` applies, 2**16 by default) lifts them into range, and dividing the
    fp32 gradient by the scale afterwards gives the true value back."""
    torch.manual_seed(seed)
    weight = torch.nn.Parameter(torch.randn(64, 64))
    x = torch.randn(16, 64)
    with torch.autocast("cpu", dtype=torch.float16):
        out = x @ weight
    loss = (out.float() * tiny).sum() * scale
    loss.backward()
    grad = weight.grad / scale
    return float((grad == 0).float().mean())


def optimizer_state_bytes(optimizer) -> int:
    """Bytes of every tensor the optimizer keeps in its state (moments, step counters, ...)."""
    return sum(
        value.numel() * value.element_size()
        for state in optimizer.state.values()
        for value in state.values()
        if torch.is_tensor(value)
    )


def expected_state_bytes(name: str, params: Sequence[torch.Tensor]) -> int:
    """The optimizer state bytes of ``name`` for fp32 ``params``, by hand: AdamW keeps two fp32
    moments per parameter and a step counter (a 4-byte tensor) per tensor; 8-bit AdamW
    (bitsandbytes) one byte per moment plus a scale per 256 values and two 256-entry code books
    per tensor; SGD with momentum one
    moment; plain SGD nothing; Adafactor (transformers, no first moment) a row and a column
    second-moment vector per matrix, a full one per vector, and the weights' RMS (a 4-byte
    tensor) per tensor."""
    n = sum(p.numel() for p in params)
    if name == "adamw":
        return 8 * n + 4 * len(params)
    if name == "adamw-8bit":  # bitsandbytes: tensors under 4096 values keep 32-bit moments
        return sum(
            2 * p.numel() + 2 * 4 * -(-p.numel() // 256) + 2 * 256 * 4
            if p.numel() >= 4096
            else 8 * p.numel()
            for p in params
        )
    if name == "sgd-momentum":
        return 4 * n
    if name == "sgd":
        return 0
    if name == "adafactor":
        factored = sum(
            4 * (p.shape[0] + p.shape[1]) if p.dim() == 2 else 4 * p.numel() for p in params
        )
        return factored + 4 * len(params)
    raise ValueError(f"unknown optimizer {name!r}")


def make_optimizer(name: str, params: Sequence[torch.Tensor], lr: float = 1e-3):
    """The optimizer ``name`` over ``params`` (torch's AdamW and SGD, bitsandbytes' 8-bit AdamW,
    transformers' Adafactor)."""
    params = list(params)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr)
    if name == "adamw-8bit":
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(params, lr=lr)
    if name == "sgd-momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=lr, scale_parameter=False, relative_step=False)
    raise ValueError(f"unknown optimizer {name!r}")


def train_with_levers(
    base,
    batches: Sequence[list],
    pad_id: int,
    *,
    micro: int,
    optimizer: str = "adamw",
    checkpointing: bool = False,
    autocast: torch.dtype | None = None,
    lr: float = 1e-5,
    accumulate: Callable | None = None,
) -> dict:
    """Full fine-tuning of a fresh copy of ``base`` on ``batches`` (lists of (prompt ids, label id)
    examples, Lab 07's label-token loss), each batch split into micro-batches of ``micro``
    examples whose losses are divided by their number and accumulated. Returns the step losses,
    seconds per step (the first step left out when there are more: it also allocates the
    optimizer's state), the growth of memory during training (GB) and the optimizer's state.
    ``accumulate(loss_of, micro_batches)`` computes one step's gradients and returns its loss
    (default ``loop.accumulate_gradients``; Lab 08 writes its own on the page)."""
    release_memory()
    model = copy.deepcopy(base)
    for param in model.parameters():
        param.requires_grad = True
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    opt = make_optimizer(optimizer, [p for p in model.parameters()], lr=lr)
    memory = PeakMemory().start()
    run = train_label_steps(
        model, batches, pad_id, opt, micro=micro, autocast=autocast, accumulate=accumulate
    )
    peak = memory.stop()
    timed = run["seconds"][1:] or run["seconds"]  # the first step also allocates the state
    seconds = sum(timed) / len(timed)
    state = optimizer_state_bytes(opt)
    del model, opt
    release_memory()
    return {
        "loss": run["loss"],
        "seconds_per_step": seconds,
        "memory_gb": peak["peak_gb"] - peak["start_gb"],
        "optimizer_state_bytes": state,
        "optimizer_state_gb": state / 1e9,
    }
