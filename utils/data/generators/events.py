"""News-style event sentences with who / what / when / where to extract (the seeds' 人/事/時/地).

Each sentence is built from a *shape* (word order and framing) and four slots. Every field is a
span of the sentence, copied verbatim, except that ``when`` and ``where`` drop their leading
preposition ("on Monday" -> "Monday"). Some shapes leave a field out (an unnamed actor, no date, no
place): that field is ``null``. ``group`` is the shape, so the splitter keeps each shape in one
split and the test split measures sentence shapes the model never trained on.
"""

from __future__ import annotations

import random
from collections.abc import Callable

FIELDS = ("who", "what", "when", "where")

WHO = [
    "the city council",
    "Mayor Ana Ortiz",
    "a team of volunteers",
    "Dr. Lena Park",
    "the fire brigade",
    "Northwind Airlines",
    "the national weather service",
    "two local students",
    "Professor Raj Mehta",
    "the hospital board",
    "a group of farmers",
    "the football club",
    "Senator Maria Lopez",
    "the transport authority",
    "Green Valley School",
    "the police",
    "a coalition of charities",
    "the harbour authority",
    "chef Tom Baker",
    "the museum trustees",
    "Coastline Energy",
    "the regional court",
    "engineer Sofia Rossi",
    "the health ministry",
    "a local bakery",
    "the university",
    "researchers at Delft University",
    "the park rangers",
    "Orbit Telecom",
    "the library staff",
    "the teachers' union",
    "the coast guard",
    "the zoo",
    "Judge Helen Wu",
    "the tenants' association",
    "Bluebird Bank",
    "the mountain rescue team",
    "a startup called Lumen",
    "the orchestra",
    "the water company",
]

WHAT = [
    "opened a new library",
    "announced a hiring freeze",
    "rescued two hikers",
    "approved the budget",
    "closed the main bridge",
    "launched a recycling scheme",
    "recalled a batch of baby food",
    "signed a trade agreement",
    "won the regional cup",
    "cancelled all evening flights",
    "planted two thousand trees",
    "raised the bus fares",
    "unveiled a solar farm",
    "banned cars from the old town",
    "found a rare orchid",
    "postponed the election debate",
    "donated ten laptops",
    "issued a storm warning",
    "arrested three suspects",
    "repaired the flood barrier",
    "hosted a charity concert",
    "cut the ribbon on a new clinic",
    "published a report on air quality",
    "lowered interest rates",
    "evacuated the east wing",
    "sold the old stadium",
    "restored a medieval painting",
    "tested a driverless bus",
    "reopened the swimming pool",
    "settled the pay dispute",
    "discovered a leaking pipe",
    "broke the attendance record",
    "handed out free flu shots",
    "shut down the night market",
    "rebuilt the playground",
    "opened an inquiry into the fire",
    "hired forty nurses",
    "fined the factory",
    "introduced a four-day week",
    "released a new album",
]

WHEN = [
    ("on Monday", "Monday"),
    ("on Tuesday", "Tuesday"),
    ("on Wednesday", "Wednesday"),
    ("on Thursday", "Thursday"),
    ("on Friday", "Friday"),
    ("on Saturday", "Saturday"),
    ("on Sunday", "Sunday"),
    ("last week", "last week"),
    ("yesterday", "yesterday"),
    ("this morning", "this morning"),
    ("on 3 March", "3 March"),
    ("on 14 July", "14 July"),
    ("on 28 October", "28 October"),
    ("in May 2024", "May 2024"),
    ("in 2019", "2019"),
    ("at noon on Friday", "noon on Friday"),
    ("late on Sunday night", "Sunday night"),
    ("earlier this month", "earlier this month"),
    ("on New Year's Eve", "New Year's Eve"),
    ("in the spring of 2023", "the spring of 2023"),
    ("on 1 December", "1 December"),
    ("two days ago", "two days ago"),
    ("last night", "last night"),
    ("in January", "January"),
]

WHERE = [
    ("in Leeds", "Leeds"),
    ("in Porto", "Porto"),
    ("in Nairobi", "Nairobi"),
    ("in Osaka", "Osaka"),
    ("in Valparaiso", "Valparaiso"),
    ("in Krakow", "Krakow"),
    ("in Halifax", "Halifax"),
    ("at the central station", "the central station"),
    ("near the harbour", "the harbour"),
    ("at the town hall", "the town hall"),
    ("in the old quarter", "the old quarter"),
    ("at Riverside Park", "Riverside Park"),
    ("in northern Ghana", "northern Ghana"),
    ("at the airport", "the airport"),
    ("in Brisbane", "Brisbane"),
    ("in Tartu", "Tartu"),
    ("outside the city hospital", "the city hospital"),
    ("in the Alps", "the Alps"),
    ("at Pier 9", "Pier 9"),
    ("in Montreal", "Montreal"),
    ("in Cusco", "Cusco"),
    ("on the east coast", "the east coast"),
    ("in Dundee", "Dundee"),
    ("at the county fair", "the county fair"),
]

