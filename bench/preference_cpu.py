"""Preference tuning on this CPU, end to end on the embedded model: which recipe gives a
held-out gain, and what does it do to the task? DPO on the model's own answers, and GRPO with a
reward a program checks.

    .venv/bin/python bench/preference_cpu.py [--sft-steps 30] [--variants sigmoid:5e-5 grpo:2e-5:20]

Lab 03B's extraction task. A short LoRA SFT run (the kit's SFT path) gives the starting policy;
on-policy pairs are built from its own sampled answers (``utils.train.preference.on_policy_pairs``,
4 samples per prompt; ``--pairing right``: a fully right answer over the worst one,
``best-worst``: the best over the worst) on training and validation prompts. Each variant trains
a fresh copy of the SFT adapter:
- ``loss:rate``: TRL's ``DPOTrainer`` for one epoch of the training pairs at ``--beta``, ``loss``
  one of TRL's ``loss_type`` names or two joined by ``+``, weighted 1:1 (``sigmoid+sft`` is the
  RPO objective); TRL's reference is a frozen copy of the SFT adapter;
- ``grpo:rate:steps``: TRL's ``GRPOTrainer`` on the same training prompts, 4 sampled answers per
  prompt and 2 prompts per step, rewarded by ``utils.train.preference.extraction_reward``.
Measured per variant, against the SFT adapter: on the validation pairs, preference accuracy (the
chosen answer's implicit reward above the rejected one's, at ``--beta``), the mean reward margin,
how often the policy alone finds the chosen answer likelier, and the mean log-probability of each
answer; greedy exact match, mean field score and mean answer length on validation and test
prompts; GRPO's mean reward per step; and the wall time of each stage. Writes
outputs/bench/preference_cpu.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine, write_result  # noqa: E402

DEFAULT_VARIANTS = ["sigmoid:5e-5", "sigmoid:1e-5", "sigmoid+sft:5e-5"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sft-steps", type=int, default=30)
    parser.add_argument("--train-prompts", type=int, default=160)
    parser.add_argument("--val-prompts", type=int, default=64)
    parser.add_argument("--test-prompts", type=int, default=60)
    parser.add_argument("--pairing", choices=("right", "best-worst"), default="right")
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS)
    args = parser.parse_args()

    import torch
    import unsloth  # noqa: F401  (its CPU backend patches TRL's fused log-prob path)
    from datasets import Dataset
    from peft import PeftModel
    from trl import DPOConfig, DPOTrainer, GRPOConfig, GRPOTrainer

    from utils.data.datasets import get_spec, load_split
    from utils.runtime.models import load_model
    from utils.train import sft
    from utils.train.preference import (
        POLICY_SFT,
        dpo_loss,
        extraction_reward,
        extraction_scores,
        on_policy_pairs,
        pair_logps,
        pair_tokens,
        train_policy,
    )

    fields = get_spec("news_events").fields
    splits = {s: load_split("news_events", s) for s in ("train", "validation", "test")}
    clock: dict[str, float] = {}
    scratch = ROOT / "outputs" / "bench" / "dpo-scratch"

    def timed(name, fn):
        start = time.perf_counter()
        out = fn()
        clock[name] = round(time.perf_counter() - start, 1)
        print(f"[bench] {name}: {clock[name]} s", flush=True)
        return out

    model, tokenizer = load_model("cpu")
    settings = replace(POLICY_SFT, max_steps=args.sft_steps)
    model, _ = timed(
        "sft", lambda: train_policy(model, tokenizer, splits["train"], fields, settings)
    )
    model.save_pretrained(str(scratch / "sft"))

    # pairs come from training prompts the SFT run's steps did not all see, and from validation
    rows = {
        "train": splits["train"][-args.train_prompts :],
        "validation": splits["validation"][: args.val_prompts],
        "test": splits["test"][: args.test_prompts],
    }

    def task_scores(split: str) -> dict:
        out = extraction_scores(model, tokenizer, rows[split], fields, progress=False)
        return {k: out[k] for k in ("exact_match", "field_score", "answer_chars")}

    sft_scores = {
        split: timed(f"{split} (SFT)", lambda s=split: task_scores(s))
        for split in ("validation", "test")
    }
    pairs, counts = {}, {}
    for split, seed in (("train", 0), ("validation", 10_000)):
        pairs[split], counts[split] = timed(
            f"pairs ({split})",
            lambda s=split, k=seed: on_policy_pairs(
                model, tokenizer, rows[s], fields, seed=k, right_chosen=args.pairing == "right"
            ),
        )
    tokens = [pair_tokens(tokenizer, p) for p in pairs["validation"]]

    @torch.no_grad()
    def validation_logps() -> dict[str, torch.Tensor]:
        model.eval()
        return pair_logps(model, tokens)

    reference = validation_logps()
    keep = ("prompt", "chosen", "rejected")
    train_set = Dataset.from_list([{k: p[k] for k in keep} for p in pairs["train"]])
    variants = []
    common = {"bf16": False, "use_cpu": True, "report_to": [], "save_strategy": "no", "seed": 0}

    def dpo_trainer(model, loss: str, rate: float):
        config = DPOConfig(
            output_dir=str(scratch / "dpo"),
            per_device_train_batch_size=4,
            num_train_epochs=1,
            learning_rate=rate,
            beta=args.beta,
            loss_type=loss.split("+"),
            loss_weights=[1.0] * len(loss.split("+")),
            logging_steps=5,
            **common,
        )
        return DPOTrainer(
            model=model, args=config, train_dataset=train_set, processing_class=tokenizer
        )

    prompt_set = Dataset.from_list(
        [
            {"prompt": sft.extraction_messages(r, fields, with_answer=False), "target": r["target"]}
            for r in rows["train"]
        ]
    )

    def grpo_trainer(model, rate: float, steps: int):
        config = GRPOConfig(
            output_dir=str(scratch / "grpo"),
            per_device_train_batch_size=8,  # completions per step: 2 prompts x 4 answers
            num_generations=4,
            max_completion_length=64,
            temperature=0.9,
            max_steps=steps,
            learning_rate=rate,
            logging_steps=1,
            **common,
        )
        return GRPOTrainer(
            model=model,
            args=config,
            reward_funcs=extraction_reward(fields),
            train_dataset=prompt_set,
            processing_class=tokenizer,
        )

    for variant in args.variants:
        kind, *options = variant.split(":")
        del model
        base, _ = load_model("cpu")
        model = PeftModel.from_pretrained(base, str(scratch / "sft"), is_trainable=True)
        model.train()
        if kind == "grpo":
            trainer = grpo_trainer(model, float(options[0]), int(options[1]))
        else:
            trainer = dpo_trainer(model, kind, float(options[0]))
        timed(f"train {variant}", trainer.train)
        model = trainer.model
        policy = validation_logps()
        out = dpo_loss(
            policy["chosen"],
            policy["rejected"],
            reference["chosen"],
            reference["rejected"],
            args.beta,
        )
        margins = out["chosen_rewards"] - out["rejected_rewards"]
        row = {
            "variant": variant,
            "steps": trainer.state.global_step,
            "validation pairs": {
                "loss": float(out["losses"].mean()),
                "preference accuracy": float((margins > 0).float().mean()),
                "margin": float(margins.mean()),
                "policy prefers chosen": [
                    float((reference["chosen"] > reference["rejected"]).float().mean()),
                    float((policy["chosen"] > policy["rejected"]).float().mean()),
                ],
                "logp chosen": [float(reference["chosen"].mean()), float(policy["chosen"].mean())],
                "logp rejected": [
                    float(reference["rejected"].mean()),
                    float(policy["rejected"].mean()),
                ],
            },
            **{
                split: timed(f"{split} ({variant})", lambda s=split: task_scores(s))
                for split in ("validation", "test")
            },
            "log": [
                {
                    k: v
                    for k, v in log.items()
                    if k in ("step", "loss", "rewards/accuracies", "reward")
                }
                for log in trainer.state.log_history
                if "loss" in log
            ],
        }
        variants.append(row)
        print(row, flush=True)
    result = {
        "settings": vars(args),
        "pairs": counts,
        "sft": sft_scores,
        "variants": variants,
        "seconds": clock,
        "machine": machine(),
    }
    write_result("preference_cpu", result)
    for key in ("pairs", "sft", "seconds"):
        print(key, result[key])


if __name__ == "__main__":
    main()
