"""PEFT adapter types other than LoRA (Lab 07): IA3 and the prompt-learning family (prompt tuning,
P-tuning, prefix tuning). Each type has an allow-list of ``adapter_config.json`` fields with the
values this grader can score fairly, and its tensors are checked by name, shape and value against
the base model. A rubric lists the types it accepts (``checks.peft_types``)."""

from __future__ import annotations

import re

from grading.rubric import Checks
from grading.validate import (
    SubmissionError,
    _is,
    _string_or_none,
    adapter_tensors,
    check_finite_float,
    check_lora_adapter,
    check_peft_type,
    parse_json,
)

PROMPT_LEARNING = ("PROMPT_TUNING", "P_TUNING", "PREFIX_TUNING")
MERGEABLE = ("LORA", "IA3")  # folded into the base weights before scoring


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _module_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


COMMON = {
    "peft_type": lambda v: isinstance(v, str),
    "task_type": _is("CAUSAL_LM", None),
    "inference_mode": _is(True, False),
    "modules_to_save": _is(None),
    "base_model_name_or_path": _string_or_none,
    "revision": _string_or_none,
    "peft_version": _string_or_none,
    "auto_mapping": lambda v: v is None or isinstance(v, dict),
}
FIELDS = {
    "IA3": {
        "target_modules": lambda v: _module_list(v) or isinstance(v, str),
        "feedforward_modules": lambda v: v is None or _module_list(v) or isinstance(v, str),
        "fan_in_fan_out": _is(False),
        "init_ia3_weights": _is(True, False),
        "exclude_modules": _is(None),
    },
    "PROMPT_TUNING": {
        "prompt_tuning_init": _is("RANDOM", "TEXT", "SAMPLE_VOCAB"),
        "prompt_tuning_init_text": _string_or_none,
        "tokenizer_name_or_path": _string_or_none,  # not read: the grader loads in inference mode
        "tokenizer_kwargs": lambda v: v is None or isinstance(v, dict),
    },
    "P_TUNING": {
        "encoder_reparameterization_type": _is("MLP", "LSTM"),
        "encoder_hidden_size": _positive_int,
        "encoder_num_layers": _positive_int,
        "encoder_dropout": lambda v: isinstance(v, (int, float)) and 0 <= v < 1,
    },
    "PREFIX_TUNING": {
        "encoder_hidden_size": _positive_int,
        "prefix_projection": _is(True, False),
        "init_weights": _is(None),
    },
}
PROMPT_FIELDS = {  # shared by the prompt-learning types; sizes are checked against the base
    "num_virtual_tokens": _positive_int,
    "token_dim": _positive_int,
    "num_transformer_submodules": _is(1),
    "num_attention_heads": _positive_int,
    "num_layers": _positive_int,
}
IA3_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.ia3_l(?:\.[^.]+)?$")


def check_fields(config: dict, peft_type: str) -> None:
    """Only the fields this grader knows for ``peft_type``, each with a value it can score."""
    allowed = {**COMMON, **FIELDS[peft_type]}
    if peft_type in PROMPT_LEARNING:
        allowed.update(PROMPT_FIELDS)
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise SubmissionError(
            f"adapter_config.json: unknown field(s) {unknown[:5]} for a {peft_type} adapter saved "
            "by PEFT (save_pretrained); remove the field or train with the lab's code"
        )
    for key, ok in allowed.items():
        if key in config and not ok(config[key]):
            raise SubmissionError(
                f"adapter_config.json: {key}={str(config[key])[:60]!r} is not allowed in this lab"
            )


def base_dimensions(base_linear_shapes: dict[str, tuple[int, int]]) -> dict:
    """Hidden size, number of blocks and key/value width of the base, from its linear layers."""
    keys = [name for name in base_linear_shapes if name.endswith(".k_proj")]
    queries = [name for name in base_linear_shapes if name.endswith(".q_proj")]
    if not keys or not queries:
        raise SubmissionError("this base model has no q_proj/k_proj layers: cannot check prompts")
    return {
        "hidden": base_linear_shapes[queries[0]][1],
        "layers": len(keys),
        "kv": base_linear_shapes[keys[0]][0],
    }


def prompt_shape(config: dict, dims: dict, checks: Checks) -> tuple[int, int]:
    """The shape ``prompt_embeddings`` must have, after checking the config's sizes against the
    base (a prompt for another model cannot be scored on this one)."""
    tokens = config.get("num_virtual_tokens")
    if not _positive_int(tokens) or tokens > checks.max_virtual_tokens:
        raise SubmissionError(
            f"adapter_config.json: num_virtual_tokens must be 1..{checks.max_virtual_tokens}, "
            f"got {str(tokens)[:20]}"
        )
    prefix = config["peft_type"] == "PREFIX_TUNING"
    expected = {"num_layers": dims["layers"], "token_dim": dims["kv"] if prefix else dims["hidden"]}
    for key, value in expected.items():
        if config.get(key) != value:
            raise SubmissionError(
                f"adapter_config.json: {key}={str(config.get(key))[:20]}, but the base model "
                f"needs {value}: was this adapter trained on another model?"
            )
    return (tokens, dims["layers"] * 2 * dims["kv"]) if prefix else (tokens, dims["hidden"])


