"""Contrastive learning between two augmented views of each image: the NT-Xent loss and a projection head
(SimCLR, Chen et al. 2020, https://arxiv.org/abs/2002.05709)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """The normalised temperature-scaled cross-entropy of SimCLR (its eq. 1, averaged over all 2B anchors).

    ``a`` and ``b`` (B, F) are two views of the same B images, row by row. Each row is L2-normalised; row i
    of ``a`` must pick row i of ``b`` among the other 2B - 1 rows by softmax(cosine / temperature), and
    the other way round. Two identical views of mutually orthogonal rows give log(1 + (2B - 2) e^(-1/t)).
    """
    z = F.normalize(torch.cat([a, b]).flatten(1), dim=1)
    similarity = z @ z.T / temperature
    n = len(a)
    similarity = similarity.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(similarity, targets)


def projection_head(in_dim: int, dim: int) -> nn.Module:
    """SimCLR's head g: Linear, ReLU, Linear to ``dim``; the loss is computed on its output, so the
    representation below it need not discard everything the augmentations change."""
    return nn.Sequential(nn.Linear(in_dim, dim), nn.ReLU(), nn.Linear(dim, dim))
