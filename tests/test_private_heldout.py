"""An instructor's private held-out split: new in shape to every shipped split, balanced like the
shipped one, reproducible from the secret; a memoriser of the public held-out split gains nothing
on it; the rubric recalibrated on it keeps the reference at full marks."""

import json

import pytest
from grading_helpers import BASE_ID, info_for

from grading.heldout import main as heldout_main
from grading.rubric import RubricError, load_rubric, recalibrated, score
from grading.run import grade_batch
from utils.data.datasets import (
    build_bundled,
    data_dir,
    get_spec,
    load_split,
    normalise_text,
    read_split_file,
)
from utils.data.generators import events, sms
from utils.data.private_heldout import (
    GENERATED,
    _trigrams,
    balance,
    private_heldout,
    shape_report,
)


@pytest.mark.parametrize("name", GENERATED)
def test_the_reserved_shapes_leave_every_shipped_split_byte_for_byte_as_it_was(name, tmp_path):
    for split, path in build_bundled(name, tmp_path).items():
        assert path.read_bytes() == (data_dir() / name / f"{split}.jsonl").read_bytes(), split


def test_no_reserved_shape_is_a_shipped_shape():
    for shipped, reserved in (
        (sms.HAM_TEMPLATES + sms.SPAM_TEMPLATES, sms.RESERVED_HAM + sms.RESERVED_SPAM),
        (events.SHAPES, events.RESERVED_SHAPES),
    ):
        assert not {normalise_text(t) for t in shipped} & {normalise_text(t) for t in reserved}
        assert len(set(reserved)) == len(reserved)


@pytest.mark.parametrize("name", GENERATED)
def test_a_private_split_is_new_in_shape_balanced_and_reproducible(name, tmp_path):
    rows = private_heldout(name, "a secret")
    path = tmp_path / "private.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_split_file(path, get_spec(name)) == rows  # valid rows, as the grader reads them
    report = shape_report(name, rows)
    public = load_split(name, "heldout", allow_heldout=True)
    assert report["rows"] == len(public) and report["shared_shapes"] == []
    assert report["shared_texts"] == 0 and report["shapes"] == len({r["group"] for r in public})
    assert report["balance"] == pytest.approx(balance(name, public))
    assert private_heldout(name, "a secret") == rows
    other = private_heldout(name, "another secret")
    shared = {r["text"] for r in other} & {r["text"] for r in rows}
    assert len(shared) < 0.25 * len(rows)  # another secret, other rows (slot-free shapes repeat)


def test_an_unknown_dataset_and_the_labs_without_generated_rows_are_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="no generator"):
        private_heldout("animal_diet", "s")
    for lab, why in (("05", "calibrate on it with --heldout FILE"), ("06", "own test split")):
        assert heldout_main(["--lab", lab, "--seed", "s", "--out", str(tmp_path)]) == 2
        assert why in capsys.readouterr().err


def nearest_label(text, pool):
    """A memoriser: the label of the most similar pool message (word-trigram Jaccard)."""
    grams = _trigrams(text)
    return max(pool, key=lambda p: len(grams & p[0]) / (len(grams | p[0]) or 1))[1]


def accuracy(rows, pool):
    return sum(nearest_label(r["text"], pool) == r["label"] for r in rows) / len(rows)


def test_a_memoriser_of_the_public_heldout_split_gains_nothing_on_the_private_one():
    train = load_split("sms_spam", "train")
    public = load_split("sms_spam", "heldout", allow_heldout=True)
    honest = [(_trigrams(r["text"]), r["label"]) for r in train]
    cheat = honest + [(_trigrams(r["text"]), r["label"]) for r in public]
    private = private_heldout("sms_spam", "a secret")
    # the control: messages in the public held-out split's shapes, made the same way
    by_group = {r["group"]: r for r in public}
    templates = {"ham": sms.HAM_TEMPLATES, "spam": sms.SPAM_TEMPLATES}
    leaky = sms.generate_sms(
        {"ham": 92, "spam": 89},
        7,
        {
            label: [
                (g, templates[label][int(g.split("-")[1])])
                for g, r in by_group.items()
                if r["label"] == label
            ]
            for label in templates
        },
    )
    # memorising the public split pays on messages in its shapes (here 0.569 -> 1.000) ...
    assert accuracy(leaky, cheat) > accuracy(leaky, honest) + 0.3
    # ... and not on the private split (0.652 -> 0.663: 2 of 181 messages, what 181 more
    # training messages of any shape buy)
    assert accuracy(private, cheat) <= accuracy(private, honest) + 0.03


