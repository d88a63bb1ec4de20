"""The grader's three artifact kinds beyond Lab 03B's adapter, on the tiny random base: Lab 01's
prompt spec, Labs 02/03A's classifiers (trained tensors or from-scratch LoRA), Lab 05's CPT adapter
with full embedding/head copies (perplexity, lower is better). Each scores valid submissions,
refuses malformed ones with a reason, and leaves the base exactly as it was."""

import json

import pytest
import torch
from grading_helpers import info_for, tiny_grading_state
from safetensors.torch import save

from grading.rubric import load_rubric, score
from grading.worker import grade_bytes
from utils.lab.submission import (
    SAVED_ROWS_FILE,
    add_changed_rows,
    changed_rows,
    make_submission,
    save_adapter_for_submission,
    sha256_bytes,
)
from utils.runtime.models import build_tiny_model, model_fingerprint
from utils.train.classifier import apply_classifier, replace_head, save_classifier
from utils.train.params import freeze_all_but

BASE_ID = "tiny-random-llama"


@pytest.fixture()
def base(tokenizer):
    return tiny_grading_state(tokenizer)


@pytest.fixture(scope="module")
def sms_heldout(tmp_path_factory):
    from utils.data.datasets import load_split

    rows = load_split("sms_spam", "heldout", allow_heldout=True)
    rows = [r for r in rows if r["label"] == "spam"][:4] + [r for r in rows if r["label"] == "ham"][
        :4
    ]
    path = tmp_path_factory.mktemp("heldout") / "sms.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def assert_base_untouched(state):
    model = state["model"]
    assert model_fingerprint(model) == state["fingerprint"]
    assert (
        model.lm_head.weight is model.get_input_embeddings().weight
        and model.config.tie_word_embeddings
    )


