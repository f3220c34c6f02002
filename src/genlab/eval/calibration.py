"""Calibration: expected calibration error over equal-width confidence bins (Guo et al. 2017)."""

from __future__ import annotations

import torch


def reliability_bins(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> list[dict[str, float]]:
    """Per confidence bin: its range, sample count, mean confidence and accuracy."""
    confidence, predicted = probs.max(1)
    correct = (predicted == labels).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    out = []
    for i in range(bins):
        low, high = float(edges[i]), float(edges[i + 1])
        member = (confidence.double() > low) & (confidence.double() <= high)
        n = int(member.sum())
        out.append({"low": low, "high": high, "count": n,
                    "confidence": float(confidence[member].double().mean()) if n else float("nan"),
                    "accuracy": float(correct[member].mean()) if n else float("nan")})
    return out


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """sum over bins of (bin share) * |accuracy - mean confidence|."""
    total = len(labels)
    return float(sum(b["count"] / total * abs(b["accuracy"] - b["confidence"])
                     for b in reliability_bins(probs, labels, bins) if b["count"]))
