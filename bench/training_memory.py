"""Peak memory of LoRA vs QLoRA vs full fine-tuning on the same task, one process per method.

    .venv/bin/python bench/training_memory.py [--steps 6]

Lab 03B's extraction task on the embedded model, batch 4, max length 256, the kit's trainer
(``utils.train.sft.build_trainer``), ``--steps`` optimizer steps. LoRA: r=16 on all linear layers
over the fp32 base; QLoRA: the same adapters over the NF4 base (Unsloth ``load_in_4bit``); full:
every weight trainable (AdamW keeps two fp32 moments per weight). Each method runs in its own
process, so the peak resident set size (``ru_maxrss``) is that method's alone. Also prints the
memory estimator's figure for the same setting (``utils.train.memory_estimate.estimate_memory``)
next to the measurement. Writes outputs/bench/training_memory.json.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine, report_result, run_child, write_result  # noqa: E402

METHODS = ("lora", "qlora", "full")


def run_method(method: str, steps: int) -> dict:
    """Train ``steps`` steps with ``method`` in this process; return peak RSS and timings."""
    from utils.data.datasets import get_spec, load_split
    from utils.runtime.models import load_model
    from utils.train import sft
    from utils.train.params import add_peft_lora, count_trainable

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    fields = get_spec("news_events").fields
    rows = load_split("news_events", "train")[: steps * 4]
    model, tokenizer = load_model("cpu", load_in_4bit=method == "qlora")
    after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    settings = sft.SFTSettings(
        r=16,
        alpha=32,
        learning_rate=1e-3 if method != "full" else 5e-5,
        batch_size=4,
        max_length=256,
        epochs=1,
        seed=0,
        warmup_steps=1,
    )
    if method == "full":
        for param in model.parameters():
            param.requires_grad = True
    else:
        model = add_peft_lora(model, **settings.lora_arguments())
    dataset = sft.chat_dataset(rows, tokenizer, lambda r: sft.extraction_messages(r, fields))
    trainer = sft.build_trainer(model, tokenizer, dataset, settings)
    trainer.args.disable_tqdm = True
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    trainable, total = count_trainable(trainer.model)
    return {
        "method": method,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "rss_after_imports_gb": baseline,
        "peak_after_load_gb": after_load,
        "trainable": trainable,
        "total": total,
        "seconds_per_step": seconds / steps,
    }


def estimate(method: str) -> float:
    """The estimator's total (GB) for SmolLM2-135M on a CPU: fp32 weights and activations (NF4 block
    linears for QLoRA), batch 4 x 96 tokens (the padded length of these rows), no CUDA overhead.
    The process's own baseline (Python,
    torch, the libraries: ~0.6 GB) is not part of it."""
    from utils.train.memory_estimate import SHAPES, estimate_memory

    weights = "nf4" if method == "qlora" else "fp32"
    figures = estimate_memory(
        SHAPES["smollm2-135m"],
        method="full" if method == "full" else "lora",
        weights=weights,
        batch_size=4,
        seq_len=96,
        activation_bytes=4.0,
        overhead_gb=0.0,
    )
    return figures.total


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.method:
        report_result(run_method(args.method, args.steps))
        return 0
    results = []
    for method in METHODS:
        print(f"[bench] {method} ...", flush=True)
        result = run_child(__file__, "--method", method, "--steps", str(args.steps))
        try:
            result["estimated_gb"] = estimate(method)
        except (KeyError, TypeError, ValueError) as exc:
            result["estimated_gb"] = None
            print(f"        (no estimate: {exc})")
        results.append(result)
        print(
            f"        peak RSS {result['peak_rss_gb']:.2f} GB (after loading "
            f"{result['peak_after_load_gb']:.2f} GB; "
            f"estimated {result['estimated_gb'] or float('nan'):.2f} GB + the process baseline), "
            f"{result['trainable']:,} trainable, {result['seconds_per_step']:.1f} s/step",
            flush=True,
        )
    lora = results[0]["peak_rss_gb"]
    for r in results:
        print(
            f"{r['method']:>6}: peak {r['peak_rss_gb']:.2f} GB = {r['peak_rss_gb'] / lora:.2f}x "
            "LoRA"
        )
    write_result("training_memory", {"machine": machine(), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
