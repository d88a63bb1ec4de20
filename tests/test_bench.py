"""The benchmarks' arithmetic (not their timings): the FLOP count per token and the summary."""

import importlib.util

import pytest

from utils.models import build_tiny_model
from utils.paths import REPO_ROOT


def load_bench(name):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flops_per_token_counts_block_linears_the_labelled_head_and_attention(tokenizer):
    from peft import LoraConfig, get_peft_model

    bench = load_bench("sft_throughput")
    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    config = model.config
    blocks = sum(m.weight.numel() for m in model.model.layers.modules() if m.__class__.__name__ == "Linear")
    head = model.lm_head.weight.numel()
    expected = 4 * blocks + 4 * head * 0.25 + 6 * config.num_hidden_layers * config.hidden_size * 80
    assert bench.flops_per_token(model, 80, 0.25) == pytest.approx(expected)
    wrapped = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert bench.flops_per_token(wrapped, 80, 0.25) == pytest.approx(expected)  # LoRA's own FLOPs left out


def test_the_summary_gives_the_ratio_mfu_and_loss_gap_from_median_runs():
    bench = load_bench("sft_throughput")
    runs = [{"arm": "kit", "tokens_per_second": 300.0, "seconds_per_step": 1.0, "validation_answer_loss": 1.0,
             "flops_per_token": 1e8},
            {"arm": "baseline", "tokens_per_second": 100.0, "seconds_per_step": 3.0, "validation_answer_loss": 1.01,
             "flops_per_token": 1e8}]
    summary = bench.summarise(runs, peak=60.0)
    assert summary["speedup"] == pytest.approx(3.0)
    assert summary["arms"]["kit"]["mfu"] == pytest.approx(0.5)  # 300 tokens/s x 0.1 GFLOP = 30 of 60 GFLOP/s
    assert summary["loss_difference"] == pytest.approx(1.0 / 1.01 - 1)
