"""Your own data for the capstone: read it, map its columns, check every row, split it.

One call, ``load_task_data(source, task)``, takes a JSONL / JSON / CSV / TSV / Parquet file, a
folder of split files (``train.*``, ``validation.*`` or ``dev.*``, ``test.*``) or a Hugging Face
dataset id, and returns examples of one shape for every task type:
``{"id", "text", "answer", "messages", "where"}`` — ``messages`` is the conversation up to the
answer (no system turn: the task's instruction is added when formatting), ``text`` its user
content (used for duplicates and leakage), ``answer`` what the model must write, ``where`` the
file and line it came from.

Four row formats are recognised, after renaming columns with ``TaskConfig.columns``:
``text`` + ``label`` (classification), ``text`` + ``target`` (extraction: an object or a JSON
string), ``text`` + ``reference`` (generation), ``instruction`` [+ ``input``] + ``output``
(Alpaca style), or chat ``messages`` ending with the assistant's answer. A bad row is reported
with its file and line and left out — never silently: ``TaskData.problems`` lists each one.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from utils.data.chat_format import instruction_chat, message_problems
from utils.data.datasets import find_leaks, split_rows, text_hash
from utils.data.jsonl import DataError, parsed, read_jsonl_records
from utils.runtime.storage import data_dir

TASK_KINDS = ("classification", "extraction", "generation")
SPLIT_NAMES = {"train": "train", "validation": "validation", "valid": "validation"}
SPLIT_NAMES |= {"dev": "validation", "val": "validation", "test": "test"}
SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
CAPSTONE_FRACTIONS = {"train": 0.7, "validation": 0.1, "test": 0.2}
VALIDATION_FROM_TRAIN = {"train": 0.875, "validation": 0.125}  # when only test came with the data
MAX_BAD_FRACTION = 0.1  # more bad rows than this: the column mapping is probably wrong


@dataclass(frozen=True)
class TaskConfig:
    """What the model must do with your data.

    ``kind``: ``classification`` (answer = one label), ``extraction`` (answer = a JSON object of
    ``fields``) or ``generation`` (answer = free text, scored against a reference).
    ``columns``: the kit's field name -> your column name, e.g. ``{"text": "sentence",
    "label": "category"}``. ``labels`` / ``fields`` are read from the data when left empty.
    ``instruction``: the system prompt (a default per kind when empty).
    """

    kind: str
    instruction: str = ""
    columns: dict[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in TASK_KINDS:
            raise ValueError(f"TaskConfig.kind must be one of {TASK_KINDS}, got {self.kind!r}")

    def system_prompt(self) -> str:
        """The instruction, or the kind's default one."""
        if self.instruction:
            return self.instruction
        if self.kind == "classification":
            return f"Classify the text. Answer with one of: {', '.join(self.labels)}."
        if self.kind == "extraction":
            return f"Extract {', '.join(self.fields)} as JSON; null if not stated."
        return "Answer the request."


@dataclass
class TaskData:
    """Examples by split, the task (labels/fields filled in), and every problem met on the way."""

    splits: dict[str, list[dict]]
    task: TaskConfig
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # what each cleaning step removed


# ---------------------------------------------------------------- reading files


