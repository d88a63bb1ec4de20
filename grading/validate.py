"""Check a submission zip without executing or unpickling anything: the zip itself, the manifest,
and (for adapter labs) the PEFT adapter against the base model. Every failure is a
``SubmissionError`` whose message is the reason shown to the student.
"""

from __future__ import annotations

import io
import json
import math
import re
import stat
import zipfile
from dataclasses import dataclass

from grading.rubric import Checks, rubric_labs
from utils.lab.submission import (
    ALLOWED_SUFFIXES,
    SAVED_ROWS_FILE,
    SCHEMA_VERSION,
    STUDENT_ID,
    add_changed_rows,
    sha256_bytes,
)
from utils.train.classifier import CLASSIFIER_CONFIG, CLASSIFIER_WEIGHTS

MAX_FILES = 64
MAX_TOTAL_BYTES = 400 * 1024 * 1024
MAX_RATIO = 200  # uncompressed / compressed, per file
READABLE_COMPRESSION = {  # what Python's zipfile inflates: 7-Zip's and other tools' defaults
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "LZMA",
}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".npy", ".npz", ".joblib")
MANIFEST_FIELDS = {
    "schema_version": int,
    "lab": str,
    "student": str,
    "base_model": dict,
    "kit": dict,
    "seed": (int, type(None)),
    "packages": dict,
    "device": (str, type(None)),
    "dtype": (str, type(None)),
    "training_config": dict,
    "training_log": dict,
    "files": dict,
}


class SubmissionError(ValueError):
    """The submission is invalid; the message says why (student-facing)."""


@dataclass
class Submission:
    """A validated zip: its manifest and file contents (in memory; nothing is written to disk)."""

    manifest: dict
    files: dict[str, bytes]
    sha256: str  # of the whole zip: the grading cache key


