"""Figures of the discrete-VAE code-clustering study: codebook usage, silhouettes, cluster contents, t-SNE."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from genlab.report.figures import plt

_PALETTE = plt.get_cmap("tab20")


def _colour(i: int):
    return _PALETTE(i % 20)


def codebook_usage_figure(counts: Sequence[float], perplexity: float, title: str) -> plt.Figure:
    """Each code's share of all positions, codes sorted from most to least used."""
    shares = np.sort(np.asarray(counts, dtype=float))[::-1]
    shares = shares / max(shares.sum(), 1.0)
    used = int((shares > 0).sum())
    fig, ax = plt.subplots(figsize=(6.0, 3.2))
    ax.bar(np.arange(len(shares)), shares, width=1.0, color="#4c72b0")
    ax.axhline(1 / len(shares), color="k", ls="--", lw=1, label="uniform use")
    ax.set(xlabel="code (sorted by use)", ylabel="share of positions",
           title=f"{title}: {used}/{len(shares)} codes used, perplexity {perplexity:.1f}")
    ax.legend(fontsize=8)
    return fig


def silhouette_vs_k_figure(ks: Sequence[int], silhouette: Sequence[float], hungarian: Sequence[float],
                           majority: Sequence[float], chosen_k: int, title: str) -> plt.Figure:
    """Silhouette per K (left) and agreement with the true labels per K (right); the chosen K marked."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.3))
    left.plot(ks, silhouette, marker="o", ms=4)
    left.set(xlabel="K", ylabel="mean silhouette (sample)", title=f"{title}: silhouette vs K")
    right.plot(ks, hungarian, marker="o", ms=4, label="Hungarian (one class per cluster)")
    right.plot(ks, majority, marker="s", ms=4, label="majority vote per cluster")
    right.set(xlabel="K", ylabel="accuracy vs true labels", ylim=(0, 1), title="pseudo-label accuracy vs K")
    right.legend(fontsize=7)
    for ax in (left, right):
        ax.axvline(chosen_k, color="grey", ls=":", lw=1)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def silhouette_plot_figure(values: np.ndarray, clusters: np.ndarray, title: str) -> plt.Figure:
    """Per-point silhouettes sorted within each cluster, clusters stacked, the mean as a dashed line."""
    fig, ax = plt.subplots(figsize=(5.0, 5.2))
    bottom = 0
    for k in np.unique(clusters):
        mine = np.sort(values[clusters == k])
        ax.fill_betweenx(np.arange(bottom, bottom + len(mine)), 0, mine, color=_colour(int(k)), lw=0)
        ax.text(-0.05, bottom + len(mine) / 2, str(k), fontsize=7, ha="right", va="center")
        bottom += len(mine) + 10
    ax.axvline(values.mean(), color="red", ls="--", lw=1, label=f"mean {values.mean():.3f}")
    ax.set(xlabel="silhouette", ylabel="points, by cluster", yticks=[], title=title)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def label_distribution_figure(table: Sequence[Sequence[int]], classes: Sequence[str], mapping: Sequence[int],
                              title: str) -> plt.Figure:
    """One stacked bar per cluster: the shares of its images' true labels, the Hungarian class below each bar."""
    counts = np.asarray(table, dtype=float)
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(counts) + 2.5), 3.6))
    bottom = np.zeros(len(counts))
    for c, name in enumerate(classes):
        ax.bar(np.arange(len(counts)), shares[:, c], bottom=bottom, color=_colour(c), label=name, width=0.8)
        bottom += shares[:, c]
    ax.set_xticks(np.arange(len(counts)))
    ax.set_xticklabels([f"{k} -> {classes[m] if m >= 0 else '-'}" for k, m in enumerate(mapping)], fontsize=7,
                       rotation=35, ha="right")
    ax.set(ylabel="share of the cluster", xlabel="cluster (-> Hungarian class)", ylim=(0, 1), title=title)
    ax.legend(fontsize=6, bbox_to_anchor=(1.01, 1), loc="upper left")
    return fig


def tsne_figure(points: np.ndarray, labels: np.ndarray, clusters: np.ndarray, classes: Sequence[str],
                title: str) -> plt.Figure:
    """The same t-SNE map twice: coloured by true label (left) and by cluster (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.6))
    for ax, colour_by, name in ((axes[0], labels, "true label"), (axes[1], clusters, "cluster")):
        for value in np.unique(colour_by):
            mine = colour_by == value
            tag = classes[value] if name == "true label" else str(value)
            ax.scatter(points[mine, 0], points[mine, 1], s=3, color=_colour(int(value)), label=tag)
        ax.set(title=f"{title}: coloured by {name}", xticks=[], yticks=[])
        ax.legend(fontsize=6, markerscale=3, loc="best", ncol=2)
    fig.tight_layout()
    return fig


def accuracy_comparison_figure(rows: Sequence[tuple[str, float]], title: str) -> plt.Figure:
    """Horizontal bars: Hungarian accuracy of each way of clustering (codes, pixels, embeddings)."""
    fig, ax = plt.subplots(figsize=(6.0, 0.45 * len(rows) + 1.0))
    names, values = zip(*rows)
    ax.barh(np.arange(len(rows)), values, color=[_colour(i) for i in range(len(rows))])
    for i, v in enumerate(values):
        ax.text(v + 0.01, i, f"{v:.3f}", va="center", fontsize=8)
    ax.set_yticks(np.arange(len(rows)))
    ax.set_yticklabels(names, fontsize=8)
    ax.set(xlim=(0, 1.1), xlabel="clustering accuracy (Hungarian, train images)", title=title)
    ax.invert_yaxis()
    return fig
