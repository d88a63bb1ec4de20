"""Weight quantization, written out for teaching and checked against bitsandbytes: blockwise NF4
(the QLoRA data type) and absmax int8 with LLM.int8()'s outlier decomposition."""

from __future__ import annotations

from collections.abc import Sequence

import torch

# The 16 NF4 levels: quantiles of N(0, 1) scaled to [-1, 1], with an exact zero (QLoRA, Dettmers et
# al. 2023, appendix E; the same table bitsandbytes uses).
NF4_LEVELS = torch.tensor(
    [
        -1.0,
        -0.6961928009986877,
        -0.5250730514526367,
        -0.39491748809814453,
        -0.28444138169288635,
        -0.18477343022823334,
        -0.09105003625154495,
        0.0,
        0.07958029955625534,
        0.16093020141124725,
        0.24611230194568634,
        0.33791524171829224,
        0.44070982933044434,
        0.5626170039176941,
        0.7229568362236023,
        1.0,
    ]
)


def nf4_quantize(weight: torch.Tensor, blocksize: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Blockwise NF4: split the flattened weight into blocks of ``blocksize``, scale each block by
    its absolute maximum, store the index (0–15) of the nearest NF4 level. Returns (codes,
    absmax)."""
    flat = weight.detach().float().flatten()
    if flat.numel() % blocksize:
        raise ValueError(f"{flat.numel()} weights do not split into blocks of {blocksize}")
    blocks = flat.view(-1, blocksize)
    absmax = blocks.abs().amax(dim=1)
    scaled = blocks / absmax.clamp_min(torch.finfo(torch.float32).tiny)[:, None]
    codes = (scaled[..., None] - NF4_LEVELS.to(flat.device)).abs().argmin(dim=-1).to(torch.uint8)
    return codes, absmax


def nf4_dequantize(codes: torch.Tensor, absmax: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Inverse of ``nf4_quantize``: level × block absmax, reshaped."""
    return (NF4_LEVELS.to(codes.device)[codes.long()] * absmax[:, None]).reshape(shape)


def nf4_bytes_per_parameter(
    blocksize: int = 64, double_quant: bool = False, second_blocksize: int = 256
) -> float:
    """Storage per weight: 4 bits + the block's fp32 absmax, or with double quantization an 8-bit
    absmax plus one fp32 scale per ``second_blocksize`` blocks."""
    scale_bits = (
        8 / blocksize + 32 / (blocksize * second_blocksize) if double_quant else 32 / blocksize
    )
    return (4 + scale_bits) / 8


def bitsandbytes_nf4_roundtrip(weight: torch.Tensor, blocksize: int = 64) -> torch.Tensor:
    """Quantize and dequantize with bitsandbytes (the library QLoRA uses), for comparison."""
    import bitsandbytes.functional as bnbf

    packed, state = bnbf.quantize_4bit(
        weight.detach().float().contiguous(), blocksize=blocksize, quant_type="nf4"
    )
    return bnbf.dequantize_4bit(packed, state)


def int8_absmax_matmul(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T`` in int8: each row of ``x`` and of ``weight`` scaled by its absmax to
    [-127, 127], multiplied in integers (exact here: int64), rescaled. One big value in a row
    squeezes every other value of that row towards 0."""
    sx = x.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127
    sw = weight.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127
    qx, qw = torch.round(x / sx).long(), torch.round(weight / sw).long()
    return (qx @ qw.T).float() * sx * sw.T


def outlier_columns(x: torch.Tensor, threshold: float = 6.0) -> torch.Tensor:
    """LLM.int8()'s outlier features: a mask over the columns of ``x``, True where any value in
    the column has |value| >= ``threshold``."""
    return (x.abs() >= threshold).any(dim=0)


def int8_outlier_matmul(
    x: torch.Tensor, weight: torch.Tensor, threshold: float = 6.0
) -> tuple[torch.Tensor, int]:
    """LLM.int8(): feature columns of ``x`` with any |value| >= ``threshold`` are multiplied in full
    precision, the rest in int8; the two parts are summed. Returns (result, outlier columns)."""
    outliers = outlier_columns(x, threshold)
    regular = ~outliers
    result = x[:, outliers] @ weight[:, outliers].T
    if regular.any():
        result = result + int8_absmax_matmul(x[:, regular], weight[:, regular])
    return result, int(outliers.sum())


@torch.no_grad()
def nf4_roundtrip_linears(model, blocksize: int = 64, keep: Sequence[str] = ()) -> int:
    """Replace, in place, the weight of every linear layer inside the decoder blocks (the layers
    ``load_in_4bit`` quantizes; embeddings and the LM head stay) by its NF4 quantize-dequantize
    round trip: the weights a QLoRA adapter was trained against, in full precision. Layers whose
    name ends in one of ``keep`` (e.g. ``"down_proj"``) stay as they are, as bitsandbytes'
    ``llm_int8_skip_modules`` leaves them. Returns the number of layers changed."""
    changed = 0
    for name, module in model.named_modules():
        inside_blocks = ".layers." in f".{name}" and "lora_" not in name
        kept = name.rsplit(".", 1)[-1] in keep
        if isinstance(module, torch.nn.Linear) and inside_blocks and not kept:
            if module.weight.is_cuda:  # bitsandbytes' kernels: same numbers, GPU speed and memory
                rounded = bitsandbytes_nf4_roundtrip(module.weight, blocksize)
            else:
                rounded = nf4_dequantize(
                    *nf4_quantize(module.weight, blocksize), module.weight.shape
                )
            module.weight.copy_(rounded.to(module.weight.dtype))
            changed += 1
    return changed
