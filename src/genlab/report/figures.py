"""Matplotlib figures shared by the experiments and the reports."""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save(fig: plt.Figure, path: Path) -> Path:
    """Write a figure atomically. A figure that cannot be written (disk full) is a warning, not the end
    of the run: the run's numbers matter more, and its report is built without that figure."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
        os.replace(tmp, path)
    except OSError as err:
        warnings.warn(f"could not write figure {path}: {err.strerror or err}; the run goes on without it")
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def confusion_figure(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str) -> plt.Figure:
    """A confusion matrix normalised per true class, with counts written in the cells."""
    counts = np.asarray(matrix)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(classes, rotation=45, ha="right", fontsize=7)
    ax.set_yticklabels(classes, fontsize=7)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return fig


def curves_figure(records: list[dict[str, Any]], keys: Sequence[str] | None = None) -> plt.Figure | None:
    """One panel per metric over steps, train and eval splits overlaid."""
    series: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        split = r.get("split")
        if split is None:
            continue
        for key, value in r.items():
            if key in ("step", "split", "wall_s") or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            series[key][split].append((r["step"], value))
    names = [k for k in (keys or sorted(series)) if k in series]
    if not names:
        return None
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.9 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for split, points in sorted(series[name].items()):
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o" if len(points) < 30 else None, ms=3, label=split)
        ax.set(title=name, xlabel="step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def grids_figure(paths: Sequence[Path], titles: Sequence[str], columns: int | None = None) -> plt.Figure:
    """Saved sample grids side by side (e.g. samples at several points of training), ``columns`` a row (default:
    all in one row)."""
    columns = columns or len(paths)
    rows = -(-len(paths) // columns)
    title_lines = max((t.count("\n") + 1 for t in titles), default=1)  # room for multi-line titles
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, (2.6 + 0.18 * title_lines) * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, path, title in zip(axes.flat, paths, titles):
        ax.imshow(mpimg.imread(path), cmap="gray")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def spread_picks(paths: Sequence[Path], count: int) -> list[Path]:
    """At most ``count`` of the paths, evenly spread from the first to the last."""
    if not paths:
        return []
    return [paths[i] for i in np.unique(np.linspace(0, len(paths) - 1, count).round().astype(int))]


def sampling_figure(records: list[dict[str, Any]]) -> plt.Figure | None:
    """An energy model's evaluations: domain FID against training time, the energy along the chains drawn
    at each evaluation (does the sampler still lower the energy, and where does it level off?) and, for a
    class-conditional model, the judged accuracy of each asked class (when does a class fail?)."""
    evals = [r for r in records if r.get("split") == "eval" and "fid" in r and "wall_s" in r]
    if not evals:
        return None
    per_class = [r for r in evals if isinstance(r.get("per_class_accuracy"), list)]
    fig, axes = plt.subplots(1, 3 if per_class else 2, figsize=(13.5 if per_class else 9.0, 3.2))
    left, middle = axes[0], axes[1]
    left.plot([r["wall_s"] / 60 for r in evals], [r["fid"] for r in evals], marker="o", ms=3)
    left.set(title="domain FID against training time", xlabel="minutes of training", ylabel="domain FID")
    left.grid(alpha=0.3)
    colours = plt.cm.viridis(np.linspace(0, 1, len(evals)))
    for r, colour in zip(evals, colours):
        trace = r.get("chain_energy_trace") or []
        middle.plot(range(len(trace)), trace, color=colour, label=f"step {r['step']}")
    middle.set(title="energy along the chain at each evaluation", xlabel="SGLD step", ylabel="mean E(x)")
    middle.grid(alpha=0.3)
    middle.legend(fontsize=6)
    if per_class:
        right = axes[2]
        steps = [r["step"] for r in per_class]
        for c, accuracies in enumerate(zip(*(r["per_class_accuracy"] for r in per_class))):
            right.plot(steps, accuracies, color=plt.cm.tab10(c % 10), marker="o", ms=3, label=str(c))
        right.set(title="samples judged the asked class, per class", xlabel="step", ylabel="accuracy", ylim=(0, 1.02))
        right.grid(alpha=0.3)
        right.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def reliability_figure(bins: list[dict[str, float]], title: str) -> plt.Figure:
    """Accuracy against confidence per bin (bars), with the diagonal of perfect calibration."""
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    filled = [b for b in bins if b["count"]]
    centres = [(b["low"] + b["high"]) / 2 for b in filled]
    width = bins[0]["high"] - bins[0]["low"]
    ax.bar(centres, [b["accuracy"] for b in filled], width=width * 0.9, label="accuracy", color="#4c72b0")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=title)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def memorisation_figure(samples: Any, train: Any, pairs: Sequence[tuple[float, int, int]], threshold: float,
                        title: str, count: int = 10) -> plt.Figure:
    """The ``count`` samples closest to a training image (top row) above that training image (bottom row),
    each with its pixel distance; red titles mark distances below the copy threshold (eval.memorisation).
    ``samples`` and ``train`` are (N, C, H, W) tensors in [-1, 1]."""
    pairs = list(pairs)[:count]
    fig, axes = plt.subplots(2, max(len(pairs), 1), figsize=(1.3 * max(len(pairs), 1), 3.0), squeeze=False)
    for col, (distance, i, j) in enumerate(pairs):
        for row, image in enumerate((samples[i], train[j])):
            picture = ((image.detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
            axes[row, col].imshow(picture.squeeze(-1) if picture.shape[-1] == 1 else picture, cmap="gray",
                                  vmin=0, vmax=1)
            axes[row, col].axis("off")
        axes[0, col].set_title(f"{distance:.2f}", fontsize=8, color="red" if distance < threshold else "black")
    for ax in axes.flat[2 * len(pairs):]:
        ax.axis("off")
    fig.suptitle(f"{title}\ntop: sample, bottom: its nearest training image (pixel distance; copy threshold "
                 f"{threshold:.2f})", fontsize=8)
    fig.tight_layout()
    return fig


Panel = tuple[str, Sequence[str], Sequence[str], Sequence[Sequence[float]]]  # title, row labels, column labels, values


def heatmap_figure(panels: Sequence[Panel], label: str, columns: int, cmap: str = "viridis",
                   centre: float | None = None) -> plt.Figure:
    """Heat maps on one colour scale, ``columns`` panels a row, each value written in its cell (a grid study's
    numbers, e.g. FID over step size x chain length). ``centre``: a diverging scale symmetric about it."""
    values = np.array([v for _, _, _, m in panels for row in m for v in row], dtype=float)
    finite = values[np.isfinite(values)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    if centre is not None:
        reach = max(abs(low - centre), abs(high - centre)) or 1.0
        low, high = centre - reach, centre + reach
    rows = -(-len(panels) // columns)
    width = max(len(p[2]) for p in panels)
    fig, axes = plt.subplots(rows, columns, figsize=(1.1 * width * columns + 1.5, 0.45 * max(len(p[1]) for p in panels)
                                                      * rows + 1.0 * rows), squeeze=False)
    image = None
    for ax, (title, row_labels, col_labels, matrix) in zip(axes.flat, panels):
        data = np.array(matrix, dtype=float)
        image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=low, vmax=high, aspect="auto")
        ax.set_xticks(range(len(col_labels)), col_labels, fontsize=7)
        ax.set_yticks(range(len(row_labels)), row_labels, fontsize=7)
        ax.set_title(title, fontsize=8)
        for (i, j), value in np.ndenumerate(data):
            if np.isfinite(value):
                shade = (value - low) / ((high - low) or 1.0)
                text = f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
                ax.text(j, i, text, ha="center", va="center", fontsize=6,
                        color="white" if (shade > 0.5) == cmap.endswith("_r") else "black")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.02, label=label)
    return fig