def read_zip(data: bytes) -> dict[str, bytes]:
    """Member name -> bytes, after the safety checks (names, links, sizes, types)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise SubmissionError(f"not a readable zip file ({exc})") from None
    entries = [i for i in infos if not i.is_dir()]
    if not entries:
        raise SubmissionError("the zip is empty")
    if len(entries) > MAX_FILES:
        raise SubmissionError(f"the zip holds {len(entries)} files (at most {MAX_FILES})")
    names = [i.filename for i in entries]
    if len(set(names)) != len(names):
        raise SubmissionError(
            f"duplicate file names in the zip: {sorted({n for n in names if names.count(n) > 1})}"
        )
    total = sum(i.file_size for i in entries)
    if total > MAX_TOTAL_BYTES:
        raise SubmissionError(
            f"the zip unpacks to {total / 1e6:.0f} MB (at most {MAX_TOTAL_BYTES / 1e6:.0f} MB)"
        )
    for info in entries:
        check_member(info)
    files = {}
    for info in entries:
        try:  # zipfile inflates no member past the size its header declares, checked above
            files[info.filename] = archive.read(info)
        except (
            zipfile.BadZipFile,
            OSError,
            EOFError,
            ValueError,
            NotImplementedError,  # a compression module this Python was built without
            RuntimeError,
        ) as exc:  # truncated, CRC error, a corrupt LZMA/bzip2 stream, ...
            raise SubmissionError(f"{info.filename}: cannot be read from the zip ({exc})") from None
    return files


def check_member(info: zipfile.ZipInfo) -> None:
    """One zip entry: a safe relative UTF-8 name, not a link, a sane size ratio, an allowed type."""
    name = info.filename
    if info.flag_bits & 0x1:
        raise SubmissionError(
            f"{name!r} is encrypted (password-protected): export the zip again without a password"
        )
    if info.compress_type not in READABLE_COMPRESSION:
        raise SubmissionError(
            f"{name!r} uses compression method {info.compress_type}, which this grader cannot "
            f"read (it reads {', '.join(READABLE_COMPRESSION.values())}): export the zip again "
            "with the lab's last cell"
        )
    if not info.flag_bits & 0x800 and not name.isascii():
        raise SubmissionError(
            f"{name!r}: file names must be UTF-8 (re-create the zip with the kit)"
        )
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise SubmissionError(f"{name!r}: absolute paths are not allowed in the zip")
    if "\\" in name:
        raise SubmissionError(
            f"{name!r}: backslashes in file names are not allowed (a zip made by hand on "
            "Windows?): export the zip with the lab's last cell"
        )
    if ".." in name.split("/"):
        raise SubmissionError(f"{name!r}: '..' in a path (path traversal) is not allowed")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise SubmissionError(f"{name!r}: symbolic links are not allowed")
    if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
        raise SubmissionError(
            f"{name!r}: compression ratio {info.file_size / info.compress_size:.0f}:1 "
            f"looks like a zip bomb (at most {MAX_RATIO}:1)"
        )
    if name.lower().endswith(PICKLE_SUFFIXES):
        raise SubmissionError(
            f"{name!r}: pickle-based files ({', '.join(PICKLE_SUFFIXES)}) are refused; "
            "save tensors with safetensors"
        )
    if not name.lower().endswith(ALLOWED_SUFFIXES):
        raise SubmissionError(f"{name!r}: only {', '.join(ALLOWED_SUFFIXES)} files are accepted")


def parse_json(files: dict[str, bytes], name: str) -> dict:
    """A JSON object from the zip, or a SubmissionError naming the file."""
    if name not in files:
        raise SubmissionError(f"{name} is missing from the zip")
    try:
        value = json.loads(files[name].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SubmissionError(f"{name} is not valid JSON ({exc})") from None
    except RecursionError:
        raise SubmissionError(f"{name} is nested too deeply to be a kit file") from None
    if not isinstance(value, dict):
        raise SubmissionError(f"{name} must hold a JSON object")
    return value


def check_manifest(
    manifest: dict,
    files: dict[str, bytes],
    lab: str | None,
    base_id: str | None,
    base_fingerprint: str | None,
) -> None:
    """Schema, lab, base model, and the sha256 of every listed file (and no unlisted file)."""
    for key, kind in MANIFEST_FIELDS.items():
        if key not in manifest:
            raise SubmissionError(f"manifest.json: missing field '{key}'")
        if not isinstance(manifest[key], kind) or (kind is int and isinstance(manifest[key], bool)):
            raise SubmissionError(f"manifest.json: field '{key}' has the wrong type")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise SubmissionError(
            f"manifest.json: schema_version {manifest['schema_version']} "
            f"(this grader reads {SCHEMA_VERSION}); update the kit and re-export"
        )
    if not STUDENT_ID.match(manifest["student"]):
        raise SubmissionError(f"manifest.json: invalid student id {manifest['student']!r}")
    if manifest["lab"] not in rubric_labs():
        raise SubmissionError(
            f"manifest.json: unknown lab (the labs graded here: {', '.join(rubric_labs())})"
        )
    if lab is not None and manifest["lab"] != lab:
        raise SubmissionError(f"submitted for lab {manifest['lab']!r}, but this is lab {lab!r}")
    base = manifest["base_model"]
    if base_id is not None and base.get("id") != base_id:
        raise SubmissionError(
            f"trained on base model {base.get('id')!r}; this lab is graded on {base_id!r}"
        )
    if base_fingerprint is not None and base.get("fingerprint") != base_fingerprint:
        raise SubmissionError(
            f"base model fingerprint {base.get('fingerprint')!r} differs from the grader's "
            f"{base_fingerprint!r}: train on the kit's embedded model, unchanged"
        )
    listed = manifest["files"]
    for name, entry in listed.items():
        if name not in files:
            raise SubmissionError(f"{name} is listed in the manifest but missing from the zip")
        if not isinstance(entry, dict) or sha256_bytes(files[name]) != entry.get("sha256"):
            raise SubmissionError(
                f"{name}: sha256 does not match the manifest (file changed or damaged)"
            )
    extra = sorted(set(files) - set(listed) - {"manifest.json"})
    if extra:
        raise SubmissionError(f"files not listed in the manifest: {extra}")


def load_submission(
    data: bytes,
    lab: str | None = None,
    base_id: str | None = None,
    base_fingerprint: str | None = None,
) -> Submission:
    """Validate a submission zip's bytes; return its manifest and files."""
    files = read_zip(data)
    manifest = parse_json(files, "manifest.json")
    check_manifest(manifest, files, lab, base_id, base_fingerprint)
    return Submission(manifest=manifest, files=files, sha256=sha256_bytes(data))


