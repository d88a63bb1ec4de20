"""NF4 and LLM.int8() as written in the kit, against bitsandbytes and exact arithmetic."""

import copy

import pytest
import torch

from utils.train.quantization import (
    NF4_LEVELS,
    bitsandbytes_nf4_roundtrip,
    int8_absmax_matmul,
    int8_outlier_matmul,
    nf4_bytes_per_parameter,
    nf4_dequantize,
    nf4_quantize,
    nf4_roundtrip_linears,
)


def test_nf4_roundtrip_is_bit_identical_to_bitsandbytes():
    weight = torch.randn(96, 128, generator=torch.Generator().manual_seed(0)) * 0.03
    codes, absmax = nf4_quantize(weight)
    assert (
        codes.dtype == torch.uint8 and int(codes.max()) <= 15 and absmax.shape == (96 * 128 // 64,)
    )
    assert torch.equal(
        nf4_dequantize(codes, absmax, weight.shape), bitsandbytes_nf4_roundtrip(weight)
    )


def test_the_roundtrip_of_a_model_rounds_the_blocks_linears_but_what_it_keeps(tiny_model):
    model = copy.deepcopy(tiny_model)
    before = {n: p.clone() for n, p in model.named_parameters()}
    kept = copy.deepcopy(tiny_model)
    layers = len(model.model.layers)
    assert nf4_roundtrip_linears(model) == 7 * layers  # q, k, v, o, gate, up, down per block
    assert nf4_roundtrip_linears(kept, keep=("down_proj",)) == 6 * layers
    for name, param in model.named_parameters():
        changed = not torch.equal(param, before[name])
        assert changed == (".layers." in name and "norm" not in name), name  # head, norms stay
    for name, param in kept.named_parameters():
        if "down_proj" in name:
            assert torch.equal(param, before[name]), name


def test_nf4_levels_are_the_bitsandbytes_table():
    import bitsandbytes.functional as bnbf

    _, state = bnbf.quantize_4bit(torch.randn(64, 64), blocksize=64, quant_type="nf4")
    assert torch.equal(state.code.float().cpu(), NF4_LEVELS)


def test_nf4_keeps_each_block_maximum_and_zero_exactly():
    weight = torch.zeros(2, 64)
    weight[0, 5], weight[1, 7] = 0.5, -2.0
    codes, absmax = nf4_quantize(weight)
    assert torch.equal(nf4_dequantize(codes, absmax, weight.shape), weight)


def test_nf4_refuses_a_size_that_does_not_split_into_blocks():
    with pytest.raises(ValueError, match="blocks of 64"):
        nf4_quantize(torch.randn(10, 10))


def test_bytes_per_parameter():
    assert nf4_bytes_per_parameter() == 0.5625
    assert nf4_bytes_per_parameter(double_quant=True) == pytest.approx(0.515869, abs=1e-6)


def test_int8_outlier_decomposition_rescues_a_row_with_one_huge_feature():
    gen = torch.Generator().manual_seed(0)
    x, weight = torch.randn(32, 256, generator=gen), torch.randn(64, 256, generator=gen) * 0.05
    exact_small = x @ weight.T
    assert (int8_absmax_matmul(x, weight) - exact_small).norm() / exact_small.norm() < 0.02
    x[:, 3] = 300.0  # an emergent outlier feature
    exact = x @ weight.T
    plain = (int8_absmax_matmul(x, weight) - exact).norm() / exact.norm()
    result, outliers = int8_outlier_matmul(x, weight, threshold=6.0)
    assert outliers == 1 and (result - exact).norm() / exact.norm() < plain / 10


def test_int8_decomposition_without_outliers_equals_plain_int8():
    x, weight = torch.rand(4, 32), torch.rand(8, 32)
    result, outliers = int8_outlier_matmul(x, weight)
    assert outliers == 0 and torch.equal(result, int8_absmax_matmul(x, weight))
