"""Objectives between two augmented views of each image: SimCLR's NT-Xent loss and projection head (Chen et
al. 2020, https://arxiv.org/abs/2002.05709), and IIC's mutual information of cluster assignments (Ji et al.
2019, https://arxiv.org/abs/1807.06653) with its cluster heads."""

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


def iic_loss(p: torch.Tensor, q: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Minus the mutual information between the cluster assignments of two views (IIC, its eq. 3).

    ``p`` and ``q`` (B, C) are the soft assignments (rows summing to 1) of the same B images under two
    augmentations. Their joint distribution over cluster pairs is P = mean_i p_i q_i^T, symmetrised; the loss
    is -sum P log(P / (P_row P_col)). It is lowest, -log C, when both views always land in the same cluster
    and the clusters are used equally; it is 0 when the two assignments are independent.
    """
    joint = p.T @ q / len(p)
    joint = ((joint + joint.T) / 2).clamp_min(eps)
    joint = joint / joint.sum()
    marginal = joint.sum(1)
    return -(joint * (joint.log() - marginal[:, None].log() - marginal[None, :].log())).sum()


class ClusterHeads(nn.Module):
    """IIC's heads on a flattened representation: a softmax over ``clusters`` and, as IIC's auxiliary
    overclustering, one over ``overclusters`` (0: none), each Linear, ReLU, Linear (``hidden`` units) or,
    with ``hidden`` = 0, a linear map."""

    def __init__(self, in_dim: int, clusters: int, overclusters: int, hidden: int):
        super().__init__()
        sizes = [clusters] + ([overclusters] if overclusters else [])
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, k)) if hidden else nn.Linear(in_dim, k)
            for k in sizes)

    def forward(self, features: torch.Tensor) -> list[torch.Tensor]:
        """Each head's soft assignments (B, K) of ``features`` (B, ...), the main head's first."""
        return [F.softmax(head(features.flatten(1)), dim=1) for head in self.heads]
