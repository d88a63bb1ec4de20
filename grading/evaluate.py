"""Score one submission on the held-out split with the lab's own evaluation function, on the one
loaded base model (each adapter is merged in, evaluated, and the base weights restored exactly)."""

from __future__ import annotations

import hashlib
import json
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch

from grading.validate import SubmissionError, check_adapter
from utils.data import get_spec, load_split, read_jsonl
from utils.paths import cache_dir
from utils.results import write_json_atomic


def load_heldout(dataset: str, path: Path | None = None) -> tuple[list[dict], str]:
    """Held-out rows (the kit's ``heldout`` split, or an instructor's JSONL file) and their hash."""
    rows = read_jsonl(Path(path), get_spec(dataset)) if path else load_split(dataset, "heldout", allow_heldout=True)
    digest = hashlib.sha256(json.dumps([[r["id"], r["text"], r.get("label"), r.get("target")] for r in rows])
                            .encode()).hexdigest()[:16]
    return rows, digest


def linear_shapes(model) -> dict[str, tuple[int, int]]:
    """Module name -> (out_features, in_features) for every ``nn.Linear`` of the base model."""
    return {name: (m.out_features, m.in_features) for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear)}


def extraction_score(model, tokenizer, rows: list[dict], fields) -> dict:
    """Lab 03B's metric: greedy JSON extraction scored with ``field_scores`` (as in the lab)."""
    from utils.evaluation import evaluate_extraction
    from utils.sft import chat_text, extraction_messages

    prompts = [chat_text(tokenizer, extraction_messages(r, fields, with_answer=False)) for r in rows]
    result = evaluate_extraction(model, tokenizer, prompts, [r["target"] for r in rows], fields,
                                 max_new_tokens=56, batch_size=64, progress=False)
    return {k: v for k, v in result.items() if k not in ("outputs", "correct")}


METRICS = {"news_events": extraction_score}


def base_score(model, tokenizer, rubric: dict, rows: list[dict], heldout_hash: str, fingerprint: str) -> dict:
    """The base model's score, computed once per (base fingerprint, held-out hash) and cached."""
    path = cache_dir() / "grading" / f"before-{rubric['lab']}-{fingerprint}-{heldout_hash}.json"
    if path.is_file():
        return json.loads(path.read_text())
    result = METRICS[rubric["dataset"]](model, tokenizer, rows, get_spec(rubric["dataset"]).fields)
    write_json_atomic(path, result)
    return result


@contextmanager
def merged_adapter(model, folder: str, merge_into: str = "original"):
    """The base with a PEFT adapter merged into its weights (faster to evaluate than separate LoRA
    layers); on exit every linear weight is restored bit for bit from a copy. ``merge_into="nf4"``
    first rounds the blocks' linear weights through NF4 — the weights a QLoRA adapter trained on."""
    from peft import PeftModel

    from utils.quantization import nf4_roundtrip_linears

    if merge_into not in ("original", "nf4"):
        raise ValueError(f"rubric merge_into must be 'original' or 'nf4', got {merge_into!r}")
    modules = dict(model.named_modules())
    originals = {name: m.weight.detach().clone() for name, m in modules.items() if isinstance(m, torch.nn.Linear)}
    try:
        if merge_into == "nf4":
            nf4_roundtrip_linears(model)
        try:
            merged = PeftModel.from_pretrained(model, folder, is_trainable=False).merge_and_unload()
        except (ValueError, RuntimeError, KeyError, TypeError) as exc:
            raise SubmissionError(f"the adapter does not load onto the base model ({exc})") from None
        yield merged
    finally:
        with torch.no_grad():
            for name, weight in originals.items():
                modules[name].weight.copy_(weight)


def adapter_score(model, tokenizer, files: dict[str, bytes], rubric: dict, rows: list[dict]) -> tuple[dict, dict]:
    """Attach the submitted adapter to ``model``, score it, detach it; return (score, adapter config)."""
    config, _ = check_adapter(files, linear_shapes(model), rubric["checks"])
    with tempfile.TemporaryDirectory() as folder:
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            Path(folder, name).write_bytes(files["adapter/" + name])
        with merged_adapter(model, folder, rubric.get("merge_into", "original")) as merged:
            result = METRICS[rubric["dataset"]](merged, tokenizer, rows, get_spec(rubric["dataset"]).fields)
    return result, {"r": config["r"], "lora_alpha": config["lora_alpha"], "target_modules": config["target_modules"]}
