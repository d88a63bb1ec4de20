"""DPO on this CPU, end to end on the embedded model: is a held-out gain reachable in minutes?

    .venv/bin/python bench/dpo_cpu.py [--sft-steps 30] [--train-prompts 96] [--beta 0.1]

Lab 03B's extraction task. A short LoRA SFT run (the kit's SFT path) gives the starting policy;
on-policy pairs are built from its own sampled answers (``utils.train.preference.on_policy_pairs``:
4 samples per prompt, the best field score chosen over the worst) on training and validation
prompts; TRL's ``DPOTrainer`` then trains the same adapter against a frozen copy of it (TRL's
reference for a model that already has an adapter). Measured before and after DPO: on the
validation pairs, the policy's own preference for the chosen answer
(``utils.train.preference.preference_scores``, adapter on) and the trainer's own evaluation
(its loss and implicit-reward accuracy against its frozen copy of the SFT adapter); on test
prompts, exact match and the mean field score of greedy answers; and the wall time of each stage.
Writes outputs/bench/dpo_cpu.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine, write_result  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sft-steps", type=int, default=30)
    parser.add_argument("--train-prompts", type=int, default=96)
    parser.add_argument("--val-prompts", type=int, default=48)
    parser.add_argument("--test-prompts", type=int, default=80)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--epochs", type=float, default=2.0)
    args = parser.parse_args()

    import unsloth  # noqa: F401  (its CPU backend patches TRL's fused log-prob path)
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from utils.data.datasets import get_spec, load_split
    from utils.eval.metrics import evaluate_extraction
    from utils.runtime.models import load_model
    from utils.train import sft
    from utils.train.params import add_peft_lora
    from utils.train.preference import answer_score, on_policy_pairs, preference_scores

    fields = get_spec("news_events").fields
    splits = {s: load_split("news_events", s) for s in ("train", "validation", "test")}
    clock: dict[str, float] = {}

    def timed(name, fn):
        start = time.perf_counter()
        out = fn()
        clock[name] = round(time.perf_counter() - start, 1)
        print(f"[bench] {name}: {clock[name]} s")
        return out

    model, tokenizer = load_model("cpu")
    settings = sft.SFTSettings(max_steps=args.sft_steps, batch_size=8, learning_rate=1e-3)
    model = add_peft_lora(model, **settings.lora_arguments())
    data = sft.chat_dataset(
        splits["train"], tokenizer, lambda r: sft.extraction_messages(r, fields)
    )
    timed("sft", lambda: sft.train(sft.build_trainer(model, tokenizer, data, settings)))
    model.eval()

    test_rows = splits["test"][: args.test_prompts]
    test_prompts = sft.extraction_prompts(tokenizer, test_rows, fields)

    def task_scores() -> dict:
        out = evaluate_extraction(
            model,
            tokenizer,
            test_prompts,
            [r["target"] for r in test_rows],
            fields,
            progress=False,
        )
        scores = [answer_score(a, r["target"], fields) for a, r in zip(out["outputs"], test_rows)]
        return {"exact_match": out["exact_match"], "field_score": sum(scores) / len(scores)}

    before_task = timed("test before", task_scores)
    train_rows = splits["train"][: args.train_prompts]
    train_pairs, train_counts = timed(
        "pairs (train)", lambda: on_policy_pairs(model, tokenizer, train_rows, fields, seed=0)
    )
    val_pairs, val_counts = timed(
        "pairs (validation)",
        lambda: on_policy_pairs(
            model, tokenizer, splits["validation"][: args.val_prompts], fields, seed=10_000
        ),
    )
    own = ("policy_prefers_chosen", "logps_chosen", "logps_rejected", "pairs")

    def policy_view() -> dict:  # the policy alone: no reference needed
        scores = preference_scores(model, tokenizer, val_pairs, args.beta, reference=model)
        return {k: scores[k] for k in own}

    before_pref = policy_view()
    model.train()
    config = DPOConfig(
        output_dir=str(ROOT / "outputs" / "bench" / "dpo-scratch"),
        per_device_train_batch_size=4,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        beta=args.beta,
        bf16=False,
        use_cpu=True,
        logging_steps=5,
        report_to=[],
        save_strategy="no",
        seed=0,
    )
    keep = ("prompt", "chosen", "rejected")
    trainer = DPOTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list([{k: p[k] for k in keep} for p in train_pairs]),
        eval_dataset=Dataset.from_list([{k: p[k] for k in keep} for p in val_pairs]),
        processing_class=tokenizer,
    )
    wanted = ("eval_loss", "eval_rewards/accuracies", "eval_rewards/margins")
    before_eval = {k: v for k, v in trainer.evaluate().items() if k in wanted}
    timed("dpo", trainer.train)
    after_eval = {k: v for k, v in trainer.evaluate().items() if k in wanted}
    model = trainer.model.eval()
    after_pref = policy_view()
    after_task = timed("test after", task_scores)
    result = {
        "settings": vars(args),
        "pairs": {"train": train_counts, "validation": val_counts},
        "validation pairs": {
            "before": {**before_pref, **before_eval},
            "after": {**after_pref, **after_eval},
        },
        "test": {"before": before_task, "after": after_task, "prompts": len(test_rows)},
        "dpo log": [
            {k: v for k, v in log.items() if k in ("step", "loss", "rewards/accuracies")}
            for log in trainer.state.log_history
            if "loss" in log
        ],
        "seconds": clock,
        "machine": machine(),
    }
    write_result("dpo_cpu", result)
    for key in ("pairs", "validation pairs", "test", "seconds"):
        print(key, result[key])


if __name__ == "__main__":
    main()