def rezip(path, edit):
    """The zip at ``path`` with ``edit(files)`` applied to its artifact files (hashes kept
    consistent)."""
    import io
    import zipfile

    with zipfile.ZipFile(path) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    manifest = json.loads(files.pop("manifest.json"))
    edit(files)
    manifest["files"] = {n: {"sha256": sha256_bytes(d), "bytes": len(d)} for n, d in files.items()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def edit_json(name, change):
    def edit(files):
        value = json.loads(files[name])
        change(value)
        files[name] = json.dumps(value).encode()

    return edit


def edit_tensors(name, change):
    from safetensors.torch import load

    def edit(files):
        tensors = load(files[name])
        change(tensors)
        files[name] = save(tensors)

    return edit


# --- Lab 01: prompt spec --------------------------------------------------------------------------

LAB01 = "01_in_context_learning"


def prompt_zip(state, folder, **changes):
    from utils.data.datasets import load_split
    from utils.data.prompting import DATASET_FORMATS, format_to_dict

    train = load_split("sms_spam", "train")
    demos = [
        next(r["id"] for r in train if r["label"] == "spam"),
        next(r["id"] for r in train if r["label"] == "ham"),
    ]
    spec = {
        "dataset": "sms_spam",
        "format": format_to_dict(DATASET_FORMATS["sms_spam"]),
        "demo_ids": demos,
        "calibrated": True,
        **changes,
    }
    (folder / "prompt_spec.json").write_text(json.dumps(spec))
    return make_submission(
        LAB01,
        "dana",
        {"prompt_spec.json": folder / "prompt_spec.json"},
        info_for(state),
        BASE_ID,
        folder,
    )


def test_a_prompt_spec_is_rebuilt_and_scored_deterministically(base, sms_heldout, tmp_path):
    path = prompt_zip(base, tmp_path)
    first = grade_bytes(path.read_bytes(), base, LAB01, sms_heldout, None)
    assert first["status"] == "graded", first.get("reason")
    assert first["heldout"]["items"] == 8 and 0 <= first["after"]["accuracy"] <= 1
    assert first["submission_details"] == {"shots": 2, "calibrated": True, "chat": False}
    again = grade_bytes(path.read_bytes(), base, LAB01, sms_heldout, None)
    assert again["after"] == first["after"] and again["score"] == first["score"]
    assert_base_untouched(base)


def test_the_zero_shot_default_prompt_is_the_before_and_earns_no_gain(base, sms_heldout, tmp_path):
    path = prompt_zip(base, tmp_path, demo_ids=[], calibrated=False)
    result = grade_bytes(path.read_bytes(), base, LAB01, sms_heldout, None)
    assert result["after"] == result["before"] and result["parts"]["gain over base"] == 0.0


PROMPT_DEFECTS = {
    "demonstration not in train": (
        edit_json("prompt_spec.json", lambda s: s["demo_ids"].append("sms_spam-999999")),
        "must come from the train split",
    ),
    "too many shots": (
        edit_json("prompt_spec.json", lambda s: s.update(demo_ids=s["demo_ids"] * 9)),
        "at most 16",
    ),
    "wrong dataset": (
        edit_json("prompt_spec.json", lambda s: s.update(dataset="animal_diet")),
        "this lab grades",
    ),
    "duplicate label words": (
        edit_json(
            "prompt_spec.json", lambda s: s["format"].update(label_words={"spam": "x", "ham": "x"})
        ),
        "distinct words",
    ),
    "unknown label": (
        edit_json("prompt_spec.json", lambda s: s["format"].update(label_words={"junk": "x"})),
        "label_words",
    ),
    "calibrated not a boolean": (
        edit_json("prompt_spec.json", lambda s: s.update(calibrated="yes")),
        "true or false",
    ),
    "format missing": (
        edit_json("prompt_spec.json", lambda s: s.pop("format")),
        "'format' must be an object",
    ),
    "unknown format field": (
        edit_json("prompt_spec.json", lambda s: s["format"].update(shell="rm -rf /")),
        "unknown format fields",
    ),
    "instruction too long": (
        edit_json("prompt_spec.json", lambda s: s["format"].update(instruction="x" * 5000)),
        "longer than 2000",
    ),
    "spec missing": (lambda files: files.pop("prompt_spec.json"), "prompt_spec.json is missing"),
}


@pytest.mark.parametrize("case", sorted(PROMPT_DEFECTS))
def test_a_malformed_prompt_spec_scores_zero_with_its_reason(case, base, sms_heldout, tmp_path):
    edit, reason = PROMPT_DEFECTS[case]
    result = grade_bytes(rezip(prompt_zip(base, tmp_path), edit), base, LAB01, sms_heldout, None)
    assert result["status"] == "invalid" and result["score"] == 0.0
    assert reason in result["reason"], result["reason"]


# --- Labs 02 and 03A: classifiers -----------------------------------------------------------------

LAB02, LAB03 = "02_selective_finetuning", "03_lora"
LABELS = ("ham", "spam")


def last_block_classifier(tokenizer, seed=0):
    """Lab 02's artifact for the tiny base: the last block, final norm and a new head, perturbed."""
    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    replace_head(model, 2, seed=seed)
    freeze_all_but(model, 1)
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(0.05 * torch.randn_like(param))
    return model, {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def classifier_zip(state, folder, tensors, lab=LAB02, lora=None):
    save_classifier(folder / "classifier", tensors, LABELS, lora=lora)
    return make_submission(
        lab, "erin", {"classifier": folder / "classifier"}, info_for(state), BASE_ID, folder
    )


def test_a_trained_block_classifier_is_loaded_scored_and_removed(
    tokenizer, base, sms_heldout, tmp_path
):
    from utils.data.batching import pad_batch, tokenize_texts
    from utils.train.classifier import classifier_logits

    trained, tensors = last_block_classifier(tokenizer)
    result = grade_bytes(
        classifier_zip(base, tmp_path, tensors).read_bytes(), base, LAB02, sms_heldout, None
    )
    assert result["status"] == "graded", result.get("reason")
    assert result["submission_details"]["trained_parameters"] == sum(
        t.numel() for t in tensors.values()
    )
    assert_base_untouched(base)
    # the grader's model is the student's model: same logits as the trained one
    fresh = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    apply_classifier(fresh, tensors, {"labels": list(LABELS)})
    batch = pad_batch(
        tokenize_texts(tokenizer, ["win a prize now", "see you at lunch"]), tokenizer.pad_token_id
    )
    with torch.no_grad():
        assert torch.allclose(
            classifier_logits(fresh, *batch), classifier_logits(trained, *batch), atol=1e-6
        )


def test_a_class_of_block_classifiers_is_scored_on_one_frozen_prefix_as_by_the_full_forward(
    tokenizer, base, sms_heldout, tmp_path
):
    """Every Lab 02 submission changes only the last block(s): the held-out hidden states entering
    the first changed block are computed once for the class, with the same scores as running
    every block for every student."""
    from grading import artifacts
    from grading.artifacts import base_restored, classifier_score, load_heldout
    from grading.rubric import load_rubric

    rubric = load_rubric(LAB02)
    rows, _ = load_heldout(rubric, sms_heldout)
    artifacts._PREFIX_CACHE.clear()
    for seed in range(3):
        _, tensors = last_block_classifier(tokenizer, seed=seed)
        folder = tmp_path / f"s{seed}"
        result = grade_bytes(
            classifier_zip(base, folder, tensors).read_bytes(), base, LAB02, sms_heldout, None
        )
        with base_restored(base["model"]):
            apply_classifier(base["model"], tensors, {"labels": list(LABELS)})
            full = classifier_score(base["model"], tokenizer, rows, rubric)
        assert result["after"]["accuracy"] == full["accuracy"]
        assert result["after"]["loss"] == pytest.approx(full["loss"], abs=1e-5)
    assert len(artifacts._PREFIX_CACHE) == 1  # one prefix served the three students
    assert_base_untouched(base)


def lora_classifier(tokenizer, rank=4, alpha=8, seed=0):
    """Lab 03A's artifact for the tiny base: from-scratch LoRA on q/v (B non-zero) plus a new
    head."""
    from utils.train import lora

    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    replace_head(model, 2, seed=seed)
    for param in model.parameters():
        param.requires_grad = False
    torch.manual_seed(seed)
    lora.apply_lora(model, ("q_proj", "v_proj"), rank, alpha)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("lora.B"):
                param.normal_(0, 0.2)
    for param in model.lm_head.parameters():
        param.requires_grad = True
    return model, {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_a_from_scratch_lora_classifier_is_merged_and_matches_the_unmerged_model(
    tokenizer, base, sms_heldout, tmp_path
):
    from utils.data.batching import pad_batch, tokenize_texts
    from utils.train.classifier import classifier_logits

    model, tensors = lora_classifier(tokenizer)
    assert any(n.endswith(".lora.A") for n in tensors)
    fresh = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    apply_classifier(fresh, tensors, {"labels": list(LABELS), "lora": {"rank": 4, "alpha": 8}})
    batch = pad_batch(
        tokenize_texts(tokenizer, ["free entry in a weekly draw", "ok"]), tokenizer.pad_token_id
    )
    with torch.no_grad():
        assert torch.allclose(
            classifier_logits(fresh, *batch), classifier_logits(model, *batch), atol=1e-5
        )
    path = classifier_zip(base, tmp_path, tensors, lab=LAB03, lora={"rank": 4, "alpha": 8})
    result = grade_bytes(path.read_bytes(), base, LAB03, sms_heldout, None)
    assert result["status"] == "graded", result.get("reason")
    assert result["submission_details"]["lora"] == {"rank": 4, "alpha": 8}
    assert_base_untouched(base)


WEIGHTS, CONFIG = "classifier/classifier.safetensors", "classifier/classifier_config.json"
CLASSIFIER_DEFECTS = {
    "head for three classes": (
        edit_tensors(WEIGHTS, lambda t: t.update({"lm_head.weight": torch.zeros(3, 64)})),
        "one output per label",
    ),
    "head bias missing": (
        edit_tensors(WEIGHTS, lambda t: t.pop("lm_head.bias")),
        "'lm_head.bias' is missing",
    ),
    "unknown tensor": (
        edit_tensors(
            WEIGHTS, lambda t: t.update({"model.layers.7.mlp.up_proj.weight": torch.zeros(1)})
        ),
        "neither the head",
    ),
    "block tensor of the wrong shape": (
        edit_tensors(WEIGHTS, lambda t: t.update({"model.norm.weight": torch.ones(65)})),
        "expected (64,)",
    ),
    "NaN in the block": (
        edit_tensors(WEIGHTS, lambda t: t["model.norm.weight"].fill_(float("nan"))),
        "NaN or Inf",
    ),
    "labels swapped": (edit_json(CONFIG, lambda c: c.update(labels=["spam", "ham"])), "labels"),
    "config missing": (lambda files: files.pop(CONFIG), "classifier_config.json is missing"),
    "weights not safetensors": (
        lambda files: files.update({WEIGHTS: b"\x80\x04not safetensors"}),
        "not a valid safetensors file",
    ),
    "LoRA matrices without rank": (
        edit_tensors(
            WEIGHTS,
            lambda t: t.update(
                {
                    "model.layers.0.self_attn.q_proj.lora.A": torch.zeros(4, 64),
                    "model.layers.0.self_attn.q_proj.lora.B": torch.zeros(64, 4),
                }
            ),
        ),
        'need "lora"',
    ),
}


@pytest.mark.parametrize("case", sorted(CLASSIFIER_DEFECTS))
def test_a_malformed_classifier_scores_zero_with_its_reason(
    case, tokenizer, base, sms_heldout, tmp_path
):
    edit, reason = CLASSIFIER_DEFECTS[case]
    _, tensors = last_block_classifier(tokenizer)
    result = grade_bytes(
        rezip(classifier_zip(base, tmp_path, tensors), edit), base, LAB02, sms_heldout, None
    )
    assert result["status"] == "invalid" and result["score"] == 0.0
    assert reason in result["reason"], result["reason"]
    assert_base_untouched(base)


LORA_DEFECTS = {
    "rank above the lab's bound": (
        edit_json(CONFIG, lambda c: c.update(lora={"rank": 100, "alpha": 8})),
        "outside the allowed 1..64",
    ),
    "B without A": (
        edit_tensors(WEIGHTS, lambda t: t.pop("model.layers.1.self_attn.v_proj.lora.A")),
        "without its pair",
    ),
    "A of the wrong rank": (
        edit_tensors(
            WEIGHTS,
            lambda t: t.update({"model.layers.0.self_attn.q_proj.lora.A": torch.zeros(3, 64)}),
        ),
        "expected (4, 64)",
    ),
    "LoRA on a layer the base lacks": (
        edit_tensors(
            WEIGHTS,
            lambda t: t.update(
                {
                    "model.layers.0.self_attn.x_proj.lora.A": torch.zeros(4, 64),
                    "model.layers.0.self_attn.x_proj.lora.B": torch.zeros(64, 4),
                }
            ),
        ),
        "no linear layer",
    ),
    "negative alpha": (
        edit_json(CONFIG, lambda c: c.update(lora={"rank": 4, "alpha": -1})),
        "positive number",
    ),
    "a LoRA pair on the head, shaped for the base's head": (
        edit_tensors(
            WEIGHTS,
            lambda t: t.update(
                {"lm_head.lora.A": torch.ones(4, 64), "lm_head.lora.B": torch.ones(49152, 4)}
            ),
        ),
        "LoRA on the head is not part of this lab",
    ),
}


@pytest.mark.parametrize("case", sorted(LORA_DEFECTS))
def test_a_malformed_lora_classifier_scores_zero_with_its_reason(
    case, tokenizer, base, sms_heldout, tmp_path
):
    edit, reason = LORA_DEFECTS[case]
    _, tensors = lora_classifier(tokenizer)
    path = classifier_zip(base, tmp_path, tensors, lab=LAB03, lora={"rank": 4, "alpha": 8})
    result = grade_bytes(rezip(path, edit), base, LAB03, sms_heldout, None)
    assert result["status"] == "invalid" and reason in result["reason"], result["reason"]


def test_the_trained_parameter_budget_is_a_lab_check(tokenizer, base, sms_heldout, tmp_path):
    rubric = {**load_rubric(LAB02).to_dict(), "checks": {"trainable_params": [1, 1000]}}
    (tmp_path / "rubric.json").write_text(json.dumps(rubric))
    _, tensors = last_block_classifier(tokenizer)
    result = grade_bytes(
        classifier_zip(base, tmp_path, tensors).read_bytes(),
        base,
        LAB02,
        sms_heldout,
        tmp_path / "rubric.json",
    )
    assert result["status"] == "invalid" and "this lab expects 1 to 1,000" in result["reason"]


# --- Lab 05: CPT adapter with embedding/head copies, perplexity (lower is better) -----------------

LAB05 = "05_continual_pretraining"


def cpt_adapter(tokenizer, folder, trained=True, seed=0, for_upload=False):
    from peft import LoraConfig, get_peft_model

    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    torch.manual_seed(seed)
    peft_model = get_peft_model(
        model,
        LoraConfig(
            r=8,
            lora_alpha=8,
            target_modules=["q_proj", "v_proj"],
            modules_to_save=["embed_tokens", "lm_head"],
        ),
    )
    if trained:
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.1)
                if "modules_to_save" in name:  # training changes some rows only
                    param[::3].add_(0.02 * torch.randn_like(param[::3]))
    if for_upload:
        return save_adapter_for_submission(peft_model, folder)
    peft_model.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def cpt_zips(tokenizer, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cpt")
    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    state = {"fingerprint": model_fingerprint(model)}
    zips = {}
    for name, trained, for_upload in (
        ("trained", True, False),
        ("untrained", False, False),
        ("compact", True, True),
    ):
        adapter = cpt_adapter(
            tokenizer, folder / name / "adapter", trained=trained, for_upload=for_upload
        )
        zips[name] = make_submission(
            LAB05, name, {"adapter": adapter}, info_for(state), BASE_ID, folder / name
        )
    return zips


def test_a_cpt_adapter_with_embedding_copies_is_scored_by_held_out_perplexity(base, cpt_zips):
    result = grade_bytes(cpt_zips["trained"].read_bytes(), base, LAB05, None, None)
    assert result["status"] == "graded", result.get("reason")
    assert result["metric"] == "domain_perplexity" and result["higher_is_better"] is False
    assert result["after"]["domain_blocks"] == result["before"]["domain_blocks"] == 24
    assert result["after"]["domain_perplexity"] != result["before"]["domain_perplexity"]
    assert sorted(result["submission_details"]["modules_to_save"]) == ["embed_tokens", "lm_head"]
    assert_base_untouched(
        base
    )  # the trained copies replaced embed_tokens/lm_head only while scoring


def test_an_adapter_saved_for_upload_is_smaller_and_grades_the_same(base, cpt_zips):
    full = grade_bytes(cpt_zips["trained"].read_bytes(), base, LAB05, None, None)
    compact = grade_bytes(cpt_zips["compact"].read_bytes(), base, LAB05, None, None)
    assert compact["status"] == "graded", compact.get("reason")
    assert compact["after"]["domain_perplexity"] == pytest.approx(
        full["after"]["domain_perplexity"], rel=1e-4
    )
    assert compact["score"] == pytest.approx(full["score"], abs=0.01)
    assert cpt_zips["compact"].stat().st_size < 0.6 * cpt_zips["trained"].stat().st_size
    assert_base_untouched(base)


def test_changed_rows_round_trip_to_fp16_precision_of_the_difference():
    original = torch.randn(50, 8)
    trained = original.clone()
    trained[[3, 17]] += 1e-3 * torch.randn(2, 8)
    rows, deltas = changed_rows(original, trained)
    assert rows.tolist() == [3, 17] and deltas.dtype == torch.float16
    assert torch.allclose(add_changed_rows(original, rows, deltas), trained, atol=1e-6)


@pytest.mark.parametrize(
    "change, reason",
    [
        (
            lambda t: t.update({"base_model.model.lm_head.weight.rows": torch.tensor([0, 0])}),
            "repeats a row",
        ),
        (
            lambda t: t.update({"base_model.model.lm_head.weight.rows": torch.tensor([10**6])}),
            "outside 0..49151",
        ),
        (lambda t: t.pop("base_model.model.lm_head.weight.delta"), "exactly '.rows' and '.delta'"),
        (
            lambda t: t.update(
                {
                    "base_model.model.nothing.weight.rows": torch.tensor([0]),
                    "base_model.model.nothing.weight.delta": torch.zeros(1, 64),
                }
            ),
            "no matrix 'nothing.weight'",
        ),
        (
            lambda t: t.update({"base_model.model.lm_head.weight.delta": torch.zeros(2, 64)}),
            ".delta has shape (2, 64)",
        ),
    ],
)
def test_bad_saved_rows_score_zero_with_their_reason(change, reason, base, cpt_zips):
    bad = rezip(cpt_zips["compact"], edit_tensors("adapter/" + SAVED_ROWS_FILE, change))
    result = grade_bytes(bad, base, LAB05, None, None)
    assert result["status"] == "invalid" and reason in result["reason"], result["reason"]
    assert_base_untouched(base)


def test_an_untrained_cpt_adapter_lands_in_the_no_gain_band(base, cpt_zips):
    result = grade_bytes(cpt_zips["untrained"].read_bytes(), base, LAB05, None, None)
    assert result["after"]["domain_perplexity"] == pytest.approx(
        result["before"]["domain_perplexity"], rel=1e-6
    )
    assert result["parts"]["gain over base"] == 0.0


def test_cpt_defects_score_zero_with_their_reason(base, cpt_zips):
    bad_shape = rezip(
        cpt_zips["trained"],
        edit_tensors(
            "adapter/adapter_model.safetensors",
            lambda t: t.update({"base_model.model.lm_head.weight": torch.zeros(10, 64)}),
        ),
    )
    result = grade_bytes(bad_shape, base, LAB05, None, None)
    assert result["status"] == "invalid" and "expected (49152, 64)" in result["reason"]
    as_03b = rezip(cpt_zips["trained"], lambda files: None)
    result = grade_bytes(as_03b, base, "03b_lora_peft", None, None)
    assert result["status"] == "invalid" and "submitted for lab" in result["reason"]


def test_a_diverged_cpt_adapter_gets_a_verdict_not_a_grader_error(base, cpt_zips):
    blown_up = rezip(  # a head this large puts the loss past e^709: perplexity overflows a float
        cpt_zips["trained"],
        edit_tensors(
            "adapter/adapter_model.safetensors",
            lambda t: t.update({k: v * 1e5 for k, v in t.items() if "lm_head" in k}),
        ),
    )
    result = grade_bytes(blown_up, base, LAB05, None, None)
    assert result["status"] == "invalid" and result["score"] == 0.0, result
    assert "perplexity is inf" in result["reason"] and "diverged" in result["reason"]
    assert_base_untouched(base)


def test_perplexity_past_a_floats_range_is_infinite_not_an_error():
    from utils.eval.metrics import _perplexity_result

    assert _perplexity_result(800.0, 1)["perplexity"] == float("inf")
    assert _perplexity_result(2.0, 1)["perplexity"] == pytest.approx(7.389056)
    assert (
        _perplexity_result(float("nan"), 1)["perplexity"]
        != _perplexity_result(float("nan"), 1)["perplexity"]
    )  # NaN stays NaN: the grader refuses it like infinity


def test_lower_is_better_scoring_rewards_a_drop_in_perplexity():
    rubric = load_rubric(LAB05)
    full_at, zero_at = rubric.after.full_at, rubric.after.zero_at
    assert full_at < zero_at
    assert score(rubric, zero_at, full_at)["parts"]["after"] == rubric.after.points
    assert (
        score(rubric, zero_at, zero_at + 1)["score"] == rubric.valid_points
    )  # worse than the base: no points
    middle = score(rubric, zero_at, (zero_at + full_at) / 2)
    assert middle["parts"]["after"] == pytest.approx(rubric.after.points / 2)
    assert middle["gain"] == pytest.approx((zero_at - full_at) / 2)


def test_every_lab_has_a_rubric_the_grader_accepts():
    from grading.artifacts import ADAPTER_METRICS, chance_level, load_heldout
    from utils.data.datasets import get_spec

    for lab in (
        "01_in_context_learning",
        "02_selective_finetuning",
        "03_lora",
        "03b_lora_peft",
        "04_qlora_unsloth",
        "05_continual_pretraining",
        "07_peft_family",
        "10_compression",
        "11_preference_tuning",
    ):
        rubric = load_rubric(lab)
        reference = rubric.reference  # the reference solution's measured held-out before/after
        chance = reference.get("chance")  # accuracy labs: where the gain counts from
        size = reference.get("removed_share")  # pruned students: the share of parameters removed
        assert (rubric.size is None) == (size is None), lab
        full = score(rubric, reference["before"], reference["after"], chance, size)
        assert full["score"] == 100.0, lab
        if chance is not None:
            rows, _ = load_heldout(rubric, None)
            assert round(chance_level(rubric, rows), 3) == chance, lab
        assert (
            score(rubric, reference["before"], reference["before"])["score"] == rubric.valid_points
        ), lab
        assert rubric.lab == lab and rubric.artifact in (
            "prompt_spec",
            "classifier",
            "peft_adapter",
            "preference_adapter",
            "pruned_student",
        )
        if rubric.artifact == "preference_adapter":
            assert rubric.metric == "preference_accuracy" and chance == 0.5
        elif rubric.artifact in ("peft_adapter", "pruned_student"):
            assert rubric.dataset in ADAPTER_METRICS
        else:
            assert rubric.metric == "accuracy" and get_spec(rubric.dataset).labels


# --- Lab 11: a preference adapter, scored on held-out pairs against the kit's SFT policy --------

LAB11 = "11_preference_tuning"


@pytest.fixture(scope="module")
def pairs_heldout(tmp_path_factory):
    from utils.data.preference_pairs import load_pairs

    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in load_pairs("validation")[:6]))
    return path


@pytest.fixture(scope="module")
def kit_sft(tokenizer, tmp_path_factory):
    """The kit's SFT policy on the tiny base (the grader's reference), and a hand-in trained a
    little further from it, saved as an adapter folder."""
    from utils.data.datasets import get_spec, load_split
    from utils.train.preference import train_policy

    reference, _ = train_policy(
        build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0),
        tokenizer,
        load_split("news_events", "train"),
        get_spec("news_events").fields,
    )
    folder = tmp_path_factory.mktemp("preference") / "adapter"
    reference.save_pretrained(str(folder))
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "adapter_model.safetensors")
    generator = torch.Generator().manual_seed(0)
    moved = {  # a policy trained on from the reference: its LoRA weights moved a little
        k: v + 0.05 * torch.randn(v.shape, generator=generator) if "lora_B" in k else v
        for k, v in weights.items()
    }
    save_file(moved, folder / "adapter_model.safetensors")
    return reference.eval(), folder