def read_records(path: Path) -> list[tuple[str, object]]:
    """(where, record) for every row of one file; ``where`` is ``file:line`` (``file row N`` for
    Parquet). An unreadable line becomes a ``(where, DataError)`` pair instead of a record."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return read_jsonl_records(path)
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise DataError(f"{path}: a .json file must hold a list of records")
        return [(f"{path}[{i}]", record) for i, record in enumerate(data)]
    if suffix in (".csv", ".tsv"):
        return _read_csv(path, "\t" if suffix == ".tsv" else ",")
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return [(f"{path} row {i}", r) for i, r in enumerate(pq.read_table(path).to_pylist())]
    raise DataError(f"{path}: unsupported file type {suffix!r} (use one of {', '.join(SUFFIXES)})")


def _read_csv(path: Path, delimiter: str) -> list[tuple[str, object]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        return [(f"{path}:{reader.line_num}", dict(row)) for row in reader]


def find_split_files(folder: Path) -> dict[str, Path]:
    """``train``/``validation``/``test`` files in a folder (``dev``/``valid``/``val`` count as
    validation); other files are ignored, two files for one split are an error."""
    found: dict[str, Path] = {}
    for path in sorted(Path(folder).iterdir()):
        split = SPLIT_NAMES.get(path.stem.lower())
        if split and path.suffix.lower() in SUFFIXES:
            if split in found:
                raise DataError(
                    f"{folder}: two files for the {split} split: {found[split].name}, {path.name}"
                )
            found[split] = path
    if "train" not in found and "test" not in found:
        raise DataError(f"{folder}: no train.* or test.* file ({', '.join(SUFFIXES)})")
    return found


def read_source(source: str | Path) -> dict[str, list[tuple[str, object]]]:
    """Raw records by split (``"all"`` when the source is not split) from a file, a folder or a
    hub dataset id."""
    path = Path(source).expanduser()
    if path.is_dir():
        return {split: read_records(file) for split, file in find_split_files(path).items()}
    if path.is_file():
        return {"all": read_records(path)}
    if str(source).count("/") == 1 and not str(source).startswith((".", "/", "~")):
        return read_hub(str(source))
    raise DataError(f"{source}: no such file or folder (and not a hub id 'owner/name')")


def read_hub(dataset_id: str) -> dict[str, list[tuple[str, object]]]:
    """Records of a Hugging Face dataset (needs the internet), split names mapped to the kit's."""
    from datasets import load_dataset

    data = load_dataset(dataset_id)
    splits: dict[str, list[tuple[str, object]]] = {}
    for name, table in data.items():
        split = SPLIT_NAMES.get(name.lower(), "all" if len(data) == 1 else None)
        if split:
            splits[split] = [(f"{dataset_id}:{name} row {i}", r) for i, r in enumerate(table)]
    return splits


# ---------------------------------------------------------------- one row -> one example


def to_example(record: object, task: TaskConfig, where: str) -> dict:
    """One record as a kit example; raise DataError naming ``where`` and what is wrong."""
    record = parsed(where, record)
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected an object, got {type(record).__name__}")
    row = {ours: record[theirs] for ours, theirs in task.columns.items() if theirs in record}
    row |= {k: v for k, v in record.items() if k not in task.columns.values() and k not in row}
    if "messages" in row:
        messages, answer = _chat_turns(row["messages"], where)
    elif "instruction" in row:  # the task's instruction is the system message: a row's own
        user = _text(row, "instruction", where)  # instruction and input make the user turn
        extra = row.get("input") or ""
        messages = [{"role": "user", "content": f"{user}\n\n{extra}" if extra else user}]
        answer = _text(row, "output", where)
    else:
        messages = [{"role": "user", "content": _text(row, "text", where)}]
        answer = _answer(row, task, where)
    if task.kind == "extraction":
        answer = _json_answer(answer, where)
    text = "\n".join(m["content"] for m in messages if m["role"] == "user")
    return {
        "id": str(row.get("id") or where.replace("\\", "/").rsplit("/", 1)[-1]),
        "text": text,
        "answer": answer,
        "messages": messages,
        "where": where,
    }


def _text(row: dict, key: str, where: str) -> str:
    value = row.get(key)
    if value is None:
        raise DataError(f"{where}: missing field '{key}' (map your column with columns=)")
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: field '{key}' must be a non-empty string, got {value!r:.60}")
    return value.strip()


def _answer(row: dict, task: TaskConfig, where: str) -> str:
    """The answer of a ``text`` row: its label, target or reference."""
    if task.kind == "classification":
        label = row.get("label")
        return _text({"label": None if label is None else str(label)}, "label", where)
    if task.kind == "generation":
        return _text(
            row, "reference" if "reference" in row or "output" not in row else "output", where
        )
    target = row.get("target")
    if target is None:
        raise DataError(f"{where}: missing field 'target' (map your column with columns=)")
    return target if isinstance(target, str) else json.dumps(target, ensure_ascii=False)


def _json_answer(answer: str, where: str) -> str:
    """An extraction answer as canonical JSON of an object; DataError if it is not one."""
    try:
        value = json.loads(answer)
    except json.JSONDecodeError:
        raise DataError(f"{where}: the answer is not valid JSON: {answer!r:.60}") from None
    if not isinstance(value, dict):
        raise DataError(f"{where}: the answer must be a JSON object, got {answer!r:.60}")
    return json.dumps(value, ensure_ascii=False)


