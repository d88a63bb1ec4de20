"""The capstone's data loader: formats, column mapping, bad rows named, cleaning, splitting."""

import csv
import json

import pytest

from utils.data.datasets import DataError
from utils.data.own_data import (
    TaskConfig,
    data_summary,
    drop_duplicates,
    examples_fingerprint,
    load_task_data,
    load_worked_example,
    read_records,
    remove_leaks,
    task_messages,
    to_examples,
    worked_examples,
    write_examples,
)

CLASSIFY = TaskConfig(kind="classification")


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def labelled(n, labels=("a", "b")):
    return [{"text": f"message number {i}", "label": labels[i % len(labels)]} for i in range(n)]


def test_bad_rows_are_named_by_file_and_line_and_counted(tmp_path):
    rows = labelled(40)
    rows[4] = "{not json"
    rows[9] = {"text": "", "label": "a"}
    rows[19] = {"label": "a"}
    data = load_task_data(write_jsonl(tmp_path / "d.jsonl", rows), CLASSIFY)
    assert data.counts["bad rows"] == 3
    assert [p.split(": ", 1)[0].rsplit(":", 1)[1] for p in data.problems] == ["5", "10", "20"]
    assert "invalid JSON" in data.problems[0] and "non-empty string" in data.problems[1]
    assert "missing field 'text'" in data.problems[2]
    assert sum(len(s) for s in data.splits.values()) == 37  # nothing else lost


def test_too_many_bad_rows_mean_a_wrong_mapping(tmp_path):
    rows = [{"sentence": f"s {i}", "label": "a" if i % 2 else "b"} for i in range(20)]
    with pytest.raises(DataError, match="column mapping"):
        load_task_data(write_jsonl(tmp_path / "d.jsonl", rows), CLASSIFY)
    mapped = TaskConfig(kind="classification", columns={"text": "sentence"})
    assert data_summary(load_task_data(tmp_path / "d.jsonl", mapped))["bad rows"] == 0


def test_csv_and_parquet_with_columns_mapped(tmp_path):
    path = tmp_path / "d.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["body", "topic"])
        writer.writerow(["first,\nwith a newline", "x"])
        writer.writerow(["second", "y"])
    task = TaskConfig(kind="classification", columns={"text": "body", "label": "topic"})
    records = read_records(path)
    assert [w.rsplit(":", 1)[1] for w, _ in records] == ["3", "4"]  # csv's line of the row's end
    examples, problems = to_examples(records, task)
    assert not problems and examples[0]["text"] == "first,\nwith a newline"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"body": ["p", "q"], "topic": ["x", "y"]}), tmp_path / "d.parquet")
    examples, _ = to_examples(read_records(tmp_path / "d.parquet"), task)
    assert [e["answer"] for e in examples] == ["x", "y"]


