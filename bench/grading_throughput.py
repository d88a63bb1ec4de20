"""Evaluation throughput: the kit's batched evaluation vs a naive per-example ``generate`` loop.

    .venv/bin/python bench/grading_throughput.py [--items 64] [--adapter
    outputs/demo/reference/adapter]

All paths run greedy decoding (at most 56 new tokens) on the same held-out prompts of Lab 03B's
extraction task with the same adapter (the demo's reference adapter: run
``python3 tools/kit.py demo`` first), and must produce the same outputs:

- **naive**: what a learner writes: the adapter attached with PEFT, one ``generate`` call per
  prompt;
- **hf batched**: the adapter merged into the base, ``model.generate`` on left-padded batches of 64
  prompts sorted by length (``utils.eval.metrics.hf_generate_batch``) — the kit's path on a CPU
  until ``utils.eval.decoding`` replaced it, and still its path on a GPU;
- **no drafts**: ``generate_batch`` (``utils.eval.decoding.greedy_decode``): the shared prompt
  prefix (the system instruction) runs once, finished rows leave the batch;
- **kit**: the same plus drafts (``evaluate_extraction`` passes the references' canonical JSON),
  checked 8 tokens per forward pass; decoding one token per pass runs only from where the model
  parts from its draft. This is the path the labs and the grader use.

The untrained base model (the "before" score) is timed the same three batched ways: it follows
almost no draft, so there drafts cost one extra pass of 8 tokens per row and buy nothing.
Prints items/s per path, the ratios (measured in the same run), and the projected time to grade a
class of 100 submissions x 200 held-out items. Writes outputs/bench/grading_throughput.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine, write_result  # noqa: E402

MAX_NEW_TOKENS, BATCH = 56, 64


def naive_outputs(model, tokenizer, prompts: list[str]) -> list[str]:
    """What a learner would write: one ``generate`` call per prompt."""
    import torch

    outputs = []
    with torch.inference_mode():
        for prompt in prompts:
            enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
            out = model.generate(
                **enc,
                max_new_tokens=MAX_NEW_TOKENS,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            outputs.append(
                tokenizer.decode(
                    out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True
                ).strip()
            )
    return outputs


def timed(fn):
    """(seconds, fn())."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=64, help="held-out items per path")
    parser.add_argument(
        "--adapter", type=Path, default=ROOT / "outputs" / "demo" / "reference" / "adapter"
    )
    args = parser.parse_args()
    if not (args.adapter / "adapter_config.json").is_file():
        print(
            f"no adapter at {args.adapter}: run `python3 tools/kit.py demo` first", file=sys.stderr
        )
        return 2
    from peft import PeftModel

    from grading.artifacts import merged_adapter
    from utils.data.datasets import get_spec, load_split
    from utils.eval.metrics import generate_batch, hf_generate_batch, target_json
    from utils.runtime.models import load_model
    from utils.train.sft import extraction_prompts

    base, tokenizer = load_model("cpu", backend="transformers")
    fields = get_spec("news_events").fields
    rows = load_split("news_events", "heldout", allow_heldout=True)[: args.items]
    prompts = extraction_prompts(tokenizer, rows, fields)
    drafts = [target_json(r["target"], fields) for r in rows]

    def batched(model, with_drafts: bool):
        return generate_batch(
            model,
            tokenizer,
            prompts,
            max_new_tokens=MAX_NEW_TOKENS,
            batch_size=BATCH,
            progress=False,
            drafts=drafts if with_drafts else None,
        )

    seconds, outputs = {}, {}
    print(
        "[bench] naive per-example generate ...", flush=True
    )  # first: any warm-up benefit goes to it
    learner_model = PeftModel.from_pretrained(base, str(args.adapter)).eval()
    seconds["naive"], outputs["naive"] = timed(
        lambda: naive_outputs(learner_model, tokenizer, prompts)
    )
    base = learner_model.unload()
    arms = {
        "hf batched": lambda m: hf_generate_batch(
            m, tokenizer, prompts, MAX_NEW_TOKENS, BATCH, progress=False
        ),
        "no drafts": lambda m: batched(m, False),
        "kit": lambda m: batched(m, True),
    }
    for name, run in arms.items():
        print(f"[bench] {name} ...", flush=True)
        with merged_adapter(
            base, str(args.adapter)
        ) as merged:  # timed with the merge and the restore
            seconds[name], outputs[name] = timed(lambda m=merged, r=run: r(m))
    for name, run in arms.items():
        print(f"[bench] untrained base, {name} ...", flush=True)
        seconds[f"base {name}"], outputs[f"base {name}"] = timed(lambda r=run: r(base))

    same = {
        name: sum(a == b for a, b in zip(outputs[name], outputs[ref], strict=True)) / len(prompts)
        for name, ref in [(n, "naive") for n in arms]
        + [(f"base {n}", "base hf batched") for n in arms]
    }
    exact = sum(o == d for o, d in zip(outputs["kit"], drafts, strict=True)) / len(prompts)
    per_item = seconds["kit"] / len(prompts)
    figures = {
        "items": len(prompts),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "items_per_second": {k: round(len(prompts) / v, 3) for k, v in seconds.items()},
        "speedup_kit_vs_naive": round(seconds["naive"] / seconds["kit"], 2),
        "speedup_hf_batched_vs_naive": round(seconds["naive"] / seconds["hf batched"], 2),
        "speedup_kit_vs_hf_batched": round(seconds["hf batched"] / seconds["kit"], 2),
        "speedup_no_drafts_vs_hf_batched": round(seconds["hf batched"] / seconds["no drafts"], 2),
        "base_speedup_kit_vs_hf_batched": round(
            seconds["base hf batched"] / seconds["base kit"], 2
        ),
        "base_speedup_no_drafts_vs_hf_batched": round(
            seconds["base hf batched"] / seconds["base no drafts"], 2
        ),
        "outputs_equal_to_reference_draft": exact,
        "same_outputs": same,
        "projected_class_minutes_100x200": round(100 * (200 * per_item + 1.0) / 60, 1),
    }
    for key, value in figures.items():
        print(f"{key:>34}: {value}")
    print(f"machine: {machine()}")
    write_result("grading_throughput", {"machine": machine(), "figures": figures})
    if min(same.values()) < 1.0:
        print("outputs differ between paths", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
