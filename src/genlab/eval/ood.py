"""Out-of-distribution detection: AUROC of a score that should be higher in distribution."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score


def auroc(in_scores: torch.Tensor | np.ndarray, out_scores: torch.Tensor | np.ndarray) -> float:
    """Area under the ROC curve for telling in-distribution (positive) from out-of-distribution inputs."""
    scores = np.concatenate([np.asarray(in_scores, dtype=np.float64), np.asarray(out_scores, dtype=np.float64)])
    truth = np.concatenate([np.ones(len(in_scores)), np.zeros(len(out_scores))])
    return float(roc_auc_score(truth, scores))


def max_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Hendrycks & Gimpel's baseline score: the top class probability."""
    return torch.softmax(logits.double(), 1).max(1).values


def negative_energy(logits: torch.Tensor) -> torch.Tensor:
    """-E(x) = logsumexp_y f(x)[y] for a classifier read as an energy model (higher = more in-distribution)."""
    return torch.logsumexp(logits.double(), 1)