LAB02 = "02_selective_finetuning"


def test_recalibrated_bands_keep_the_reference_at_full_marks():
    rubric = load_rubric(LAB02)  # reference: before 0.326, after 0.967, chance 0.508
    harder = {"before": 0.41, "after": 0.90, "chance": 0.508}
    new = recalibrated(rubric, harder, "private.jsonl")
    assert new.after.full_at == pytest.approx(0.95 - 0.067) and new.after.zero_at == 0.533
    assert new.gain.zero_at == 0 and new.gain.full_at <= 0.90 - 0.508
    assert score(new, **harder)["score"] == new.max_score
    assert new.reference == harder and "private.jsonl" in new.calibration
    assert score(rubric, **harder)["score"] < rubric.max_score  # what recalibration is for
    perplexity = load_rubric("05_continual_pretraining")  # lower is better
    moved = recalibrated(perplexity, {"before": 15.0, "after": 10.4}, "docs.jsonl")
    assert moved.after.full_at >= 10.4 and moved.after.zero_at == pytest.approx(14.621)
    assert score(moved, 15.0, 10.4)["score"] == moved.max_score
    with pytest.raises(RubricError, match="gains nothing"):
        recalibrated(rubric, {"before": 0.6, "after": 0.55, "chance": 0.5}, "f")
    with pytest.raises(RubricError, match="no reference"):
        recalibrated(load_rubric("06_your_task"), harder, "f")


def trained_classifier_zip(tokenizer, base, folder):
    """Lab 02's artifact for the tiny base, really trained on the public training split."""
    import torch

    from utils.data.batching import tokenize_texts
    from utils.lab.submission import make_submission
    from utils.runtime.models import build_tiny_model
    from utils.train.classifier import (
        ClassifierSettings,
        classifier_logits,
        replace_head,
        save_classifier,
        train_classifier,
    )
    from utils.train.params import freeze_all_but

    model = build_tiny_model(tokenizer, num_layers=2, hidden_size=64, seed=0)
    replace_head(model, 2, seed=0)
    freeze_all_but(model, 1)
    train = load_split("sms_spam", "train")
    train_classifier(
        model,
        lambda i, m: classifier_logits(model, i, m),
        tokenize_texts(tokenizer, [r["text"] for r in train]),
        [("ham", "spam").index(r["label"]) for r in train],
        ClassifierSettings(epochs=3, learning_rate=3e-3, batch_size=16),
        pad_value=tokenizer.pad_token_id,
        progress=False,
    )
    tensors = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert all(torch.isfinite(t).all() for t in tensors.values())
    save_classifier(folder / "classifier", tensors, ("ham", "spam"))
    return make_submission(
        LAB02, "ref", {"classifier": folder / "classifier"}, info_for(base), BASE_ID, folder
    )


def test_one_command_makes_the_file_and_a_rubric_on_which_the_reference_keeps_full_marks(
    tokenizer, base, tmp_path, capsys
):
    reference = trained_classifier_zip(tokenizer, base, tmp_path)
    out = tmp_path / "private"
    args = ["--lab", "02", "--seed", "s3cret", "--out", str(out), "--base", "tiny"]
    assert heldout_main([*args, "--reference", str(reference)]) == 0
    printed = capsys.readouterr().out
    assert "texts shared: 0" in printed and "100 / 100" in printed
    heldout, rubric = out / f"{LAB02}.heldout.jsonl", out / f"{LAB02}.rubric.json"
    graded = grade_batch(
        [reference], tmp_path / "grades", base="tiny", heldout=heldout, rubric=rubric
    )[0]
    assert graded["status"] == "graded" and graded["score"] == graded["max_score"] == 100
    assert graded["after"]["accuracy"] > graded["chance"]  # a real gain, not a constant answer
    recorded = json.loads(rubric.read_text())["reference"]
    assert recorded["after"] == round(graded["after"]["accuracy"], 4)
    # an instructor's own file (here the same one) calibrates the same way, without a secret
    again = tmp_path / "again"
    own = ["--lab", "02", "--heldout", str(heldout), "--out", str(again), "--base", "tiny"]
    assert heldout_main([*own, "--reference", str(reference)]) == 0
    assert json.loads((again / f"{LAB02}.rubric.json").read_text()) == json.loads(
        rubric.read_text()
    )
