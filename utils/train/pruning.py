"""Making a trained model smaller by removing weights (Lab 10): the scores that decide which
weights go (magnitude; Wanda's weight × input-activation norm, Sun et al. 2023), the masks built
from them (unstructured at a sparsity, or N:M semi-structured such as 2:4), and structured
pruning that removes whole decoder blocks, ranked by how little a block changes its input
(the cosine between its input and output hidden states; Men et al. 2024, "ShortGPT").

Unstructured and N:M masks zero weights in place and keep every matrix's shape: dense kernels
still multiply the zeros. Removing blocks changes the shapes, the size and the latency."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from utils.train.params import is_linear


def magnitude_scores(weight: torch.Tensor) -> torch.Tensor:
    """Magnitude pruning's score of each weight: its absolute value."""
    return weight.detach().abs().float()


def wanda_scores(weight: torch.Tensor, input_norms: torch.Tensor) -> torch.Tensor:
    """Wanda's score of each weight ``W[i, j]``: ``|W[i, j]| * ||X[:, j]||``, the weight's
    magnitude times the L2 norm of its input feature over the calibration tokens."""
    if input_norms.shape != weight.shape[1:]:
        raise ValueError(
            f"input_norms has shape {tuple(input_norms.shape)}; the weight takes "
            f"{weight.shape[1]} inputs"
        )
    return weight.detach().abs().float() * input_norms.float().unsqueeze(0)


def pruning_scores(weight: torch.Tensor, input_norms: torch.Tensor | None, method: str):
    """The score of every weight for ``method``: "magnitude" or "wanda" (needs ``input_norms``)."""
    return wanda_scores(weight, input_norms) if method == "wanda" else magnitude_scores(weight)


def unstructured_mask(scores: torch.Tensor, sparsity: float, per_row: bool = True) -> torch.Tensor:
    """A keep-mask (True = kept) that removes the ``sparsity`` share of lowest-scoring weights,
    compared within each output row (``per_row``, as Wanda does) or across the whole matrix.
    Ties go by position (a stable sort), so the share removed is exact."""
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    groups = scores if per_row else scores.reshape(1, -1)
    pruned = int(groups.shape[1] * sparsity)
    keep = torch.ones_like(groups, dtype=torch.bool)
    if pruned:
        lowest = torch.sort(groups, dim=1, stable=True).indices[:, :pruned]
        keep.scatter_(1, lowest, False)
    return keep.reshape(scores.shape)


