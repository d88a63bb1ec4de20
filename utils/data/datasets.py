"""The kit's datasets: a registry, fixed seeded splits, validated loading, and a leakage check.

Every dataset ships offline as JSONL (``data/<name>/<split>.jsonl``), written by a seeded generator
in ``utils/data/generators``; on Colab the same loader can read the hub version (``source="hub"``),
mapped to the same fields. Splits ``train``/``validation``/``test`` are for labs; ``heldout`` is for
grading.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from utils.data.generators.animals import animal_rows
from utils.data.generators.events import generate_events
from utils.data.generators.sms import generate_sms
from utils.data.jsonl import DataError, parsed, read_jsonl_records
from utils.runtime.storage import data_dir

LAB_SPLITS = ("train", "validation", "test")
ALL_SPLITS = (*LAB_SPLITS, "heldout")
SPLIT_FRACTIONS = {"train": 0.55, "validation": 0.10, "test": 0.20, "heldout": 0.15}


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is, where it comes from, and what a valid row looks like."""

    name: str
    task: str  # "classification" (text -> label) or "extraction" (text -> target dict of fields)
    description: str
    labels: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()  # extraction: the keys of ``target`` (each a string or null)
    hub_id: str | None = None
    hub_columns: dict[str, str] = field(default_factory=dict)  # hub column -> kit field
    hub_labels: dict = field(default_factory=dict)  # hub label value -> kit label
    generator: Callable[[], list[dict]] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.task == "classification" and len(self.labels) < 2:
            raise ValueError(f"DatasetSpec.labels: {self.name} needs at least two labels")
        if self.task == "extraction" and not self.fields:
            raise ValueError(f"DatasetSpec.fields: {self.name} needs at least one field")


def _sms_rows() -> list[dict]:

    return generate_sms()


def _event_rows() -> list[dict]:

    return generate_events()


def _animal_rows() -> list[dict]:

    return animal_rows()


REGISTRY: dict[str, DatasetSpec] = {
    "sms_spam": DatasetSpec(
        name="sms_spam",
        task="classification",
        labels=("ham", "spam"),
        description=(
            "SMS messages, spam or ham (generated offline; the UCI SMS Spam Collection on the hub)"
        ),
        hub_id="ucirvine/sms_spam",
        hub_columns={"sms": "text", "label": "label"},
        hub_labels={0: "ham", 1: "spam"},
        generator=_sms_rows,
        seed=11,
    ),
    "animal_diet": DatasetSpec(
        name="animal_diet",
        task="classification",
        labels=("carnivore", "herbivore", "omnivore"),
        description="animal name -> diet (written by the project; no hub version, used everywhere)",
        generator=_animal_rows,
        seed=12,
    ),
    "news_events": DatasetSpec(
        name="news_events",
        task="extraction",
        fields=("who", "what", "when", "where"),
        description="news-style sentences -> who/what/when/where as JSON, null when absent "
        "(generated offline from 34 sentence shapes; no hub version; the split seed was "
        "picked so every split has sentences without a who, a when and a where)",
        generator=_event_rows,
        seed=36,
    ),
}


def get_spec(name: str) -> DatasetSpec:
    """The registry entry for ``name``, with a helpful error for unknown names."""
    if name not in REGISTRY:
        raise KeyError(f"Unknown dataset {name!r}: choose one of {sorted(REGISTRY)}")
    return REGISTRY[name]


def normalise_text(text: str) -> str:
    """Lower-case, drop punctuation, fold whitespace: the form used to detect duplicates."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.lower())).strip()


def text_hash(text: str) -> str:
    """sha1 of the normalised text."""
    return hashlib.sha1(normalise_text(text).encode()).hexdigest()


def split_rows(
    rows: list[dict], seed: int, prefix: str, fractions: dict[str, float] = SPLIT_FRACTIONS
) -> dict[str, list[dict]]:
    """Give rows stable ids and deal them into ``fractions``' splits (default: the four bundled
    ones), stratified by label, seeded. A row's own ``id`` is kept.

    Rows with a ``group`` (e.g. the template a message was generated from) are dealt group by
    group, so no group spans two splits; other rows are dealt one by one.
    """
    rng = random.Random(seed)
    by_label: dict[str, dict[str, list[dict]]] = {}
    for index, row in enumerate(rows):
        group = row.get("group", f"row-{index}")
        by_label.setdefault(row.get("label", ""), {}).setdefault(group, []).append(
            {"id": f"{prefix}-{index:05d}", **row}
        )
    splits: dict[str, list[dict]] = {name: [] for name in fractions}
    for groups in by_label.values():
        names = sorted(groups)
        rng.shuffle(names)
        total, done = sum(len(g) for g in groups.values()), 0
        targets = _cumulative_targets(total, fractions)
        for name in names:
            split = next(s for s, limit in targets if done < limit)
            splits[split] += groups[name]
            done += len(groups[name])
    for name in fractions:
        rng.shuffle(splits[name])
    return splits


def _cumulative_targets(total: int, fractions: dict[str, float]) -> list[tuple[str, float]]:
    """(split, cumulative row count where it ends) in split order."""
    targets, cumulative = [], 0.0
    for name, fraction in fractions.items():
        cumulative += fraction * total
        targets.append((name, cumulative))
    targets[-1] = (targets[-1][0], float("inf"))
    return targets


def build_bundled(name: str, out_dir: Path | None = None) -> dict[str, Path]:
    """(Re)generate a dataset's JSONL splits from its seeded generator; return the written paths."""
    spec = get_spec(name)
    folder = (out_dir or data_dir()) / name
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, rows in split_rows(spec.generator(), spec.seed, name).items():
        paths[split] = folder / f"{split}.jsonl"
        paths[split].write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return paths


