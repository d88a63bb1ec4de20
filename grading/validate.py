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

from utils.submission import SCHEMA_VERSION, STUDENT_ID, sha256_bytes

MAX_FILES = 64
MAX_TOTAL_BYTES = 400 * 1024 * 1024
MAX_RATIO = 200  # uncompressed / compressed, per file
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".npy", ".npz", ".joblib")
ALLOWED_SUFFIXES = (".json", ".safetensors", ".md", ".txt")
MANIFEST_FIELDS = {"schema_version": int, "lab": str, "student": str, "base_model": dict, "kit": dict,
                   "seed": (int, type(None)), "packages": dict, "device": (str, type(None)),
                   "dtype": (str, type(None)), "training_config": dict, "training_log": dict, "files": dict}


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
        raise SubmissionError(f"duplicate file names in the zip: {sorted({n for n in names if names.count(n) > 1})}")
    total = sum(i.file_size for i in entries)
    if total > MAX_TOTAL_BYTES:
        raise SubmissionError(f"the zip unpacks to {total / 1e6:.0f} MB (at most {MAX_TOTAL_BYTES / 1e6:.0f} MB)")
    for info in entries:
        check_member(info)
    files = {}
    for info in entries:
        try:
            files[info.filename] = archive.read(info)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:  # truncated, CRC error, ...
            raise SubmissionError(f"{info.filename}: cannot be read from the zip ({exc})") from None
    return files


def check_member(info: zipfile.ZipInfo) -> None:
    """One zip entry: a safe relative UTF-8 name, not a link, a sane size ratio, an allowed type."""
    name = info.filename
    if not info.flag_bits & 0x800 and not name.isascii():
        raise SubmissionError(f"{name!r}: file names must be UTF-8 (re-create the zip with the kit)")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or "\\" in name:
        raise SubmissionError(f"{name!r}: absolute paths are not allowed in the zip")
    if ".." in name.split("/"):
        raise SubmissionError(f"{name!r}: '..' in a path (path traversal) is not allowed")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise SubmissionError(f"{name!r}: symbolic links are not allowed")
    if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
        raise SubmissionError(f"{name!r}: compression ratio {info.file_size / info.compress_size:.0f}:1 "
                              f"looks like a zip bomb (at most {MAX_RATIO}:1)")
    if name.lower().endswith(PICKLE_SUFFIXES):
        raise SubmissionError(f"{name!r}: pickle-based files ({', '.join(PICKLE_SUFFIXES)}) are refused; "
                              "save tensors with safetensors")
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
    if not isinstance(value, dict):
        raise SubmissionError(f"{name} must hold a JSON object")
    return value


def check_manifest(manifest: dict, files: dict[str, bytes], lab: str | None,
                   base_id: str | None, base_fingerprint: str | None) -> None:
    """Schema, lab, base model, and the sha256 of every listed file (and no unlisted file)."""
    for key, kind in MANIFEST_FIELDS.items():
        if key not in manifest:
            raise SubmissionError(f"manifest.json: missing field '{key}'")
        if not isinstance(manifest[key], kind) or (kind is int and isinstance(manifest[key], bool)):
            raise SubmissionError(f"manifest.json: field '{key}' has the wrong type")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise SubmissionError(f"manifest.json: schema_version {manifest['schema_version']} "
                              f"(this grader reads {SCHEMA_VERSION}); update the kit and re-export")
    if not STUDENT_ID.match(manifest["student"]):
        raise SubmissionError(f"manifest.json: invalid student id {manifest['student']!r}")
    if lab is not None and manifest["lab"] != lab:
        raise SubmissionError(f"submitted for lab {manifest['lab']!r}, but this is lab {lab!r}")
    base = manifest["base_model"]
    if base_id is not None and base.get("id") != base_id:
        raise SubmissionError(f"trained on base model {base.get('id')!r}; this lab is graded on {base_id!r}")
    if base_fingerprint is not None and base.get("fingerprint") != base_fingerprint:
        raise SubmissionError(f"base model fingerprint {base.get('fingerprint')!r} differs from the grader's "
                              f"{base_fingerprint!r}: train on the kit's embedded model, unchanged")
    listed = manifest["files"]
    for name, entry in listed.items():
        if name not in files:
            raise SubmissionError(f"{name} is listed in the manifest but missing from the zip")
        if not isinstance(entry, dict) or sha256_bytes(files[name]) != entry.get("sha256"):
            raise SubmissionError(f"{name}: sha256 does not match the manifest (file changed or damaged)")
    extra = sorted(set(files) - set(listed) - {"manifest.json"})
    if extra:
        raise SubmissionError(f"files not listed in the manifest: {extra}")