def test_a_preference_adapter_is_scored_as_the_lab_scores_it_and_the_base_restored(
    tokenizer, base, pairs_heldout, kit_sft, tmp_path
):
    from peft import PeftModel

    from utils.data.preference_pairs import read_pairs
    from utils.train.preference import preference_scores

    reference, folder = kit_sft
    zipped = make_submission(LAB11, "s1", {"adapter": folder}, info_for(base), BASE_ID, tmp_path)
    result = grade_bytes(zipped.read_bytes(), base, LAB11, pairs_heldout, None)
    assert result["status"] == "graded", result.get("reason")
    assert result["metric"] == "preference_accuracy" and result["chance"] == 0.5
    assert result["before"]["preference_accuracy"] == 0.0  # the reference against itself
    assert result["before"]["log_ratio_margin"] == 0.0
    assert_base_untouched(base)  # the grader's SFT reference was trained and removed

    # the lab's own function, against the reference trained by the lab's recipe on a fresh base
    pairs = read_pairs(pairs_heldout)
    policy = PeftModel.from_pretrained(
        build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0), str(folder)
    ).eval()
    lab = preference_scores(policy, tokenizer, pairs, beta=1.0, reference=reference)
    assert result["after"]["preference_accuracy"] == pytest.approx(lab["accuracy"])
    assert result["after"]["log_ratio_margin"] == pytest.approx(lab["margin"], rel=1e-4, abs=1e-4)
    assert result["after"]["policy_prefers_chosen"] == lab["policy_prefers_chosen"]
    assert 0 < result["after"]["log_ratio_per_token"] < 0.5
    assert result["after"]["n"] == len(pairs) == 6


