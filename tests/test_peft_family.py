"""Lab 07's PEFT family on the tiny random model: each method's set-up (parameter counts equal
PEFT's and the by-hand formulas), merged and unmerged models agree where a method merges, latency
is measured the same way for every method, the from-scratch adapter and IA3 match their
references, and the grader scores an adapter of every accepted type — and refuses bad ones."""

import json

import pytest
import torch
from grading_helpers import info_for, tiny_grading_state
from reference import ia3_linear, method_params

from grading.worker import grade_bytes
from utils.data.batching import pad_batch, training_batches
from utils.eval import label_task
from utils.lab.submission import make_submission
from utils.runtime.models import build_tiny_model, embedded_model_dir, model_fingerprint
from utils.train import peft_family as family
from utils.train.params import count_trainable

LAB = "07_peft_family"
LABELS = ("ham", "spam")
PEFT_METHODS = [name for name in family.METHODS if family.peft_config(name, "x") is not None]


def set_up(model, name):
    adapter = lambda m: family.add_bottleneck_adapters(m, 8)  # noqa: E731
    return family.set_up_method(model, name, str(embedded_model_dir()), adapter)


def perturbed(model):
    """Every trainable tensor moved away from its initial value (as training would)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.3 * torch.randn_like(param))
    return model


@pytest.mark.parametrize("name", [n for n in family.METHODS if n != "full fine-tuning"])
def test_each_method_trains_what_its_formula_counts(name, tiny_model):
    before = model_fingerprint(tiny_model)
    model = set_up(tiny_model, name)
    assert count_trainable(model)[0] == method_params(name, tiny_model.config, bottleneck=8)
    assert model_fingerprint(tiny_model) == before  # the method went on a copy


def test_full_fine_tuning_trains_everything_and_bitfit_the_norms_of_a_model_without_biases(
    tiny_model,
):
    full = set_up(tiny_model, "full fine-tuning")
    assert count_trainable(full)[0] == count_trainable(full)[1]
    norms = set_up(tiny_model, "BitFit")
    assert {n for n, p in norms.named_parameters() if p.requires_grad} == {
        n for n, _ in tiny_model.named_parameters() if "norm" in n
    }


@pytest.mark.parametrize("name", ["LoRA", "rsLoRA", "DoRA", "IA3"])
def test_a_mergeable_method_gives_the_same_logits_merged(name, tokenizer, tiny_model):
    model = perturbed(set_up(tiny_model, name))
    ids, mask = pad_batch([[5, 6, 7, 8], [9, 10]], tokenizer.pad_token_id)
    with torch.no_grad():
        unmerged = label_task.label_logits(model, ids, mask)
        merged = label_task.label_logits(family.merged_for_serving(model, name), ids, mask)
    assert torch.allclose(unmerged, merged, atol=1e-4)
    assert family.merged_for_serving(set_up(tiny_model, "prefix tuning"), "prefix tuning") is None


def test_a_saved_adapter_merges_onto_a_copy_and_one_for_another_base_is_refused(
    tokenizer, tiny_model, tmp_path
):
    model = perturbed(set_up(tiny_model, "LoRA"))
    model.save_pretrained(str(tmp_path / "adapter"))
    before = model_fingerprint(tiny_model)
    merged, parameters = family.merged_saved_adapter(tiny_model, tmp_path / "adapter")
    assert parameters == count_trainable(model)[0] and model_fingerprint(tiny_model) == before
    ids, mask = pad_batch([[5, 6, 7, 8], [9, 10]], tokenizer.pad_token_id)
    with torch.no_grad():
        expected = label_task.label_logits(model, ids, mask)
        assert torch.allclose(label_task.label_logits(merged, ids, mask), expected, atol=1e-4)
        rounded, _ = family.merged_saved_adapter(tiny_model, tmp_path / "adapter", nf4=True)
        assert not torch.allclose(label_task.label_logits(rounded, ids, mask), expected, atol=1e-4)
    other = build_tiny_model(tokenizer, num_layers=2, hidden_size=32, seed=0)
    with pytest.raises((RuntimeError, ValueError)):
        family.merged_saved_adapter(other, tmp_path / "adapter")


@pytest.mark.parametrize("name", list(family.METHODS))
def test_latency_is_the_same_measurement_for_every_method(name, tokenizer, tiny_model, monkeypatch):
    model = set_up(tiny_model, name)
    calls = []
    real = family.label_logits
    monkeypatch.setattr(family, "label_logits", lambda m, i, k: calls.append(m) or real(m, i, k))
    ids, mask = pad_batch([[5, 6, 7], [8, 9, 10, 11]], tokenizer.pad_token_id)
    ratio = family.relative_latency(model, tiny_model, ids, mask, repeats=3)
    assert ratio > 0
    assert calls.count(model) == calls.count(tiny_model) == 4  # a warm-up and 3 timed, in turns


def test_soft_prompts_and_prefixes_take_part_in_the_label_score(tokenizer, tiny_model):
    from utils.data.datasets import load_split

    rows = load_split("sms_spam", "validation")[:6]
    base = label_task.evaluate_labels(tiny_model, tokenizer, rows, LABELS)
    for name in ("prompt tuning (random init)", "prefix tuning"):
        result = label_task.evaluate_labels(
            perturbed(set_up(tiny_model, name)), tokenizer, rows, LABELS
        )
        assert result["loss"] != pytest.approx(base["loss"]), name


def test_the_label_loss_sees_only_the_label_token(tokenizer, tiny_model):
    examples = [([5, 6, 7], 11), ([8, 9], 12)]
    loss = label_task.label_loss(tiny_model, examples, tokenizer.pad_token_id)
    with torch.no_grad():
        expected = sum(
            -tiny_model(input_ids=torch.tensor([p])).logits[0, -1].log_softmax(-1)[label]
            for p, label in examples
        ) / len(examples)
    assert loss.item() == pytest.approx(float(expected), rel=1e-4)


def test_every_method_sees_the_same_batches_and_each_pass_covers_the_data():
    examples = [([i] * (1 + i % 5), i) for i in range(48)]  # 3 groups of 4 batches of 4
    first = training_batches(examples, 4, 20, seed=0)
    assert first == training_batches(examples, 4, 20, seed=0)
    assert sorted(label for batch in first[:12] for _, label in batch) == list(range(48))
    assert first != training_batches(examples, 4, 20, seed=1)


def test_fewer_examples_than_a_group_still_give_full_batches_and_too_few_are_refused():
    examples = [([i], i) for i in range(9)]  # 2 batches of 4, not the 4 batches of a group
    batches = training_batches(examples, 4, 5, seed=0)
    assert len(batches) == 5 and all(len(batch) == 4 for batch in batches)
    with pytest.raises(ValueError, match="3 examples cannot fill one batch of 4"):
        training_batches(examples[:3], 4, 1, seed=0)


def test_lora_on_all_linear_layers_at_rank_8_is_the_lab_lora_method(tiny_model):
    """Lab 07 reuses its LoRA run for the "all linear, r = 8" placement instead of training it
    again: the two set-ups must build the same model (same adapters, same initial weights)."""
    from peft import LoraConfig

    config = LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, target_modules="all-linear")
    method = family.set_up_method(tiny_model, "LoRA", str(embedded_model_dir()), config=config)
    targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    placement = family.lora_model(tiny_model, targets, 8, seed=0)
    ours, theirs = family.trainable_state(method), family.trainable_state(placement)
    assert list(ours) == list(theirs) and len(ours) == 2 * 7 * tiny_model.config.num_hidden_layers
    assert all(torch.equal(ours[name], theirs[name]) for name in ours)
    fields = ("r", "lora_alpha", "lora_dropout", "use_rslora", "use_dora")
    settings = [
        {k: getattr(m.peft_config["default"], k) for k in fields} for m in (method, placement)
    ]
    assert settings[0] == settings[1]


def test_the_reference_adapter_is_the_identity_at_start_and_ia3_matches_peft(tiny_model):
    adapter = family.BottleneckAdapter(64, 8)
    h = torch.randn(3, 64)
    assert torch.equal(adapter(h), h)
    model = set_up(tiny_model, "IA3")
    layer = model.base_model.model.model.layers[0].mlp.down_proj
    with torch.no_grad():
        layer.ia3_l["default"].normal_(1.0, 0.5)
        x = torch.randn(2, layer.base_layer.in_features)
        ours = ia3_linear(layer.base_layer, x, layer.ia3_l["default"].flatten(), True)
        assert torch.allclose(ours, layer(x), atol=1e-5)


# --- the grader, on an adapter of every type -----------------------------------------------------


@pytest.fixture()
def base(tokenizer):
    return tiny_grading_state(tokenizer)


@pytest.fixture(scope="module")
def sms_heldout(tmp_path_factory):
    from utils.data.datasets import load_split

    rows = load_split("sms_spam", "heldout", allow_heldout=True)[:10]
    path = tmp_path_factory.mktemp("heldout") / "sms.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def adapter_zip(tokenizer, tmp_path, name, edit=None, lab=LAB):
    """A submission holding a trained (perturbed) adapter of method ``name`` for the tiny base."""
    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    peft_model = perturbed(set_up(model, name))
    folder = tmp_path / "adapter"
    peft_model.save_pretrained(str(folder))
    if edit:
        edit(folder)
    info = info_for({"fingerprint": model_fingerprint(model)})
    zip_path = make_submission(lab, "sam", {"adapter": folder}, info, "tiny-random-llama", tmp_path)
    return zip_path, peft_model


@pytest.mark.parametrize("name", PEFT_METHODS)
def test_the_grader_scores_an_adapter_of_every_type_as_the_lab_does(
    name, tokenizer, base, sms_heldout, tmp_path
):
    from utils.data.datasets import get_spec, read_split_file

    zip_path, peft_model = adapter_zip(tokenizer, tmp_path, name)
    result = grade_bytes(zip_path.read_bytes(), base, LAB, sms_heldout, None)
    assert result["status"] == "graded", result.get("reason")
    rows = read_split_file(sms_heldout, get_spec("sms_spam"))
    in_the_lab = label_task.evaluate_labels(peft_model, tokenizer, rows, LABELS)
    assert result["after"]["loss"] == pytest.approx(in_the_lab["loss"], rel=1e-4)
    assert result["after"]["loss"] != pytest.approx(result["before"]["loss"])
    assert model_fingerprint(base["model"]) == base["fingerprint"]


def edit_config(**changes):
    def edit(folder):
        path = folder / "adapter_config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))

    return edit


def edit_weights(change):
    def edit(folder):
        from safetensors.torch import load_file, save_file

        path = folder / "adapter_model.safetensors"
        tensors = load_file(str(path))
        change(tensors)
        save_file(tensors, str(path))

    return edit


DEFECTS = {
    "prefix for another depth": ("prefix tuning", edit_config(num_layers=3), "num_layers=3"),
    "too many virtual tokens": (
        "prompt tuning (random init)",
        edit_config(num_virtual_tokens=500),
        "num_virtual_tokens",
    ),
    "prompt of the wrong width": (
        "P-tuning",
        edit_weights(lambda t: t.update(prompt_embeddings=torch.zeros(20, 65))),
        "prompt_embeddings has shape",
    ),
    "NaN in an IA3 vector": (
        "IA3",
        edit_weights(lambda t: next(iter(t.values())).fill_(float("nan"))),
        "NaN",
    ),
    "IA3 vector of the wrong side": ("IA3", edit_config(feedforward_modules=[]), "has shape"),
    "unknown field": ("prompt tuning (text init)", edit_config(layer_hook="x"), "unknown field"),
    "a type no lab accepts": ("IA3", edit_config(peft_type="LOHA"), "peft_type 'LOHA'"),
}


@pytest.mark.parametrize("case", sorted(DEFECTS))
def test_a_malformed_adapter_of_another_type_scores_zero_with_its_reason(
    case, tokenizer, base, sms_heldout, tmp_path
):
    name, edit, reason = DEFECTS[case]
    zip_path, _ = adapter_zip(tokenizer, tmp_path, name, edit)
    result = grade_bytes(zip_path.read_bytes(), base, LAB, sms_heldout, None)
    assert result["status"] == "invalid" and result["score"] == 0, result
    assert reason in result["reason"]
    assert model_fingerprint(base["model"]) == base["fingerprint"]


def test_a_lora_only_lab_still_refuses_other_types(tokenizer, base, tmp_path):
    zip_path, _ = adapter_zip(tokenizer, tmp_path, "IA3", lab="03b_lora_peft")
    result = grade_bytes(zip_path.read_bytes(), base, "03b_lora_peft", None, None)
    assert result["status"] == "invalid" and "expected 'LORA'" in result["reason"]
