"""LoRA SFT throughput: the kit's training path vs plain transformers + PEFT + TRL, and MFU.

    .venv/bin/python bench/sft_throughput.py [--steps 12] [--rounds 2]

Same data (the first ``steps x batch`` rows of ``news_events`` train, Lab 03B's extraction task,
one epoch), batch 4, max length 256, LoRA r=16 / alpha 32 on all linear layers, lr 1e-3, seed 0,
fp32. Each run is a fresh subprocess; the two paths alternate (kit, baseline, kit, baseline, ...)
so machine noise hits both.

- **kit**: ``utils.runtime.models.load_model`` (Unsloth's CPU backend) +
  ``utils.train.params.add_peft_lora`` +
  ``utils.train.sft.build_trainer`` (loss on the answers only, gradient checkpointing off).
- **baseline**: what a learner writes from the TRL docs: ``AutoModelForCausalLM`` +
  ``SFTTrainer(peft_config=LoraConfig(...))`` with TRL's defaults, on a conversational
  prompt/completion dataset (so TRL also puts the loss on the completion only). Only what CPU
  needs is set: ``bf16=False``. TRL 1.15 cannot train on a CPU without Unsloth's patch of its fused
  loss (see ../shared/notes/cpu-stack.md), so the baseline process imports ``unsloth`` first and
  uses nothing else of it.

Reported per run: seconds per step (the first ``--warmup`` steps excluded), real (non-pad) tokens
per second, the validation answer loss after training (same function, same 32 rows, both paths),
and MFU = achieved FLOP/s / the fp32 matmul peak measured by this script (best of 2048^2 and
4096^2 matmuls, measured before and after the runs on idle cores). Training FLOPs per real token
— the FLOPs the loss needs, recomputation not counted, frozen base weights get no weight
gradients:

    4 * P_blocks  +  4 * P_head * labelled_fraction  +  6 * n_layers * d_model * mean_len

P_blocks = the blocks' linear weights (forward 2P + input-gradient backward 2P); the LM head
(P_head) is needed only where a token has a label (the answers: ~37 % of tokens here), so the head's
FLOPs count only there; the attention term is QK^T and AV (4 d per key forward, twice that backward)
over a causal mean of mean_len / 2 keys. LoRA's own FLOPs (< 4 % here) are left out, which
understates MFU slightly. Counting the head at every position instead would raise both MFUs by ~17
%. Writes outputs/bench/sft_throughput.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine, report_result, run_child, write_result  # noqa: E402

BATCH, MAX_LENGTH, RANK, ALPHA, LR, SEED, N_EVAL = 4, 256, 16, 32, 1e-3, 0, 32


def matmul_rates(shapes, repeats: int = 20) -> dict:
    """GFLOP/s of ``(m, k) @ (k, n)`` fp32 products on this machine's threads, best of
    ``repeats``."""
    import torch

    rates = {}
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        torch.matmul(a, b)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.matmul(a, b)
            best = min(best, time.perf_counter() - start)
        rates[f"{m}x{k}x{n}"] = 2 * m * k * n / best / 1e9
    return rates


def matmul_peak(sizes=(2048, 4096), repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of square matmuls on this machine's threads (idle)."""
    return max(matmul_rates([(n, n, n) for n in sizes], repeats).values())


def flops_per_token(model, mean_len: float, labelled_fraction: float) -> float:
    """Training FLOPs per real token, by the formula in the module docstring."""
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = base.get_output_embeddings()
    p_head = head.weight.numel()
    p_blocks = sum(
        m.weight.numel()
        for name, m in base.get_decoder().named_modules()
        if isinstance(m, torch.nn.Linear) and "lora_" not in name
    )
    config = base.config
    return (
        4 * p_blocks
        + 4 * p_head * labelled_fraction
        + 6 * config.num_hidden_layers * config.hidden_size * mean_len
    )


def training_rows(steps: int):
    from utils.data.datasets import get_spec, load_split

    fields = get_spec("news_events").fields
    train = load_split("news_events", "train")[: steps * BATCH]
    validation = load_split("news_events", "validation")[:N_EVAL]
    return fields, train, validation


class StepTimer:
    """A TrainerCallback recording the wall time of every optimizer step."""

    def __new__(cls):
        from transformers import TrainerCallback

        class _Timer(TrainerCallback):
            def __init__(self):
                self.times = []

            def on_step_begin(self, args, state, control, **kwargs):
                self.start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                self.times.append(time.perf_counter() - self.start)

        return _Timer()


def kit_trainer(steps: int):
    from utils.runtime.models import load_model
    from utils.train import sft
    from utils.train.params import add_peft_lora

    fields, train, _ = training_rows(steps)
    model, tokenizer = load_model("cpu")
    settings = sft.SFTSettings(
        r=RANK,
        alpha=ALPHA,
        learning_rate=LR,
        batch_size=BATCH,
        max_length=MAX_LENGTH,
        epochs=1,
        seed=SEED,
        warmup_steps=2,
    )
    model = add_peft_lora(model, **settings.lora_arguments())
    dataset = sft.chat_dataset(train, tokenizer, lambda r: sft.extraction_messages(r, fields))
    return sft.build_trainer(model, tokenizer, dataset, settings), tokenizer


def baseline_trainer(steps: int):
    import torch
    import unsloth  # noqa: F401  (only for its patch of TRL's fused loss on CPU; see the docstring)
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from utils.runtime.models import ensure_embedded_model
    from utils.train import sft

    fields, train, _ = training_rows(steps)
    folder = str(ensure_embedded_model())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    rows = [sft.extraction_messages(r, fields) for r in train]
    dataset = Dataset.from_list([{"prompt": m[:-1], "completion": m[-1:]} for m in rows])
    args = SFTConfig(
        output_dir=str(sft.scratch_dir()),
        per_device_train_batch_size=BATCH,
        max_length=MAX_LENGTH,
        num_train_epochs=1,
        learning_rate=LR,
        warmup_steps=2,
        seed=SEED,
        bf16=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
    )
    config = LoraConfig(
        r=RANK,
        lora_alpha=ALPHA,
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=config,
    ), tokenizer


