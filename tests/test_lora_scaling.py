"""LoRA's scale (Lab 03C): the two conventions give equal outputs, merging at a scale, the update's
norm, and every combination type of ``add_weighted_adapter`` on a tiny model — including a
combined adapter handed in and graded as a Lab 03B submission."""

import math

import pytest
import torch
from grading_helpers import BASE_ID, LAB
from peft import LoraConfig, get_peft_model

from utils.lab.submission import make_submission
from utils.runtime.models import build_tiny_model
from utils.train import lora_scaling as ls

TARGETS = ["q_proj", "v_proj"]


def test_each_convention_has_its_scale_and_bad_input_is_refused():
    assert ls.lora_scale(32, 16) == 2.0 and ls.lora_scale(32, 16, "scratch") == 32.0
    assert ls.lora_scale(8, 64, "rslora") == 1.0
    with pytest.raises(ValueError, match="rank"):
        ls.lora_scale(16, 0)
    with pytest.raises(ValueError, match="convention"):
        ls.lora_scale(16, 4, "alpha/r")


@pytest.mark.parametrize("r,rslora", [(4, False), (4, True), (64, False), (64, True)])
def test_a_from_scratch_adapter_and_its_peft_twin_give_the_same_outputs(r, rslora):
    torch.manual_seed(r)
    linear = torch.nn.Linear(48, 32, bias=False)
    A, B, x = torch.randn(48, r) * 0.1, torch.randn(r, 32) * 0.1, torch.randn(5, 48)
    scratch = ls.scratch_forward(x, linear, A, B, alpha=0.7)
    with torch.no_grad():
        peft_out = ls.peft_linear(linear, A, B, ls.peft_alpha_from_scratch(0.7, r, rslora), rslora)
        assert torch.allclose(peft_out(x), scratch, atol=1e-6)
        # the converse: a PEFT lora_alpha read back as a from-scratch alpha
        twin = ls.peft_linear(linear, A, B, 16.0, rslora)(x)
    back = ls.scratch_forward(x, linear, A, B, ls.scratch_alpha_from_peft(16.0, r, rslora))
    assert torch.allclose(back, twin, atol=1e-6)
    assert not torch.allclose(  # the same alpha in the other convention is a different adapter
        ls.scratch_forward(x, linear, A, B, 16.0), twin, atol=1e-3
    )


def adapted(tokenizer, names=("default",), r=4, seed=0):
    """The tiny model with LoRA adapters ``names`` on q and v, their B set non-zero."""
    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=TARGETS)
    model = get_peft_model(model, config, adapter_name=names[0])
    for name in names[1:]:
        model.add_adapter(name, config)
    torch.manual_seed(seed)
    with torch.no_grad():
        for _, layer in ls.lora_layers(model):
            for name in names:
                layer.lora_B[name].weight.normal_(0, 0.2)
    return model.eval()


def test_merging_at_scale_zero_is_the_base_and_at_one_the_merged_adapter(tokenizer):
    model = adapted(tokenizer)
    ids = torch.tensor([[1, 5, 9, 200, 31]])
    name = "base_model.model.model.layers.0.self_attn.q_proj"
    layer = model.get_submodule(name)
    original = layer.base_layer.weight.detach().clone()
    with torch.no_grad():
        with model.disable_adapter():
            base_logits = model(ids).logits
        adapter_logits = model(ids).logits
        for s, target in ((0.0, base_logits), (1.0, adapter_logits)):
            with ls.merged_at_scale(model, s) as merged:
                assert all(layer.merged for _, layer in ls.lora_layers(merged))
                assert torch.allclose(merged(ids).logits, target, atol=1e-5)
        delta = layer.get_delta_weight("default")  # the full update, at the adapter's own scale
        with ls.merged_at_scale(model, 0.5):
            assert torch.allclose(layer.base_layer.weight - original, 0.5 * delta, atol=1e-6)
        assert not any(layer.merged for _, layer in ls.lora_layers(model))  # unmerged on leaving
        assert torch.allclose(layer.base_layer.weight, original, atol=1e-6)
        assert torch.allclose(model(ids).logits, adapter_logits, atol=1e-5)


def test_the_update_norm_is_every_layers_scaled_update_together(tokenizer):
    model = adapted(tokenizer)
    with torch.no_grad():
        by_hand = math.sqrt(
            sum(
                float(
                    (
                        (layer.scaling["default"] * layer.lora_B["default"].weight)
                        @ layer.lora_A["default"].weight
                    )
                    .pow(2)
                    .sum()
                )
                for _, layer in ls.lora_layers(model)
            )
        )
    assert ls.update_norm(model) == pytest.approx(by_hand, rel=1e-5)
    assert len(ls.lora_layers(model)) == 4  # q and v of two blocks


@pytest.mark.parametrize("how", ["linear", "cat", "ties", "dare_ties"])
def test_each_combination_type_builds_one_adapter_from_two(tokenizer, how):
    model = adapted(tokenizer, names=("first", "second"))
    torch.manual_seed(0)
    model.add_weighted_adapter(
        ["first", "second"],
        [1.0, 1.0],
        how,
        combination_type=how,
        density=0.5 if "ties" in how else None,
    )
    model.set_adapter(how)
    assert model.peft_config[how].r == (8 if how == "cat" else 4)
    _, layer = ls.lora_layers(model)[0]
    combined = layer.get_delta_weight(how)
    added = layer.get_delta_weight("first") + layer.get_delta_weight("second")
    gap = float((combined - added).norm() / added.norm())
    if how == "cat":  # the ranks stacked: exactly the sum of the two updates
        assert gap < 1e-5
    else:  # A's and B's mixed separately, or entries dropped: not the sum
        assert gap > 0.05
    with torch.no_grad():
        assert torch.isfinite(model(torch.tensor([[1, 2, 3]])).logits).all()


def test_a_combined_adapter_is_graded_as_a_lab_03b_submission(tokenizer, base, heldout, tmp_path):
    from grading.worker import grade_bytes

    model = adapted(tokenizer, names=("first", "second"))
    model.add_weighted_adapter(["first", "second"], [1.0, 1.0], "combined", combination_type="cat")
    model.save_pretrained(str(tmp_path / "saved"), selected_adapters=["combined"])
    info = {"model_fingerprint": base["fingerprint"], "seed": 0, "packages": {}, "config": {}}
    zip_path = make_submission(
        LAB, "dana", {"adapter": tmp_path / "saved" / "combined"}, info, BASE_ID, tmp_path
    )
    result = grade_bytes(zip_path.read_bytes(), base, LAB, heldout, None)
    assert result["status"] == "graded", result.get("reason")
    assert result["parts"]["valid submission"] == 10.0
