"""Every library function and keyword the kit's notebooks and utils call exists in the pinned
versions."""

import ast
import importlib
import inspect
import json
import re
import subprocess
import sys

import peft
import pytest
import transformers
from fpdf import FPDF
from transformers.cache_utils import DynamicCache
from transformers.generation import GenerationConfig

from utils.runtime.storage import REPO_ROOT

LIBRARIES = (
    "transformers",
    "peft",
    "trl",
    "datasets",
    "unsloth",
    "torch",
    "tqdm",
    "nbclient",
    "jupytext",
    "sacrebleu",
    "rouge_score",
    "fpdf",
)
SOURCES = sorted(
    [
        *(REPO_ROOT / "src").glob("*.py"),
        *(REPO_ROOT / "utils").rglob("*.py"),
        *(REPO_ROOT / "tools").glob("*.py"),
    ]
)
# Methods the kit calls on library objects, and where their signature lives.
METHODS = {
    "apply_chat_template": transformers.PreTrainedTokenizerBase.apply_chat_template,
    "batch_decode": transformers.PreTrainedTokenizerBase.batch_decode,
    "batch_repeat_interleave": DynamicCache.batch_repeat_interleave,
    "get_decoder": transformers.PreTrainedModel.get_decoder,
    "get_output_embeddings": transformers.PreTrainedModel.get_output_embeddings,
    "save_pretrained": transformers.PreTrainedModel.save_pretrained,
    "load_adapter": peft.PeftModel.load_adapter,
    "merge_and_unload": peft.tuners.lora.LoraModel.merge_and_unload,
    "set_adapter": peft.PeftModel.set_adapter,
    "disable_adapter": peft.PeftModel.disable_adapter,
    "multi_cell": FPDF.multi_cell,
    "add_font": FPDF.add_font,
    "set_margins": FPDF.set_margins,
    "set_auto_page_break": FPDF.set_auto_page_break,
}


def library_imports() -> set[tuple[str, str]]:
    found = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.split(".")[0] in LIBRARIES
            ):
                found |= {(node.module, alias.name) for alias in node.names}
    return found


def imported_names() -> dict[str, str]:
    return {name: module for module, name in library_imports()}


def keyword_calls():
    """(file, what, object-or-None, keywords) for calls to imported library names and known
    methods."""
    names = imported_names()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            keywords = [k.arg for k in node.keywords if k.arg]
            func = node.func
            if isinstance(func, ast.Name) and func.id in names:
                yield path.name, func.id, (names[func.id], func.id, None), keywords
            elif isinstance(func, ast.Attribute):
                if isinstance(func.value, ast.Name) and func.value.id in names:
                    yield (
                        path.name,
                        f"{func.value.id}.{func.attr}",
                        (names[func.value.id], func.value.id, func.attr),
                        keywords,
                    )
                elif func.attr in METHODS:
                    yield path.name, func.attr, METHODS[func.attr], keywords
                elif func.attr == "generate":
                    yield path.name, "generate", GenerationConfig, keywords


def imported(module: str, name: str):
    """``from module import name``: an attribute, or a submodule (``rouge_score.rouge_scorer``)."""
    parent = importlib.import_module(module)
    if hasattr(parent, name):
        return getattr(parent, name)
    return importlib.import_module(f"{module}.{name}")


def resolve(target):
    if not isinstance(target, tuple):
        return target
    module, name, attr = target
    obj = imported(module, name)
    return getattr(obj, attr) if attr else obj


# Where keywords swallowed by **kwargs end up (Auto classes forward them to the model class).
FORWARDED_TO = {"from_pretrained": [transformers.modeling_utils, transformers.configuration_utils]}


def keyword_known(obj, keyword: str, method: str | None) -> bool:
    """In the signature; or, behind **kwargs, an attribute of the owner or a name its code reads."""
    if obj is GenerationConfig:
        return hasattr(GenerationConfig(), keyword) or keyword in ("input_ids", "attention_mask")
    params = inspect.signature(obj).parameters
    if keyword in params:
        return True
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return False
    owner = getattr(obj, "__self__", obj)
    if isinstance(owner, type) and hasattr(owner, keyword):
        return True
    if isinstance(obj, type):  # a subclass passing **kwargs up: look at the bases' __init__
        for base in obj.__mro__[1:]:
            if base is not object and keyword in inspect.signature(base.__init__).parameters:
                return True
    modules = [inspect.getmodule(obj), *FORWARDED_TO.get(method or "", [])]
    return any(re.search(rf"\b{keyword}\b", inspect.getsource(m)) for m in modules)


@pytest.mark.parametrize(
    "module, name", sorted(m for m in library_imports() if not m[0].startswith("unsloth"))
)
def test_imported_names_exist(module, name):
    try:
        imported(module, name)
    except (AttributeError, ImportError):
        pytest.fail(f"{module}.{name} is gone in the pinned version")


def test_keywords_exist_in_pinned_signatures():
    problems = []
    for file, what, target, keywords in keyword_calls():
        if isinstance(target, tuple) and target[0].startswith("unsloth"):
            continue  # checked in a separate process (importing unsloth patches transformers)
        method = what.split(".")[-1]
        problems += [
            f"{file}: {what}(..., {k}=...)"
            for k in keywords
            if not keyword_known(resolve(target), k, method)
        ]
    assert not problems, "keywords unknown to the pinned libraries:\n" + "\n".join(problems)


def test_unsloth_api_used_by_the_kit_exists():
    calls = [
        [t[0], t[1], t[2], kws]
        for _, _, t, kws in keyword_calls()
        if isinstance(t, tuple) and t[0].startswith("unsloth")
    ]
    assert calls, "the kit loads models through unsloth.FastLanguageModel"
    script = (
        "import importlib, inspect, json, sys\n"
        "calls = json.loads(sys.argv[1]); bad = []\n"
        "for module, name, attr, kws in calls:\n"
        "    obj = getattr(importlib.import_module(module), name)\n"
        "    obj = getattr(obj, attr) if attr else obj\n"
        "    params = inspect.signature(obj).parameters\n"
        "    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())\n"
        "    bad += [f'{name}.{attr}({k}=)' for k in kws if k not in params and not var_kw]\n"
        "print(json.dumps(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(calls)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_drift_check_can_fail():
    from_pretrained = transformers.AutoModelForCausalLM.from_pretrained
    assert keyword_known(from_pretrained, "gguf_file", "from_pretrained")
    assert not keyword_known(from_pretrained, "load_in_17bit", "from_pretrained")
    assert not keyword_known(
        transformers.PreTrainedTokenizerBase.apply_chat_template, "tokenise", None
    )
    assert not keyword_known(GenerationConfig, "max_new_tokenz", "generate")
