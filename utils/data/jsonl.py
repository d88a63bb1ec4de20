"""JSON Lines, read and written one way for the whole kit: every reader goes through
``jsonl_records``, which numbers lines from 1, skips blank ones and turns a line that does not
parse into a ``DataError`` naming it, so that a bad file is reported by file and line."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


class DataError(ValueError):
    """A dataset file or row is malformed; the message names file, line and problem."""


def jsonl_records(lines: Iterable[str], where: str) -> list[tuple[str, object]]:
    """``(where:line, record)`` for every non-blank JSONL line; a line that does not parse
    becomes a ``DataError`` in place of its record."""
    records: list[tuple[str, object]] = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                records.append((f"{where}:{number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                records.append((f"{where}:{number}", DataError(f"invalid JSON ({exc.msg})")))
            except RecursionError:
                records.append((f"{where}:{number}", DataError("invalid JSON (nested too deeply)")))
    return records


def parsed(where: str, record: object) -> object:
    """``record`` itself, or the ``DataError`` it stands for raised with ``where`` in front."""
    if isinstance(record, DataError):
        raise DataError(f"{where}: {record}")
    return record


def read_jsonl_records(path: Path) -> list[tuple[str, object]]:
    """``jsonl_records`` of a UTF-8 file, ``where`` being its path."""
    with open(path, encoding="utf-8") as fh:
        return jsonl_records(fh, str(path))


def read_jsonl(path: Path) -> list[object]:
    """The records of a JSONL file; the first line that does not parse raises ``DataError`` with
    the file and line."""
    return [parsed(where, record) for where, record in read_jsonl_records(Path(path))]


def write_jsonl(path: Path, records: Iterable[object]) -> Path:
    """One JSON value per line, UTF-8, non-ASCII kept as is; the folder is created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path