def test_the_reference_itself_scores_no_preference_and_the_base_is_too_far_from_it(
    tokenizer, base, pairs_heldout, kit_sft, tmp_path
):
    from grading_helpers import adapter_folder

    reference, _ = kit_sft
    reference.save_pretrained(str(tmp_path / "sft"))
    zipped = make_submission(
        LAB11, "sft", {"adapter": tmp_path / "sft"}, info_for(base), BASE_ID, tmp_path
    )
    result = grade_bytes(zipped.read_bytes(), base, LAB11, pairs_heldout, None)
    assert result["status"] == "graded", result.get("reason")
    # merged, its log-probabilities differ from the reference's by float noise only: no pair
    # counts as preferred, so it earns the valid points alone
    assert result["after"]["preference_accuracy"] == 0.0 and result["score"] == 10.0

    empty = adapter_folder(tokenizer, tmp_path / "empty", trained=False)  # B = 0: the base
    zipped = make_submission(LAB11, "base", {"adapter": empty}, info_for(base), BASE_ID, tmp_path)
    result = grade_bytes(zipped.read_bytes(), base, LAB11, pairs_heldout, None)
    distance = result["after"]["log_ratio_per_token"]  # the tiny SFT run moved it this far
    assert distance > 1e-3
    rubric = tmp_path / "rubric.json"
    rubric.write_text(
        json.dumps(
            {**load_rubric(LAB11).to_dict(), "checks": {"max_log_ratio_per_token": distance / 2}}
        )
    )
    result = grade_bytes(zipped.read_bytes(), base, LAB11, pairs_heldout, rubric)
    assert result["status"] == "invalid" and result["score"] == 0.0
    assert "nats per token away from the reference policy" in result["reason"]


