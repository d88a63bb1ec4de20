"""Memory levers on the tiny random model: gradient accumulation equals the full batch (and the
per-token pitfall with unequal lengths), loss scaling rescues fp16 gradients, optimizer state bytes
by hand equal what the optimizers keep, the ZeRO estimator against published figures, and the
multi-GPU configs load with the installed libraries."""

import json

import pytest
import torch

from utils.runtime.storage import REPO_ROOT
from utils.train import memory_levers as levers
from utils.train.memory_estimate import GB, zero_model_states_gb

CONFIGS = REPO_ROOT / "tools" / "distributed"


def batch(lengths, pad_id, seed=0):
    """Right-padded random token ids with the given real lengths."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.full((len(lengths), max(lengths)), pad_id)
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(5, 500, (length,), generator=generator)
        mask[row, :length] = 1
    return ids, mask


def split(full, parts):
    ids, mask = full
    size = len(ids) // parts
    return [(ids[i : i + size], mask[i : i + size]) for i in range(0, len(ids), size)]


def test_accumulating_micro_batches_of_equal_length_gives_the_full_batch_gradient(
    tiny_model, tokenizer
):
    full = batch([9] * 8, tokenizer.pad_token_id)
    whole = levers.full_batch_gradients(tiny_model, full)
    accumulated = levers.accumulated_gradients(tiny_model, split(full, 4), "micro")
    assert levers.largest_difference(whole, accumulated) < 1e-5
    not_divided = levers.accumulated_gradients(tiny_model, split(full, 4), "micro")
    assert levers.largest_difference(whole, not_divided) < 1e-5  # deterministic


def test_per_micro_batch_averaging_is_wrong_with_unequal_lengths_and_global_counts_fix_it(
    tiny_model, tokenizer
):
    full = batch([3, 4, 12, 12, 5, 3, 11, 2], tokenizer.pad_token_id)
    whole = levers.full_batch_gradients(tiny_model, full)
    per_micro = levers.accumulated_gradients(tiny_model, split(full, 4), "micro")
    per_token = levers.accumulated_gradients(tiny_model, split(full, 4), "global")
    assert levers.largest_difference(whole, per_micro) > 100 * levers.largest_difference(
        whole, per_token
    )
    assert levers.largest_difference(whole, per_token) < 1e-5


def test_fp16_gradients_underflow_without_loss_scaling_and_survive_with_it():
    assert levers.fp16_zero_gradients(scale=1.0) > 0.9
    assert levers.fp16_zero_gradients(scale=2.0**16) == 0.0
    assert torch.amp.GradScaler("cpu").get_scale() == 2.0**16  # the library's default scale


@pytest.mark.parametrize("name", ["adamw", "adamw-8bit", "sgd-momentum", "sgd", "adafactor"])
def test_optimizer_state_bytes_by_hand_equal_the_optimizers_own(name, tiny_model, tokenizer):
    params = [p for p in tiny_model.parameters() if p.requires_grad]
    optimizer = levers.make_optimizer(name, params, lr=0.0)
    levers.full_batch_gradients(tiny_model, batch([6, 6], tokenizer.pad_token_id))
    for p in params:  # one step on a gradient, without changing the weights (lr = 0)
        p.grad = torch.ones_like(p)
    optimizer.step()
    assert levers.optimizer_state_bytes(optimizer) == levers.expected_state_bytes(name, params)
    optimizer.zero_grad(set_to_none=True)


def test_zero_model_states_match_the_zero_paper_and_deepspeeds_estimator():
    # ZeRO paper (Rajbhandari et al., 2020), Figure 1: 7.5B parameters, 64 GPUs, K = 12
    paper = {0: 120.0, 1: 31.4, 2: 16.6, 3: 1.9}
    for stage, gb in paper.items():
        assert zero_model_states_gb(7.5e9, 64, stage) == pytest.approx(gb, rel=0.02)
    # DeepSpeed's estimate_zero3_model_states_mem_needs_all_live for t5-small on 1 GPU
    # (60.5M parameters, largest layer 16.45M), per GPU in GiB: 1.08 / 0.17 / 0.06
    gib = 2**30 / GB
    params, layer = 60.5e6, 16.45e6
    cases = [({}, 1.08), ({"offload_optimizer": True}, 0.17)]
    cases.append(({"offload_optimizer": True, "offload_params": True}, 0.06))
    for options, published in cases:
        ours = zero_model_states_gb(params, 1, 3, largest_layer=layer, **options) / gib
        assert ours == pytest.approx(published, rel=0.15), options


def test_zero_needs_stage_three_to_offload_parameters():
    with pytest.raises(ValueError, match="stage 3"):
        zero_model_states_gb(1e9, 2, 2, offload_params=True)


@pytest.mark.parametrize(
    "name, stage, offload",
    [("zero1", 1, False), ("zero2", 2, False), ("zero3", 3, False), ("zero3_offload", 3, True)],
)
def test_the_deepspeed_configs_load_as_the_stage_they_claim(name, stage, offload):
    from accelerate.utils.deepspeed import HfDeepSpeedConfig

    config = HfDeepSpeedConfig(json.loads((CONFIGS / f"{name}.json").read_text()))
    assert config.get_value("zero_optimization.stage") == stage
    assert config.is_zero3() == (stage == 3) and config.is_offload() == offload


def test_the_fsdp_config_loads_with_accelerate():
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(CONFIGS / "fsdp.yaml"))
    assert str(config.distributed_type).endswith("FSDP") and config.num_processes == 2
    assert config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
