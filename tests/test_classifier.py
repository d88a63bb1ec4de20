import pytest
import torch

from utils.data.batching import load_classification_data, pad_batch, tokenize_texts
from utils.data.datasets import load_split
from utils.eval.metrics import classifier_accuracy
from utils.runtime.models import build_tiny_model
from utils.train.classifier import (
    ClassifierSettings,
    cache_hidden_states,
    classifier_logits,
    last_token_index,
    logits_from_hidden,
    replace_head,
    train_classifier,
)
from utils.train.params import count_trainable, freeze_all_but

TEXTS = [
    "free prize call now",
    "see you at 5",
    "WINNER!! claim your cash today by texting WIN",
    "ok",
    "can u pick up milk on the way home pls",
]


@pytest.fixture()
def classifier(tokenizer):
    model = build_tiny_model(tokenizer, num_layers=3, seed=0)
    replace_head(model, 2, seed=0)
    return model


def test_last_token_index_right_left_and_no_padding():
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 1, 0, 0, 0]])
    assert last_token_index(mask).tolist() == [2, 4, 4, 1]
    with pytest.raises(ValueError, match="no tokens"):
        last_token_index(torch.tensor([[0, 0]]))
    with pytest.raises(ValueError, match="batch, seq"):
        last_token_index(torch.ones(3))


@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_does_not_change_the_prediction(classifier, tokenizer, side):
    ids = tokenize_texts(tokenizer, TEXTS)
    padded, mask = pad_batch(ids, tokenizer.pad_token_id, side=side)
    with torch.no_grad():
        batched = classifier_logits(classifier, padded, mask)
        for i, row in enumerate(ids):
            alone = classifier_logits(
                classifier, torch.tensor([row]), torch.ones(1, len(row), dtype=torch.long)
            )
            assert torch.allclose(batched[i], alone[0], atol=1e-5)


def test_cached_prefix_gives_the_same_logits_at_every_depth(classifier, tokenizer):
    ids = tokenize_texts(tokenizer, TEXTS)
    cache = cache_hidden_states(
        classifier,
        ids,
        depths=[0, 1, 2, 3],
        pad_id=tokenizer.pad_token_id,
        batch_size=2,
        progress=False,
    )
    padded, mask = pad_batch(ids, tokenizer.pad_token_id)
    with torch.no_grad():
        full = classifier_logits(classifier, padded, mask)
        for depth, rows in cache.items():
            assert [r.shape[0] for r in rows] == [len(i) for i in ids]
            hidden, hmask = pad_batch(rows, 0.0)
            assert torch.equal(hmask, mask)
            assert torch.allclose(
                logits_from_hidden(classifier, hidden, hmask, depth), full, atol=1e-5
            ), depth


def test_freeze_all_but_counts_exactly_what_it_unfreezes(classifier):
    base = classifier.get_decoder()
    n = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert freeze_all_but(classifier, 0, train_norm=False) == n(classifier.lm_head)
    assert freeze_all_but(classifier, 1) == n(base.layers[-1]) + n(base.norm) + n(
        classifier.lm_head
    )
    assert freeze_all_but(classifier, 2) == n(base.layers[-1]) + n(base.layers[-2]) + n(
        base.norm
    ) + n(classifier.lm_head)
    assert not any(p.requires_grad for p in base.layers[0].parameters())
    assert freeze_all_but(classifier, 3, train_embeddings=True) == sum(
        p.numel() for p in classifier.parameters()
    )
    assert count_trainable(classifier)[0] == sum(p.numel() for p in classifier.parameters())


def test_training_on_the_cache_learns_and_is_deterministic(tokenizer):
    texts = [f"{w} message number {i}" for i in range(24) for w in ("alpha", "omega")]
    labels = [i % 2 for i in range(len(texts))]
    runs = []
    for _ in range(2):
        model = build_tiny_model(tokenizer, num_layers=2, seed=0)
        replace_head(model, 2, seed=0)
        freeze_all_but(model, 1)
        ids = tokenize_texts(tokenizer, texts)
        cache = cache_hidden_states(model, ids, [1], tokenizer.pad_token_id, progress=False)[1]
        logits_fn = lambda h, m, model=model: logits_from_hidden(model, h, m, 1)  # noqa: E731
        before = classifier_accuracy(logits_fn, cache, labels, pad_value=0.0)
        history = train_classifier(
            model,
            logits_fn,
            cache,
            labels,
            ClassifierSettings(epochs=15, learning_rate=3e-3, batch_size=8),
            pad_value=0.0,
            progress=False,
        )
        after = classifier_accuracy(logits_fn, cache, labels, pad_value=0.0)
        runs.append(history["loss"])
    assert after["loss"] < before["loss"] and after["accuracy"] == 1.0
    assert runs[0] == runs[1]


def test_config_and_frozen_model_errors(classifier):
    for bad in ({"epochs": 0}, {"learning_rate": 0}, {"batch_size": 0}):
        with pytest.raises(ValueError, match="ClassifierSettings"):
            ClassifierSettings(**bad)
    for p in classifier.parameters():
        p.requires_grad = False
    with pytest.raises(ValueError, match="every parameter is frozen"):
        train_classifier(classifier, None, [], [], ClassifierSettings())


def test_accuracy_keeps_predictions_in_item_order():
    items = [[1] * n for n in (5, 1, 3, 2, 4)]
    labels = [1, 1, 1, 0, 0]

    def parity(padded, mask):  # class = length is odd
        odd = (mask.sum(dim=1) % 2).float()
        return torch.stack([1 - odd, odd], dim=1)

    result = classifier_accuracy(parity, items, labels, batch_size=2)
    assert result["predictions"] == [1, 1, 1, 0, 0] and result["accuracy"] == 1.0


def test_classification_data_gives_rows_ids_and_classes_per_split(tokenizer):
    rows, ids, classes = load_classification_data(tokenizer, "sms_spam", {"train": 5, "test": None})
    assert len(rows["train"]) == len(ids["train"]) == len(classes["train"]) == 5
    assert len(rows["test"]) == len(load_split("sms_spam", "test"))
    assert [("ham", "spam")[c] for c in classes["test"]] == [r["label"] for r in rows["test"]]
    assert (
        ids["train"][0]
        == tokenizer(rows["train"][0]["text"], add_special_tokens=False)["input_ids"]
    )