# {who}/{what}/{when}/{where} are the sentence forms; a shape without a slot leaves that field null.
# "{Who}" / "{When}" / "{Where}" mean: capitalise the first letter (sentence start).
SHAPES = [
    "{Who} {what} {where} {when}.",
    "{Who} {what} {when} {where}.",
    "{When}, {who} {what} {where}.",
    "{Where}, {who} {what} {when}.",
    "{Who} {what} {when}, officials said.",
    "{Who} {what} {where}, according to a statement.",
    "Reports say {who} {what} {when}.",
    "Local news: {who} {what} {where} {when}.",
    "{When}, someone {what} {where}.",
    "It was {when} that {who} {what} {where}.",
    "{Where}: {who} {what}.",
    "Breaking: {who} {what} {when}.",
    "{Who} {what}.",
    "According to witnesses, {who} {what} {where} {when}.",
    "{When} {where}, {who} {what}.",
    "Unnamed sources said the group {what} {where} {when}.",
    "In a surprise move, {who} {what} {when}.",
    "{Who} confirmed it {what} {where} {when}.",
    "Residents cheered after {who} {what} {where}.",
    "{Where} {when}, {who} {what}.",
    "Officials say {who} {what} {where}.",
    "{When}, {who} quietly {what}.",
    "Update ({when}): {who} {what} {where}.",
    "{Who} {what} {where} {when}, and more is planned.",
    "Nobody expected that {who} {what} {when}.",
    "Earlier reports were wrong: {who} {what} {where}.",
    "{Where}, an unknown group {what} {when}.",
    "Sources confirm {who} {what} {when} {where}.",
    "Somebody {what} {where} {when}, reports say.",
    "Police are looking for whoever {what} {where}.",
    "{When}, a person who asked not to be named {what}.",
    "Someone reportedly {what} {when} {where}.",
    "{Where}, it emerged that somebody had {what}.",
    "According to a tip-off, an unidentified man {what} {when}.",
]


# Shapes that no shipped split uses, with every pattern of absent fields the shipped held-out
# split has: an instructor's private held-out file draws a secret choice of them
# (``utils.data.private_heldout``), so its sentences are new in shape to every student.
RESERVED_SHAPES = [
    "In what officials called a first, {who} {what} {where} {when}.",
    "Witnesses told reporters that {who} {what} {when} {where}.",
    "{When}, in a ceremony {where}, {who} {what}.",
    "As expected, {who} {what} {where} {when}.",
    "{Where} {when}: {who} {what}, a spokesperson said.",
    "Photos show {who} {what} {where}.",
    "{Who} {what} {where}, ending weeks of speculation.",
    "{When}, {who} {what}, the agency reported.",
    "In a brief statement {when}, {who} said they {what}.",
    "{When}, an anonymous donor {what}.",
    "Nobody has claimed responsibility after someone {what} {when}.",
    "Investigators say an unknown person {what} {where} {when}.",
]


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def render(shape: str, who: str, what: str, when: tuple[str, str], where: tuple[str, str]) -> dict:
    """One sentence and its target fields for a shape and slot values."""
    forms = {"who": who, "what": what, "when": when[0], "where": where[0]}
    values = {}
    for name in FIELDS:
        present = "{" + name + "}" in shape or "{" + _capitalise(name) + "}" in shape
        values[name] = (
            (
                who
                if name == "who"
                else what
                if name == "what"
                else when[1]
                if name == "when"
                else where[1]
            )
            if present
            else None
        )
    fills = {**forms, **{_capitalise(k): _capitalise(v) for k, v in forms.items()}}
    return {"text": shape.format(**fills), "target": values}


def generate_events(
    n_per_shape: int = 27,
    seed: int = 21,
    shapes: list[tuple[str, str]] | None = None,
    skip: Callable[[str], bool] | None = None,
) -> list[dict]:
    """``n_per_shape`` sentences for every shape, slots drawn with a seeded RNG, no duplicates.
    ``shapes`` (``(group, shape)`` pairs; default: every shipped shape) and ``skip`` (texts
    already used elsewhere) make an instructor's private held-out file from the reserved
    shapes."""
    rng = random.Random(seed)
    rows, seen = [], set()
    for group, shape in shapes or [(f"shape-{i:02d}", s) for i, s in enumerate(SHAPES)]:
        made = 0
        while made < n_per_shape:
            row = render(
                shape, rng.choice(WHO), rng.choice(WHAT), rng.choice(WHEN), rng.choice(WHERE)
            )
            if row["text"] in seen or (skip is not None and skip(row["text"])):
                continue
            seen.add(row["text"])
            rows.append({"text": row["text"], "target": row["target"], "group": group})
            made += 1
    return rows