def load_safetensors(data: bytes, name: str) -> dict:
    """Tensors from safetensors bytes (no pickle involved), or a SubmissionError."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(data)
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise SubmissionError(f"{name}: not a valid safetensors file ({exc})") from None


ADAPTER_KEY = re.compile(
    r"^base_model\.model\.(?P<module>.+)\.(?P<part>lora_A|lora_B)(?:\.[^.]+)?\.weight$"
)
MAGNITUDE_KEY = re.compile(
    r"^base_model\.model\.(?P<module>.+)\.lora_magnitude_vector(?:\.[^.]+)?$"
)


def _is(*allowed):
    return lambda value: any(value == a and type(value) is type(a) for a in allowed)


def _string_or_none(value) -> bool:
    return value is None or isinstance(value, str)


# Every field a PEFT LoRA adapter_config.json may hold here, with the values this grader can score
# fairly; any other field, or another value, is refused with its name (an allow-list, so a field
# that changes the base model, such as layer_replication, cannot slip through). r, lora_alpha,
# target_modules, modules_to_save, rank_pattern and alpha_pattern are checked on their own.
LORA_FIELDS = {
    "peft_type": _is("LORA"),
    "task_type": _is("CAUSAL_LM", None),
    "lora_dropout": lambda v: (
        isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1
    ),
    "bias": _is("none"),
    "fan_in_fan_out": _is(True, False),  # True for GPT-2's Conv1D layers (PEFT sets it)
    "inference_mode": _is(True, False),
    "init_lora_weights": _is(True, False, "gaussian"),  # no init that rewrites the base weights
    "use_rslora": _is(True, False),
    "use_dora": _is(True, False),
    "layers_to_transform": _is(None),
    "layers_pattern": _is(None),
    "layer_replication": _is(None),
    "exclude_modules": _is(None),
    "lora_bias": _is(False),
    "megatron_config": _is(None),
    "megatron_core": _is("megatron.core", None),
    "loftq_config": _is({}, None),
    "eva_config": _is(None),
    "corda_config": _is(None),
    "arrow_config": _is(None),
    "kasa_config": _is(None),
    "lora_ga_config": _is(None),
    "monteclora_config": _is(None),
    "velora_config": _is(None),
    "use_qalora": _is(False),
    "qalora_group_size": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "alora_invocation_tokens": _is(None),
    "trainable_token_indices": _is(None),
    "target_parameters": _is(None),
    "ensure_weight_tying": _is(True, False),
    "use_bdlora": _is(None),
    "auto_mapping": lambda v: (
        v is None
        or (  # informational: AutoPeftModel's base class
            isinstance(v, dict)
            and set(v) <= {"base_model_class", "parent_library"}
            and all(isinstance(x, str) for x in v.values())
        )
    ),
    "base_model_name_or_path": _string_or_none,
    "revision": _string_or_none,
    "peft_version": _string_or_none,
}
CHECKED_APART = {
    "r",
    "lora_alpha",
    "target_modules",
    "modules_to_save",
    "rank_pattern",
    "alpha_pattern",
}


def check_lora_fields(config: dict) -> None:
    """Only PEFT LoRA fields this grader knows, each with a value it can score fairly."""
    unknown = sorted(set(config) - set(LORA_FIELDS) - CHECKED_APART)
    if unknown:
        raise SubmissionError(
            f"adapter_config.json: unknown field(s) {unknown[:5]}: this grader accepts plain LoRA "
            "adapters saved by PEFT (save_pretrained); remove the field or train with the lab's "
            "code"
        )
    for key, allowed in LORA_FIELDS.items():
        if key in config and not allowed(config[key]):
            raise SubmissionError(
                f"adapter_config.json: {key}={str(config[key])[:60]!r} is not allowed in this lab "
                "(it would change the base model or how the adapter is applied)"
            )


def check_patterns(config: dict, checks: Checks) -> None:
    """Per-layer ranks and alphas (``rank_pattern``/``alpha_pattern``) obey the lab's bounds too."""
    for key, rank_key in (("rank_pattern", True), ("alpha_pattern", False)):
        pattern = config.get(key) or {}
        if not isinstance(pattern, dict) or not all(isinstance(k, str) for k in pattern):
            raise SubmissionError(f"adapter_config.json: {key} must map layer names to numbers")
        for name, value in pattern.items():
            rank, alpha = (value, 1) if rank_key else (checks.rank[0], value)
            check_rank_alpha(
                rank, alpha, checks, f"adapter_config.json {key}[{name[:40]!r}]", "r", "lora_alpha"
            )