def n_m_mask(scores: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """A keep-mask with ``n`` weights kept in every ``m`` consecutive inputs of each row (2:4:
    half the weights, in the pattern sparse tensor cores accelerate)."""
    rows, cols = scores.shape
    if not 0 < n <= m or cols % m:
        raise ValueError(f"{n}:{m} needs 0 < n <= m and inputs ({cols}) divisible by {m}")
    groups = scores.reshape(rows, cols // m, m)
    kept = torch.topk(groups, n, dim=2).indices
    keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(2, kept, True)
    return keep.reshape(rows, cols)


def block_linears(model) -> dict[str, nn.Module]:
    """The linear layers inside the decoder blocks (attention and MLP projections): what pruning
    touches; the embeddings and the output head are left whole."""
    blocks = decoder_blocks(model)
    return {
        f"{i}.{name}": module
        for i, block in enumerate(blocks)
        for name, module in block.named_modules()
        if is_linear(module)
    }


@torch.no_grad()
def input_norms(model, batches: Iterable[torch.Tensor], modules: dict[str, nn.Module]) -> dict:
    """The L2 norm of each input feature of each module in ``modules``, over every token of the
    calibration ``batches`` (token id tensors of shape ``[batch, length]`` without padding): one
    forward pass of the dense model, with hooks."""
    sums = {name: None for name in modules}

    def hook(name):
        def accumulate(module, args):
            x = args[0].detach().float().reshape(-1, args[0].shape[-1])
            squares = (x * x).sum(0)
            sums[name] = squares if sums[name] is None else sums[name] + squares

        return accumulate

    handles = [m.register_forward_pre_hook(hook(name)) for name, m in modules.items()]
    try:
        for ids in batches:
            model(input_ids=ids.to(next(model.parameters()).device))
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name, total in sums.items() if total is None]
    if missing:
        raise ValueError(f"the calibration batches never reached {missing[:3]}")
    return {name: total.sqrt() for name, total in sums.items()}


@torch.no_grad()
def prune_linears(
    modules: dict[str, nn.Module],
    method: str,
    sparsity: float = 0.5,
    norms: dict | None = None,
    n_m: tuple[int, int] | None = None,
    per_row: bool | None = None,
    scorer=None,
) -> dict[str, float]:
    """Zero weights of every module in ``modules`` in place: ``method`` "magnitude" or "wanda"
    (needs ``norms`` from ``input_norms``); ``n_m`` (e.g. ``(2, 4)``) instead of ``sparsity`` for
    a semi-structured mask. Weights are compared within each output row (``per_row``; by default
    for Wanda, as its paper and llmcompressor do) or across each matrix (by default for
    magnitude, the paper's baseline). ``scorer(weight, input_norms, method)``: another way to
    compute the scores (a lab's own); by default the kit's. Returns each module's share of
    zeroed weights."""
    per_row = method == "wanda" if per_row is None else per_row
    if method not in ("magnitude", "wanda"):
        raise ValueError(f"method must be 'magnitude' or 'wanda', got {method!r}")
    if method == "wanda" and norms is None:
        raise ValueError("Wanda needs the input norms of the calibration tokens (input_norms)")
    shares = {}
    for name, module in modules.items():
        weight = module.weight
        norm = norms[name] if norms else None
        scores = torch.as_tensor((scorer or pruning_scores)(weight, norm, method))
        if n_m:
            keep = n_m_mask(scores, *n_m)
        else:
            keep = unstructured_mask(scores, sparsity, per_row=per_row)
        weight.mul_(keep.to(weight.dtype))
        shares[name] = 1 - keep.float().mean().item()
    return shares


def decoder_blocks(model) -> nn.ModuleList:
    """The model's list of decoder blocks (``model.model.layers`` in Llama, Qwen2, Mistral,
    Gemma and most causal LMs in transformers); a clear error for an architecture without one."""
    inner = getattr(model, "model", None)
    blocks = getattr(inner, "layers", None)
    if not isinstance(blocks, nn.ModuleList):
        raise ValueError(
            f"{type(model).__name__} keeps no decoder blocks at model.model.layers: "
            "block pruning supports Llama-style causal LMs (Llama, Qwen2, Mistral, Gemma)"
        )
    return blocks


@torch.no_grad()
def block_importance(model, batches: Iterable[torch.Tensor]) -> list[float]:
    """Each decoder block's importance on the calibration ``batches``: 1 minus the mean cosine
    similarity between the hidden states entering and leaving it, over every token (ShortGPT's
    Block Influence), read by hooks on the blocks themselves. A block that barely turns its input
    scores near 0."""
    blocks = decoder_blocks(model)
    totals = torch.zeros(len(blocks))
    entering: dict[int, torch.Tensor] = {}

    def before(index):
        def keep(module, args, kwargs):
            entering[index] = (args[0] if args else kwargs["hidden_states"]).detach()

        return keep

    def after(index):
        def compare(module, args, kwargs, output):
            leaving = output[0] if isinstance(output, tuple) else output
            cos = nn.functional.cosine_similarity(
                entering.pop(index).float(), leaving.detach().float(), dim=-1
            )
            totals[index] += (1 - cos).sum().item()

        return compare

    handles = []
    for index, block in enumerate(blocks):
        handles.append(block.register_forward_pre_hook(before(index), with_kwargs=True))
        handles.append(block.register_forward_hook(after(index), with_kwargs=True))
    tokens = 0
    try:
        for ids in batches:
            model(input_ids=ids.to(next(model.parameters()).device))
            tokens += ids.numel()
    finally:
        for handle in handles:
            handle.remove()
    return (totals / max(tokens, 1)).tolist()


def drop_blocks(model, remove: Sequence[int]):
    """Remove decoder blocks ``remove`` from ``model`` in place (its config, and each kept
    block's cache index, follow); returns the model."""
    blocks = decoder_blocks(model)
    remove = sorted(set(remove))
    if not remove or remove[0] < 0 or remove[-1] >= len(blocks) or len(remove) == len(blocks):
        raise ValueError(f"remove must name some, not all, of blocks 0..{len(blocks) - 1}")
    kept = [i for i in range(len(blocks)) if i not in remove]
    model.model.layers = nn.ModuleList(blocks[i] for i in kept)
    for new_index, block in enumerate(model.model.layers):
        attention = getattr(block, "self_attn", None)
        if attention is not None and hasattr(attention, "layer_idx"):
            attention.layer_idx = new_index
        if hasattr(block, "layer_idx"):
            block.layer_idx = new_index
    config = model.config
    config.num_hidden_layers = len(kept)
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = [config.layer_types[i] for i in kept]
    return model


@contextmanager
def blocks_removed(model, remove: Sequence[int]) -> Iterator:
    """``drop_blocks`` for the duration of a ``with``: the blocks, their cache indices and the
    config come back on exit, even after an error (the grader scores many recipes on one base)."""
    blocks = decoder_blocks(model)
    config = model.config
    saved_layer_types = getattr(config, "layer_types", None)
    saved_layers = config.num_hidden_layers
    saved_indices = []  # (block, its index, its attention, the attention's index)
    for block in blocks:
        attention = getattr(block, "self_attn", None)
        saved_indices.append(
            (
                block,
                getattr(block, "layer_idx", None),
                attention,
                getattr(attention, "layer_idx", None),
            )
        )
    drop_blocks(model, remove)
    try:
        yield model
    finally:
        model.model.layers = blocks
        for block, block_index, attention, attention_index in saved_indices:
            if block_index is not None:
                block.layer_idx = block_index
            if attention_index is not None:
                attention.layer_idx = attention_index
        config.num_hidden_layers = saved_layers
        if saved_layer_types is not None:
            config.layer_types = saved_layer_types


RECIPE_KEY = "remove_blocks"


def read_block_recipe(text: str, num_blocks: int, max_removed: int | None = None) -> list[int]:
    """A structured-pruning recipe, ``{"remove_blocks": [block indices]}`` as JSON (data, never
    code), checked against a model of ``num_blocks`` blocks: the sorted indices, or a ValueError
    that says what is wrong."""
    try:
        recipe = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the recipe is not JSON: {error}") from None
    if not isinstance(recipe, dict) or set(recipe) != {RECIPE_KEY}:
        raise ValueError(f'the recipe must be one JSON object {{"{RECIPE_KEY}": [...]}}')
    remove = recipe[RECIPE_KEY]
    if not isinstance(remove, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in remove
    ):
        raise ValueError(f"{RECIPE_KEY} must be a list of block indices (integers)")
    if len(set(remove)) != len(remove):
        raise ValueError(f"{RECIPE_KEY} names a block twice: {sorted(remove)}")
    outside = [i for i in remove if not 0 <= i < num_blocks]
    if outside:
        raise ValueError(f"the model has blocks 0..{num_blocks - 1}; no block {outside}")
    if not remove or len(remove) == num_blocks:
        raise ValueError(f"{RECIPE_KEY} must name some, not all, of the {num_blocks} blocks")
    if max_removed is not None and len(remove) > max_removed:
        raise ValueError(
            f"at most {max_removed} blocks may be removed, the recipe removes {len(remove)}"
        )
    return sorted(remove)
