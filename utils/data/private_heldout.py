"""An instructor's private held-out split: fresh rows from the kit's generators and a secret.

The shipped ``heldout`` split sits in every student's clone. A private one is made from shapes
that no shipped split uses (the generators' reserved shapes), chosen and filled by the
instructor's secret, with the shipped held-out split's size and label balance (for extraction:
its pattern of absent fields), and no text any shipped split has. ``shape_report`` says so, row
by row, so the instructor can check it before grading with it.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import Counter

from utils.data.datasets import ALL_SPLITS, get_spec, load_split, text_hash
from utils.data.generators import events, sms

GENERATED = ("sms_spam", "news_events")  # the datasets a private held-out file can be made for


def _rng(name: str, secret: str, purpose: str) -> random.Random:
    """A generator seeded from the secret (never stored anywhere), per dataset and purpose."""
    digest = hashlib.sha256(f"{name}\0{purpose}\0{secret}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def shipped_splits(name: str) -> dict[str, list[dict]]:
    """Every split the kit ships for ``name``, the public held-out split included."""
    return {split: load_split(name, split, allow_heldout=True) for split in ALL_SPLITS}


def absent_fields(row: dict) -> tuple[str, ...]:
    """An extraction row's fields that are null (its shape's pattern of absent fields)."""
    return tuple(sorted(k for k, v in row["target"].items() if v is None))


def private_heldout(name: str, secret: str) -> list[dict]:
    """A private held-out split for ``name`` (one of ``GENERATED``) from ``secret``: as many
    rows as the shipped held-out split, the same label balance (classification) or the same
    shapes' pattern of absent fields (extraction), every shape a reserved one, no shipped text.
    The same secret gives the same rows."""
    if name not in GENERATED:
        raise ValueError(
            f"{name!r} has no generator for a private held-out split; one of {list(GENERATED)}"
        )
    shipped = shipped_splits(name)
    public = shipped["heldout"]
    used = {text_hash(row["text"]) for rows in shipped.values() for row in rows}
    pick, seed = _rng(name, secret, "shapes"), _rng(name, secret, "rows").getrandbits(63)

    def skip(text: str) -> bool:
        return text_hash(text) in used

    if name == "sms_spam":
        shapes_per_label = Counter(row["label"] for row in {r["group"]: r for r in public}.values())
        pools = {"ham": sms.RESERVED_HAM, "spam": sms.RESERVED_SPAM}
        shapes = {
            label: [
                (f"{label}-reserved-{i:02d}", pools[label][i])
                for i in sorted(pick.sample(range(len(pools[label])), shapes_per_label[label]))
            ]
            for label in ("ham", "spam")
        }
        counts = Counter(row["label"] for row in public)
        rows = sms.generate_sms(dict(counts), seed, shapes, skip)
    else:
        wanted = sorted(absent_fields(r) for r in {r["group"]: r for r in public}.values())
        reserved = [
            (i, events.render(shape, "x", "y", ("z", "z"), ("w", "w")))
            for i, shape in enumerate(events.RESERVED_SHAPES)
        ]
        choices = [
            combo
            for combo in itertools.combinations(reserved, len(wanted))
            if sorted(absent_fields(row) for _, row in combo) == wanted
        ]
        if not choices:
            raise RuntimeError("no choice of reserved shapes has the held-out split's pattern")
        shapes = [
            (f"shape-reserved-{i:02d}", events.RESERVED_SHAPES[i]) for i, _ in pick.choice(choices)
        ]
        rows = events.generate_events(len(public) // len(wanted), seed, shapes, skip)
    pick.shuffle(rows)
    return [{"id": f"{name}-private-{i:05d}", **row} for i, row in enumerate(rows)]


def _trigrams(text: str) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return set(zip(words, words[1:], words[2:]))


def _nearest_overlap(rows: list[dict], others: list[dict]) -> float:
    """Mean over ``rows`` of the largest word-trigram Jaccard with any row of ``others``: how
    close, on average, a row comes to its nearest neighbour."""
    pool = [g for g in (_trigrams(o["text"]) for o in others) if g]
    best = []
    for row in rows:
        grams = _trigrams(row["text"])
        best.append(max((len(grams & g) / len(grams | g) for g in pool), default=0.0))
    return sum(best) / max(1, len(best))


def balance(name: str, rows: list[dict]) -> dict[str, float]:
    """Label shares (classification) or shares of rows with each field absent (extraction)."""
    if get_spec(name).task == "classification":
        counts = Counter(row["label"] for row in rows)
        return {label: counts[label] / len(rows) for label in sorted(counts)}
    fields = get_spec(name).fields
    return {
        f"no {field}": sum(row["target"][field] is None for row in rows) / len(rows)
        for field in fields
    }


def shape_report(name: str, rows: list[dict]) -> dict:
    """What an instructor checks before grading with a private file: its size and balance next
    to the shipped held-out split's, the shapes and texts it shares with any shipped split (both
    0 for a file from ``private_heldout``), and how close its rows come to the nearest shipped
    row (word-trigram Jaccard) next to the same figure for the shipped held-out split against
    the training split, whose shapes are disjoint by design."""
    shipped = shipped_splits(name)
    shipped_rows = [row for rows_ in shipped.values() for row in rows_]
    shipped_groups = {row.get("group") for row in shipped_rows}
    shipped_texts = {text_hash(row["text"]) for row in shipped_rows}
    return {
        "dataset": name,
        "rows": len(rows),
        "public_heldout_rows": len(shipped["heldout"]),
        "balance": balance(name, rows),
        "public_heldout_balance": balance(name, shipped["heldout"]),
        "shapes": len({row.get("group") for row in rows}),
        "shared_shapes": sorted({row.get("group") for row in rows} & shipped_groups - {None}),
        "shared_texts": sum(text_hash(row["text"]) in shipped_texts for row in rows),
        "nearest_shipped_overlap": round(_nearest_overlap(rows, shipped_rows), 3),
        "public_heldout_nearest_train_overlap": round(
            _nearest_overlap(shipped["heldout"], shipped["train"]), 3
        ),
    }