def check_peft_type(config: dict, checks: Checks) -> str:
    """The adapter's ``peft_type``, refused unless the lab's rubric accepts it."""
    peft_type = config.get("peft_type")
    if peft_type not in checks.peft_types:
        raise SubmissionError(
            f"adapter_config.json: peft_type {str(peft_type)[:40]!r}, expected "
            + " or ".join(repr(t) for t in checks.peft_types)
        )
    return peft_type


def check_lora_adapter(
    files: dict[str, bytes],
    config: dict,
    base_linear_shapes: dict[str, tuple[int, int]],
    checks: Checks,
    prefix: str = "adapter/",
    base_param_shapes: dict[str, tuple[int, ...]] | None = None,
) -> dict:
    """A LoRA adapter that fits the base: config fields, targets, names, shapes, ranks, finite
    values; returns its tensors (``grading.peft_types.check_adapter`` dispatches here).

    ``base_linear_shapes``: module name -> (out_features, in_features) for the base's linear layers;
    ``base_param_shapes``: parameter name -> shape, to check fully trained ``modules_to_save``
    copies (allowed only where ``checks.allow_modules_to_save``).
    """
    check_lora_fields(config)
    if config.get("fan_in_fan_out") and not getattr(base_linear_shapes, "conv1d", False):
        raise SubmissionError(
            "adapter_config.json: fan_in_fan_out=True is for GPT-2-style Conv1D layers, and this "
            "base model has none"
        )
    rank = config.get("r")
    check_rank_alpha(
        rank, config.get("lora_alpha"), checks, "adapter_config.json", "r", "lora_alpha"
    )
    check_patterns(config, checks)
    saved_modules = config.get("modules_to_save") or []
    if saved_modules and not checks.allow_modules_to_save:
        raise SubmissionError(
            "adapter_config.json: modules_to_save (fully trained layers) is not allowed in this lab"
        )
    if not isinstance(saved_modules, list) or not all(isinstance(m, str) for m in saved_modules):
        raise SubmissionError("adapter_config.json: modules_to_save must be a list of module names")
    targets = config.get("target_modules")
    targets = [targets] if isinstance(targets, str) and targets != "all-linear" else targets
    leaf_names = {name.rsplit(".", 1)[-1] for name in base_linear_shapes}
    if targets == "all-linear":  # what PEFT writes for target_modules="all-linear"
        targets = sorted(leaf_names - {"lm_head"})
    if not targets or not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise SubmissionError("adapter_config.json: target_modules must be a list of module names")
    unknown = sorted(t for t in targets if t not in leaf_names and t not in base_linear_shapes)
    if unknown:
        raise SubmissionError(
            f"adapter_config.json: target modules {unknown} do not exist in the base model "
            f"(it has {sorted(leaf_names)})"
        )
    tensors = adapter_tensors(files, checks, prefix)
    lora = {k: t for k, t in tensors.items() if not is_saved_module(k, saved_modules)}
    check_adapter_tensors(lora, base_linear_shapes, rank, dora=config.get("use_dora") is True)
    check_saved_modules(
        {k: t for k, t in tensors.items() if k not in lora}, base_param_shapes or {}
    )
    return tensors