def test_pairs_made_on_this_base_carry_the_reference_and_the_grader_reads_it(
    tokenizer, base, kit_sft, tmp_path
):
    from utils.data.preference_pairs import load_pairs

    _, folder = kit_sft
    pairs = load_pairs("validation")[:4]
    stored = [  # a reference that found every chosen answer very unlikely: all pairs preferred
        {**p, "reference": {"base": base["fingerprint"], "chosen": -1e4, "rejected": 0.0}}
        for p in pairs
    ]
    path = tmp_path / "stored.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in stored))
    rubric = tmp_path / "rubric.json"
    rubric.write_text(
        json.dumps(
            {
                **load_rubric(LAB11).to_dict(),
                "checks": {"max_log_ratio_per_token": 1e6},
            }
        )
    )
    zipped = make_submission(LAB11, "s1", {"adapter": folder}, info_for(base), BASE_ID, tmp_path)
    result = grade_bytes(zipped.read_bytes(), base, LAB11, path, rubric)
    assert result["status"] == "graded", result.get("reason")
    assert result["after"]["preference_accuracy"] == 1.0  # read from the file, not trained
    other = [{**p, "reference": {**p["reference"], "base": "another-base"}} for p in stored]
    path.write_text("".join(json.dumps(p) + "\n" for p in other))
    result = grade_bytes(zipped.read_bytes(), base, LAB11, path, rubric)
    assert result["after"]["preference_accuracy"] < 1.0  # another base's: trained here instead


