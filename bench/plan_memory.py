"""The run plan's memory against the measured peak, Lab 06's training on three data sets.

    .venv/bin/python bench/plan_memory.py

Each data set in its own process: Lab 06's set-up on the embedded model (LoRA r = 16 on every
linear layer, batch 8, max length 512, the kit's ``SFTTrainer``), its ``measure_step_seconds``
and ``plan_run`` (fed the longest example, as the lab does), then two training steps on the 16
longest examples — the batch holding the longest example pads every row to it, so these steps
reach the peak of a whole run. Measured: the process's peak resident set size (``ru_maxrss``,
the figure an out-of-memory kill goes by). Data: the two worked examples (long Cyrillic
sentences; short E2E meaning representations) and 320 messages of the kit's SMS split as a
learner's own classification file. Writes outputs/bench/plan_memory.json.
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine, report_result, run_child, write_result  # noqa: E402

SOURCES = ("cyrillic_langid", "e2e_nlg", "sms_spam")
LONGEST = 16  # examples kept for the measured steps: the two batches with the longest rows


def run_source(name: str) -> dict:
    """Plan and train as Lab 06 does on ``name``; return the plan and the measured peak."""
    from utils.data.own_data import (
        TaskConfig,
        load_task_data,
        load_worked_example,
        sample_train,
        task_messages,
    )
    from utils.runtime.models import load_model
    from utils.runtime.storage import data_dir
    from utils.train import sft
    from utils.train.budget import measure_step_seconds, plan_run
    from utils.train.params import add_peft_lora, linear_layer_names

    if name == "sms_spam":
        source = data_dir() / "sms_spam" / "train.jsonl"
        task = TaskConfig(kind="classification", columns={"text": "text", "label": "label"})
    else:
        source, task, _ = load_worked_example(name)
    data = load_task_data(source, task, seed=0)
    train = sample_train(data.splits["train"], 320, 0)
    model, tokenizer = load_model("cpu")
    settings = sft.SFTSettings(
        r=16,
        alpha=32,
        target_modules=linear_layer_names(model),
        learning_rate=1e-3,
        epochs=1,
        max_steps=2,
        batch_size=8,
        max_length=512,
        seed=0,
    )
    model = add_peft_lora(model, **settings.lora_arguments())

    def trainer_for(rows):  # Lab 06's trainer (its SFTConfig is checked equal to this one)
        dataset = sft.chat_dataset(rows, tokenizer, lambda e: task_messages(data.task, e))
        trainer = sft.build_trainer(model, tokenizer, dataset, settings)
        trainer.args.disable_tqdm = True
        return trainer

    trainer = trainer_for(train)
    lengths = sorted(len(ids) for ids in trainer.train_dataset["input_ids"])
    seconds = measure_step_seconds(trainer, repeats=1)
    plan = plan_run(model, settings, len(train), lengths[-1], seconds)
    order = sorted(range(len(train)), key=lambda i: -len(trainer.train_dataset[i]["input_ids"]))
    trainer_for([train[i] for i in order[:LONGEST]]).train()
    return {
        "data": name,
        "examples": len(train),
        "tokens_median": lengths[len(lengths) // 2],
        "tokens_max": lengths[-1],
        "planned_gb": plan["estimated_memory_gb"],
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", choices=SOURCES, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.source:
        report_result(run_source(args.source))
        return 0
    results = []
    for name in SOURCES:
        print(f"[bench] {name} ...", flush=True)
        result = run_child(__file__, "--source", name)
        result["planned_over_peak"] = round(result["planned_gb"] / result["peak_rss_gb"], 3)
        results.append(result)
        print(
            f"        longest example {result['tokens_max']} tokens: planned "
            f"{result['planned_gb']:.2f} GB, peak RSS {result['peak_rss_gb']:.2f} GB "
            f"({100 * (result['planned_over_peak'] - 1):+.0f} %)",
            flush=True,
        )
    write_result("plan_memory", {"results": results, "machine": machine()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
