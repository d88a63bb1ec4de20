"""Where the kit's LoRA SFT step spends its time, and what the alternatives tried give.

    .venv/bin/python bench/sft_breakdown.py [--repeats 7] [--rounds 1]

The companion of ``bench/sft_throughput.py``, whose targets (2.5x the TRL baseline, MFU 70 %) the
kit misses on Lab 03B's task: this script measures why, and keeps the evidence for every
alternative that was tried. One batch of the same run (the first 4 training rows of Lab 03B's
extraction task, LoRA r=16 on all linear layers, fp32, checkpointing off), one optimizer step's
forward + backward timed per call; arms alternate, figures are medians of ``--repeats`` (the first
call of each arm is left out). In this process:

- **kit**: the kit's step, the trainer's own ``compute_loss`` + ``backward``.
- **shared prefix** (tried, not adopted): the rows' common prefix (system instruction and chat
  header) runs once with a key/value cache that the rows reuse; exact (same loss and gradients,
  checked), 20-25 % fewer tokens fed.
- **fused LoRA** (tried, not adopted): each LoRA linear as one autograd function (``addmm``, the
  scaling applied to the rank-r product), instead of PEFT's separate ops; same loss and gradients.
- **adapters off**: the same step with the adapters disabled (the gradient still flows to the
  embeddings): the difference to **kit** is what LoRA's thin rank-16 products cost.
- **token scaling**: the kit's step on 1, 2, 4 and 8 rows; a least-squares line gives the fixed
  cost per step and the cost per real token, hence GFLOP/s per token (FLOPs per token as in
  ``bench/sft_throughput.py``).
- **matmuls**: the square fp32 peak, the model's own shapes and LoRA's thin ones.

In fresh child processes, alternating: the kit's step as shipped vs with ``UNSLOTH_CPU_COMPILE=1``
(Unsloth's CPU backend compiles each decoder layer with Inductor; the first call, which compiles,
is reported apart). Writes outputs/bench/sft_breakdown.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine, report_result, run_child, write_result  # noqa: E402
from bench.sft_throughput import flops_per_token, kit_trainer, matmul_peak, matmul_rates  # noqa: E402

IGNORE = -100


def first_batch(trainer) -> dict:
    """The first training batch of the kit's trainer (4 rows, right-padded)."""
    return dict(next(iter(trainer.get_train_dataloader())))


def labelled_count(batch: dict) -> int:
    """Labels the shifted loss uses (what the trainer passes as ``num_items_in_batch``)."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def kit_step(trainer, batch: dict) -> float:
    """One forward + backward of the kit's step; returns the loss."""
    loss = trainer.compute_loss(
        trainer.model, dict(batch), num_items_in_batch=labelled_count(batch)
    )
    loss.backward()
    return loss.item()


def shared_prefix_length(batch: dict) -> int:
    """Tokens the rows share at their start (``utils.eval.decoding.shared_prefix`` of their unpadded
    ids), cut so that no label falls inside the prefix or right after it (the prefix's last
    position predicts that one)."""
    from utils.eval.decoding import shared_prefix

    rows = [
        ids[mask.bool()].tolist()
        for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)
    ]
    labelled = (batch["labels"] != IGNORE).any(0).nonzero()
    first_label = int(labelled[0]) if len(labelled) else batch["labels"].shape[1]
    return max(0, min(len(shared_prefix(rows)), first_label - 1))


def shared_prefix_step(trainer, batch: dict) -> float:
    """The kit's step with the rows' shared prefix run once and its key/value cache reused."""
    import torch

    ids, p, rows = batch["input_ids"], shared_prefix_length(batch), batch["input_ids"].shape[0]
    if p == 0:
        return kit_step(trainer, batch)
    model = trainer.model
    cache = model.get_decoder()(input_ids=ids[:1, :p], use_cache=True).past_key_values
    cache.batch_repeat_interleave(rows)
    rest = {
        **batch,
        "input_ids": ids[:, p:],
        "labels": batch["labels"][:, p:],
        "past_key_values": cache,
        "position_ids": torch.arange(p, ids.shape[1]).expand(rows, -1),
    }
    loss = trainer.compute_loss(model, rest, num_items_in_batch=labelled_count(batch))
    loss.backward()
    return loss.item()


def _fused_lora_function():
    import torch

    class FusedLoRALinear(torch.autograd.Function):
        """y = x W^T + s (x A^T) B^T in one node: no full-size scaling or addition tensors."""

        @staticmethod
        def forward(ctx, x, weight, lora_a, lora_b, scaling):
            flat = x.reshape(-1, x.shape[-1])
            down = flat @ lora_a.t()
            out = torch.addmm(flat @ weight.t(), down, lora_b.t(), alpha=scaling)
            ctx.save_for_backward(flat, down, weight, lora_a, lora_b)
            ctx.scaling, ctx.in_shape = scaling, x.shape
            return out.view(*x.shape[:-1], weight.shape[0])

        @staticmethod
        def backward(ctx, grad):
            flat, down, weight, lora_a, lora_b = ctx.saved_tensors
            g = grad.reshape(-1, grad.shape[-1])
            g_down = (g @ lora_b).mul_(ctx.scaling)
            g_b = (g.t() @ down).mul_(ctx.scaling)
            g_x = torch.addmm(g @ weight, g_down, lora_a)
            return g_x.view(ctx.in_shape), None, g_down.t() @ flat, g_b, None

    return FusedLoRALinear


