"""Numbers read off an EBM run: training stability from its logs, sample diversity from features."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genlab.train.loop import divergence_events

SPIKE_FACTOR = 10.0


def chain_statistics(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Instability read from metrics.jsonl: gradient-norm spikes (log intervals whose mean gradient norm
    exceeds ten times the run's median), the largest energy magnitude, divergence events."""
    train = [r for r in records if r.get("split") == "train"]
    grad = np.array([r["grad_norm"] for r in train if r.get("grad_norm") is not None], dtype=float)
    energies = [abs(r[k]) for r in train for k in ("energy_pos", "energy_neg") if r.get(k) is not None]
    median = float(np.median(grad)) if len(grad) else 0.0
    return {"grad_norm_spikes": int((grad > SPIKE_FACTOR * median).sum()) if median > 0 else 0,
            "max_abs_energy": max(energies) if energies else float("nan"),
            "divergence_events": divergence_events(records)}


def _mean_pairwise_distance(features: torch.Tensor, limit: int = 1000) -> float:
    f = features[:limit].double()
    d = torch.cdist(f, f)
    n = len(f)
    return float(d.sum() / (n * (n - 1)))


def feature_diversity(samples: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean pairwise feature distance of the samples relative to that of real images (1 = as diverse as
    the data; near 0 = collapsed)."""
    return _mean_pairwise_distance(samples) / _mean_pairwise_distance(reference)
