"""The capstone's path on every common decoder architecture, each a tiny random model saved to a
folder (the embedded tokenizer, no hub): load as Lab 06 does, LoRA on every linear layer (as many
parameters as PEFT's own "all-linear"), a run plan with a memory estimate, one training step,
before/after, a submission, and the grader with ``--base <folder>`` reproducing the claim."""

import copy
import json

import pytest
from peft import LoraConfig, get_peft_model

from grading.capstone import general_score
from grading.worker import base_requirement, grade_bytes, load_base
from utils.data.own_data import (
    TaskConfig,
    examples_fingerprint,
    task_messages,
    to_examples,
    write_examples,
)
from utils.eval import harness
from utils.eval.task_eval import evaluate_task
from utils.lab.submission import make_submission
from utils.runtime.models import (
    TINY_ARCHITECTURES,
    build_tiny_model,
    choose_backend,
    load_model,
    model_fingerprint,
)
from utils.runtime.profiles import resolve_model
from utils.train import sft
from utils.train.budget import plan_run
from utils.train.memory_estimate import shape_from_config
from utils.train.params import add_peft_lora, count_trainable, embedding_names, linear_layer_names

TASK = TaskConfig(kind="classification", instruction="Spam or ham?", labels=("ham", "spam"))
ROWS = [
    {"text": f"message {i} " + ("win cash now" if i % 2 else "see you later"), "label": "ham"}
    if i % 2 == 0
    else {"text": f"message {i} win cash now", "label": "spam"}
    for i in range(8)
]
# the leaf names "every linear layer" must find in each family (fused in Phi-3, Conv1D in GPT-2)
LINEAR = {
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "phi3": ("o_proj", "qkv_proj", "gate_up_proj", "down_proj"),
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    "opt": ("k_proj", "v_proj", "q_proj", "out_proj", "fc1", "fc2"),
}
LINEAR |= {arch: LINEAR["llama"] for arch in ("qwen2", "mistral", "gemma")}


@pytest.fixture(scope="module", params=TINY_ARCHITECTURES)
def base_folder(request, tokenizer, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"tiny-{request.param}")
    build_tiny_model(tokenizer, architecture=request.param).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return request.param, folder


