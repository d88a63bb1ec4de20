"""One short training loop over the label task, for the labs that train many small runs side by
side (Labs 07–09): one optimizer step per batch, each batch optionally cut into micro-batches
whose gradients are accumulated, this rank's shard of it under data parallelism, autocast by the
model's own device, and an optional learning-rate schedule. Lab 07 writes the same loop out on
its page, where the loop is the lesson; Lab 02 writes its classifier's."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from utils.eval.label_task import label_loss


def device_autocast(model, dtype: torch.dtype | None = None):
    """Autocast on the model's own device: to ``dtype`` when given; else to the base's half
    precision on a GPU (trainable weights stay fp32), and nothing on a CPU, where the kit trains
    in fp32."""
    device = next(model.parameters()).device.type
    if dtype is None and device == "cuda":  # the base's half precision, if it has one
        halves = (p.dtype for p in model.parameters() if p.dtype in (torch.float16, torch.bfloat16))
        dtype = next(halves, None)
    if dtype is None:
        return torch.autocast(device, enabled=False)
    return torch.autocast(device, dtype=dtype)


def shard(batch: list, rank: int, world: int) -> list:
    """Rank ``rank``'s equal share of a global batch (its size must divide by ``world``)."""
    if len(batch) % world:
        raise ValueError(f"a global batch of {len(batch)} does not split into {world} equal shards")
    return batch[rank::world]


def accumulate_gradients(loss_of: Callable, micro_batches: Sequence[list]) -> float:
    """One optimizer step's gradients from equal-sized micro-batches: each mean loss divided by
    their number, so the summed gradient is the full batch's; returns the step's loss."""
    step_loss = 0.0
    for part in micro_batches:
        loss = loss_of(part) / len(micro_batches)
        loss.backward()
        step_loss += loss.item()
    return step_loss


def train_label_steps(
    model,
    batches: Sequence[list],
    pad_id: int,
    optimizer,
    *,
    schedule=None,
    micro: int | None = None,
    autocast: torch.dtype | None = None,
    accumulate: Callable | None = None,
    ranks: tuple[int, int] | None = None,
    desc: str | None = None,
) -> dict:
    """One ``optimizer`` step per batch of ``(prompt ids, label id)`` examples on the label loss.

    ``micro``: examples per micro-batch (default: the whole batch in one); ``accumulate(loss_of,
    micro_batches)`` computes a step's gradients and returns its loss (default
    ``accumulate_gradients``; Lab 08 writes its own on the page). ``ranks=(rank, world)``: train
    on this rank's shard of every batch (``model`` wrapped in DDP, which averages the gradients)
    and report the loss averaged over the ranks. ``schedule`` steps after the optimizer;
    ``desc`` shows a progress bar. Returns the step losses and each step's seconds; the model is
    left in eval mode."""
    rank, world = ranks or (0, 1)
    losses, seconds = [], []
    model.train()
    for batch in tqdm(batches, desc=desc, disable=desc is None, leave=False):
        start = time.perf_counter()
        mine = shard(batch, rank, world)
        size = micro or len(mine)
        parts = [mine[i : i + size] for i in range(0, len(mine), size)]

        def loss_of(part):
            with device_autocast(model, autocast):
                return label_loss(model, part, pad_id)

        step_loss = (accumulate or accumulate_gradients)(loss_of, parts)
        optimizer.step()
        if schedule is not None:
            schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if world > 1:
            total = torch.tensor(step_loss, device=next(model.parameters()).device)
            torch.distributed.all_reduce(total)  # NCCL needs the tensor on the GPU
            step_loss = float(total) / world
        losses.append(step_loss)
        seconds.append(time.perf_counter() - start)
    model.eval()
    return {"loss": losses, "seconds": seconds}


def linear_decay(optimizer, steps: int):
    """The learning rate falling linearly from its set value to 0 at step ``steps``."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
