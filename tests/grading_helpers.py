"""Helpers shared by the grader's tests: a real PEFT adapter for the tiny base, and zips rebuilt
with one intended defect."""

import io
import json
import zipfile

import torch

from utils.lab.submission import sha256_bytes
from utils.runtime.models import build_tiny_model

LAB = "03b_lora_peft"
BASE_ID = "tiny-random-llama"
KEY = "base_model.model.model.layers.0.self_attn.q_proj.lora_{}.weight"


def adapter_folder(tokenizer, folder, r=4, trained=False, seed=0):
    """A real PEFT adapter for the tiny base, saved with save_pretrained (zero-init B unless
    trained)."""
    from peft import LoraConfig, get_peft_model

    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    torch.manual_seed(seed)
    peft_model = get_peft_model(
        model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"])
    )
    if trained:
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.5)
    peft_model.save_pretrained(str(folder))
    return folder


def info_for(state, seed=0):
    """A submission's run_info for the base ``state`` (``{"fingerprint": ...}``) on a CPU."""
    return {
        "model_fingerprint": state["fingerprint"],
        "seed": seed,
        "device": "cpu",
        "dtype": "float32",
        "packages": {},
        "config": {},
        "git_commit": None,
    }


def unpack(path):
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    return json.loads(files.pop("manifest.json")), files


def pack(manifest, files, rehash=True, manifest_bytes=None):
    """Zip ``files`` with ``manifest`` (hashes recomputed so only the intended defect remains)."""
    if rehash:
        manifest = {
            **manifest,
            "files": {n: {"sha256": sha256_bytes(d), "bytes": len(d)} for n, d in files.items()},
        }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "manifest.json", manifest_bytes if manifest_bytes is not None else json.dumps(manifest)
        )
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tiny_grading_state(tokenizer) -> dict:
    """What a grading worker holds, for the tiny random base: model, tokenizer, id, fingerprint."""
    from utils.runtime.models import model_fingerprint

    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    return {
        "model": model,
        "tokenizer": tokenizer,
        "base_id": BASE_ID,
        "fingerprint": model_fingerprint(model),
    }