@contextlib.contextmanager
def fused_lora():
    """PEFT's LoRA ``Linear.forward`` replaced by the fused function while training (one adapter,
    unmerged, no bias; anything else goes to PEFT's own forward). Yields a count of fused calls."""
    import torch
    from peft.tuners.lora import layer

    function, original, calls = _fused_lora_function(), layer.Linear.forward, {"fused": 0}

    def forward(self, x, *args, **kwargs):
        if (
            self.disable_adapters
            or self.merged
            or len(self.active_adapters) != 1
            or args
            or kwargs
            or not torch.is_grad_enabled()
            or self.base_layer.bias is not None
        ):
            return original(self, x, *args, **kwargs)
        name = self.active_adapters[0]
        calls["fused"] += 1
        return function.apply(
            x,
            self.base_layer.weight,
            self.lora_A[name].weight,
            self.lora_B[name].weight,
            self.scaling[name],
        )

    layer.Linear.forward = forward
    try:
        yield calls
    finally:
        layer.Linear.forward = original


def fused_lora_step(trainer, batch: dict) -> float:
    with fused_lora():
        return kit_step(trainer, batch)


def adapters_off_step(trainer, batch: dict) -> float:
    """The step with the adapters disabled; the embeddings' output requires grad so the backward
    still runs through every block."""
    model = trainer.model
    hook = model.get_input_embeddings().register_forward_hook(
        lambda module, args, out: out.requires_grad_(True)
    )
    try:
        with model.disable_adapter():
            return kit_step(trainer, batch)
    finally:
        hook.remove()


def gradients(trainer) -> list:
    """Copies of the trainable parameters' gradients, then zeroed."""
    grads = [
        p.grad.detach().clone()
        for p in trainer.model.parameters()
        if p.requires_grad and p.grad is not None
    ]
    trainer.model.zero_grad(set_to_none=True)
    return grads


def check_exact(trainer, batch: dict, arm) -> dict:
    """Loss and largest gradient difference of ``arm`` against the kit's step (relative to the
    largest gradient entry of each tensor)."""
    loss_kit = kit_step(trainer, batch)
    reference = gradients(trainer)
    loss_arm = arm(trainer, batch)
    grads = gradients(trainer)
    worst = max(
        float((a - b).abs().max() / a.abs().max().clamp(min=1e-30))
        for a, b in zip(reference, grads, strict=True)
    )
    return {"loss_kit": loss_kit, "loss": loss_arm, "max_relative_gradient_difference": worst}


def time_arms(trainer, arms: dict, batch: dict, repeats: int) -> dict:
    """Median seconds per forward + backward of each arm, alternating, first call left out."""
    times: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(repeats):
        for name, arm in arms.items():
            start = time.perf_counter()
            arm(trainer, batch)
            times[name].append(time.perf_counter() - start)
            trainer.model.zero_grad(set_to_none=True)
    return {name: statistics.median(values[1:]) for name, values in times.items()}


