"""Package a student's work for grading: ``submission_<lab>_<student>.zip`` with a manifest.

The zip holds ``manifest.json`` and the artifacts (safetensors and JSON only, never pickle). The
manifest records who, which lab, which base model (id and fingerprint), the kit version and commit,
seed, package versions, device and dtype, the training config, a training-log summary, and the
sha256 of every artifact file, so the grader can check the zip is complete and untouched.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from importlib import metadata
from pathlib import Path

SCHEMA_VERSION = 1
UPLOAD_LIMIT_MB = 100  # a common upload-form limit; every lab's zip stays below it
SAVED_ROWS_FILE = "saved_rows.safetensors"  # modules_to_save copies as changed rows vs the base
ALLOWED_SUFFIXES = (".json", ".jsonl", ".safetensors", ".md", ".txt", ".pdf")
STUDENT_ID = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")  # \Z: no trailing newline


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def kit_version() -> str:
    """The installed kit's version (``0.0.0`` when running from a plain checkout)."""
    try:
        return metadata.version("llm-finetuning-kit")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def collect_files(artifacts: dict[str, Path]) -> dict[str, Path]:
    """Archive name -> file for every artifact; a folder contributes each file inside it.

    ``artifacts`` maps a name in the zip (e.g. ``"adapter"``) to a file or folder on disk.
    """
    files: dict[str, Path] = {}
    for name, path in artifacts.items():
        path = Path(path)
        if path.is_dir():
            for item in sorted(p for p in path.rglob("*") if p.is_file()):
                files[f"{name}/{item.relative_to(path).as_posix()}"] = item
        elif path.is_file():
            files[name] = path
        else:
            raise FileNotFoundError(f"artifact {name!r}: {path} does not exist")
    for arcname in files:
        if not arcname.endswith(ALLOWED_SUFFIXES):
            raise ValueError(
                f"artifact {arcname!r}: only {', '.join(ALLOWED_SUFFIXES)} files can be submitted "
                "(save tensors with safetensors, never pickle)"
            )
    return files


def training_summary(loss: list[float] | None) -> dict:
    """First/last/min of a loss curve, and its length."""
    if not loss:
        return {"steps": 0}
    return {"steps": len(loss), "first_loss": loss[0], "last_loss": loss[-1], "min_loss": min(loss)}


def build_manifest(
    lab: str,
    student: str,
    files: dict[str, Path],
    info: dict,
    base_model_id: str,
    training_config: dict | None = None,
    loss: list[float] | None = None,
) -> dict:
    """The manifest for ``files``; ``info`` is the lab's ``run_info`` record."""
    if not STUDENT_ID.match(student):
        raise ValueError(
            f"student id {student!r}: use letters, digits, '.', '_' or '-' (at most 64)"
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "lab": lab,
        "student": student,
        "base_model": {"id": base_model_id, "fingerprint": info.get("model_fingerprint")},
        "kit": {"version": kit_version(), "commit": info.get("git_commit")},
        "seed": info.get("seed"),
        "packages": info.get("packages", {}),
        "device": info.get("device"),
        "dtype": info.get("dtype"),
        "training_config": training_config or info.get("config", {}),
        "training_log": training_summary(loss),
        "files": {
            name: {"sha256": sha256_bytes(path.read_bytes()), "bytes": path.stat().st_size}
            for name, path in files.items()
        },
    }


def make_submission(
    lab: str,
    student: str,
    artifacts: dict[str, Path],
    info: dict,
    base_model_id: str,
    out_dir: Path,
    training_config: dict | None = None,
    loss: list[float] | None = None,
) -> Path:
    """Write ``submission_<lab>_<student>.zip`` in ``out_dir``, print where it is and how big,
    return it."""
    files = collect_files(artifacts)
    manifest = build_manifest(lab, student, files, info, base_model_id, training_config, loss)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"submission_{lab}_{student}.zip"
    tmp = path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        for name, file in files.items():
            archive.write(file, name)
    tmp.replace(path)
    if path.stat().st_size > UPLOAD_LIMIT_MB * 1e6:
        print(f"[submission] warning: over {UPLOAD_LIMIT_MB} MB, more than many upload forms take")
    print(
        f"[submission] {path} ({path.stat().st_size / 1e6:.1f} MB, {len(files)} files): "
        "upload this file (in Colab: Files panel -> right-click -> Download)"
    )
    return path


def changed_rows(original, trained) -> tuple:
    """The rows of ``trained`` that differ from ``original`` and their differences in fp16:
    ``(row indices, deltas)``. Adding the deltas back to ``original`` gives ``trained`` to fp16
    precision of the *difference* (far finer than rounding the whole matrix to fp16)."""
    import torch

    delta = trained.detach().float() - original.detach().float()
    rows = torch.nonzero(delta.abs().amax(dim=tuple(range(1, delta.dim()))) > 0).flatten()
    return rows.to(torch.int64), delta[rows].to(torch.float16).contiguous()


def add_changed_rows(original, rows, deltas):
    """``original`` with ``deltas`` added to ``rows`` (the inverse of ``changed_rows``)."""
    full = original.detach().clone()
    full[rows] += deltas.to(full.dtype)
    return full


def save_adapter_for_submission(peft_model, out_dir: Path) -> Path:
    """Save a PEFT adapter small enough to upload: LoRA matrices in fp16, and every fully trained
    copy (``modules_to_save``, e.g. the embeddings and head of continued pre-training) only as
    the rows training changed, stored as fp16 differences from the base in ``SAVED_ROWS_FILE``.
    The grader adds them back to its own copy of the base. Returns ``out_dir``."""
    import torch
    from peft.utils import ModulesToSaveWrapper
    from safetensors.torch import load_file, save_file

    out_dir = Path(out_dir)
    peft_model.save_pretrained(str(out_dir))
    weights = out_dir / "adapter_model.safetensors"
    tensors = load_file(weights)
    saved_rows = {}
    for name, module in peft_model.named_modules():
        if not isinstance(module, ModulesToSaveWrapper):
            continue
        trained = module.modules_to_save[module.active_adapters[0]]
        for param_name, original in module.original_module.named_parameters():
            key = f"{name}.{param_name}"
            rows, deltas = changed_rows(original, trained.get_parameter(param_name))
            saved_rows[key + ".rows"], saved_rows[key + ".delta"] = rows, deltas
            tensors.pop(key, None)
    half = {k: t.to(torch.float16) if t.is_floating_point() else t for k, t in tensors.items()}
    save_file(half, str(weights))
    if saved_rows:
        save_file(saved_rows, str(out_dir / SAVED_ROWS_FILE))
    return out_dir
