"""Data-parallel training on PyTorch's own engine (``torch.distributed`` + DDP), launched by
``torchrun``: the same LoRA run on one process and on N ranks, so their losses and adapter weights
can be compared. ``tools/distributed/ddp_train.py`` is the launch script (gloo on CPUs, NCCL on
GPUs, the same file)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from utils.data.batching import training_batches
from utils.data.datasets import load_split
from utils.eval.label_task import encode_rows
from utils.runtime.models import embedded_model_dir, load_model
from utils.train import peft_family as family
from utils.train.loop import train_label_steps
from utils.train.memory_levers import make_optimizer


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of ranks (1, 1 without ``torchrun``)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def train_data_parallel(
    model, batches: list[list], lr: float, pad_id: int, optimizer: str = "sgd-momentum"
) -> dict:
    """Train on ``batches`` (global batches) with every rank taking its shard; DDP averages the
    gradients, which equals the gradient of the global batch's mean loss (equal shards, one label
    token per example). Returns the global losses and seconds per step (rank 0's view).

    SGD keeps the comparison exact: Adam divides each gradient by its own running size, so for
    near-zero gradients float-rounding differences of 1e-9 become updates that differ by ~lr."""
    from torch.nn.parallel import DistributedDataParallel

    rank, world = rank_and_world()
    wrapped = DistributedDataParallel(model) if world > 1 else model
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(optimizer, params, lr=lr)
    run = train_label_steps(wrapped, batches, pad_id, optimizer, ranks=(rank, world))
    return {"loss": run["loss"], "seconds_per_step": sum(run["seconds"]) / len(run["seconds"])}


def train_one_rank(
    out: Path,
    steps: int,
    batch: int,
    lr: float,
    seed: int = 0,
    profile: str = "cpu",
    optimizer: str = "sgd-momentum",
) -> dict:
    """One LoRA run on the embedded model's SMS task (single process, or one rank of a torchrun
    job): writes ``out/result-<world>.json`` and ``out/adapter-<world>.safetensors`` on rank 0."""
    import torch.distributed as dist
    from safetensors.torch import save_file

    rank, world = rank_and_world()
    if world > 1:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    base, tokenizer = load_model(profile, backend="transformers" if profile == "cpu" else "auto")
    if torch.cuda.is_available():  # one GPU per rank (untested here: no GPU)
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        base = base.to(f"cuda:{torch.cuda.current_device()}")
    model = family.set_up_method(base, "LoRA", str(embedded_model_dir()), seed=seed)
    examples = encode_rows(tokenizer, load_split("sms_spam", "train"), ("ham", "spam"))
    batches = training_batches(examples, batch, steps, seed)
    result = {"world": world, "threads": torch.get_num_threads(), "steps": steps, "batch": batch}
    result["optimizer"] = optimizer
    result.update(train_data_parallel(model, batches, lr, tokenizer.pad_token_id, optimizer))
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        save_file(family.trainable_state(model), str(out / f"adapter-{world}.safetensors"))
        (out / f"result-{world}.json").write_text(json.dumps(result, indent=2))
    if world > 1:
        dist.destroy_process_group()
    return result