def rows_of(batch: dict, n: int) -> dict:
    """The batch cut or repeated to ``n`` rows, trimmed to its longest row."""
    import torch

    reps = -(-n // batch["input_ids"].shape[0])
    rows = {k: torch.cat([v] * reps)[:n] for k, v in batch.items()}
    width = int(rows["attention_mask"].sum(1).max())
    return {k: v[:, :width] for k, v in rows.items()}


def token_scaling(trainer, batch: dict, repeats: int, sizes=(1, 2, 4, 8)) -> dict:
    """Step time against real tokens; a least-squares line: fixed seconds + seconds per token."""
    points = []
    for n in sizes:
        part = rows_of(batch, n)
        seconds = time_arms(trainer, {"kit": kit_step}, part, max(3, repeats // 2))["kit"]
        points.append({"rows": n, "tokens": int(part["attention_mask"].sum()), "seconds": seconds})
    xs, ys = [p["tokens"] for p in points], [p["seconds"] for p in points]
    slope, intercept = statistics.linear_regression(xs, ys)
    return {"points": points, "fixed_seconds": intercept, "seconds_per_token": slope}


def in_process(repeats: int) -> dict:
    """Every in-process figure of the module docstring."""
    import torch

    trainer, _ = kit_trainer(12)
    trainer.model.train()
    torch.manual_seed(0)
    for (
        name,
        param,
    ) in trainer.model.named_parameters():  # B starts at zero: give A a gradient to compare
        if "lora_B" in name:
            param.data.normal_(0.0, 0.01)
    batch = first_batch(trainer)
    tokens = int(batch["attention_mask"].sum())
    labelled = labelled_count(batch) / tokens
    flops = flops_per_token(trainer.model, tokens / batch["input_ids"].shape[0], labelled)
    arms = {
        "kit": kit_step,
        "shared_prefix": shared_prefix_step,
        "fused_lora": fused_lora_step,
        "adapters_off": adapters_off_step,
    }
    exact = {
        name: check_exact(trainer, batch, arms[name]) for name in ("shared_prefix", "fused_lora")
    }
    seconds = time_arms(trainer, arms, batch, repeats)
    scaling = token_scaling(trainer, batch, repeats)
    width = batch["input_ids"].numel()
    shapes = [
        (width, 576, 1536),
        (width, 1536, 576),
        (width, 576, 576),
        (width, 576, 16),
        (width, 16, 1536),
        (16, width, 576),
    ]
    return {
        "batch_rows": batch["input_ids"].shape[0],
        "batch_width": batch["input_ids"].shape[1],
        "real_tokens": tokens,
        "labelled_fraction": labelled,
        "shared_prefix_tokens": shared_prefix_length(batch),
        "flops_per_token": flops,
        "seconds": seconds,
        "exactness": exact,
        "token_scaling": scaling,
        "gflops_per_token_rate": flops / scaling["seconds_per_token"] / 1e9,
        "matmul_peak_gflops": matmul_peak(),
        "matmul_gflops": matmul_rates(shapes),
    }


def compile_child(repeats: int) -> dict:
    """In a child: the kit's step on the same batch, Inductor-compiled layers if the parent set
    UNSLOTH_CPU_COMPILE=1 (read when Unsloth loads the model)."""
    trainer, _ = kit_trainer(12)
    trainer.model.train()
    batch = first_batch(trainer)
    start = time.perf_counter()
    kit_step(trainer, batch)
    first = time.perf_counter() - start
    trainer.model.zero_grad(set_to_none=True)
    seconds = time_arms(trainer, {"kit": kit_step}, batch, repeats)["kit"]
    return {
        "compiled": os.environ.get("UNSLOTH_CPU_COMPILE") == "1",
        "first_call_seconds": first,
        "seconds": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeats", type=int, default=7, help="timed calls per arm (the first is left out)"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="shipped / compiled child pairs, alternating"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        report_result(compile_child(args.repeats))
        return 0
    children = []
    for round_ in range(args.rounds):
        for compiled in (False, True):
            print(
                f"[bench] round {round_ + 1}/{args.rounds}: child process, compile={compiled} ...",
                flush=True,
            )
            env = {"UNSLOTH_CPU_COMPILE": "1" if compiled else "0"}
            children.append(run_child(__file__, "--child", "--repeats", str(args.repeats), env=env))
    print("[bench] in-process arms ...", flush=True)
    result = in_process(args.repeats)
    report(result, children)
    write_result("sft_breakdown", {"machine": machine(), **result, "compile_children": children})
    return 0


def report(result: dict, children: list[dict]) -> None:
    """Print the figures as ratios to the kit's step."""
    sec = result["seconds"]
    kit = sec["kit"]
    print(
        f"batch: {result['batch_rows']} rows x {result['batch_width']} columns, "
        f"{result['real_tokens']} real tokens, "
        f"{100 * result['labelled_fraction']:.0f} % labelled, shared prefix "
        f"{result['shared_prefix_tokens']} tokens"
    )
    print(f"kit step (forward + backward): {kit:.3f} s")
    for name, label in (
        ("shared_prefix", "shared prefix run once"),
        ("fused_lora", "fused LoRA linears"),
        ("adapters_off", "adapters off (no LoRA products)"),
    ):
        exact = result["exactness"].get(name)
        note = (
            (
                f"; loss {exact['loss']:.6f} vs {exact['loss_kit']:.6f}, gradients within "
                f"{exact['max_relative_gradient_difference']:.1e}"
            )
            if exact
            else ""
        )
        print(f"  {label:<34} {sec[name]:.3f} s = {kit / sec[name]:.2f}x the kit's step{note}")
    print(f"  LoRA's share of the kit's step: {100 * (kit - sec['adapters_off']) / kit:.0f} %")
    scaling = result["token_scaling"]
    print(
        f"token scaling: {scaling['fixed_seconds']:.3f} s fixed + "
        f"{1e3 * scaling['seconds_per_token']:.2f} ms per "
        f"real token = {result['gflops_per_token_rate']:.0f} GFLOP/s per token "
        f"({100 * result['gflops_per_token_rate'] / result['matmul_peak_gflops']:.0f} % of the "
        f"{result['matmul_peak_gflops']:.0f} GFLOP/s square-matmul peak)"
    )
    print(
        "matmul GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in result["matmul_gflops"].items())
    )
    for flag in (False, True):
        runs = [c for c in children if c["compiled"] is flag]
        if runs:
            print(
                f"child, compile={flag}: {statistics.median(c['seconds'] for c in runs):.3f} s per "
                "step "
                f"(first call {statistics.median(c['first_call_seconds'] for c in runs):.1f} s)"
            )


if __name__ == "__main__":
    sys.exit(main())