def check_prompt_tensors(tensors: dict, shape: tuple[int, int]) -> None:
    """Exactly one tensor, ``prompt_embeddings``, of ``shape``, finite floats."""
    if set(tensors) != {"prompt_embeddings"}:
        raise SubmissionError(
            f"a prompt-learning adapter holds one tensor 'prompt_embeddings', got "
            f"{sorted(tensors)[:3]}"
        )
    tensor = tensors["prompt_embeddings"]
    if tuple(tensor.shape) != shape:
        raise SubmissionError(
            f"prompt_embeddings has shape {tuple(tensor.shape)}, expected {shape}"
        )
    check_finite_float("prompt_embeddings", tensor)


def check_ia3_tensors(
    tensors: dict, config: dict, base_linear_shapes: dict[str, tuple[int, int]]
) -> None:
    """One ``ia3_l`` vector per targeted linear layer: ``(out, 1)``, or ``(1, in)`` for a
    feed-forward module; finite floats."""
    if not tensors:
        raise SubmissionError("adapter_model.safetensors holds no IA3 tensors")
    feedforward = config.get("feedforward_modules") or []
    feedforward = [feedforward] if isinstance(feedforward, str) else feedforward
    for key, tensor in tensors.items():
        match = IA3_KEY.match(key)
        if not match or match["module"] not in base_linear_shapes:
            raise SubmissionError(f"adapter tensor {key!r} is not the IA3 vector of a linear layer")
        out_features, in_features = base_linear_shapes[match["module"]]
        is_ff = match["module"].rsplit(".", 1)[-1] in feedforward
        expected = (1, in_features) if is_ff else (out_features, 1)
        if tuple(tensor.shape) != expected:
            raise SubmissionError(
                f"adapter tensor {key!r} has shape {tuple(tensor.shape)}, expected {expected}"
            )
        check_finite_float(key, tensor)


def check_other_adapter(
    files: dict[str, bytes],
    config: dict,
    base_linear_shapes: dict[str, tuple[int, int]],
    checks: Checks,
    prefix: str = "adapter/",
) -> dict:
    """An IA3 or prompt-learning adapter that fits the base; returns its tensors."""
    peft_type = config["peft_type"]
    check_fields(config, peft_type)
    tensors = adapter_tensors(files, checks, prefix)
    if peft_type == "IA3":
        check_ia3_tensors(tensors, config, base_linear_shapes)
    else:
        shape = prompt_shape(config, base_dimensions(base_linear_shapes), checks)
        check_prompt_tensors(tensors, shape)
    return tensors


def config_to_load(config: dict) -> dict:
    """The config the grader writes next to the tensors: a text-initialised prompt is loaded
    without reading a tokenizer (the trained embeddings replace the initial ones anyway)."""
    if config.get("peft_type") == "PROMPT_TUNING":
        return {**config, "prompt_tuning_init": "RANDOM", "tokenizer_name_or_path": None}
    return config


def adapter_details(config: dict) -> dict:
    """What the grading report shows about an adapter."""
    if config["peft_type"] == "LORA":
        return {
            "r": config["r"],
            "lora_alpha": config["lora_alpha"],
            "target_modules": config["target_modules"],
            "modules_to_save": config.get("modules_to_save") or [],
        }
    if config["peft_type"] == "IA3":
        return {"peft_type": "IA3", "target_modules": config.get("target_modules")}
    return {"peft_type": config["peft_type"], "num_virtual_tokens": config["num_virtual_tokens"]}


def check_adapter(
    files: dict[str, bytes],
    base_linear_shapes: dict[str, tuple[int, int]],
    checks: Checks,
    prefix: str = "adapter/",
    base_param_shapes: dict[str, tuple[int, ...]] | None = None,
) -> tuple[dict, dict]:
    """A PEFT adapter of a type the rubric accepts that fits the base: ``(adapter_config,
    tensors)``. LoRA goes to ``grading.validate.check_lora_adapter``, the other types to
    ``check_other_adapter``."""
    config = parse_json(files, prefix + "adapter_config.json")
    if check_peft_type(config, checks) == "LORA":
        tensors = check_lora_adapter(
            files, config, base_linear_shapes, checks, prefix, base_param_shapes
        )
        return config, tensors
    return config, check_other_adapter(files, config, base_linear_shapes, checks, prefix)
