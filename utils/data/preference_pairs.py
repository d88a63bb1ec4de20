"""The kit's bundled preference pairs (``data/preference_pairs/<split>.jsonl``), read and checked
one way: TRL's conversational form, ``{"prompt": [messages], "chosen": [assistant message],
"rejected": [assistant message]}``, plus the kit's ``id`` and the two answers' task ``scores``;
held-out pairs also carry ``reference``: the kit's SFT policy's log-probabilities of both answers
and the fingerprint of the base it was trained on, so the grader need not train it.
A malformed row raises ``DataError`` naming its file and line."""

from __future__ import annotations

from pathlib import Path

from utils.data.jsonl import DataError, parsed, read_jsonl_records
from utils.runtime.storage import data_dir

PAIR_SPLITS = ("train", "validation", "test")  # the lab's splits
HELDOUT = "heldout"  # the grader's pairs, sampled from held-out sentences
ROLES = ("system", "user", "assistant")
REFERENCE_LOGPS = ("chosen", "rejected")  # a held-out pair's stored reference log-probabilities


def pairs_dir() -> Path:
    """Where the bundled pairs live: ``<data>/preference_pairs``."""
    return data_dir() / "preference_pairs"


def _check_messages(value: object, what: str, answer: bool) -> None:
    if not isinstance(value, list) or not value:
        raise DataError(f"'{what}' must be a non-empty list of chat messages")
    for message in value:
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise DataError(f"'{what}' holds a message that is not {{'role', 'content'}}")
        if message["role"] not in ROLES or not isinstance(message["content"], str):
            raise DataError(f"'{what}' holds a message with role {message['role']!r} or no text")
    if answer and (len(value) != 1 or value[0]["role"] != "assistant"):
        raise DataError(f"'{what}' must be exactly one assistant message")


def validate_pair(record: object, where: str) -> dict:
    """``record`` if it is a well-formed pair, else ``DataError`` naming ``where`` and the
    problem (missing key, bad message, identical answers, scores out of order)."""
    try:
        if not isinstance(record, dict):
            raise DataError("a pair must be a JSON object")
        missing = [k for k in ("id", "prompt", "chosen", "rejected") if k not in record]
        if missing:
            raise DataError(f"missing {', '.join(missing)}")
        _check_messages(record["prompt"], "prompt", answer=False)
        _check_messages(record["chosen"], "chosen", answer=True)
        _check_messages(record["rejected"], "rejected", answer=True)
        if record["chosen"][0]["content"] == record["rejected"][0]["content"]:
            raise DataError("chosen and rejected are the same answer")
        scores = record.get("scores")
        if scores is not None:
            ok = isinstance(scores, list) and len(scores) == 2
            if not ok or not all(isinstance(s, (int, float)) for s in scores):
                raise DataError("'scores' must be two numbers, [chosen, rejected]")
            if scores[0] <= scores[1]:
                raise DataError(f"chosen scores {scores[0]} but rejected {scores[1]}")
        reference = record.get("reference")
        if reference is not None:
            ok = isinstance(reference, dict) and set(reference) == {"base", "chosen", "rejected"}
            numbers = ok and all(isinstance(reference[k], (int, float)) for k in REFERENCE_LOGPS)
            if not numbers or not isinstance(reference["base"], str):
                raise DataError(
                    "'reference' must be {'base': fingerprint, 'chosen': log-prob, "
                    "'rejected': log-prob}"
                )
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    return record


def read_pairs(path: Path) -> list[dict]:
    """Every pair in a JSONL file, each checked by ``validate_pair``."""
    return [validate_pair(parsed(w, r), w) for w, r in read_jsonl_records(Path(path))]


def load_pairs(split: str, allow_heldout: bool = False) -> list[dict]:
    """The bundled pairs of one split (``train``, ``validation`` or ``test``; ``heldout`` is for
    ``grading/`` only and needs ``allow_heldout=True``)."""
    if split == HELDOUT and not allow_heldout:
        raise PermissionError("The 'heldout' pairs are reserved for grading; labs use 'test'.")
    if split not in (*PAIR_SPLITS, HELDOUT):
        raise ValueError(f"no preference split {split!r}; choose one of {PAIR_SPLITS}")
    path = pairs_dir() / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: python tools/make_preference_pairs.py")
    return read_pairs(path)