def validate_row(row: object, spec: DatasetSpec, where: str) -> dict:
    """Check one parsed row; raise DataError naming ``where`` (file:line) and the problem."""
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    answer_key = "target" if spec.task == "extraction" else "label"
    for key in ("id", "text", answer_key):
        if key not in row:
            raise DataError(f"{where}: missing field '{key}'")
    if spec.labels and row["label"] not in spec.labels:
        raise DataError(
            f"{where}: unknown label {row['label']!r} (expected one of {list(spec.labels)})"
        )
    for key in ("id", "text") + (() if spec.task == "extraction" else ("label",)):
        if not isinstance(row[key], str) or not row[key].strip():
            raise DataError(f"{where}: field '{key}' must be a non-empty string")
    if spec.task == "extraction":
        _validate_target(row["target"], spec.fields, where)
    return row


def _validate_target(target: object, fields: tuple[str, ...], where: str) -> None:
    """An extraction target is an object with exactly ``fields``, each a non-empty string or
    null."""
    if not isinstance(target, dict):
        raise DataError(
            f"{where}: field 'target' must be a JSON object, got {type(target).__name__}"
        )
    if set(target) != set(fields):
        raise DataError(
            f"{where}: 'target' must have exactly the keys {list(fields)}, got {sorted(target)}"
        )
    for key, value in target.items():
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise DataError(f"{where}: target field '{key}' must be a non-empty string or null")


def read_split_file(path: Path, spec: DatasetSpec) -> list[dict]:
    """The rows of one of the kit's split files, each validated against ``spec``; the first bad
    line raises DataError with file and line."""
    if not path.is_file():
        raise DataError(f"{path}: file not found (regenerate with: python tools/make_data.py)")
    return [validate_row(parsed(w, record), spec, w) for w, record in read_jsonl_records(path)]


def rows_from_hub(table, spec: DatasetSpec) -> list[dict]:
    """Map a hub table (any iterable of dicts) to kit rows with the spec's column and label maps."""
    rows = []
    for index, record in enumerate(table):
        row = {ours: record[theirs] for theirs, ours in spec.hub_columns.items()}
        row["label"] = spec.hub_labels.get(row["label"], row["label"])
        rows.append(
            validate_row(
                {**row, "id": f"{spec.name}-{index:05d}"}, spec, f"{spec.hub_id} row {index}"
            )
        )
    return rows


def load_hub_splits(spec: DatasetSpec) -> dict[str, list[dict]]:
    """Download the hub version (Colab) and split it with the same seeded procedure."""
    if spec.hub_id is None:
        raise DataError(f"{spec.name} has no hub version; use source='bundled'")
    from datasets import load_dataset

    table = load_dataset(spec.hub_id, split="train")
    rows = [{k: v for k, v in row.items() if k != "id"} for row in rows_from_hub(table, spec)]
    return split_rows(rows, spec.seed, spec.name)


def load_split(
    name: str, split: str, source: str = "bundled", allow_heldout: bool = False
) -> list[dict]:
    """Rows of one split. ``heldout`` is for ``grading/`` only and needs ``allow_heldout=True``."""
    spec = get_spec(name)
    if split not in ALL_SPLITS:
        raise ValueError(f"Unknown split {split!r}: choose one of {list(LAB_SPLITS)}")
    if split == "heldout" and not allow_heldout:
        raise PermissionError("The 'heldout' split is reserved for grading; labs use 'test'.")
    if source == "hub":
        return load_hub_splits(spec)[split]
    if source != "bundled":
        raise ValueError(f"source must be 'bundled' or 'hub', got {source!r}")
    return read_split_file(data_dir() / name / f"{split}.jsonl", spec)


def find_leaks(splits: dict[str, list[dict]]) -> list[tuple[str, str, str]]:
    """(split_a, split_b, text) for every normalised text found in two different splits."""
    first_seen: dict[str, str] = {}
    leaks = []
    for split, rows in splits.items():
        for row in rows:
            key = text_hash(row["text"])
            if key in first_seen and first_seen[key] != split:
                leaks.append((first_seen[key], split, row["text"]))
            first_seen.setdefault(key, split)
    return leaks


def dataset_fingerprint(rows: list[dict]) -> str:
    """Short sha256 of a split's rows (ids, texts, labels or targets) for run records."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(
            json.dumps([row["id"], row["text"], row.get("label"), row.get("target")]).encode()
        )
    return digest.hexdigest()[:16]
