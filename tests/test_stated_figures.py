"""Every figure a lab's text types rather than renders from its results (the introduction's time,
trainable parameters and before → after; parameter shares and counts in the conclusions) agrees
with what the lab's last full run recorded (``docs/results/``, written by the labs themselves):
re-run a lab, collect its results, and a stale figure fails here. Figures that move from run to
run are rendered at build time instead (``{{ lab:path }}`` placeholders, ``tools/build_labs``)."""

import json
import re

import pytest

from utils.runtime.storage import REPO_ROOT


def text_of(lab: str) -> str:
    """The lab source's markdown as one line of prose (comment markers and line breaks removed)."""
    source = (REPO_ROOT / "src" / f"{lab}.py").read_text()
    return re.sub(r"\s*\n#\s?", " ", source)


def result(name: str) -> dict:
    return json.loads((REPO_ROOT / "docs" / "results" / f"{name}.json").read_text())


def minutes(name: str) -> float:
    return result(name)["wall_seconds"] / 60


def base_params() -> int:
    """The embedded model's parameters (Lab 02 counts them)."""
    return result("02_selective_finetuning")["total_params"]


def sweep_row(index: int) -> dict:
    """One row of Lab 03B's rank and target sweep (r 4, 4, 16, 16, 64, 64; then q,v and q,k,v,o
    at r = 16)."""
    return result("03b_lora_peft")["sweep"][index]


def number(text: str) -> float:
    return float(text.replace(",", ""))


# (lab source, pattern with one group per figure, the recorded figures, tolerance: (kind, amount))
FIGURES = [
    (
        "00_data",
        r"\*\*Time\*\*: about (\d+) minutes",
        lambda: [minutes("00_data")],
        ("relative", 0.2),
    ),
    (
        "01_in_context_learning",
        r"\*\*Time\*\*: ≤ (\d+) minutes",
        lambda: [minutes("01_in_context_learning")],
        ("at most", 0),
    ),
    (
        "02_selective_finetuning",
        r"\*\*Time\*\*: ≤ (\d+) minutes",
        lambda: [minutes("02_selective_finetuning")],
        ("at most", 0),
    ),
    (
        "02_selective_finetuning",
        r"~([\d.]+) M trainable parameters out of ~([\d.]+) M \(([\d.]+) %\)",
        lambda: [
            result("02_selective_finetuning")["trainable_params"] / 1e6,
            result("02_selective_finetuning")["total_params"] / 1e6,
            100
            * result("02_selective_finetuning")["trainable_params"]
            / result("02_selective_finetuning")["total_params"],
        ],
        ("relative", 0.05),
    ),
    (
        "02_selective_finetuning",
        r"to about (\d+) % after training",
        lambda: [100 * result("02_selective_finetuning")["after"]["accuracy"]],
        ("absolute", 4),
    ),
    (
        "03_lora",
        r"\*\*Time\*\*: about (\d+) minutes",
        lambda: [minutes("03_lora")],
        ("relative", 0.2),
    ),
    (
        "03_lora",
        r"([\d,]+) adapter parameters \(\+ ([\d,]+) for the head\)",
        lambda: [460_800, result("03_lora")["lora_row"]["trainable params"] - 460_800],
        ("relative", 0),
    ),
    (
        "03_lora",
        r"test accuracy about ([\d.]+) after one epoch",
        lambda: [result("03_lora")["after"]["accuracy"]],
        ("absolute", 0.04),
    ),
    (
        "03b_lora_peft",
        r"\*\*Time\*\*: about (\d+) minutes",
        lambda: [minutes("03b_lora_peft")],
        ("relative", 0.2),
    ),
    (
        "03b_lora_peft",
        r"exact match ([\d.]+) → about ([\d.]+) on the (\d+) test sentences",
        lambda: [
            result("03b_lora_peft")["before"]["exact_match"],
            result("03b_lora_peft")["after"]["exact_match"],
            result("03b_lora_peft")["after"]["n"],
        ],
        ("absolute", 0.04),
    ),
    (
        "03c_lora_knobs",
        r"\*\*Time\*\*: about (\d+) minutes",
        lambda: [minutes("03c_lora_knobs")],
        ("relative", 0.2),
    ),
    (
        "02_selective_finetuning",
        r"Training ([\d.]+) % of the parameters \(last block",
        lambda: [
            100
            * result("02_selective_finetuning")["trainable_params"]
            / result("02_selective_finetuning")["total_params"]
        ],
        ("relative", 0.05),
    ),
    (
        "03_lora",
        r"LoRA trains ([\d.]+) % of the parameters",
        lambda: [100 * result("03_lora")["lora_row"]["trainable params"] / base_params()],
        ("relative", 0.03),
    ),
    (
        "03b_lora_peft",
        r"grow linearly in r: ([\d.]+)M at r = 4, ([\d.]+)M at\s+r = 64",
        lambda: [sweep_row(0)["trainable"] / 1e6, sweep_row(4)["trainable"] / 1e6],
        ("relative", 0.05),
    ),
    (
        "03b_lora_peft",
        r"attention only \(q,v: ([\d.]+)M parameters\)",
        lambda: [sweep_row(6)["trainable"] / 1e6],
        ("relative", 0.05),
    ),
    (
        "03b_lora_peft",
        r"all linear layers at r = 16 train ([\d.]+)× the parameters of q,v",
        lambda: [sweep_row(3)["trainable"] / sweep_row(6)["trainable"]],
        ("relative", 0.02),
    ),
    (
        "03b_lora_peft",
        r"by training ([\d.]+) % of its parameters for one epoch",
        lambda: [
            100
            * result("03b_lora_peft")["trainable_parameters"]
            / (base_params() + result("03b_lora_peft")["trainable_parameters"])
        ],
        ("relative", 0.03),
    ),
    (
        "07_peft_family",
        r"P-tuning trains ([\d,]+) parameters",
        lambda: [
            next(r for r in result("07_peft_family")["methods"] if r["method"] == "P-tuning")[
                "trainable"
            ]
        ],
        ("relative", 0),
    ),
    (
        "04_qlora_unsloth",
        r"\*\*Time\*\*: about (\d+) minutes",
        lambda: [minutes("04_qlora_unsloth")],
        ("relative", 0.2),
    ),
    (
        "05_continual_pretraining",
        r"\*\*Time\*\*: about (\d+)–(\d+) minutes",
        lambda: [minutes("05_continual_pretraining")] * 2,
        ("range", 0.1),
    ),
    (
        "07_peft_family",
        r"\*\*Time\*\*: about (\d+) minutes",
        lambda: [minutes("07_peft_family")],
        ("relative", 0.2),
    ),
    (
        "07_peft_family",
        r"test accuracy ([\d.]+) before",
        lambda: [result("07_peft_family")["before"]["accuracy"]],
        ("absolute", 0.01),
    ),
    (
        "07_peft_family",
        r"the same (\d+) training examples in the same order \((\d+) steps of (\d+)\)",
        lambda: [result("07_peft_family")["budget"][key] for key in ("examples", "steps", "batch")],
        ("absolute", 0),
    ),
    (
        "07_peft_family",
        r"after (\d+) examples every method gains, from about ([\d.]+) \(prompt tuning from a "
        r"random start\) to about ([\d.]+) \(prefix tuning\)",
        lambda: [
            result("07_peft_family")["budget"]["examples"],
            *(
                next(r for r in result("07_peft_family")["methods"] if r["method"] == name)[
                    "test accuracy"
                ]
                for name in ("prompt tuning (random init)", "prefix tuning")
            ),
        ],
        ("absolute", 0.05),
    ),
    (
        "08_memory_and_scale",
        r"\*\*Time\*\*: about (\d+) minutes",
        lambda: [minutes("08_memory_and_scale")],
        ("relative", 0.25),
    ),
    (
        "09_evaluation_beyond_the_task",
        r"\*\*Time\*\*: about (\d+) minutes",
        lambda: [minutes("09_evaluation_beyond_the_task")],
        ("relative", 0.25),
    ),
    (
        "10_compression",
        r"\*\*Time\*\*: about (\d+) minutes",
        lambda: [minutes("10_compression")],
        ("relative", 0.25),
    ),
    (
        "11_preference_tuning",
        r"\*\*Time\*\*: about (\d+) minutes",
        lambda: [minutes("11_preference_tuning")],
        ("relative", 0.25),
    ),
    (
        "06_your_task",
        r"about (\d+) minutes for `e2e_nlg`, (\d+) for `cyrillic_langid`",
        lambda: [minutes("06_your_task-e2e_nlg"), minutes("06_your_task-cyrillic_langid")],
        ("relative", 0.2),
    ),
    (
        "06_your_task",
        r"`cyrillic_langid` accuracy ([\d.]+) → about ([\d.]+);",
        lambda: [
            result("06_your_task-cyrillic_langid")["before"]["accuracy"],
            result("06_your_task-cyrillic_langid")["after"]["accuracy"],
        ],
        ("absolute", 0.05),
    ),
    (
        "06_your_task",
        r"`e2e_nlg` chrF about ([\d.]+) → about ([\d.]+)\.",
        lambda: [
            result("06_your_task-e2e_nlg")["before"]["chrf"],
            result("06_your_task-e2e_nlg")["after"]["chrf"],
        ],
        ("absolute", 2),
    ),
]