def _chat_turns(messages: object, where: str) -> tuple[list[dict], str]:
    """(conversation before the answer, the answer) from chat ``messages``, checked by the same
    rules as Lab 00's validator (``chat_format.message_problems``): every problem in one error."""
    problems = message_problems(messages)
    if problems:
        raise DataError(f"{where}: " + "; ".join(problems))
    turns = [{"role": m["role"], "content": m["content"]} for m in messages[:-1]]
    return [m for m in turns if m["role"] != "system"], messages[-1]["content"].strip()


def to_examples(records: list[tuple[str, object]], task: TaskConfig) -> tuple[list, list]:
    """(examples, problems) for a list of ``(where, record)``."""
    examples, problems = [], []
    for where, record in records:
        try:
            examples.append(to_example(record, task, where))
        except DataError as error:
            problems.append(str(error))
    return examples, problems


# ---------------------------------------------------------------- cleaning and splitting


def drop_duplicates(examples: list[dict]) -> tuple[list[dict], int, int]:
    """Keep the first of each input text (normalised); drop every copy of an input that appears
    with two different answers. Returns (kept, duplicates dropped, conflicting dropped)."""
    keys = [text_hash(example["text"]) for example in examples]
    answers: dict[str, set[str]] = {}
    for key, example in zip(keys, examples, strict=True):
        answers.setdefault(key, set()).add(example["answer"])
    seen: set[str] = set()
    kept, conflicting = [], 0
    for key, example in zip(keys, examples, strict=True):
        if len(answers[key]) > 1:
            conflicting += 1
        elif key not in seen:
            seen.add(key)
            kept.append(example)
    return kept, len(examples) - len(kept) - conflicting, conflicting


def remove_leaks(splits: dict[str, list[dict]]) -> int:
    """Drop from train and validation every example whose input is also in test (and from train
    what is in validation): the evaluation splits stay as they are. Returns how many went."""
    removed = 0
    for later, earlier in (("test", "validation"), ("test", "train"), ("validation", "train")):
        if later in splits and earlier in splits:
            leaks = find_leaks({earlier: splits[earlier], later: splits[later]})
            leaked = {text_hash(text) for _, _, text in leaks}
            before = len(splits[earlier])
            splits[earlier] = [e for e in splits[earlier] if text_hash(e["text"]) not in leaked]
            removed += before - len(splits[earlier])
    return removed


def split_examples(
    examples: list[dict], task: TaskConfig, seed: int, fractions: dict = CAPSTONE_FRACTIONS
) -> dict:
    """Split into ``fractions`` (default the capstone's 70/10/20), seeded, stratified by label for
    classification."""
    stratify = task.kind == "classification"
    rows = [{**e, "label": e["answer"] if stratify else ""} for e in examples]
    parts = split_rows(rows, seed, "ex", fractions)
    return {
        name: [{k: v for k, v in r.items() if k != "label"} for r in part]
        for name, part in parts.items()
    }


def complete_task(task: TaskConfig, examples: list[dict]) -> TaskConfig:
    """``task`` with its labels (classification) or fields (extraction) read from the data when
    not given; an example outside a given label set or field list is an error."""
    from dataclasses import replace

    if task.kind == "classification":
        found = tuple(sorted({e["answer"] for e in examples}))
        if len(found) < 2:
            raise DataError(f"classification needs at least two labels, found {list(found)}")
        unknown = sorted(set(found) - set(task.labels)) if task.labels else []
        if unknown:
            raise DataError(f"labels {unknown} are not in TaskConfig.labels {list(task.labels)}")
        return replace(task, labels=task.labels or found)
    if task.kind == "extraction":
        keys = tuple(dict.fromkeys(k for e in examples for k in json.loads(e["answer"])))
        return replace(task, fields=task.fields or keys)
    return task


