"""Grading several students' adapters in one batch (PEFT's ``adapter_names``) vs one at a time
(each merged into the base, as the grader does): does batching pay on this machine?

    .venv/bin/python bench/batched_adapters.py [--students 4] [--items 32] [--tokens 24]

K LoRA adapters (r = 16, all linear, Lab 03B's shape; B drawn at random per student so they
differ) generate greedily on the same held-out extraction prompts:

- **one at a time**: each adapter merged into the base (``grading.artifacts.merged_adapter``,
  the merge and the restore timed), ``generate`` on the N prompts in one left-padded batch;
- **batched**: all K adapters loaded on one PEFT model, ``generate`` on the K x N rows in one
  batch, each row routed to its student's adapter (``adapter_names``), unmerged.

Both arms generate exactly ``--tokens`` new tokens per row (``min_new_tokens``), so they do the
same decoding work and the ratio is the cost per token. Outputs are compared row by row (merged
and unmerged LoRA differ in float rounding, so a rare token may differ). Writes
outputs/bench/batched_adapters.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine, write_result  # noqa: E402


def generate(model, tokenizer, prompts: list[str], tokens: int, adapter_names=None) -> list[str]:
    """Greedy completions of exactly ``tokens`` new tokens, one left-padded batch."""
    import torch

    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        extra = {"adapter_names": adapter_names} if adapter_names is not None else {}
        with torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=tokens,
                min_new_tokens=tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                **extra,
            )
    finally:
        tokenizer.padding_side = side
    return tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def save_random_adapters(base, folder: Path, names: list[str], r: int, std: float):
    """One LoRA adapter per name (rank ``r``, alpha 2r, all linear layers), its B drawn from
    N(0, std) with seed k so they differ, saved under ``folder/<name>``; returns the base."""
    import torch
    from peft import LoraConfig, get_peft_model

    for k, name in enumerate(names):
        torch.manual_seed(k)
        config = LoraConfig(r=r, lora_alpha=2 * r, target_modules="all-linear", lora_dropout=0.0)
        peft_model = get_peft_model(base, config)
        with torch.no_grad():
            for n, p in peft_model.named_parameters():
                if "lora_B" in n:
                    p.normal_(0, std)
        peft_model.save_pretrained(str(folder / name))
        base = peft_model.unload()
    return base


def one_at_a_time(base, tokenizer, folder: Path, names, prompts, tokens: int) -> list[str]:
    """Each adapter merged into the base in turn (the grader's way), all prompts in one batch."""
    from grading.artifacts import merged_adapter

    outputs = []
    for name in names:
        with merged_adapter(base, str(folder / name)) as merged:
            outputs += generate(merged, tokenizer, prompts, tokens)
    return outputs


def batched(base, tokenizer, folder: Path, names, prompts, tokens: int):
    """All adapters on one PEFT model, every (adapter, prompt) row in one batch routed by
    ``adapter_names``; returns the outputs (in ``one_at_a_time``'s order) and the base."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(base, str(folder / names[0]), adapter_name=names[0])
    for name in names[1:]:
        model.load_adapter(str(folder / name), adapter_name=name)
    routed = [name for name in names for _ in prompts]
    outputs = generate(model.eval(), tokenizer, list(prompts) * len(names), tokens, routed)
    return outputs, model.unload()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--students", type=int, default=4, help="adapters (K)")
    parser.add_argument("--items", type=int, default=32, help="held-out prompts per adapter (N)")
    parser.add_argument("--tokens", type=int, default=24, help="new tokens per row")
    args = parser.parse_args()
    from utils.data.datasets import get_spec, load_split
    from utils.runtime.models import load_model
    from utils.train.sft import extraction_prompts

    base, tokenizer = load_model("cpu", backend="transformers")
    rows = load_split("news_events", "heldout", allow_heldout=True)[: args.items]
    prompts = extraction_prompts(tokenizer, rows, get_spec("news_events").fields)
    folder = Path(tempfile.mkdtemp(prefix="ftkit-bench-"))
    names = [f"student{k}" for k in range(args.students)]
    base = save_random_adapters(base, folder, names, r=16, std=0.02)  # Lab 03B's shape

    print(f"[bench] one at a time: {args.students} adapters x {len(prompts)} prompts", flush=True)
    start = time.perf_counter()
    alone = one_at_a_time(base, tokenizer, folder, names, prompts, args.tokens)
    seconds_alone = time.perf_counter() - start

    print(f"[bench] batched: {args.students * len(prompts)} rows in one batch", flush=True)
    start = time.perf_counter()
    together, base = batched(base, tokenizer, folder, names, prompts, args.tokens)
    seconds_batched = time.perf_counter() - start

    same = sum(a == b for a, b in zip(alone, together, strict=True)) / len(alone)
    figures = {
        "students": args.students,
        "items": len(prompts),
        "new_tokens_per_row": args.tokens,
        "seconds_one_at_a_time": round(seconds_alone, 2),
        "seconds_batched": round(seconds_batched, 2),
        "speedup_batched_vs_one_at_a_time": round(seconds_alone / seconds_batched, 2),
        "same_outputs": round(same, 3),
    }
    for key, value in figures.items():
        print(f"{key:>34}: {value}")
    write_result("batched_adapters", {"machine": machine(), "figures": figures})
    return 0


if __name__ == "__main__":
    sys.exit(main())