def test_alpaca_and_chat_rows():
    task = TaskConfig(kind="generation")
    alpaca = {"instruction": "Translate", "input": "кот", "output": "cat"}
    chat = {
        "messages": [
            {"role": "system", "content": "ignored: the task's instruction is used"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
        ]
    }
    examples, problems = to_examples([("a:1", alpaca), ("a:2", chat)], task)
    assert not problems
    assert examples[0]["text"] == "Translate\n\nкот" and examples[0]["answer"] == "cat"
    assert examples[1]["messages"] == [{"role": "user", "content": "hi"}]
    bad = [
        ("b:1", {"messages": [{"role": "user", "content": "no answer"}]}),
        ("b:2", {"messages": [{"role": "robot", "content": "x"}]}),
        ("b:3", {"messages": [{"role": "assistant", "content": "only an answer"}]}),
        ("b:4", {"instruction": "x"}),
    ]
    _, problems = to_examples(bad, task)
    assert [p.split(":")[1] for p in problems] == ["1", "2", "3", "4"]
    assert "no assistant message" in problems[0]
    assert "role 'robot'" in problems[1] and "starting with user" in problems[2]
    assert "output" in problems[3]


def test_extraction_answers_are_canonical_json_objects():
    task = TaskConfig(kind="extraction")
    rows = [
        ("e:1", {"text": "t", "target": {"who": "Ann", "when": None}}),
        ("e:2", {"text": "u", "target": '{"who": "Bo", "when": "today"}'}),
        ("e:3", {"text": "v", "target": "[1, 2]"}),
        ("e:4", {"text": "w", "target": "{broken"}),
    ]
    examples, problems = to_examples(rows, task)
    assert json.loads(examples[1]["answer"]) == {"who": "Bo", "when": "today"}
    assert "JSON object" in problems[0] and "not valid JSON" in problems[1]


def test_duplicates_and_conflicts_are_dropped_and_counted():
    examples, _ = to_examples(
        [
            ("d:1", {"text": "Hello!", "label": "a"}),
            ("d:2", {"text": "hello", "label": "a"}),  # same after normalising
            ("d:3", {"text": "other", "label": "a"}),
            ("d:4", {"text": "Other.", "label": "b"}),  # conflicting answers: both go
        ],
        CLASSIFY,
    )
    kept, duplicates, conflicting = drop_duplicates(examples)
    assert [e["where"] for e in kept] == ["d:1"] and (duplicates, conflicting) == (1, 2)


def test_leaks_leave_train_and_validation_not_test():
    def ex(text):
        return {"text": text, "answer": "a", "messages": [], "id": text}

    splits = {
        "train": [ex("x"), ex("y"), ex("z")],
        "validation": [ex("y"), ex("w")],
        "test": [ex("x"), ex("w")],
    }
    assert remove_leaks(splits) == 3
    assert [e["text"] for e in splits["train"]] == ["z"]
    assert [e["text"] for e in splits["validation"]] == ["y"]
    assert len(splits["test"]) == 2


def test_unsplit_data_is_split_stratified_and_seeded(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", labelled(200, labels=("a", "b", "b", "b")))
    data = load_task_data(path, CLASSIFY, seed=3)
    sizes = {k: len(v) for k, v in data.splits.items()}
    assert sizes == {"train": 140, "validation": 20, "test": 40}
    assert data_summary(data)["labels"]["test"] == {"a": 10, "b": 30}
    again = load_task_data(path, CLASSIFY, seed=3)
    assert examples_fingerprint(again.splits["test"]) == examples_fingerprint(data.splits["test"])
    other = load_task_data(path, CLASSIFY, seed=4)
    assert examples_fingerprint(other.splits["test"]) != examples_fingerprint(data.splits["test"])
    assert data.task.labels == ("a", "b")


def test_a_folder_with_train_and_test_gets_a_validation_split(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", labelled(80))
    write_jsonl(
        tmp_path / "test.jsonl",
        [{"text": "held out", "label": "a"}, {"text": "message number 0", "label": "a"}],
    )
    data = load_task_data(tmp_path, CLASSIFY)
    assert len(data.splits["test"]) == 2 and data.counts["leaked into test"] == 1
    assert len(data.splits["train"]) + len(data.splits["validation"]) == 79
    (tmp_path / "dev.csv").write_text("text,label\nx,a\n")
    (tmp_path / "validation.jsonl").write_text("")
    with pytest.raises(DataError, match="two files for the validation split"):
        load_task_data(tmp_path, CLASSIFY)


def test_labels_outside_a_given_label_set_are_refused(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", labelled(30, labels=("a", "b", "c")))
    with pytest.raises(DataError, match=r"labels \['c'\]"):
        load_task_data(path, TaskConfig(kind="classification", labels=("a", "b")))


def test_written_test_split_reads_back_identically(tmp_path):
    data = load_task_data(write_jsonl(tmp_path / "d.jsonl", labelled(50)), CLASSIFY)
    path = write_examples(tmp_path / "test.jsonl", data.splits["test"])
    back, problems = to_examples(read_records(path), data.task)
    assert not problems
    assert examples_fingerprint(back) == examples_fingerprint(data.splits["test"])


def test_task_messages_put_the_instruction_first_and_the_answer_last():
    example = to_examples([("m:1", {"text": "t", "label": "a"})], CLASSIFY)[0][0]
    task = TaskConfig(kind="classification", labels=("a", "b"))
    messages = task_messages(task, example)
    assert messages[0] == {
        "role": "system",
        "content": "Classify the text. Answer with one of: a, b.",
    }
    assert messages[-1] == {"role": "assistant", "content": "a"}
    assert task_messages(task, example, with_answer=False)[-1]["role"] == "user"


def test_worked_examples_ship_with_their_source_and_load_cleanly():
    assert worked_examples() == ["cyrillic_langid", "e2e_nlg"]
    sizes = {}
    for name in worked_examples():
        source, task, _ = load_worked_example(name)
        assert (source if source.is_dir() else source.parent).joinpath("SOURCE.md").is_file()
        data = load_task_data(source, task)
        assert data.problems == []
        sizes[name] = {k: len(v) for k, v in data.splits.items()}
    assert sizes["cyrillic_langid"] == {"train": 701, "validation": 99, "test": 204}
    assert sizes["e2e_nlg"] == {"train": 383, "validation": 55, "test": 109}
    with pytest.raises(KeyError, match="choose one of"):
        load_worked_example("nope")


def test_a_hub_id_goes_through_the_same_checks(monkeypatch):
    import datasets

    tables = {
        "train": [{"sentence": f"s{i}", "label": i % 2} for i in range(20)],
        "validation": [{"sentence": "v", "label": 0}, {"sentence": "w", "label": 1}],
        "test": [{"sentence": "t", "label": 1}, {"sentence": "", "label": 0}],
    }
    monkeypatch.setattr(datasets, "load_dataset", lambda dataset_id: tables)
    task = TaskConfig(kind="classification", columns={"text": "sentence"})
    data = load_task_data("someone/their-data", task)
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 20, "validation": 2, "test": 1}
    assert data.problems == [
        "someone/their-data:test row 1: field 'text' must be a non-empty string, got ''"
    ]
    assert data.task.labels == ("0", "1")