def load_task_data(source: str | Path, task: TaskConfig, seed: int = 0) -> TaskData:
    """Read, check, de-duplicate and split your data (see the module docstring).

    Bad rows are listed in ``problems`` and left out; more than 10 % bad rows raise DataError,
    since that usually means a wrong column mapping. Duplicates are dropped within each split,
    inputs with conflicting answers everywhere, and anything in train or validation that is also
    in test is removed from train or validation — counts of each are in ``counts``.
    """
    raw = read_source(source)
    examples: dict[str, list[dict]] = {}
    problems: list[str] = []
    for split, records in raw.items():
        examples[split], bad = to_examples(records, task)
        problems += bad
    total = sum(len(r) for r in raw.values())
    if total == 0:
        raise DataError(f"{source}: no rows")
    if len(problems) > MAX_BAD_FRACTION * total:
        raise DataError(
            f"{source}: {len(problems)} of {total} rows are bad — is the column mapping right? "
            f"first: {problems[0]}"
        )
    counts = {"rows": total, "bad rows": len(problems), "duplicates": 0, "conflicting": 0}
    for split in list(examples):
        examples[split], duplicates, conflicting = drop_duplicates(examples[split])
        counts["duplicates"] += duplicates
        counts["conflicting"] += conflicting
    task = complete_task(task, [e for rows in examples.values() for e in rows])
    splits = _assemble_splits(examples, task, seed)
    counts["leaked into test"] = remove_leaks(splits)
    for name in ("train", "validation", "test"):
        if not splits.get(name):
            raise DataError(f"{source}: the {name} split is empty after cleaning")
    splits = {name: splits[name] for name in ("train", "validation", "test")}
    return TaskData(splits=splits, task=task, problems=problems, counts=counts)


def _assemble_splits(examples: dict[str, list[dict]], task: TaskConfig, seed: int) -> dict:
    if "all" in examples:
        return split_examples(examples["all"], task, seed)
    if "train" not in examples:
        raise DataError("a split source needs a train file")
    splits = dict(examples)
    if "validation" not in splits:
        fractions = VALIDATION_FROM_TRAIN if "test" in splits else CAPSTONE_FRACTIONS
        splits |= split_examples(splits["train"], task, seed, fractions)
    if "test" not in splits:
        raise DataError("a split source needs a test file (or give one file to split)")
    return splits


# ---------------------------------------------------------------- summaries


def sample_train(train: list[dict], n: int | None, seed: int) -> list[dict]:
    """At most ``n`` training examples, a seeded sample (all of them when ``n`` is None)."""
    if n is None or n >= len(train):
        return list(train)
    return random.Random(seed).sample(train, n)


def data_summary(data: TaskData) -> dict:
    """Split sizes, label counts per split (classification) and the cleaning counts."""
    summary = {"sizes": {name: len(rows) for name, rows in data.splits.items()}, **data.counts}
    if data.task.kind == "classification":
        summary["labels"] = {
            name: dict(Counter(e["answer"] for e in rows)) for name, rows in data.splits.items()
        }
    return summary


def examples_fingerprint(examples: list[dict]) -> str:
    """Short sha256 of examples (inputs and answers, in order): names a split in a report."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(
            json.dumps([example["messages"], example["answer"]], ensure_ascii=False).encode()
        )
    return digest.hexdigest()[:16]


def write_examples(path: Path, examples: list[dict]) -> Path:
    """Write examples as chat JSONL (``messages`` including the answer): the format the loader
    reads back, e.g. the test split handed in with a submission."""
    path = Path(path)
    lines = [
        json.dumps(
            {
                "id": e["id"],
                "messages": [*e["messages"], {"role": "assistant", "content": e["answer"]}],
            },
            ensure_ascii=False,
        )
        for e in examples
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def task_messages(task: TaskConfig, example: dict, with_answer: bool = True) -> list[dict]:
    """The chat for one example: the task's system prompt, the example's turns, and (for
    training) the answer as the assistant turn."""
    answer = example["answer"] if with_answer else None
    return instruction_chat(task.system_prompt(), example["messages"], answer)


def worked_examples() -> list[str]:
    """Names of the worked examples shipped in ``data/worked_examples/``."""

    return sorted(p.parent.name for p in (data_dir() / "worked_examples").glob("*/task.json"))


def load_worked_example(name: str) -> tuple[Path, TaskConfig, str]:
    """(data source, task, description) of a shipped worked example (its ``task.json``; its
    ``SOURCE.md`` says where the data comes from and under which licence)."""

    folder = data_dir() / "worked_examples" / name
    if not (folder / "task.json").is_file():
        raise KeyError(f"unknown worked example {name!r}: choose one of {worked_examples()}")
    spec = json.loads((folder / "task.json").read_text(encoding="utf-8"))
    task = TaskConfig(
        kind=spec["kind"], instruction=spec.get("instruction", ""), columns=spec.get("columns", {})
    )
    return (folder / spec["source"]).resolve(), task, spec.get("description", name)
