"""GPU memory estimates for loading and fine-tuning a decoder LLM.

``estimate_memory`` adds up what a training step keeps in memory — weights, trainable copies,
gradients, optimizer state, saved activations, logits and a fixed CUDA overhead — from the model's
shape and the run's settings. It is an estimate (allocator fragmentation, kernels' workspaces and
framework versions move real figures by ~10 %), checked in tests against published measurements.
``utils.runtime.memory`` measures what a run really uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from utils.runtime.memory import GB
from utils.train.params import ALL_LINEAR

CUDA_OVERHEAD_GB = 0.75  # CUDA context + cuBLAS workspaces + allocator slack on a fresh process

# bytes per stored weight; nf4 = 4 bits + the block's absmax (fp32 per 64 weights, or with double
# quantization an 8-bit absmax per 64 plus an fp32 scale per 256 blocks — QLoRA paper, section 3)
WEIGHT_BYTES = {
    "fp32": 4.0,
    "fp16": 2.0,
    "bf16": 2.0,
    "int8": 1.0 + 4 / 4096,
    "nf4": (4 + 32 / 64) / 8,
    "nf4-dq": (4 + 8 / 64 + 32 / (64 * 256)) / 8,
}
OPTIMIZER_STATES = {
    "adamw": 2,
    "adamw-8bit": 2,
    "sgd-momentum": 1,
    "sgd": 0,
}  # states per trainable parameter


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a decoder that memory depends on (Llama's layout: a gated MLP; GPT-2 and OPT
    have an ungated one, ``gated_mlp=False``; fused projections such as Phi-3's hold the same
    parameters as separate ones)."""

    name: str
    layers: int
    hidden: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    tied_embeddings: bool = False
    gated_mlp: bool = True

    @property
    def kv_dim(self) -> int:
        return self.hidden // self.heads * self.kv_heads

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear layer of one block."""
        h, i, kv = self.hidden, self.intermediate, self.kv_dim
        shapes = {
            "q_proj": (h, h),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (h, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }
        if not self.gated_mlp:
            del shapes["gate_proj"]
        return shapes

    def block_linear_params(self) -> int:
        return sum(a * b for a, b in self.linear_shapes().values())

    def embedding_params(self) -> int:
        """Input embedding plus output head (one matrix when tied)."""
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    def params(self) -> int:
        """Total parameters (norms included)."""
        return (
            self.layers * (self.block_linear_params() + 2 * self.hidden)
            + self.embedding_params()
            + self.hidden
        )

    def lora_params(self, r: int, targets=ALL_LINEAR, lm_head: bool = False) -> int:
        """LoRA A and B parameters for rank ``r`` on ``targets`` in every block (and the head)."""
        shapes = self.linear_shapes()
        unknown = sorted(set(targets) - set(shapes))
        if unknown:
            raise ValueError(f"unknown target modules {unknown}; choose from {sorted(shapes)}")
        per_block = sum(r * (shapes[t][0] + shapes[t][1]) for t in targets)
        return self.layers * per_block + (r * (self.hidden + self.vocab) if lm_head else 0)


# How common configs spell each number (Llama/Qwen/Mistral/Gemma/Phi-3, GPT-2, OPT, T5-style)
CONFIG_SPELLINGS = {
    "layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "hidden": ("hidden_size", "n_embd", "d_model"),
    "intermediate": ("intermediate_size", "ffn_dim", "n_inner"),
    "heads": ("num_attention_heads", "n_head", "num_heads"),
    "vocab": ("vocab_size",),
}
UNGATED_MLP = ("gpt2", "opt", "gpt_neox", "gptj", "gpt_bigcode", "phi", "falcon", "bloom")


def config_number(config: dict, field: str) -> int | None:
    """The first of ``field``'s spellings that ``config`` sets to a number, or None."""
    for key in CONFIG_SPELLINGS[field]:
        if isinstance(config.get(key), int) and not isinstance(config.get(key), bool):
            return config[key]
    return None