def adapter_tensors(files: dict[str, bytes], checks: Checks, prefix: str = "adapter/") -> dict:
    """The tensors of ``adapter_model.safetensors``: present, within the rubric's size, readable."""
    weights_name = prefix + "adapter_model.safetensors"
    if weights_name not in files:
        raise SubmissionError(f"{weights_name} is missing from the zip")
    if len(files[weights_name]) > checks.max_adapter_mb * 1e6:
        raise SubmissionError(f"{weights_name} is larger than {checks.max_adapter_mb} MB")
    return load_safetensors(files[weights_name], weights_name)


def with_saved_rows_added(files: dict[str, bytes], base_params: dict, prefix: str = "adapter/"):
    """``files`` with the adapter's ``SAVED_ROWS_FILE`` (fully trained copies stored as changed
    rows, see ``utils.lab.submission.save_adapter_for_submission``) added back to the base's own
    parameters, as full tensors in ``adapter_model.safetensors``; unchanged without that file.
    ``base_params``: parameter name -> tensor, tied parameters under each of their names."""
    from safetensors.torch import save

    rows_name, weights_name = prefix + SAVED_ROWS_FILE, prefix + "adapter_model.safetensors"
    if rows_name not in files:
        return files
    if weights_name not in files:
        raise SubmissionError(f"{weights_name} is missing from the zip")
    parts = load_safetensors(files[rows_name], rows_name)
    tensors = load_safetensors(files[weights_name], weights_name)
    keys = saved_rows_keys(parts, tensors)
    for key in keys:
        tensors[key] = rows_added(key, parts[key + ".rows"], parts[key + ".delta"], base_params)
    return {**files, weights_name: save(tensors)}


def saved_rows_keys(parts: dict, tensors: dict) -> list[str]:
    """The matrices in a saved-rows file, each with exactly ``.rows`` and ``.delta`` entries and
    no full copy in ``tensors``."""
    keys = sorted({k.rsplit(".", 1)[0] for k in parts})
    for key in keys:
        if {key + ".rows", key + ".delta"} - set(parts) or key in tensors:
            raise SubmissionError(
                f"{SAVED_ROWS_FILE}: {key!r} needs exactly '.rows' and '.delta' entries and no "
                "full copy in adapter_model.safetensors"
            )
    if len(parts) != 2 * len(keys):
        raise SubmissionError(
            f"{SAVED_ROWS_FILE}: holds entries other than exactly '.rows' and '.delta' per matrix"
        )
    return keys


def rows_added(key: str, rows, delta, base_params: dict):
    """The base parameter behind ``key`` with ``delta`` added to ``rows``, after checking both."""
    import torch

    name = key.removeprefix("base_model.model.")
    base = base_params.get(name)
    if base is None or base.dim() != 2:
        raise SubmissionError(f"{SAVED_ROWS_FILE}: the base model has no matrix {name!r}")
    if rows.dtype not in (torch.int64, torch.int32) or rows.dim() != 1:
        raise SubmissionError(f"{SAVED_ROWS_FILE}: {key}.rows must be a list of row numbers")
    if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= base.shape[0]):
        raise SubmissionError(f"{SAVED_ROWS_FILE}: {key}.rows outside 0..{base.shape[0] - 1}")
    if len(torch.unique(rows)) != len(rows):
        raise SubmissionError(f"{SAVED_ROWS_FILE}: {key}.rows repeats a row")
    if tuple(delta.shape) != (len(rows), base.shape[1]):
        raise SubmissionError(
            f"{SAVED_ROWS_FILE}: {key}.delta has shape {tuple(delta.shape)}, expected "
            f"{(len(rows), base.shape[1])}"
        )
    check_finite_float(key + ".delta", delta)
    return add_changed_rows(base, rows.to(torch.int64), delta)


