"""The benchmarks' arithmetic (not their timings): the FLOP count per token and the summary."""

import importlib.util

import pytest

from utils.runtime.models import build_tiny_model
from utils.runtime.storage import REPO_ROOT


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
    blocks = sum(
        m.weight.numel() for m in model.model.layers.modules() if m.__class__.__name__ == "Linear"
    )
    head = model.lm_head.weight.numel()
    expected = 4 * blocks + 4 * head * 0.25 + 6 * config.num_hidden_layers * config.hidden_size * 80
    assert bench.flops_per_token(model, 80, 0.25) == pytest.approx(expected)
    wrapped = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert bench.flops_per_token(wrapped, 80, 0.25) == pytest.approx(
        expected
    )  # LoRA's own FLOPs left out


def test_the_summary_gives_the_ratio_mfu_and_loss_gap_from_median_runs():
    bench = load_bench("sft_throughput")
    runs = [
        {
            "arm": "kit",
            "tokens_per_second": 300.0,
            "seconds_per_step": 1.0,
            "validation_answer_loss": 1.0,
            "flops_per_token": 1e8,
        },
        {
            "arm": "baseline",
            "tokens_per_second": 100.0,
            "seconds_per_step": 3.0,
            "validation_answer_loss": 1.01,
            "flops_per_token": 1e8,
        },
    ]
    summary = bench.summarise(runs, peak=60.0)
    assert summary["speedup"] == pytest.approx(3.0)
    assert summary["arms"]["kit"]["mfu"] == pytest.approx(
        0.5
    )  # 300 tokens/s x 0.1 GFLOP = 30 of 60 GFLOP/s
    assert summary["loss_difference"] == pytest.approx(1.0 / 1.01 - 1)


def test_the_shared_prefix_stops_before_padding_labels_and_the_label_after_it():
    import torch

    bench = load_bench("sft_breakdown")
    ids = torch.tensor([[5, 6, 7, 8, 9, 1], [5, 6, 7, 8, 3, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]])
    unlabelled = torch.full_like(ids, -100)
    assert (
        bench.shared_prefix_length({"input_ids": ids, "attention_mask": mask, "labels": unlabelled})
        == 4
    )
    labels = unlabelled.clone()
    labels[:, 3] = (
        8  # the 4th token is learned: the 3rd position predicts it, so the prefix is 2 tokens
    )
    assert (
        bench.shared_prefix_length({"input_ids": ids, "attention_mask": mask, "labels": labels})
        == 2
    )
    assert (
        bench.shared_prefix_length(
            {"input_ids": ids[:1], "attention_mask": mask[:1], "labels": unlabelled[:1]}
        )
        == 5
    )


def test_the_fused_lora_linear_gives_peft_s_outputs_and_gradients(tokenizer):
    import torch
    from peft import LoraConfig, get_peft_model

    bench = load_bench("sft_breakdown")
    model = get_peft_model(
        build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]),
    )
    torch.manual_seed(1)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0.0, 0.1)
    ids = torch.randint(3, 100, (2, 9))

    def run():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
        model.zero_grad(set_to_none=True)
        return loss.item(), grads

    loss, grads = run()
    with bench.fused_lora() as calls:
        fused_loss, fused_grads = run()
    assert calls["fused"] == 6  # 3 adapted linears x 2 layers, none left to PEFT's own forward
    assert fused_loss == pytest.approx(loss, rel=1e-6)
    assert all(
        torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(grads, fused_grads, strict=True)
    )
    assert any(g.abs().sum() > 0 for g in grads)


def test_adapters_routed_in_one_batch_generate_what_each_merged_alone_does(tokenizer, tmp_path):
    bench = load_bench("batched_adapters")
    base = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    names, prompts = ["a", "b"], ["The cat sat", "Hello there, how", "One two three"]
    base = bench.save_random_adapters(base, tmp_path, names, r=4, std=0.5)
    alone = bench.one_at_a_time(base, tokenizer, tmp_path, names, prompts, 5)
    routed, _ = bench.batched(base, tokenizer, tmp_path, names, prompts, 5)
    assert routed == alone
    assert alone[:3] != alone[3:]  # the two adapters do differ