def test_a_preference_pre_check_reads_public_pairs_against_the_base(
    tokenizer, base, kit_sft, tmp_path
):
    _, folder = kit_sft
    zipped = make_submission(LAB11, "s1", {"adapter": folder}, info_for(base), BASE_ID, tmp_path)
    result = grade_bytes(zipped.read_bytes(), base, LAB11, None, None, trial=True)
    assert result["status"] == "graded", result.get("reason")
    assert result["after"]["n"] == 2


def test_a_malformed_preference_hand_in_scores_zero_with_its_reason(
    tokenizer, base, pairs_heldout, tmp_path
):
    from grading_helpers import adapter_folder

    folder = adapter_folder(tokenizer, tmp_path / "adapter", trained=True)
    zipped = make_submission(LAB11, "s1", {"adapter": folder}, info_for(base), BASE_ID, tmp_path)
    bad = rezip(zipped, edit_json("adapter/adapter_config.json", lambda c: c.update(r=512)))
    result = grade_bytes(bad, base, LAB11, pairs_heldout, None)
    assert result["status"] == "invalid" and result["score"] == 0.0
    assert "rank" in result["reason"]


# --- Lab 10: a pruned student, rebuilt from a recipe of removed blocks and its LoRA adapter -----

LAB10 = "10_compression"


