import json
import re

import pytest

from utils.data.datasets import (
    ALL_SPLITS,
    REGISTRY,
    DataError,
    build_bundled,
    find_leaks,
    get_spec,
    load_split,
    read_split_file,
    rows_from_hub,
    split_rows,
)
from utils.runtime.storage import data_dir

MIN_SIZE = {"sms_spam": 1000, "animal_diet": 150, "news_events": 600}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_bundled_splits_are_valid_and_big_enough(name):
    splits = {s: load_split(name, s, allow_heldout=True) for s in ALL_SPLITS}
    assert sum(len(rows) for rows in splits.values()) >= MIN_SIZE[name]
    spec = get_spec(name)
    for rows in splits.values():
        if spec.task == "classification":
            assert {r["label"] for r in rows} == set(spec.labels), "every split has every label"
        else:
            assert {tuple(r["target"]) for r in rows} == {spec.fields}, (
                "targets have the spec's fields"
            )


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_no_example_appears_in_two_splits(name):
    splits = {s: load_split(name, s, allow_heldout=True) for s in ALL_SPLITS}
    assert find_leaks(splits) == []
    ids = [r["id"] for rows in splits.values() for r in rows]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_bundled_files_are_reproducible_from_the_generator(name, tmp_path):
    paths = build_bundled(name, tmp_path)
    for split, path in paths.items():
        assert path.read_bytes() == (data_dir() / name / f"{split}.jsonl").read_bytes(), (
            f"data/{name}/{split}.jsonl differs from its generator: run python tools/make_data.py"
        )


def test_sms_message_shapes_never_cross_splits():
    groups = {
        s: {r["group"] for r in load_split("sms_spam", s, allow_heldout=True)} for s in ALL_SPLITS
    }
    for a in ALL_SPLITS:
        for b in ALL_SPLITS:
            assert a == b or not groups[a] & groups[b], f"a message shape is in both {a} and {b}"
    assert len(groups["test"]) >= 15


def test_event_fields_are_spans_of_their_sentence_and_some_are_null():
    splits = {s: load_split("news_events", s, allow_heldout=True) for s in ALL_SPLITS}
    rows = [r for rows in splits.values() for r in rows]
    for row in rows:
        for name, value in row["target"].items():
            assert value is None or value.lower() in row["text"].lower(), (row["id"], name)
    for name in get_spec("news_events").fields[::2]:  # who and when are left out by some shapes
        assert any(r["target"][name] is None for r in splits["train"]), name
        assert any(r["target"][name] is None for r in splits["test"]), name
    groups = {s: {r["group"] for r in rows} for s, rows in splits.items()}
    assert not groups["train"] & groups["test"], "test sentence shapes are never trained on"
    assert len({r["group"] for r in rows}) >= 20


@pytest.mark.parametrize(
    "target, problem",
    [
        ("[1]", "field 'target' must be a JSON object"),
        ('{"who": "a", "what": "b", "when": null}', "must have exactly the keys"),
        (
            '{"who": "a", "what": "", "when": null, "where": null}',
            "target field 'what' must be a non-empty string or null",
        ),
        ('{"who": 3, "what": "b", "when": null, "where": null}', "target field 'who'"),
    ],
)
def test_malformed_extraction_target_names_line_and_problem(tmp_path, target, problem):
    good = (
        '{"id": "e-1", "text": "Ann sang.", '
        '"target": {"who": "Ann", "what": "sang", "when": null, "where": null}}'
    )
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n" + f'{{"id": "e-2", "text": "x", "target": {target}}}' + "\n")
    with pytest.raises(DataError, match=re.escape(f"{path}:2: ") + ".*" + re.escape(problem)):
        read_split_file(path, get_spec("news_events"))


def test_leak_detection_normalises_text():
    splits = {
        "train": [{"text": "WIN a £1000 prize!!", "label": "spam"}],
        "test": [{"text": "win a 1000 prize", "label": "spam"}],
    }
    assert find_leaks(splits) == [("train", "test", "win a 1000 prize")]