def is_saved_module(key: str, saved_modules: list[str]) -> bool:
    """Whether ``key`` is a full copy of a ``modules_to_save`` layer
    (``base_model.model.<...>.<leaf>.weight``)."""
    parts = key.split(".")
    return len(parts) > 3 and parts[-1] in ("weight", "bias") and parts[-2] in saved_modules


def check_saved_modules(tensors: dict, base_param_shapes: dict[str, tuple[int, ...]]) -> None:
    """Fully trained layer copies: each replaces an existing base parameter, same shape, finite."""
    for key, tensor in tensors.items():
        name = key.removeprefix("base_model.model.")
        if name not in base_param_shapes:
            raise SubmissionError(
                f"adapter tensor {key!r}: the base model has no parameter {name!r}"
            )
        if tuple(tensor.shape) != tuple(base_param_shapes[name]):
            raise SubmissionError(
                f"adapter tensor {key!r} has shape {tuple(tensor.shape)}, expected "
                f"{tuple(base_param_shapes[name])}"
            )
        check_finite_float(key, tensor)


def check_finite_float(key: str, tensor) -> None:
    """A floating-point tensor without NaN or Inf."""
    if not tensor.is_floating_point():
        raise SubmissionError(f"tensor {key!r} has dtype {tensor.dtype}, expected a float type")
    if not bool(tensor.float().isfinite().all()):
        raise SubmissionError(f"tensor {key!r} contains NaN or Inf values")


def check_adapter_tensors(
    tensors: dict, base_linear_shapes: dict[str, tuple[int, int]], rank: int, dora: bool = False
) -> None:
    """Every tensor is a LoRA A/B of an existing linear layer (and, for DoRA, its magnitude
    vector), with matching shapes, finite floats."""
    if not tensors:
        raise SubmissionError("adapter_model.safetensors holds no LoRA tensors")
    parts: dict[str, set] = {}
    for key, tensor in tensors.items():
        magnitude = MAGNITUDE_KEY.match(key) if dora else None
        if magnitude:
            check_magnitude(key, tensor, magnitude["module"], base_linear_shapes)
            continue
        match = ADAPTER_KEY.match(key)
        if not match:
            raise SubmissionError(f"adapter tensor {key!r} is not a LoRA A/B weight")
        module, part = match["module"], match["part"]
        if module not in base_linear_shapes:
            raise SubmissionError(
                f"adapter tensor {key!r}: the base model has no linear layer {module!r}"
            )
        out_features, in_features = base_linear_shapes[module]
        expected = (rank, in_features) if part == "lora_A" else (out_features, rank)
        if tuple(tensor.shape) != expected:
            raise SubmissionError(
                f"adapter tensor {key!r} has shape {tuple(tensor.shape)}, expected {expected} "
                f"(rank {rank})"
            )
        check_finite_float(key, tensor)
        parts.setdefault(module, set()).add(part)
    incomplete = sorted(m for m, p in parts.items() if p != {"lora_A", "lora_B"})
    if incomplete:
        raise SubmissionError(f"adapter layers without both lora_A and lora_B: {incomplete[:3]}")


def check_magnitude(key: str, tensor, module: str, base_linear_shapes: dict) -> None:
    """A DoRA magnitude vector: one value per output feature of an existing linear layer."""
    if module not in base_linear_shapes:
        raise SubmissionError(
            f"adapter tensor {key!r}: the base model has no linear layer {module!r}"
        )
    if tuple(tensor.shape) != (base_linear_shapes[module][0],):
        raise SubmissionError(
            f"adapter tensor {key!r} has shape {tuple(tensor.shape)}, expected "
            f"{(base_linear_shapes[module][0],)} (DoRA magnitude)"
        )
    check_finite_float(key, tensor)


FORMAT_TEXT_FIELDS = ("instruction", "input_prefix", "output_prefix", "separator")
MAX_LABEL_WORD_CHARS = 40