def pruned_student(tokenizer, remove, seed=0):
    """The tiny base without the ``remove`` blocks, with a LoRA adapter whose B is not zero (a
    trained student)."""
    from peft import LoraConfig, get_peft_model

    from utils.train.pruning import drop_blocks

    student = drop_blocks(build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0), remove)
    torch.manual_seed(seed)
    student = get_peft_model(
        student, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"])
    )
    with torch.no_grad():
        for name, param in student.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    return student.eval()


def pruned_student_zip(state, student, folder, recipe):
    student.save_pretrained(str(folder / "adapter"))
    (folder / "recipe.json").write_text(json.dumps(recipe))
    return make_submission(
        LAB10,
        "s1",
        {"adapter": folder / "adapter", "recipe.json": folder / "recipe.json"},
        info_for(state),
        BASE_ID,
        folder,
    )


def test_a_pruned_student_is_rebuilt_from_its_recipe_scored_and_the_base_restored(
    tokenizer, base, sms_heldout, tmp_path
):
    from utils.data.datasets import get_spec, read_split_file
    from utils.eval.label_task import evaluate_labels

    student = pruned_student(tokenizer, [1])
    zipped = pruned_student_zip(base, student, tmp_path, {"remove_blocks": [1]})
    result = grade_bytes(zipped.read_bytes(), base, LAB10, sms_heldout, None)
    assert result["status"] == "graded", result.get("reason")
    assert_base_untouched(base)
    assert len(base["model"].model.layers) == base["model"].config.num_hidden_layers == 2

    # the same student built by hand, scored by the lab's own function
    rows = read_split_file(sms_heldout, get_spec("sms_spam"))
    lab = evaluate_labels(student, tokenizer, rows, ("ham", "spam"))
    assert result["after"]["accuracy"] == pytest.approx(lab["accuracy"])
    assert result["submission_details"]["removed_blocks"] == [1]
    whole = sum(p.numel() for p in base["model"].parameters())
    kept = sum(p.numel() for n, p in student.named_parameters() if "lora_" not in n)
    assert result["after"]["removed_share"] == pytest.approx(1 - kept / whole)
    rubric = load_rubric(LAB10)
    assert result["parts"]["size"] == pytest.approx(
        round(rubric.size.points * rubric.size.credit(1 - kept / whole), 2)
    )
    assert result["max_score"] == 100.0