def load_submission(data: bytes, lab: str | None = None, base_id: str | None = None,
                    base_fingerprint: str | None = None) -> Submission:
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


ADAPTER_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.(?P<part>lora_A|lora_B)(?:\.[^.]+)?\.weight$")


def check_adapter(files: dict[str, bytes], base_linear_shapes: dict[str, tuple[int, int]],
                  checks: dict, prefix: str = "adapter/") -> tuple[dict, dict]:
    """A PEFT LoRA adapter that fits the base: config, targets, names, shapes, ranks, finite values.

    ``base_linear_shapes``: module name -> (out_features, in_features) for the base's linear layers.
    Returns ``(adapter_config, tensors)``.
    """
    config = parse_json(files, prefix + "adapter_config.json")
    if config.get("peft_type") != "LORA":
        raise SubmissionError(f"adapter_config.json: peft_type {config.get('peft_type')!r}, expected 'LORA'")
    rank, alpha = config.get("r"), config.get("lora_alpha")
    low, high = checks.get("rank", [1, 256])
    if not isinstance(rank, int) or isinstance(rank, bool) or not low <= rank <= high:
        raise SubmissionError(f"adapter_config.json: rank r={rank!r} is outside the allowed {low}..{high}")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not math.isfinite(alpha) or alpha <= 0:
        raise SubmissionError(f"adapter_config.json: lora_alpha={alpha!r} must be a positive number")
    if config.get("modules_to_save") and not checks.get("allow_modules_to_save", False):
        raise SubmissionError("adapter_config.json: modules_to_save (fully trained layers) is not allowed in this lab")
    targets = config.get("target_modules")
    targets = [targets] if isinstance(targets, str) else targets
    leaf_names = {name.rsplit(".", 1)[-1] for name in base_linear_shapes}
    if not targets or not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise SubmissionError("adapter_config.json: target_modules must be a list of module names")
    unknown = sorted(t for t in targets if t not in leaf_names and t not in base_linear_shapes)
    if unknown:
        raise SubmissionError(f"adapter_config.json: target modules {unknown} do not exist in the base model "
                              f"(it has {sorted(leaf_names)})")
    weights_name = prefix + "adapter_model.safetensors"
    if weights_name not in files:
        raise SubmissionError(f"{weights_name} is missing from the zip")
    if len(files[weights_name]) > checks.get("max_adapter_mb", 200) * 1e6:
        raise SubmissionError(f"{weights_name} is larger than {checks.get('max_adapter_mb', 200)} MB")
    tensors = load_safetensors(files[weights_name], weights_name)
    check_adapter_tensors(tensors, base_linear_shapes, rank)
    return config, tensors


def check_adapter_tensors(tensors: dict, base_linear_shapes: dict[str, tuple[int, int]], rank: int) -> None:
    """Every tensor is a LoRA A/B of an existing linear layer, with matching shapes, finite floats."""
    if not tensors:
        raise SubmissionError("adapter_model.safetensors holds no tensors")
    parts: dict[str, set] = {}
    for key, tensor in tensors.items():
        match = ADAPTER_KEY.match(key)
        if not match:
            raise SubmissionError(f"adapter tensor {key!r} is not a LoRA A/B weight")
        module, part = match["module"], match["part"]
        if module not in base_linear_shapes:
            raise SubmissionError(f"adapter tensor {key!r}: the base model has no linear layer {module!r}")
        out_features, in_features = base_linear_shapes[module]
        expected = (rank, in_features) if part == "lora_A" else (out_features, rank)
        if tuple(tensor.shape) != expected:
            raise SubmissionError(f"adapter tensor {key!r} has shape {tuple(tensor.shape)}, expected {expected} "
                                  f"(rank {rank})")
        if not tensor.is_floating_point():
            raise SubmissionError(f"adapter tensor {key!r} has dtype {tensor.dtype}, expected a float type")
        if not bool(tensor.float().isfinite().all()):
            raise SubmissionError(f"adapter tensor {key!r} contains NaN or Inf values")
        parts.setdefault(module, set()).add(part)
    incomplete = sorted(m for m, p in parts.items() if p != {"lora_A", "lora_B"})
    if incomplete:
        raise SubmissionError(f"adapter layers without both lora_A and lora_B: {incomplete[:3]}")