def agrees(stated: list[float], measured: list[float], tolerance: tuple[str, float]) -> bool:
    kind, amount = tolerance
    if kind == "at most":
        return all(m <= s + amount for s, m in zip(stated, measured, strict=True))
    if kind == "range":  # "a–b": the measurement within the stated range, give or take amount
        low, high = stated
        return all(low * (1 - amount) <= m <= high * (1 + amount) for m in measured)
    if kind == "relative":
        return all(abs(m - s) <= amount * s + 1e-9 for s, m in zip(stated, measured, strict=True))
    return all(abs(m - s) <= amount for s, m in zip(stated, measured, strict=True))


@pytest.mark.parametrize(
    "lab, pattern, recorded, tolerance", FIGURES, ids=[f"{f[0]}:{f[1][:30]}" for f in FIGURES]
)
def test_a_figure_stated_in_a_lab_agrees_with_its_recorded_full_run(
    lab, pattern, recorded, tolerance
):
    match = re.search(pattern, text_of(lab))
    assert match, f"{lab}: the statement {pattern!r} is gone; update this test with the text"
    stated = [number(g) for g in match.groups()]
    measured = recorded()
    assert agrees(stated, measured, tolerance), (
        f"{lab} states {match.group(0)!r} but its last full run recorded "
        f"{[round(m, 3) for m in measured]} ({tolerance[0]} {tolerance[1]})"
    )


def test_every_lab07_method_gains_as_its_introduction_says():
    assert "every method gains" in text_of("07_peft_family"), "statement gone: update this test"
    recorded = result("07_peft_family")
    behind = [
        r["method"]
        for r in recorded["methods"]
        if r["test accuracy"] <= recorded["before"]["accuracy"]
    ]
    assert not behind, f"Lab 07 says every method gains, but these did not: {behind}"