PRUNED_DEFECTS = {  # case -> (the zip's change, words its reason must contain)
    "no recipe": (lambda files: files.pop("recipe.json"), "recipe.json is missing"),
    "not JSON": (lambda files: files.update({"recipe.json": b"remove 1"}), "not JSON"),
    "code instead of data": (
        lambda files: files.update({"recipe.json": b'{"remove_blocks": "__import__(\'os\')"}'}),
        "list of block indices",
    ),
    "a block the base lacks": (
        edit_json("recipe.json", lambda r: r.update(remove_blocks=[7])),
        "no block [7]",
    ),
    "every block": (
        edit_json("recipe.json", lambda r: r.update(remove_blocks=[0, 1])),
        "some, not all",
    ),
    "the adapter of another recipe": (  # trained with block 1 removed, handed in as block 0
        edit_json("recipe.json", lambda r: r.update(remove_blocks=[0])),
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(PRUNED_DEFECTS))
def test_a_malformed_pruned_student_scores_zero_with_its_reason(
    case, tokenizer, base, sms_heldout, tmp_path
):
    change, reason = PRUNED_DEFECTS[case]
    student = pruned_student(tokenizer, [1])
    zipped = pruned_student_zip(base, student, tmp_path, {"remove_blocks": [1]})
    result = grade_bytes(rezip(zipped, change), base, LAB10, sms_heldout, None)
    assert_base_untouched(base)
    assert len(base["model"].model.layers) == 2
    if reason is None:  # same shapes, another recipe: valid, graded as what it is
        assert result["status"] == "graded", result.get("reason")
        assert result["submission_details"]["removed_blocks"] == [0]
        return
    assert result["status"] == "invalid" and result["score"] == 0.0, result
    assert reason in result["reason"]


def test_an_adapter_for_the_unpruned_base_is_refused_by_name(
    tokenizer, base, sms_heldout, tmp_path
):
    from grading_helpers import adapter_folder

    folder = adapter_folder(tokenizer, tmp_path / "whole", trained=True)  # layers 0 and 1
    student = pruned_student(tokenizer, [1])
    zipped = pruned_student_zip(base, student, tmp_path, {"remove_blocks": [1]})

    def swap(files):
        for name in [n for n in files if n.startswith("adapter/")]:
            files.pop(name)
        for path in folder.iterdir():
            files[f"adapter/{path.name}"] = path.read_bytes()

    result = grade_bytes(rezip(zipped, swap), base, LAB10, sms_heldout, None)
    assert result["status"] == "invalid" and result["score"] == 0.0
    assert "layers.1" in result["reason"], result["reason"]
    assert_base_untouched(base)
    assert len(base["model"].model.layers) == 2