def shape_from_config(config: dict, name: str = "model") -> ModelShape:
    """The shape of a decoder from its ``config.json`` fields, in any of the common spellings
    (``CONFIG_SPELLINGS``; a multimodal config's ``text_config``). Raises ``ValueError`` naming the
    numbers it could not find (never a ``KeyError``)."""
    config = config.get("text_config") or config
    numbers = {field: config_number(config, field) for field in CONFIG_SPELLINGS}
    if numbers["intermediate"] is None and numbers["hidden"] and "n_embd" in config:
        numbers["intermediate"] = 4 * numbers["hidden"]  # GPT-2's n_inner=None means 4 x hidden
    missing = [field for field, value in numbers.items() if value is None]
    if missing:
        spellings = "; ".join(f"{f}: {' / '.join(CONFIG_SPELLINGS[f])}" for f in missing)
        raise ValueError(
            f"{name}: config.json ({config.get('model_type', 'unknown type')}) does not say "
            f"{', '.join(missing)} (looked for {spellings})"
        )
    model_type = str(config.get("model_type", ""))
    return ModelShape(
        name=name,
        layers=numbers["layers"],
        hidden=numbers["hidden"],
        intermediate=numbers["intermediate"],
        vocab=numbers["vocab"],
        heads=numbers["heads"],
        kv_heads=config.get("num_key_value_heads") or numbers["heads"],
        tied_embeddings=bool(config.get("tie_word_embeddings", model_type == "gpt2")),
        gated_mlp=model_type not in UNGATED_MLP,
    )


