import pytest
import torch
from reference import lora_parameter_count

from utils.runtime.models import build_tiny_model
from utils.train.lora import (
    LinearWithLoRA,
    apply_lora,
    merge_lora,
    remove_lora,
)

TARGETS = ("q_proj", "v_proj")


@pytest.fixture()
def model_and_ids(tokenizer):
    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    ids = tokenizer(
        ["LoRA keeps the base frozen", "and learns a low-rank update"],
        return_tensors="pt",
        padding=True,
    )
    return model, ids


def logits(model, ids):
    with torch.no_grad():
        return model(**ids).logits


def perturb_adapters(model, seed=1):
    torch.manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LinearWithLoRA):
                module.lora.B.normal_(0, 0.05)


def test_adapters_are_a_no_op_at_initialisation(model_and_ids):
    model, ids = model_and_ids
    before = logits(model, ids)
    names = apply_lora(model, TARGETS, rank=4, alpha=8)
    assert len(names) == 4 and all(n.endswith(TARGETS) for n in names)
    assert torch.equal(logits(model, ids), before)


def test_only_adapters_train_and_their_count_is_r_times_in_plus_out(model_and_ids):
    model, _ = model_and_ids
    for p in model.parameters():
        p.requires_grad = False
    apply_lora(model, TARGETS, rank=4, alpha=8)
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    assert all(n.endswith((".lora.A", ".lora.B")) for n in trainable)
    attn = model.model.layers[0].self_attn
    expected = 2 * (
        lora_parameter_count(attn.q_proj.linear.in_features, attn.q_proj.linear.out_features, 4)
        + lora_parameter_count(attn.v_proj.linear.in_features, attn.v_proj.linear.out_features, 4)
    )
    assert sum(trainable.values()) == expected
    assert lora_parameter_count(2048, 2048, 10) == 40_960  # a 4.2M-parameter update becomes 41k


def test_merged_weights_give_the_unmerged_outputs(model_and_ids):
    model, ids = model_and_ids
    apply_lora(model, TARGETS, rank=4, alpha=8)
    perturb_adapters(model)
    unmerged = logits(model, ids)
    assert len(merge_lora(model)) == 4
    assert not any(isinstance(m, LinearWithLoRA) for m in model.modules())
    assert torch.allclose(logits(model, ids), unmerged, atol=1e-5)


def test_removing_adapters_restores_the_base_exactly(model_and_ids):
    model, ids = model_and_ids
    before = logits(model, ids)
    apply_lora(model, TARGETS, rank=4, alpha=8)
    perturb_adapters(model)
    assert not torch.allclose(logits(model, ids), before)
    remove_lora(model)
    assert torch.equal(logits(model, ids), before)


def test_scaling_is_alpha_over_rank_and_bad_inputs_fail(model_and_ids):
    model, _ = model_and_ids
    apply_lora(model, ("o_proj",), rank=8, alpha=16)
    assert model.model.layers[0].self_attn.o_proj.lora.scaling == 2.0
    with pytest.raises(ValueError, match="nothing to adapt"):
        apply_lora(model, ("qproj",), rank=4, alpha=8)
    with pytest.raises(ValueError, match="rank"):
        apply_lora(model, ("q_proj",), rank=0, alpha=8)
