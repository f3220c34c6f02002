"""Figures of the GAN study: the Wasserstein estimate against FID, critic gradients
per layer, the critic's weight distribution and the predicted-class histogram of samples."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from genlab.report.figures import plt


def _series(records: list[dict[str, Any]], split: str, key: str) -> tuple[list[int], list[float]]:
    points = [(r["step"], r[key]) for r in records
              if r.get("split") == split and isinstance(r.get(key), (int, float))]
    return ([s for s, _ in points], [v for _, v in points]) if points else ([], [])


def wasserstein_fid_figure(records: list[dict[str, Any]], title: str) -> plt.Figure:
    """The critic's training-time Wasserstein estimate and the validation FID on one time axis."""
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    steps, w = _series(records, "train", "wasserstein")
    ax.plot(steps, w, color="#4c72b0", label="Wasserstein estimate (train)")
    ax.set(xlabel="generator step", ylabel="E[D(x)] - E[D(G(z))]", title=title)
    ax.tick_params(axis="y", colors="#4c72b0")
    right = ax.twinx()
    steps, fid = _series(records, "eval", "fid")
    right.plot(steps, fid, "o-", color="#dd8452", ms=3, label="domain FID (val)")
    right.set_ylabel("domain FID (val)")
    right.tick_params(axis="y", colors="#dd8452")
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def layer_gradients_figure(records: list[dict[str, Any]], title: str) -> plt.Figure | None:
    """Gradient norm of each critic layer's weights over training, log scale (input layer = 1)."""
    keys = sorted({k for r in records for k in r if k.startswith("d_grad_layer")})
    if not keys:
        return None
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for key in keys:
        steps, values = _series(records, "train", key)
        ax.plot(steps, values, label=key.replace("d_grad_", ""))
    ax.set(yscale="log", xlabel="generator step", ylabel="||grad of the layer's weights||", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def critic_weights_figure(weights: np.ndarray, clip: float | None, title: str) -> plt.Figure:
    """Histogram of every critic weight; with clipping, the bounds +-c are marked."""
    fig, ax = plt.subplots(figsize=(5.4, 3.4))
    ax.hist(weights, bins=101, color="#4c72b0")
    if clip is not None:
        for bound in (-clip, clip):
            ax.axvline(bound, color="#c44e52", ls="--", lw=1)
        at_bound = float(np.mean(np.abs(weights) >= clip))
        title = f"{title}\n{at_bound:.1%} of weights at +-c = +-{clip:g}"
    ax.set(yscale="log", xlabel="weight value", ylabel="count", title=title)
    fig.tight_layout()
    return fig


def class_histogram_figure(shares: Sequence[float], classes: Sequence[str], title: str) -> plt.Figure:
    """Share of samples the judge assigns to each class; 1/K each is perfect balance."""
    fig, ax = plt.subplots(figsize=(5.4, 3.2))
    ax.bar(range(len(shares)), shares, color="#55a868")
    ax.axhline(1 / len(shares), color="k", ls="--", lw=1, label="uniform")
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels(classes, rotation=45, ha="right", fontsize=7)
    ax.set(ylabel="share of samples", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