def test_heldout_is_refused_to_labs():
    with pytest.raises(PermissionError, match="reserved for grading"):
        load_split("sms_spam", "heldout")
    with pytest.raises(ValueError, match="Unknown split"):
        load_split("sms_spam", "dev")
    with pytest.raises(KeyError, match="Unknown dataset"):
        load_split("imdb", "test")


@pytest.mark.parametrize(
    "line, problem",
    [
        ('{"id": "a", "text": "hi", "label": "ham"', "invalid JSON"),
        ('{"id": "a", "label": "ham"}', "missing field 'text'"),
        ('{"id": "a", "text": "hi", "label": "eggs"}', "unknown label 'eggs'"),
        ('["a", "hi", "ham"]', "expected a JSON object"),
        ('{"id": "a", "text": "", "label": "ham"}', "field 'text' must be a non-empty string"),
    ],
)
def test_malformed_row_names_file_line_and_problem(tmp_path, line, problem):
    path = tmp_path / "test.jsonl"
    good = json.dumps({"id": "ok", "text": "fine", "label": "spam"})
    path.write_text(f"{good}\n\n{good}\n{line}\n{good}\n")
    with pytest.raises(DataError) as err:
        read_split_file(path, get_spec("sms_spam"))
    assert f"{path}:4:" in str(err.value) and problem in str(err.value)


def test_hub_rows_are_mapped_to_kit_fields():
    spec = get_spec("sms_spam")
    table = [
        {"sms": "Free entry! txt WIN to 80082\n", "label": 1},
        {"sms": "see u at 5", "label": 0},
    ]
    rows = rows_from_hub(table, spec)
    assert [r["label"] for r in rows] == ["spam", "ham"] and rows[1]["text"] == "see u at 5"
    with pytest.raises(DataError, match="ucirvine/sms_spam row 0: unknown label"):
        rows_from_hub([{"sms": "x", "label": 7}], spec)


def test_split_is_stratified_and_seeded():
    rows = [{"text": f"t{i}", "label": "a" if i % 4 else "b"} for i in range(400)]
    first, again = split_rows(rows, 3, "x"), split_rows(rows, 3, "x")
    assert first == again
    assert abs(sum(r["label"] == "b" for r in first["test"]) / len(first["test"]) - 0.25) < 0.02
    assert split_rows(rows, 4, "x")["test"] != first["test"]


def test_sms_looks_like_real_sms():
    """Hard cases on purpose: money in ham, friendly spam, texting style, numbers and codes."""
    rows = [r for s in ALL_SPLITS for r in load_split("sms_spam", s, allow_heldout=True)]
    ham = [r["text"] for r in rows if r["label"] == "ham"]
    spam = [r["text"] for r in rows if r["label"] == "spam"]
    money = re.compile(r"£|\$|prize|won|win|code|quid|tenner|voucher", re.I)
    assert sum(bool(money.search(t)) for t in ham) / len(ham) > 0.1
    assert (
        sum(bool(re.search(r"\b(hey|hi|hun|babe|mum)\b", t, re.I)) for t in spam) / len(spam) > 0.1
    )
    assert sum(bool(re.search(r"\b(u|ur|2nite|pls|4)\b", t)) for t in ham + spam) / len(rows) > 0.25
    assert sum(bool(re.search(r"\b\d{5}\b|\b0\d{10}\b", t)) for t in spam) / len(spam) > 0.4
    assert len({len(t.split()) for t in ham}) > 15, "varied message lengths"


def test_hub_path_with_a_real_datasets_table(monkeypatch):
    """The Colab loader, fed a local `datasets.Dataset` with the hub's column names."""
    import datasets

    from utils.data.datasets import load_hub_splits

    table = datasets.Dataset.from_list(
        [
            {
                "sms": f"msg {i} call 0906{i:07d}" if i % 3 == 0 else f"see u at {i}",
                "label": int(i % 3 == 0),
            }
            for i in range(300)
        ]
    )
    monkeypatch.setattr(datasets, "load_dataset", lambda hub_id, split: table)
    splits = load_hub_splits(get_spec("sms_spam"))
    assert sum(len(v) for v in splits.values()) == 300 and find_leaks(splits) == []
    assert load_split("sms_spam", "test", source="hub") == splits["test"]
    with pytest.raises(DataError, match="no hub version"):
        load_split("animal_diet", "test", source="hub")
