"""Rubrics (one JSON file per lab in ``grading/rubrics``), declared once as typed dataclasses with
their defaults and checks, and the score a rubric gives."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

RUBRIC_DIR = Path(__file__).resolve().parent / "rubrics"
ARTIFACTS = (
    "prompt_spec",
    "classifier",
    "peft_adapter",
    "preference_adapter",
    "pruned_student",
    "capstone",
)
REFERENCE_POLICIES = (
    "kit_sft",
    "base",
)  # what a preference adapter's implicit reward is read against
MERGE_TARGETS = ("original", "nf4")
PEFT_TYPES = ("LORA", "IA3", "PROMPT_TUNING", "P_TUNING", "PREFIX_TUNING")  # scored types


class RubricError(ValueError):
    """A rubric file that the grader cannot use (the instructor's problem, not a student's)."""


@dataclass(frozen=True)
class Band:
    """Points for a measured value: none at ``zero_at`` or worse, all at ``full_at`` or better,
    linear in between (``full_at`` may be below ``zero_at`` when lower is better)."""

    points: float
    zero_at: float
    full_at: float

    def __post_init__(self) -> None:
        if self.points < 0:
            raise RubricError(f"points must be >= 0, got {self.points}")
        if self.zero_at == self.full_at:
            raise RubricError(f"zero_at and full_at must differ, both are {self.zero_at}")

    def credit(self, value: float) -> float:
        """The share of ``points`` that ``value`` earns (0 to 1)."""
        return min(1.0, max(0.0, (value - self.zero_at) / (self.full_at - self.zero_at)))


@dataclass(frozen=True)
class Checks:
    """What a valid submission may contain, per lab (the defaults hold where a rubric is silent)."""

    rank: tuple[int, int] = (1, 256)  # LoRA rank bounds, inclusive
    max_adapter_mb: float = 200  # size of adapter_model.safetensors
    allow_modules_to_save: bool = False  # PEFT full copies (Lab 05's embeddings and head)
    trainable_params: tuple[int, int] = (1, 10**12)  # a classifier's trained parameters
    max_shots: int = 16  # demonstrations in a prompt spec
    max_chars: int = 2000  # length of a prompt spec's instruction and label words
    peft_types: tuple[str, ...] = ("LORA",)  # the PEFT adapter types a lab accepts
    max_virtual_tokens: int = 128  # soft prompts and prefixes: learned positions
    # preference adapters: the largest mean |log-probability ratio| to the reference policy per
    # held-out answer token (a policy preference tuning moved far from where it started)
    max_log_ratio_per_token: float = 0.5
    # pruned students: the most decoder blocks a recipe may remove
    max_removed_blocks: int = 1000

    def __post_init__(self) -> None:
        for name in ("rank", "trainable_params"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise RubricError(f"checks.{name} must be [low, high] with 0 < low <= high")
        if self.max_adapter_mb <= 0 or self.max_shots < 0 or self.max_chars < 1:
            raise RubricError("checks.max_adapter_mb, max_shots and max_chars must be positive")
        unknown = sorted(set(self.peft_types) - set(PEFT_TYPES))
        if unknown or not self.peft_types:
            raise RubricError(f"checks.peft_types: {unknown or 'none'}; known: {list(PEFT_TYPES)}")
        if self.max_virtual_tokens < 1:
            raise RubricError("checks.max_virtual_tokens must be positive")
        if self.max_log_ratio_per_token <= 0:
            raise RubricError("checks.max_log_ratio_per_token must be positive")
        if self.max_removed_blocks < 1:
            raise RubricError("checks.max_removed_blocks must be positive")


@dataclass(frozen=True)
class Rubric:
    """How one lab's submissions are graded: what is scored, on which held-out data, for how many
    points, and what a valid submission may contain."""

    lab: str
    dataset: str  # a bundled dataset name, or "corpus" (Lab 05's domain + general documents)
    artifact: str  # one of ARTIFACTS
    metric: str  # the key of the lab's score that the bands read
    valid_points: float
    after: Band  # the submission's own score
    gain: Band  # its improvement over the base model
    checks: Checks = field(default_factory=Checks)
    metric_label: str = ""
    higher_is_better: bool = True  # false for perplexity
    merge_into: str = "original"  # "nf4": merge into the NF4-rounded weights (QLoRA)
    block_size: int | None = None  # perplexity rubrics: tokens per held-out block
    max_blocks: int | None = None  # and how many blocks are scored
    calibration: str = ""  # how the thresholds were set
    reference: dict = field(default_factory=dict)  # the reference solution's measured before/after
    reproduced_points: float = 0  # capstone: the claimed before/after re-measured within tolerance
    report_points: float = 0  # capstone: a PDF report (and its Markdown twin) handed in
    tolerance: float = 0.02  # capstone: largest |claimed - measured| (0-1 scale) still reproduced
    reference_policy: str = "kit_sft"  # preference_adapter: the kit's SFT policy, or the base
    size: Band | None = (
        None  # pruned_student: points for the share of the base's parameters removed
    )

    def __post_init__(self) -> None:
        if self.artifact not in ARTIFACTS:
            raise RubricError(f"artifact must be one of {ARTIFACTS}, got {self.artifact!r}")
        if self.merge_into not in MERGE_TARGETS:
            raise RubricError(f"merge_into must be one of {MERGE_TARGETS}, got {self.merge_into!r}")
        if not isinstance(self.higher_is_better, bool):
            raise RubricError("higher_is_better must be true or false")
        if min(self.valid_points, self.reproduced_points, self.report_points) < 0:
            raise RubricError("valid_points, reproduced_points and report_points must be >= 0")
        if self.reference_policy not in REFERENCE_POLICIES:
            raise RubricError(
                f"reference_policy must be one of {REFERENCE_POLICIES}, "
                f"got {self.reference_policy!r}"
            )
        if not 0 <= self.tolerance < 1:
            raise RubricError(f"tolerance must be in [0, 1), got {self.tolerance}")

    @classmethod
    def from_dict(cls, data: dict) -> Rubric:
        """A rubric from its JSON form; unknown or missing keys raise ``RubricError`` naming
        them."""
        known = {f.name for f in fields(cls)}
        required = {"lab", "dataset", "artifact", "metric", "valid_points", "after", "gain"}
        unknown, missing = sorted(set(data) - known), sorted(required - set(data))
        if unknown or missing:
            raise RubricError(f"rubric keys: unknown {unknown}, missing {missing}")
        checks = dict(data.get("checks") or {})
        unknown_checks = sorted(set(checks) - {f.name for f in fields(Checks)})
        if unknown_checks:
            raise RubricError(f"unknown checks {unknown_checks}")
        for name in ("rank", "trainable_params", "peft_types"):
            if name in checks:
                checks[name] = tuple(checks[name])
        try:
            return cls(
                **{
                    **data,
                    "after": Band(**data["after"]),
                    "gain": Band(**data["gain"]),
                    "size": Band(**data["size"]) if data.get("size") else None,
                    "checks": Checks(**checks),
                }
            )
        except TypeError as exc:
            raise RubricError(str(exc)) from None

    def to_dict(self) -> dict:
        """The JSON form."""
        return asdict(self)

    @property
    def max_score(self) -> float:
        """Points for a perfect submission."""
        return float(
            self.valid_points
            + self.after.points
            + self.gain.points
            + self.reproduced_points
            + self.report_points
            + (self.size.points if self.size else 0)
        )

    def improvement(self, before: float, after: float) -> float:
        """How much better ``after`` is than ``before`` (a drop, for a metric where lower is
        better)."""
        return after - before if self.higher_is_better else before - after


def rubric_labs() -> list[str]:
    """The labs that have a rubric: the only lab names the grader accepts."""
    return sorted(p.stem for p in RUBRIC_DIR.glob("*.json"))


def resolve_lab(name: str) -> str:
    """A lab with a rubric, by its full name or a unique prefix (``03b``)."""
    matches = [lab for lab in rubric_labs() if lab == name or lab.startswith(name)]
    if len(matches) != 1:
        raise ValueError(
            f"{name!r} names {len(matches) or 'no'} lab(s) with a rubric; one of {rubric_labs()}"
        )
    return matches[0]


def load_rubric(lab: str, path: Path | None = None) -> Rubric:
    """The rubric of ``lab``, one of ``rubric_labs()`` (or the instructor's file at ``path``).

    ``lab`` is matched against the known labs before any file is read, so a name from a submission
    never becomes part of a path. Raises ``KeyError`` for an unknown lab, ``RubricError`` for a
    rubric file the grader cannot use.
    """
    if path is None:
        if lab not in rubric_labs():
            raise KeyError(f"no rubric for this lab; labs with a rubric: {rubric_labs()}")
        path = RUBRIC_DIR / f"{lab}.json"
    path = Path(path)
    try:
        return Rubric.from_dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, RubricError) as exc:
        raise RubricError(f"{path.name}: {exc}") from None


def score(
    rubric: Rubric,
    before: float,
    after: float,
    chance: float | None = None,
    size: float | None = None,
) -> dict:
    """Points per rubric part for a valid submission, and the total (rounded to 0.01).

    ``chance`` (for accuracy: the share of the most common held-out label, what a constant
    answer scores) is where the gain is counted from when the base model scores below it, so a
    constant answer earns no gain. ``size``: what the rubric's size band reads (a pruned
    student's share of the base's parameters removed), scored only when the rubric has one."""
    start = max(before, chance) if chance is not None and rubric.higher_is_better else before
    gain = rubric.improvement(start, after)
    parts = {
        "valid submission": float(rubric.valid_points),
        "after": round(rubric.after.points * rubric.after.credit(after), 2),
        "gain over base": round(rubric.gain.points * rubric.gain.credit(gain), 2),
    }
    part_max = {
        "valid submission": float(rubric.valid_points),
        "after": float(rubric.after.points),
        "gain over base": float(rubric.gain.points),
    }
    if rubric.size is not None:
        parts["size"] = round(rubric.size.points * rubric.size.credit(size or 0.0), 2)
        part_max["size"] = float(rubric.size.points)
    return {
        "parts": parts,
        "part_max": part_max,
        "score": round(sum(parts.values()), 2),
        "max_score": rubric.max_score,
        "gain": gain,
    }


def recalibrated(rubric: Rubric, measured: dict, where: str) -> Rubric:
    """``rubric`` with its thresholds moved to a new held-out file, on which the reference
    solution measured ``measured`` (``before``, ``after`` and, for accuracy, ``chance``).

    Each band moves by as much as the reference's own number moved from ``rubric.reference``
    (so a harder file lowers the bar by what it costs the reference), and its full-marks end
    never passes the reference: the reference keeps full marks. ``where`` names the file in the
    rubric's ``calibration`` note."""
    if not {"before", "after"} <= set(rubric.reference):
        raise RubricError(
            f"{rubric.lab}: the rubric records no reference before/after to recalibrate from"
        )
    old, new = rubric.reference, measured

    def gain(numbers: dict) -> float:
        start = numbers["before"]
        if numbers.get("chance") is not None and rubric.higher_is_better:
            start = max(start, numbers["chance"])
        return rubric.improvement(start, numbers["after"])

    new_gain = gain(new)
    if new_gain <= 0:
        raise RubricError(
            f"{rubric.lab}: the reference solution gains nothing over the base on {where} "
            f"(before {new['before']:.4f}, after {new['after']:.4f}); check the file and the "
            "reference before grading with them"
        )

    def moved(band: Band, shift: float, reference: float, up: bool, zero_moves: bool) -> Band:
        full = band.full_at + shift
        full = min(full, reference) if up else max(full, reference)
        # rounded towards the reference, so rounding never costs it a point
        full = math.floor(full * 1000) / 1000 if up else math.ceil(full * 1000) / 1000
        zero = round(band.zero_at + shift, 3) if zero_moves else band.zero_at
        if zero == full:
            raise RubricError(f"{rubric.lab}: a band would close (zero_at = full_at = {full})")
        return Band(band.points, zero, full)

    after = moved(
        rubric.after, new["after"] - old["after"], new["after"], rubric.higher_is_better, True
    )
    gain_band = moved(rubric.gain, new_gain - gain(old), new_gain, True, False)
    numbers = ", ".join(f"{k} {v:.4f}" for k, v in new.items() if v is not None)
    return replace(
        rubric,
        after=after,
        gain=gain_band,
        reference={  # what the held-out file does not change (a student's size) stays
            **old,
            **{k: round(v, 4) for k, v in new.items() if v is not None},
        },
        calibration=(
            f"recalibrated on {where}: the reference solution measured {numbers} there "
            f"(on the file it was set on: {', '.join(f'{k} {v}' for k, v in old.items())}); "
            "each band moved by as much as the reference's number moved, its full-marks end "
            "never past the reference. Earlier: " + rubric.calibration
        ),
    )
