"""Clustering heads trained so that neighbours agree: SCAN's clustering step on fixed features.

SCAN (Van Gansbeke et al. 2020, https://arxiv.org/abs/2005.12320) clusters images in two stages: a
representation whose nearest neighbours mostly share a class, then a head trained to put each image and its
neighbours in the same cluster. Here the representation is fixed (the discrete VAE's codes, an
autoencoder's vectors or pixels, through their principal components), and the head learns the clustering:

    loss = - mean_i log <p(x_i), p(x_j)>  +  w * sum_c pbar_c log pbar_c,

where p(x) is the head's softmax over ``classes`` clusters, j a random one of i's ``neighbors`` nearest
neighbours, and pbar the batch's mean of p. The first term pulls neighbours into one confident cluster;
the second (the negative entropy of the clusters' average use) keeps every cluster in use, without which
all images would share one. Where KMeans on a spectral or UMAP layout reads the neighbour graph through a
few coordinates, the head is trained on every neighbour pair.

Gradient descent finds a partition that cuts few neighbour pairs near where the head started, not the
best of all such partitions, so a head's clustering depends on its start. As SCAN does, ``heads`` heads
are trained side by side and the one with the lowest loss over every neighbour pair is kept: the partition
that cuts fewest neighbour pairs. A consensus of all heads (KMeans on their concatenated probabilities)
mixes the poor heads' partitions in (benchmarks/README.md compares them).

SCAN's third stage, self-labelling (a head retrained on its own confident predictions under strong
augmentation), needs augmented views of the images and is not done on fixed features.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.neighbors import NearestNeighbors


class Heads(torch.nn.Module):
    """``heads`` independent heads (Linear, BatchNorm, ReLU, Linear) on the same inputs: logits of shape
    (heads, batch, classes).

    The heads run as one network: their first layers side by side are one Linear to heads * hidden units, and
    a BatchNorm over those units normalises each head's units on their own, as separate BatchNorms would.
    Their second layers are one batched matrix product. A step then costs a few large operations instead of
    a few small ones per head."""

    def __init__(self, heads: int, features: int, hidden: int, classes: int):
        super().__init__()
        self.heads, self.hidden = heads, hidden
        self.first = torch.nn.Sequential(torch.nn.Linear(features, heads * hidden),
                                         torch.nn.BatchNorm1d(heads * hidden), torch.nn.ReLU())
        bound = hidden ** -0.5  # torch.nn.Linear's initialisation for ``hidden`` inputs
        self.second_weight = torch.nn.Parameter(torch.empty(heads, hidden, classes).uniform_(-bound, bound))
        self.second_bias = torch.nn.Parameter(torch.empty(heads, 1, classes).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.first(x).view(len(x), self.heads, self.hidden).transpose(0, 1)
        return torch.baddbmm(self.second_bias, hidden, self.second_weight)


def neighbour_consistency_loss(p_anchor: torch.Tensor, p_neighbour: torch.Tensor,
                               entropy_weight: float) -> torch.Tensor:
    """SCAN's loss per head, for probabilities of shape (heads, batch, classes): the mean negative log
    agreement of anchor and neighbour, minus ``entropy_weight`` times the entropy of the anchors' mean."""
    agreement = (p_anchor * p_neighbour).sum(-1).clamp_min(1e-8)
    mean = p_anchor.mean(1)
    negative_entropy = (mean * mean.clamp_min(1e-8).log()).sum(-1)
    return -agreement.log().mean(1) + entropy_weight * negative_entropy


def nearest_neighbours(points: np.ndarray, k: int) -> np.ndarray:
    """The indices of each point's ``k`` nearest neighbours (Euclidean), itself excluded: (N, k)."""
    k = min(k, len(points) - 1)
    return NearestNeighbors(n_neighbors=k + 1, n_jobs=1).fit(points).kneighbors(points)[1][:, 1:]


def lowest_loss_head(probabilities: torch.Tensor, neighbours: torch.Tensor, entropy_weight: float) -> int:
    """The head whose probabilities (heads, N, classes) have the lowest loss over every point and every one of
    its neighbours (N, k): the clustering that cuts fewest neighbour pairs for an even use of clusters.

    The best heads' losses are close, so the loss is taken over all N * k pairs: on a random 10,000 of 60,000
    points the sample's noise outweighed their differences, and it kept another head than the whole set in 8
    of 27 draws on Fashion-MNIST (benchmarks/README.md, "Every neighbour pair decides which head is kept")."""
    losses = sum(neighbour_consistency_loss(probabilities, probabilities[:, column], entropy_weight)
                 for column in neighbours.T) / neighbours.shape[1]
    return int(losses.argmin())


def neighbour_heads(points: np.ndarray, classes: int, neighbors: int, heads: int, epochs: int, seed: int,
                    entropy_weight: float, hidden: int, batch_size: int = 512, lr: float = 1e-3) -> np.ndarray:
    """Train ``heads`` SCAN heads of ``classes`` clusters on ``points`` (N, D) and their ``neighbors``
    nearest neighbours for ``epochs``; the cluster probabilities (N, classes) of the head with the lowest
    loss. Deterministic for a seed; the global random state is left as it was."""
    neighbours = torch.from_numpy(nearest_neighbours(points, neighbors))
    x = torch.from_numpy(points.astype(np.float32))
    # One scale for all coordinates keeps the principal components' relative sizes, in which the neighbours
    # were found; scaling each to unit variance would blow the faint components' noise up to the size of the
    # leading ones.
    x = (x - x.mean(0)) / x.std().clamp_min(1e-8)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Heads(heads, x.shape[1], hidden, classes)
        optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
        for _ in range(epochs):
            for anchor in torch.randperm(len(x)).split(batch_size):
                if len(anchor) < 2:  # batch norm needs two points
                    continue
                neighbour = neighbours[anchor, torch.randint(0, neighbours.shape[1], (len(anchor),))]
                p_anchor, p_neighbour = F.softmax(model(x[anchor]), -1), F.softmax(model(x[neighbour]), -1)
                loss = neighbour_consistency_loss(p_anchor, p_neighbour, entropy_weight).sum()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        model.eval()
        with torch.no_grad():
            probabilities = torch.cat([F.softmax(model(chunk), -1) for chunk in x.split(8192)], dim=1)
            kept = lowest_loss_head(probabilities, neighbours, entropy_weight)
    return probabilities[kept].numpy()
