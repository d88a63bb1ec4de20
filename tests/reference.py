"""Independent reference answers the tests check the kit and its labs against. They live here, not
in the package, because nothing in the kit needs them at run time: each restates a count or a rule
from first principles so that a test can compare it with what the libraries actually build."""

from utils.train import peft_family as family
from utils.train.memory_estimate import estimate_memory


def lora_parameter_count(in_features: int, out_features: int, rank: int) -> int:
    """Trainable parameters of one LoRA adapter on a linear layer: ``r * (in + out)``."""
    return rank * (in_features + out_features)


def method_params(name: str, config, r: int = 8, bottleneck: int = 64) -> int:
    """Trainable parameters of a Lab 07 method on a Llama-style model, from its config alone."""
    shape = family.model_shape(config)
    layers, hidden, shapes = shape.layers, shape.hidden, shape.linear_shapes()
    lora = shape.lora_params(r, tuple(shapes))
    width = family.P_TUNING_HIDDEN
    p_tuning_encoder = (hidden + 1) * width + (width + 1) * width + (width + 1) * hidden
    virtual = family.NUM_VIRTUAL_TOKENS
    ia3 = sum(shapes[m][0 if m in family.IA3_FEEDFORWARD else 1] for m in family.IA3_TARGETS)
    return {
        "prompt tuning (random init)": virtual * hidden,
        "prompt tuning (text init)": virtual * hidden,
        "P-tuning": virtual * hidden + p_tuning_encoder,
        "prefix tuning": virtual * layers * 2 * shapes["k_proj"][1],
        "IA3": layers * ia3,
        "LoRA": lora,
        "rsLoRA": lora,
        "DoRA": lora + layers * sum(o for _, o in shapes.values()),
        "BitFit": (2 * layers + 1) * hidden,  # no biases in a Llama: the norms
        "bottleneck adapter": layers * (2 * hidden * bottleneck + bottleneck + hidden),
    }[name]


def ia3_linear(linear, x, scale, feedforward: bool):
    """IA3 on one linear layer: the output scaled per feature (``l * Wx``), or for a feed-forward
    layer the input (``W(l * x)``)."""
    return linear(x * scale) if feedforward else linear(x) * scale


def params_that_fit(gpu_gb: float, shape, **settings) -> float:
    """How many parameters a model like ``shape`` could have and still fit in ``gpu_gb`` with these
    settings: what is left after the fixed costs (overhead, activations), divided by the bytes each
    parameter costs (weights + trainable copy + gradient + optimizer state)."""
    estimate = estimate_memory(shape, **settings)
    per_param = (estimate.total - estimate.overhead - estimate.activations) / shape.params()
    return (gpu_gb - estimate.overhead - estimate.activations) / per_param