def check_prompt_spec(
    files: dict[str, bytes],
    dataset: str,
    labels: tuple[str, ...],
    train_ids: set[str],
    checks: Checks,
) -> dict:
    """Lab 01's ``prompt_spec.json``: a prompt format, demonstration ids from the ``train`` split
    (in order), and whether to calibrate. Returns the spec."""
    spec = parse_json(files, "prompt_spec.json")
    if spec.get("dataset") != dataset:
        raise SubmissionError(
            f"prompt_spec.json: dataset {spec.get('dataset')!r}, this lab grades {dataset!r}"
        )
    fmt, demo_ids = spec.get("format"), spec.get("demo_ids")
    if not isinstance(fmt, dict):
        raise SubmissionError(
            "prompt_spec.json: 'format' must be an object (see utils.data.prompting.format_to_dict)"
        )
    unknown = sorted(set(fmt) - {*FORMAT_TEXT_FIELDS, "chat", "label_words"})
    if unknown:
        raise SubmissionError(f"prompt_spec.json: unknown format fields {unknown}")
    max_chars = checks.max_chars
    for key in FORMAT_TEXT_FIELDS:
        value = fmt.get(key)
        if not (value is None and key == "instruction") and not isinstance(value, str):
            raise SubmissionError(f"prompt_spec.json: format.{key} must be a string")
        if value is not None and len(value) > max_chars:
            raise SubmissionError(
                f"prompt_spec.json: format.{key} is longer than {max_chars} characters"
            )
    if not isinstance(fmt.get("chat"), bool) or not isinstance(spec.get("calibrated"), bool):
        raise SubmissionError("prompt_spec.json: format.chat and calibrated must be true or false")
    words = fmt.get("label_words")
    if not isinstance(words, dict) or not all(
        isinstance(v, str) and v.strip() for v in words.values()
    ):
        raise SubmissionError(
            "prompt_spec.json: format.label_words must map labels to non-empty words"
        )
    if any(len(w) > MAX_LABEL_WORD_CHARS for w in words.values()):
        raise SubmissionError(
            f"prompt_spec.json: a label word is longer than {MAX_LABEL_WORD_CHARS} characters; "
            "use a word or two per label"
        )
    if set(words) - set(labels) or len(set(words.values())) != len(words):
        raise SubmissionError(
            f"prompt_spec.json: label_words must map some of the labels {list(labels)} "
            "to distinct words"
        )
    if not isinstance(demo_ids, list) or not all(isinstance(i, str) for i in demo_ids):
        raise SubmissionError("prompt_spec.json: demo_ids must be a list of example ids")
    if len(demo_ids) > checks.max_shots:
        raise SubmissionError(
            f"prompt_spec.json: {len(demo_ids)} demonstrations (at most {checks.max_shots})"
        )
    foreign = [i for i in demo_ids if i not in train_ids]
    if foreign:
        raise SubmissionError(
            f"prompt_spec.json: demonstrations must come from the train split; unknown ids "
            f"{foreign[:3]}"
        )
    return spec


