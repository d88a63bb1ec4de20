"""The labs' explorers: their figures (the same with or without widgets), the printed table they
fall back to outside a widget front end, and clear errors on bad input."""

import pytest
import torch

from utils.data.prompting import PromptFormat
from utils.lab import explorers
from utils.runtime.models import build_tiny_model
from utils.train.memory_estimate import SHAPES


def test_the_lora_calculator_counts_what_peft_trains_in_lab_03b():
    row = explorers.lora_figures(
        "smollm2-135m", r=16, alpha=32, targets="all linear", weights="bf16"
    )
    assert row["trainable"] == "4,884,480"  # PEFT's count for r = 16 on all linear layers
    assert row["scale"] == 2.0 and row["adapter MB (fp16)"] == pytest.approx(9.8, abs=0.05)
    small = explorers.lora_figures("smollm2-135m", r=8, alpha=16, targets="q, v", weights="bf16")
    assert small["trainable"] == "460,800"  # Lab 03A's adapter


def test_the_calculator_shows_each_scaling_convention_across_ranks():
    def scales(scaling):
        row = explorers.lora_figures("smollm2-135m", 256, 32, "all linear", "bf16", scaling)
        return row["scale"], row["same α at r = 4/16/64/256"]

    assert scales("PEFT α/r") == (0.125, "8 / 2 / 0.5 / 0.125")  # α fixed: high ranks starve
    assert scales("rsLoRA α/√r") == (2.0, "16 / 8 / 4 / 2")
    assert scales("from scratch α·(x@A@B)") == (32.0, "32 / 32 / 32 / 32")
    with pytest.raises(ValueError, match="scaling must be one of"):
        explorers.lora_figures("smollm2-135m", 16, 32, "all linear", "bf16", "alpha/r")


def test_4_bit_base_weights_cut_the_estimated_memory_of_a_large_model():
    full = explorers.lora_figures("llama-3.1-8b", 16, 32, "all linear", "bf16")["GPU GB (est.)"]
    nf4 = explorers.lora_figures("llama-3.1-8b", 16, 32, "all linear", "nf4")["GPU GB (est.)"]
    assert nf4 < 0.6 * full


def test_quantization_error_falls_with_more_bits_and_smaller_blocks():
    torch.manual_seed(0)
    weight = torch.randn(256, 256) * 0.02
    weight[3, 7] = 0.5  # one outlier inflates its block's scale

    def error(code, block):
        return explorers.quantization_error(weight, code, block).abs().mean().item()

    assert error("int8", 64) < error("int4", 64) and error("nf4", 64) < error("nf4", 4096)
    assert error("nf4", 64) < error("int4", 64)  # NF4's levels suit normal weights
    row = explorers.quantization_figures(weight, "nf4", 64)
    assert row["bits/weight"] == 4.5


def test_absmax_round_trip_keeps_values_on_its_levels():
    on_levels = torch.tensor([[-127.0, -64.0, 0.0, 3.0, 127.0, 90.0, -1.0, 50.0]]) / 127 * 0.3
    restored = explorers.absmax_roundtrip(on_levels, bits=8, blocksize=8)
    assert torch.allclose(restored, on_levels, atol=1e-7)
    halfway = torch.tensor([[1.0, 0.6, 0.4, -1.0]])  # 2 bits: levels -1, 0, 1 (× absmax)
    assert explorers.absmax_roundtrip(halfway, 2, 4).tolist() == [[1.0, 1.0, 0.0, -1.0]]


def test_without_a_widget_front_end_an_explorer_prints_its_table(capsys):
    explorers.lora_calculator()
    printed = capsys.readouterr().out
    assert printed.startswith("LoRA calculator") and "19,537,920" in printed  # r = 64, all linear
    assert explorers.widgets_module() is None  # pytest runs outside an IPython kernel


def test_the_prompt_builder_scores_the_demonstrations_in_the_order_written(tokenizer, capsys):
    model = build_tiny_model(tokenizer).eval()
    fmt = PromptFormat(input_prefix="Message: ", output_prefix="Label:")
    pool = [{"text": f"message {i}", "label": ("spam", "ham")[i % 2]} for i in range(6)]
    query = {"text": "free prize now", "label": "spam"}
    forward = explorers.prompt_figures(model, tokenizer, fmt, pool, ("ham", "spam"), query, "0,1")
    backward = explorers.prompt_figures(model, tokenizer, fmt, pool, ("ham", "spam"), query, "1,0")
    assert forward["predicted"] in ("ham", "spam") and forward["demonstrations"] == "0,1"
    assert forward["log p(ham)"] != backward["log p(ham)"]  # order matters to the model
    explorers.prompt_builder(model, tokenizer, fmt, pool, ("ham", "spam"), [query])
    assert "The prompt for demos 0,1,2,3" in capsys.readouterr().out


@pytest.mark.parametrize("order, message", [("0,9", "must be 0..5"), ("a,b", "separated by")])
def test_the_prompt_builder_names_a_bad_demonstration_list(order, message):
    with pytest.raises(ValueError, match=message):
        explorers.demo_positions(order, 6)


def test_every_shape_the_calculator_offers_has_an_estimate():
    for name in SHAPES:
        assert explorers.lora_figures(name, 8, 16, "q, v", "nf4")["GPU GB (est.)"] > 0
