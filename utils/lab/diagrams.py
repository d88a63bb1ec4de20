"""One picture per lab of what it changes in the network, drawn by code from the lab's own
settings (so it cannot drift from what the lab trains): the decoder as a stack — input tokens,
embeddings, blocks, final norm, head — with frozen parts grey, trained parts orange, a new head
green, LoRA adapters as A·B boxes beside the layers they adapt, and a 4-bit base hatched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from utils.lab.plots import save_figure  # noqa: E402

FROZEN, TRAINED, NEW, ADAPTER, PROMPT = "#d9d9d9", "#f4a261", "#7fc97f", "#e76f51", "#8ecae6"
HEAD_STATES = ("frozen", "trained", "new")


@dataclass(frozen=True)
class Changes:
    """What a lab changes: the last ``trained_blocks`` blocks in full, the final norm, the head
    (``frozen``, ``trained`` or ``new``), the embeddings, LoRA on ``lora`` modules of every block,
    a 4-bit base, or only the prompt."""

    layers: int
    trained_blocks: int = 0
    norm: bool = False
    head: str = "frozen"
    embeddings: bool = False
    lora: tuple[str, ...] = ()
    four_bit: bool = False
    prompt: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.trained_blocks <= self.layers:
            raise ValueError(f"trained_blocks must be 0..{self.layers}, got {self.trained_blocks}")
        if self.head not in HEAD_STATES:
            raise ValueError(f"head must be one of {HEAD_STATES}, got {self.head!r}")


def _box(ax, y: float, label: str, color: str, hatch: bool = False, height: float = 0.8) -> None:
    ax.add_patch(
        Rectangle(
            (1, y), 5, height, facecolor=color, edgecolor="black", hatch="///" if hatch else None
        )
    )
    backing = {"facecolor": "white", "edgecolor": "none", "pad": 1} if hatch else None
    ax.text(3.5, y + height / 2, label, ha="center", va="center", fontsize=8, bbox=backing)


def _rows(changes: Changes) -> list[tuple[str, str]]:
    """(label, kind) from the bottom up; kind is a part name or "gap"."""
    n = changes.layers
    shown = sorted({0, 1, n - 3, n - 2, n - 1} & set(range(n)))
    rows = [("input tokens: demonstrations + query" if changes.prompt else "input tokens", "input")]
    rows.append(("embeddings", "embeddings"))
    previous = -1
    for index in shown:
        if index - previous > 1:
            rows.append((f"... blocks {previous + 1}-{index - 1} ...", "gap"))
        rows.append((f"block {index}", f"block {index}"))
        previous = index
    rows += [("final norm", "norm"), ("head", "head")]
    return rows


def _color(kind: str, changes: Changes) -> str:
    n = changes.layers
    if kind == "input":
        return PROMPT if changes.prompt else "white"
    if kind == "embeddings":
        return TRAINED if changes.embeddings else FROZEN
    if kind.startswith("block"):
        return TRAINED if int(kind.split()[1]) >= n - changes.trained_blocks else FROZEN
    if kind == "norm":
        return TRAINED if changes.norm else FROZEN
    if kind == "head":
        return {"frozen": FROZEN, "trained": TRAINED, "new": NEW}[changes.head]
    return "white"


def draw_model(changes: Changes, path: Path, title: str) -> Path:
    """Draw the decoder with what ``changes`` trains; save it to ``path`` (PNG) and return it."""
    rows = _rows(changes)
    fig, ax = plt.subplots(figsize=(6.4, 0.42 * len(rows) + 1.2))
    for i, (label, kind) in enumerate(rows):
        if kind == "gap":
            ax.text(3.5, i + 0.4, label, ha="center", va="center", fontsize=8, style="italic")
            continue
        hatch = changes.four_bit and kind.startswith("block")
        _box(ax, i, label, _color(kind, changes), hatch=hatch)
        if changes.lora and kind.startswith("block"):
            ax.add_patch(Rectangle((6.3, i + 0.1), 1.0, 0.6, facecolor=ADAPTER, edgecolor="black"))
            ax.text(6.8, i + 0.4, "A·B", ha="center", va="center", fontsize=7, color="white")
            ax.text(
                7.45,
                i + 0.4,
                ",".join(m.split("_")[0] for m in changes.lora),
                va="center",
                fontsize=7,
            )
    legend = [Patch(facecolor=FROZEN, edgecolor="black", label="frozen")]
    if TRAINED in {_color(kind, changes) for _, kind in rows}:
        legend.append(Patch(facecolor=TRAINED, edgecolor="black", label="trained"))
    if changes.head == "new":
        legend.append(Patch(facecolor=NEW, edgecolor="black", label="new head (trained)"))
    if changes.lora:
        legend.append(Patch(facecolor=ADAPTER, edgecolor="black", label="LoRA adapter (trained)"))
    if changes.four_bit:
        legend.append(Patch(facecolor=FROZEN, edgecolor="black", hatch="///", label="4-bit (NF4)"))
    if changes.prompt:
        legend.append(
            Patch(facecolor=PROMPT, edgecolor="black", label="what you change: the prompt")
        )
    ax.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    ax.set(xlim=(0, 10), ylim=(-0.3, len(rows)), title=title)
    ax.axis("off")
    return save_figure(fig, path)