def check_classifier(
    files: dict[str, bytes],
    base_param_shapes: dict[str, tuple[int, ...]],
    base_linear_shapes: dict[str, tuple[int, int]],
    hidden_size: int,
    labels: tuple[str, ...],
    checks: Checks,
    prefix: str = "classifier/",
) -> tuple[dict, dict]:
    """Labs 02/03A's ``classifier/``: a head for ``labels``, plus trained base tensors (Lab 02) or
    LoRA A/B pairs (Lab 03A), each matching the base, finite, within the lab's parameter budget.
    Returns ``(config, tensors)``."""
    config = parse_json(files, prefix + CLASSIFIER_CONFIG)
    if config.get("labels") != list(labels):
        raise SubmissionError(
            f"classifier_config.json: labels {config.get('labels')!r}, expected {list(labels)}"
        )
    weights_name = prefix + CLASSIFIER_WEIGHTS
    if weights_name not in files:
        raise SubmissionError(f"{weights_name} is missing from the zip")
    tensors = load_safetensors(files[weights_name], weights_name)
    head = {"lm_head.weight": (len(labels), hidden_size), "lm_head.bias": (len(labels),)}
    for key, shape in head.items():
        if key not in tensors:
            raise SubmissionError(f"classifier.safetensors: the head tensor {key!r} is missing")
        if tuple(tensors[key].shape) != shape:
            raise SubmissionError(
                f"classifier.safetensors: {key!r} has shape {tuple(tensors[key].shape)}, "
                f"expected {shape} (one output per label)"
            )
    lora = config.get("lora")
    lora_keys = [k for k in tensors if k.endswith((".lora.A", ".lora.B"))]
    if lora_keys:
        check_classifier_lora(tensors, lora_keys, lora, base_linear_shapes, checks)
    for key, tensor in tensors.items():
        if key not in head and key not in lora_keys:
            if key not in base_param_shapes or key.startswith("lm_head."):
                raise SubmissionError(
                    f"classifier.safetensors: {key!r} is neither the head, a LoRA matrix nor a "
                    "parameter of the base model"
                )
            if tuple(tensor.shape) != tuple(base_param_shapes[key]):
                raise SubmissionError(
                    f"classifier.safetensors: {key!r} has shape {tuple(tensor.shape)}, expected "
                    f"{tuple(base_param_shapes[key])}"
                )
        check_finite_float(key, tensor)
    trained = sum(t.numel() for t in tensors.values())
    low, high = checks.trainable_params
    if not low <= trained <= high:
        raise SubmissionError(
            f"{trained:,} trained parameters: this lab expects {low:,} to {high:,}"
        )
    return config, tensors


def check_rank_alpha(
    rank, alpha, checks: Checks, where: str, rank_key: str, alpha_key: str
) -> None:
    """A LoRA rank that is an integer within the lab's bounds and a positive, finite alpha (both
    kinds of adapter); ``where`` and the key names make the reason point at the student's file."""
    low, high = checks.rank
    if not isinstance(rank, int) or isinstance(rank, bool) or not low <= rank <= high:
        raise SubmissionError(
            f"{where}: rank {rank_key}={rank!r} is outside the allowed {low}..{high}"
        )
    if (
        not isinstance(alpha, (int, float))
        or isinstance(alpha, bool)
        or not math.isfinite(alpha)
        or alpha <= 0
    ):
        raise SubmissionError(f"{where}: {alpha_key}={alpha!r} must be a positive number")


def check_classifier_lora(
    tensors: dict, lora_keys: list[str], lora, base_linear_shapes: dict, checks: Checks
) -> None:
    """From-scratch LoRA pairs: a rank/alpha config, both matrices per layer, shapes of the base
    layer."""
    if (
        not isinstance(lora, dict)
        or not isinstance(lora.get("rank"), int)
        or isinstance(lora.get("rank"), bool)
    ):
        raise SubmissionError(
            'classifier_config.json: LoRA matrices need "lora": {"rank": r, "alpha": a}'
        )
    rank = lora["rank"]
    check_rank_alpha(rank, lora.get("alpha"), checks, "classifier_config.json", "rank", "alpha")
    for key in lora_keys:
        module, part = key[: -len(".lora.A")], key[-1]
        if module == "lm_head":
            raise SubmissionError(
                f"classifier.safetensors: {key!r}: LoRA on the head is not part of this lab: the "
                "classifier's new head (lm_head.weight, lm_head.bias) is trained in full; put "
                "LoRA on the blocks' linear layers only"
            )
        if module not in base_linear_shapes:
            raise SubmissionError(
                f"classifier.safetensors: {key!r}: the base model has no linear layer {module!r}"
            )
        if f"{module}.lora.{'B' if part == 'A' else 'A'}" not in tensors:
            raise SubmissionError(
                f"classifier.safetensors: {module!r} has lora.{part} without its pair"
            )
        out_features, in_features = base_linear_shapes[module]
        expected = (rank, in_features) if part == "A" else (out_features, rank)
        if tuple(tensors[key].shape) != expected:
            raise SubmissionError(
                f"classifier.safetensors: {key!r} has shape {tuple(tensors[key].shape)}, "
                f"expected {expected} (rank {rank})"
            )