SHAPES = {
    "smollm2-135m": ModelShape("SmolLM2-135M", 30, 576, 1536, 49152, 9, 3, tied_embeddings=True),
    "tinyllama-1.1b": ModelShape("TinyLlama-1.1B", 22, 2048, 5632, 32000, 32, 4),
    "llama-3.2-3b": ModelShape("Llama-3.2-3B", 28, 3072, 8192, 128256, 24, 8, tied_embeddings=True),
    "qwen2.5-3b": ModelShape("Qwen2.5-3B", 36, 2048, 11008, 151936, 16, 2, tied_embeddings=True),
    "llama-2-7b": ModelShape("Llama-2-7B", 32, 4096, 11008, 32000, 32, 32),
    "llama-3.1-8b": ModelShape("Llama-3.1-8B", 32, 4096, 14336, 128256, 32, 8),
}


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated GPU memory in GB, by component."""

    weights: float
    trainable_weights: float
    gradients: float
    optimizer: float
    activations: float
    overhead: float
    trainable_params: int

    @property
    def total(self) -> float:
        return (
            self.weights
            + self.trainable_weights
            + self.gradients
            + self.optimizer
            + self.activations
            + self.overhead
        )

    def as_dict(self) -> dict:
        return {**asdict(self), "total": self.total}


def estimate_memory(
    shape: ModelShape,
    *,
    method: str = "lora",
    weights: str = "bf16",
    lora_r: int = 16,
    lora_targets=ALL_LINEAR,
    lora_lm_head: bool = False,
    trainable_bytes: float = 4.0,
    optimizer: str = "adamw",
    batch_size: int = 1,
    seq_len: int = 512,
    gradient_checkpointing: bool = False,
    activation_bytes: float = 2.0,
    overhead_gb: float = CUDA_OVERHEAD_GB,
    logits_tokens: int | None = None,
    lora_params: int | None = None,
) -> MemoryEstimate:
    """Estimate peak GPU memory of ``method`` = "inference", "full" or "lora" (QLoRA = lora + nf4).

    - weights: block linears in ``weights`` precision (nf4/int8 quantize linears only; embeddings,
      head and norms stay 16-bit), or everything in ``weights`` for full fine-tuning.
    - trainable: LoRA A/B (or, for full fine-tuning with 16-bit weights, an fp32 master copy when
      ``trainable_bytes`` is 4) — gradients and optimizer states (2 for AdamW, 1 byte each when
      8-bit) in ``trainable_bytes``.
    - activations (training): what backward needs per token and block, ``activation_bytes`` each:
      6·hidden (norm inputs, q/k/v, attention output) + 4·intermediate (gate, up, act, product),
      flash/SDPA attention so nothing quadratic in the sequence; with checkpointing only each
      block's input plus one block's activations. Logits: fp32 values and gradient over the
      vocabulary.
    - inference: the KV cache of one ``seq_len`` sequence per batch row, and one block's
      activations.
    - ``logits_tokens``: the positions the LM head runs on in training (default: every token; a
      loss on one label token per example needs only ``batch_size``).
    - ``lora_params``: the adapter's parameter count when known (counted on the model: any
      architecture's layer names); default: counted from ``shape`` for Llama's ``lora_targets``.
    """
    if method not in ("inference", "full", "lora"):
        raise ValueError(f"method must be 'inference', 'full' or 'lora', got {method!r}")
    if weights not in WEIGHT_BYTES:
        raise ValueError(f"weights must be one of {sorted(WEIGHT_BYTES)}, got {weights!r}")
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"optimizer must be one of {sorted(OPTIMIZER_STATES)}, got {optimizer!r}")
    if method == "full" and weights.startswith(("nf4", "int8")):
        raise ValueError(
            "full fine-tuning cannot train quantized weights; use lora (QLoRA) instead"
        )
    linear = shape.layers * shape.block_linear_params()
    rest = shape.params() - linear
    rest_bytes = (
        WEIGHT_BYTES[weights] if weights in ("fp32", "fp16", "bf16") else 2.0
    )  # embeddings stay 16-bit
    weight_gb = (linear * WEIGHT_BYTES[weights] + rest * rest_bytes) / GB
    tokens = batch_size * seq_len
    if method == "inference":
        kv_cache = shape.layers * tokens * 2 * shape.kv_dim * activation_bytes
        one_block = tokens * (6 * shape.hidden + 4 * shape.intermediate) * activation_bytes
        logits = batch_size * shape.vocab * 4  # only the last position's logits during generation
        return MemoryEstimate(
            weight_gb, 0.0, 0.0, 0.0, (kv_cache + one_block + logits) / GB, overhead_gb, 0
        )
    if method == "full":
        trainable = shape.params()
    elif lora_params is not None:
        trainable = lora_params
    else:
        trainable = shape.lora_params(lora_r, lora_targets, lora_lm_head)
    master = (
        trainable * trainable_bytes
        if (method == "lora" or WEIGHT_BYTES[weights] < trainable_bytes)
        else 0.0
    )
    optimizer_bytes = OPTIMIZER_STATES[optimizer] * (
        1.0 if optimizer.endswith("8bit") else trainable_bytes
    )
    per_token_block = (6 * shape.hidden + 4 * shape.intermediate) * activation_bytes
    if method == "lora":  # each adapter also saves its r-dimensional A·x
        per_token_block += len(lora_targets) * lora_r * activation_bytes
    if gradient_checkpointing:
        saved = tokens * (shape.layers * shape.hidden * activation_bytes + per_token_block)
    else:
        saved = tokens * shape.layers * per_token_block
    logits = (
        (tokens if logits_tokens is None else logits_tokens)
        * shape.vocab
        * (activation_bytes + 4 + 4)
    )
    return MemoryEstimate(
        weight_gb,
        master / GB,
        trainable * trainable_bytes / GB,
        trainable * optimizer_bytes / GB,
        (saved + logits) / GB,
        overhead_gb,
        trainable,
    )


ZERO_STAGES = (0, 1, 2, 3)  # 0: plain data parallelism (DDP), every rank holds everything


def zero_model_states_gb(
    params: float,
    gpus: int,
    stage: int,
    *,
    offload_optimizer: bool = False,
    offload_params: bool = False,
    largest_layer: float = 0.0,
    optimizer_bytes: float = 12.0,
) -> float:
    """Per-GPU memory of the model states of mixed-precision Adam training under ZeRO (Rajbhandari
    et al., 2020): 2 bytes of 16-bit weights, 2 of 16-bit gradients and ``optimizer_bytes`` (12:
    fp32 master weights, momentum, variance) per parameter. Stage 1 splits the optimizer states
    over ``gpus``, stage 2 the gradients too, stage 3 the weights too (and gathers one layer of
    ``largest_layer`` parameters at a time, 4 bytes each as DeepSpeed counts it). Offloading the
    optimizer moves its states and the gradients to CPU memory (ZeRO-Offload); offloading the
    parameters (stage 3 only) leaves just the gathered layer on the GPU. Activations are not
    included."""
    if stage not in ZERO_STAGES or gpus < 1:
        raise ValueError(f"stage must be one of {ZERO_STAGES} and gpus >= 1, got {stage}, {gpus}")
    if offload_params and stage != 3:
        raise ValueError("parameter offload needs ZeRO stage 3")
    weights = 2 * params / (gpus if stage == 3 else 1)
    gradients = 0.0 if offload_optimizer else 2 * params / (gpus if stage >= 2 else 1)
    optimizer = 0.0 if offload_optimizer else optimizer_bytes * params / (gpus if stage else 1)
    gathered = 4 * largest_layer if stage == 3 else 0.0
    return (gathered + (0.0 if offload_params else weights + gradients + optimizer)) / GB