def real_tokens(trainer) -> tuple[int, float, float]:
    """(non-pad tokens in one epoch of the trainer's dataset, their mean length per row, the
    fraction of them that carry a label)."""
    data = trainer.train_dataset
    lengths = [min(len(ids), MAX_LENGTH) for ids in data["input_ids"]]
    if "labels" in data.column_names:  # the kit: -100 outside the answers
        labelled = sum(sum(1 for t in row[:MAX_LENGTH] if t != -100) for row in data["labels"])
    else:  # TRL's prompt/completion rows
        labelled = sum(sum(row[:MAX_LENGTH]) for row in data["completion_mask"])
    return sum(lengths), sum(lengths) / len(lengths), labelled / sum(lengths)


def validation_loss(model, tokenizer, steps: int) -> float:
    """Mean answer-token loss on 32 validation rows (the same function for both paths)."""
    from utils.eval.metrics import target_json, teacher_forced_match
    from utils.train import sft

    fields, _, validation = training_rows(steps)
    prompts = sft.extraction_prompts(tokenizer, validation, fields)
    answers = [target_json(r["target"], fields) for r in validation]
    return teacher_forced_match(model, tokenizer, prompts, answers, progress=False)["answer_loss"]


def run_arm(arm: str, steps: int, warmup: int) -> dict:
    """One training run in this process; returns its figures."""
    import torch

    trainer, tokenizer = (kit_trainer if arm == "kit" else baseline_trainer)(steps)
    timer = StepTimer()
    trainer.add_callback(timer)
    trainer.args.disable_tqdm = True
    tokens, mean_len, labelled = real_tokens(trainer)
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    timed = timer.times[warmup:]
    per_step = statistics.mean(timed)
    tokens_per_step = tokens / len(timer.times)
    model = trainer.model
    return {
        "arm": arm,
        "steps": len(timer.times),
        "seconds_per_step": per_step,
        "wall_seconds": wall,
        "tokens_per_second": tokens_per_step / per_step,
        "mean_tokens_per_row": mean_len,
        "labelled_fraction": labelled,
        "flops_per_token": flops_per_token(model, mean_len, labelled),
        "validation_answer_loss": validation_loss(model, tokenizer, steps),
        "gradient_checkpointing": bool(getattr(model, "is_gradient_checkpointing", False)),
        "threads": torch.get_num_threads(),
    }


def summarise(runs: list[dict], peak: float) -> dict:
    """Median figures per arm, the speed ratio and MFU."""
    arms = {}
    for arm in ("kit", "baseline"):
        own = [r for r in runs if r["arm"] == arm]
        tps = statistics.median(r["tokens_per_second"] for r in own)
        achieved = tps * own[0]["flops_per_token"] / 1e9
        arms[arm] = {
            "tokens_per_second": tps,
            "seconds_per_step": statistics.median(r["seconds_per_step"] for r in own),
            "validation_answer_loss": statistics.median(r["validation_answer_loss"] for r in own),
            "achieved_gflops": achieved,
            "mfu": achieved / peak,
        }
    loss_gap = (
        arms["kit"]["validation_answer_loss"] / arms["baseline"]["validation_answer_loss"] - 1
    )
    return {
        "arms": arms,
        "speedup": arms["kit"]["tokens_per_second"] / arms["baseline"]["tokens_per_second"],
        "loss_difference": loss_gap,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per run (one epoch)")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the timing")
    parser.add_argument("--rounds", type=int, default=2, help="kit/baseline pairs, alternating")
    parser.add_argument(
        "--arm", choices=["kit", "baseline"], help=argparse.SUPPRESS
    )  # child process
    args = parser.parse_args()
    if args.arm:
        report_result(run_arm(args.arm, args.steps, args.warmup))
        return 0
    peaks, runs = [matmul_peak()], []
    for round_ in range(args.rounds):
        for arm in ("kit", "baseline"):
            print(f"[bench] round {round_ + 1}/{args.rounds}: {arm} ...", flush=True)
            runs.append(
                run_child(
                    __file__, "--arm", arm, "--steps", str(args.steps), "--warmup", str(args.warmup)
                )
            )
            print(
                f"        {runs[-1]['seconds_per_step']:.2f} s/step, "
                f"{runs[-1]['tokens_per_second']:.0f} tokens/s, "
                f"validation answer loss {runs[-1]['validation_answer_loss']:.4f}",
                flush=True,
            )
    peaks.append(matmul_peak())
    peak = max(peaks)
    summary = summarise(runs, peak)
    record = {**machine(), "matmul_peak_gflops": peaks}
    for arm, figures in summary["arms"].items():
        print(
            f"{arm:>8}: {figures['seconds_per_step']:.2f} s/step, "
            f"{figures['tokens_per_second']:.0f} tokens/s, "
            f"{figures['achieved_gflops']:.1f} GFLOP/s = MFU {100 * figures['mfu']:.0f} % of "
            f"{peak:.0f} GFLOP/s, "
            f"validation answer loss {figures['validation_answer_loss']:.4f}"
        )
    print(
        f"kit / baseline: {summary['speedup']:.2f}x tokens/s (target 2.5x); validation loss "
        "differs by "
        f"{100 * summary['loss_difference']:+.2f} % (target within ±1 %); machine: {record}"
    )
    write_result("sft_throughput", {"machine": record, "runs": runs, **summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