def test_a_tiny_model_of_every_family_goes_from_lab_to_grade(base_folder, tmp_path, capsys):
    arch, folder = base_folder
    model, tokenizer = load_model(resolve_model(str(folder)))
    backend, why = choose_backend(str(folder))
    assert f"with {backend}: {why}" in capsys.readouterr().out  # one line says which path runs
    assert backend == (
        "unsloth" if arch in ("llama", "qwen2", "mistral", "gemma") else "transformers"
    )
    fingerprint = model_fingerprint(model)
    targets = linear_layer_names(model)
    assert targets == LINEAR[arch] and len(embedding_names(model)) == 2

    reference = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, target_modules="all-linear"))
    settings = sft.SFTSettings(
        r=4, alpha=8, target_modules=targets, max_steps=1, batch_size=4, max_length=64,
        warmup_steps=0, learning_rate=5e-3,
    )  # fmt: skip
    examples, problems = to_examples([(f"rows:{i}", r) for i, r in enumerate(ROWS)], TASK)
    assert not problems
    before = evaluate_task(model, tokenizer, TASK, examples, 4, progress=False)
    model = add_peft_lora(model, **settings.lora_arguments())
    assert count_trainable(model)[0] == count_trainable(reference)[0] > 0

    dataset = sft.chat_dataset(examples, tokenizer, lambda e: task_messages(TASK, e))
    trainer = sft.build_trainer(model, tokenizer, dataset, settings)
    plan = plan_run(model, settings, len(examples), 48, step_seconds=1.0)
    assert plan["estimated_memory_gb"] > 0, plan
    history = sft.train(trainer)
    assert history["global_steps"] == 1 and history["loss"]
    after = evaluate_task(model, tokenizer, TASK, examples, 4, progress=False)
    general_items = harness.general_set(1)  # the capstone's general-ability row, one per benchmark
    with model.disable_adapter():
        general_before = general_score(model, tokenizer, general_items)
    general_after = general_score(model, tokenizer, general_items)

    model.save_pretrained(str(tmp_path / "adapter"))
    recorded = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert sorted(recorded["target_modules"]) == sorted(targets)  # concrete names, all present
    claim = {
        "task": {"kind": "classification", "instruction": TASK.instruction,
                 "labels": ["ham", "spam"], "fields": []},
        "primary": "accuracy",
        "max_new_tokens": 4,
        "before": {"accuracy": before["accuracy"]},
        "after": {"accuracy": after["accuracy"]},
        "test_fingerprint": examples_fingerprint(examples),
        "general": {"per_benchmark": 1, "before": general_before, "after": general_after},
    }  # fmt: skip
    (tmp_path / "claimed.json").write_text(json.dumps(claim))
    write_examples(tmp_path / "test.jsonl", examples)
    names = ("adapter", "claimed.json", "test.jsonl")
    zip_path = make_submission(
        "06_your_task",
        "student-1",
        {name: tmp_path / name for name in names},
        {"model_fingerprint": fingerprint},
        str(folder),
        tmp_path,
    )

    assert base_requirement(str(folder)) is None  # the size check reads this family's config
    graded_model, graded_tokenizer, base_id = load_base(str(folder))
    assert base_id == str(folder) and model_fingerprint(graded_model) == fingerprint
    state = {
        "model": graded_model,
        "tokenizer": graded_tokenizer,
        "base_id": base_id,
        "fingerprint": fingerprint,
    }
    result = grade_bytes(zip_path.read_bytes(), state, "06_your_task", None, None)
    assert result["status"] == "graded", result.get("reason")
    reproduction = result["submission_details"]["reproduction"]
    assert reproduction["reproduced"], reproduction
    assert model_fingerprint(graded_model) == fingerprint  # the grader left its base unchanged


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_the_shape_of_every_family_is_read_from_its_config(tokenizer, arch):
    model = build_tiny_model(tokenizer, architecture=arch)
    shape = shape_from_config(model.config.to_dict(), arch)
    counted = sum(p.numel() for p in model.parameters())  # learned positions (GPT-2, OPT) aside
    assert abs(shape.params() - counted) / counted < 0.1, (shape, counted)


def test_an_unknown_config_says_what_it_misses_instead_of_a_key_error(tmp_path):
    with pytest.raises(ValueError, match="does not say layers, hidden"):
        shape_from_config({"model_type": "mystery", "vocab_size": 10}, "mystery")
    folder = tmp_path / "mystery"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "mystery"}))
    (folder / "model.safetensors").write_bytes(b"\0" * 1000)
    assert base_requirement(str(folder)) is None  # a 1 kB model fits: estimated from the file


LOGIT_POSTPROCESSING = {  # families whose forward changes the LM head's output
    "gemma2": {"final_logit_softcapping": 0.5, "head_dim": 16},
    "cohere": {"logit_scale": 0.25},
    "granite": {"logits_scaling": 4.0},
}


@pytest.mark.parametrize("arch", [*TINY_ARCHITECTURES, *LOGIT_POSTPROCESSING])
def test_logits_from_the_body_and_head_equal_the_models_own(tokenizer, arch):
    """The evaluation runs the LM head only where logits are needed (``decoder_and_head``):
    the result must equal the model's forward on every family, scaled or capped logits too."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from utils.eval.metrics import decoder_and_head

    if arch in LOGIT_POSTPROCESSING:
        config = AutoConfig.for_model(
            arch,
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            pad_token_id=tokenizer.pad_token_id,
            **LOGIT_POSTPROCESSING[arch],
        )
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config).eval()
    else:
        model = build_tiny_model(tokenizer, architecture=arch)
    ids = torch.randint(0, len(tokenizer), (2, 7), generator=torch.Generator().manual_seed(0))
    decoder, head = decoder_and_head(model)
    with torch.no_grad():
        want = model(input_ids=ids).logits
        got = head(decoder(input_ids=ids)[0])
    assert torch.allclose(got, want, atol=1e-5), float((got - want).abs().max())
    if arch in LOGIT_POSTPROCESSING:  # the post-processing matters: the bare head differs
        with torch.no_grad():
            assert not torch.allclose(
                model.get_output_embeddings()(decoder(input_ids=ids)[0]), want
            )
