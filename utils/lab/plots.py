"""Plots the labs share: metric vs a swept value, bars, heat-maps. Each saves a PNG and returns
it."""

from __future__ import annotations

from pathlib import Path

import matplotlib

if (
    not matplotlib.get_backend()
    .lower()
    .startswith(("module://", "inline", "nbagg", "widget", "ipympl"))
):
    matplotlib.use("Agg")  # headless runs (CI, scripts); notebooks keep their inline backend
import matplotlib.pyplot as plt  # noqa: E402


def plot_sweep(
    x: list,
    series: dict[str, tuple[list[float], list[float] | None]],
    path: Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str = "accuracy",
    baselines: dict[str, float] | None = None,
) -> Path:
    """One line per series (mean, optional spread as error bars) over ``x``; dashed baselines."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for name, (means, spreads) in series.items():
        ax.errorbar(range(len(x)), means, yerr=spreads, marker="o", capsize=3, label=name)
    for name, value in (baselines or {}).items():
        ax.axhline(value, linestyle="--", linewidth=1, color="grey")
        ax.annotate(
            name,
            (len(x) - 1, value),
            textcoords="offset points",
            xytext=(0, 3),
            ha="right",
            fontsize=8,
            color="grey",
        )
    ax.set_xticks(range(len(x)), [str(v) for v in x])
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def plot_grouped_bars(
    groups: list[str],
    series: dict[str, list[float]],
    path: Path,
    *,
    title: str,
    ylabel: str = "accuracy",
    ylim: tuple[float, float] | None = (0, 1.02),
) -> Path:
    """Bars for each series within each group, values printed on top."""
    fig, ax = plt.subplots(figsize=(max(6.4, 1.3 * len(groups) * len(series)), 4))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        bars = ax.bar([g + i * width for g in range(len(groups))], values, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))], groups)
    ax.set(title=title, ylabel=ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_bars(
    names: list[str],
    values: list[float],
    path: Path,
    *,
    title: str,
    xlabel: str = "accuracy",
    xlim: tuple[float, float] = (0, 1.0),
) -> Path:
    """Horizontal bars, one per named value (top to bottom in order), values printed at the end."""
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(names) + 1.2))
    bars = ax.barh(range(len(names))[::-1], values, color=[f"C{i}" for i in range(len(names))])
    ax.bar_label(bars, fmt="%.3f", padding=3, fontsize=8)
    ax.set_yticks(range(len(names))[::-1], names)
    ax.set(title=title, xlabel=xlabel, xlim=(xlim[0], xlim[1] * 1.08))
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)


def plot_heatmap(
    rows: list,
    cols: list,
    values: list[list[float]],
    path: Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    fmt: str = "{:.2f}",
) -> Path:
    """A grid of ``values[row][col]`` with each cell's value written in it (NaN cells left
    blank)."""
    fig, ax = plt.subplots(figsize=(1.4 * len(cols) + 2.2, 0.8 * len(rows) + 1.6))
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            if value == value:  # not NaN
                ax.text(
                    j,
                    i,
                    fmt.format(value),
                    ha="center",
                    va="center",
                    color="white" if value < 0.6 else "black",
                    fontsize=9,
                )
    ax.set_xticks(range(len(cols)), [str(c) for c in cols])
    ax.set_yticks(range(len(rows)), [str(r) for r in rows])
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.colorbar(image, ax=ax, fraction=0.046)
    return save_figure(fig, path)


def plot_histograms(
    series: dict[str, list[float]],
    path: Path,
    *,
    title: str,
    xlabel: str,
    bins: int = 80,
    log: bool = True,
) -> Path:
    """Overlaid step histograms, one per named series (log counts by default: tails matter)."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for name, values in series.items():
        ax.hist(values, bins=bins, histtype="step", linewidth=1.5, label=name, log=log)
    ax.set(title=title, xlabel=xlabel, ylabel="count")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_stacked_bars(
    bars: list[str],
    parts: dict[str, list[float]],
    path: Path,
    *,
    title: str,
    ylabel: str,
    line: tuple[str, float] | None = None,
) -> Path:
    """One stacked bar per name, ``parts[part][i]`` the height of that part in bar ``i``, the total
    printed on top; an optional dashed ``(label, value)`` line (e.g. a GPU's memory)."""
    fig, ax = plt.subplots(figsize=(max(6.4, 1.2 * len(bars) + 2), 4.4))
    bottom = [0.0] * len(bars)
    for name, values in parts.items():
        ax.bar(range(len(bars)), values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    for i, total in enumerate(bottom):
        ax.annotate(
            f"{total:.1f}",
            (i, total),
            textcoords="offset points",
            xytext=(0, 3),
            ha="center",
            fontsize=8,
        )
    if line:
        ax.axhline(line[1], linestyle="--", color="grey", linewidth=1)
        ax.annotate(
            line[0],
            (len(bars) - 0.5, line[1]),
            textcoords="offset points",
            xytext=(0, 3),
            ha="right",
            fontsize=8,
            color="grey",
        )
    ax.set_xticks(range(len(bars)), bars, rotation=15, ha="right", fontsize=8)
    ax.set(title=title, ylabel=ylabel)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_lines(
    series: dict[str, tuple[list[float], list[float]]],
    path: Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    log_y: bool = False,
) -> Path:
    """One line with markers per named ``(x, y)`` series, axes fitted to the data (``log_y``: a
    logarithmic y axis, for values spanning orders of magnitude)."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for name, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    """Save, close (so notebooks don't draw twice) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def show(path: Path) -> None:
    """Display a saved PNG in a notebook (prints its path elsewhere)."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(Image(filename=str(path)))
    else:
        print(f"[plot] saved {path}")


def plot_tradeoff(
    points: dict[str, tuple[float, float, float]],
    path: Path,
    *,
    title: str,
    baseline: tuple[str, float] | None = None,
) -> Path:
    """Methods side by side: left, test score against trainable parameters (log scale); right,
    each method's extra inference time over the base in % (``points[name] = (parameters, score,
    extra %)``). An optional dashed ``(label, score)`` line marks the model before training."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    names = list(points)
    for i, name in enumerate(names):
        params, score, _ = points[name]
        left.scatter(params, score, color=f"C{i % 10}", marker="os^Dv"[i // 10 % 5], s=50)
        left.annotate(name, (params, score), textcoords="offset points", xytext=(5, 3), fontsize=7)
    if baseline:
        left.axhline(baseline[1], linestyle="--", color="grey", linewidth=1)
        left.annotate(baseline[0], (min(p[0] for p in points.values()), baseline[1]), fontsize=7)
    left.set(xscale="log", xlabel="trainable parameters", ylabel="test accuracy", title=title)
    left.grid(alpha=0.3)
    extra = [points[n][2] for n in names]
    bars = right.barh(
        range(len(names))[::-1], extra, color=[f"C{i % 10}" for i in range(len(names))]
    )
    right.bar_label(bars, fmt="%+.0f%%", padding=3, fontsize=7)
    right.set_yticks(range(len(names))[::-1], names, fontsize=8)
    right.axvline(0, color="black", linewidth=0.8)
    right.set(xlabel="extra forward time vs the base (%), as served", title="inference cost")
    return save_figure(fig, path)


def plot_intervals(
    names: list[str],
    values: list[float],
    intervals: list[tuple[float, float]],
    path: Path,
    *,
    title: str,
    xlabel: str,
    reference: float = 0.0,
) -> Path:
    """One point per name (top to bottom in order) with its interval as a bar, and a dashed line
    at ``reference`` (no change): an interval that crosses it is not a measured difference."""
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(names) + 1.4))
    rows = range(len(names))[::-1]
    for row, value, (low, high), i in zip(rows, values, intervals, range(len(names)), strict=True):
        ax.errorbar(
            value, row, xerr=[[value - low], [high - value]], fmt="o", color=f"C{i % 10}", capsize=4
        )
        ax.annotate(
            f"{value:+.3f}",
            (value, row),
            textcoords="offset points",
            xytext=(0, 7),
            ha="center",
            fontsize=7,
        )
    ax.axvline(reference, linestyle="--", color="grey", linewidth=1)
    ax.set_yticks(list(rows), names, fontsize=8)
    ax.set(title=title, xlabel=xlabel)
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """The names no other point beats on both counts (smaller x and larger y), by x."""
    front = [
        name
        for name, (x, y) in points.items()
        if not any(
            (ox <= x and oy >= y) and (ox < x or oy > y) for other, (ox, oy) in points.items()
        )
    ]
    return sorted(front, key=lambda name: points[name][0])


def plot_pareto(
    points: dict[str, tuple[float, float]], path: Path, *, title: str, xlabel: str, ylabel: str
) -> Path:
    """Every named ``(cost, quality)`` point, the Pareto front (``pareto_front``) joined by a
    line: what no other option beats on both."""
    fig, ax = plt.subplots(figsize=(7, 4.6))
    front = pareto_front(points)
    for i, (name, (x, y)) in enumerate(points.items()):
        ax.scatter(x, y, color=f"C{i % 10}", s=60 if name in front else 30, zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 3), fontsize=7)
    ax.plot(*zip(*(points[n] for n in front)), color="black", linewidth=1, label="Pareto front")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
