"""Grader throughput: the kit's batched evaluation vs a naive per-example ``generate`` loop.

    .venv/bin/python bench/grading_throughput.py [--items 64] [--adapter outputs/demo/reference/adapter]

Both paths run greedy decoding on the same held-out prompts with the same adapter (the demo's
reference adapter: run ``python3 tools/kit.py demo`` first) and must produce the same outputs.
Prints items/s for each, their ratio (measured in the same run), and the projected time to grade a
class of 100 submissions x 200 held-out items on this machine. Writes outputs/bench/grading.json.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def naive_outputs(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    """What a learner would write: one ``generate`` call per prompt."""
    import torch

    outputs = []
    with torch.inference_mode():
        for prompt in prompts:
            enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
            outputs.append(tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return outputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=64, help="held-out items per path")
    parser.add_argument("--adapter", type=Path, default=ROOT / "outputs" / "demo" / "reference" / "adapter")
    args = parser.parse_args()
    if not (args.adapter / "adapter_config.json").is_file():
        print(f"no adapter at {args.adapter}: run `python3 tools/kit.py demo` first", file=sys.stderr)
        return 2
    import torch
    from peft import PeftModel

    from grading.evaluate import merged_adapter
    from utils.data import get_spec, load_split
    from utils.evaluation import generate_batch
    from utils.models import load_model
    from utils.results import run_info, write_json_atomic
    from utils.sft import chat_text, extraction_messages

    base, tokenizer = load_model("cpu", backend="transformers")
    fields = get_spec("news_events").fields
    rows = load_split("news_events", "heldout", allow_heldout=True)[: args.items]
    prompts = [chat_text(tokenizer, extraction_messages(r, fields, with_answer=False)) for r in rows]
    timings, outputs = {}, {}
    start = time.perf_counter()  # naive first: any warm-up benefit goes to the baseline
    learner_model = PeftModel.from_pretrained(base, str(args.adapter)).eval()
    outputs["naive"] = naive_outputs(learner_model, tokenizer, prompts, max_new_tokens=56)
    timings["naive"] = time.perf_counter() - start
    base = learner_model.unload()
    start = time.perf_counter()  # the grader's path: adapter merged in, batches of 64, base restored after
    with merged_adapter(base, str(args.adapter)) as merged:
        outputs["kit"] = generate_batch(merged, tokenizer, prompts, max_new_tokens=56, batch_size=64, progress=False)
    timings["kit"] = time.perf_counter() - start
    agree = sum(a == b for a, b in zip(outputs["kit"], outputs["naive"], strict=True)) / len(prompts)
    per_item = timings["kit"] / len(prompts)
    projected = 100 * (200 * per_item + 1.0)  # + about 1 s per submission to validate and attach the adapter
    figures = {"items": len(prompts), "naive_seconds": round(timings["naive"], 2), "kit_seconds": round(timings["kit"], 2),
               "naive_items_per_s": round(len(prompts) / timings["naive"], 3),
               "kit_items_per_s": round(len(prompts) / timings["kit"], 3),
               "speedup": round(timings["naive"] / timings["kit"], 2), "same_outputs": agree,
               "projected_class_minutes_100x200": round(projected / 60, 1),
               "machine": {"cpu_threads": torch.get_num_threads(), "platform": platform.platform()}}
    for key, value in figures.items():
        print(f"{key:>34}: {value}")
    write_json_atomic(ROOT / "outputs" / "bench" / "grading.json",
                      {"figures": figures, "run_info": run_info({"items": args.items}, 0, "cpu", torch.float32)})
    if agree < 1.0:
        print("outputs differ between the two paths", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
