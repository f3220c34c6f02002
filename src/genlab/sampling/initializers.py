"""Where chains start: uniform noise, or an informative Gaussian mixture fitted to the training images.

:class:`ClassGaussians` fits one Gaussian per class (mean and full covariance of that class's training
images) and samples a class, then an image from its Gaussian, clamped to [-1, 1]: JEM++'s informative
initialisation (Yang & Ji 2021). Marginally this is a Gaussian mixture with one component per class, weighted
by the class frequencies; conditionally it gives starts for p(x | y). Covariances get ``ridge`` added to the
diagonal so they are positive definite.

:class:`ClusterGaussians` is the same mixture without labels: one Gaussian per k-means cluster of the
training images, for an unconditional model whose starts must not know the classes. Given labels, it finds
its clusters within each class instead: a finer mixture than one Gaussian per class, whose components are
nearer to single images (sharper starts) and never mix two classes.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from genlab.data.batches import to_float
from genlab.errors import ConfigError


class ClassGaussians:
    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int, ridge: float = 1e-4):
        """``images``: float (N, C, H, W) in [-1, 1]."""
        self.shape = tuple(images.shape[1:])
        flat = images.reshape(len(images), -1).double()
        dim = flat.shape[1]
        self.means, self.factors, counts = [], [], []
        for c in range(num_classes):
            members = flat[labels == c]
            if len(members) < 2:
                raise ValueError(f"class {c} has {len(members)} images; a Gaussian needs at least 2")
            mean = members.mean(0)
            centred = members - mean
            cov = centred.T @ centred / len(members) + ridge * torch.eye(dim, dtype=torch.float64)
            self.means.append(mean.float())
            self.factors.append(torch.linalg.cholesky(cov).float())
            counts.append(len(members))
        self.means = torch.stack(self.means)
        self.factors = torch.stack(self.factors)
        self.class_probs = torch.tensor(counts, dtype=torch.float) / sum(counts)

    def to(self, device: torch.device | str) -> "ClassGaussians":
        self.means, self.factors = self.means.to(device), self.factors.to(device)
        self.class_probs = self.class_probs.to(device)
        return self

    def sample(self, n: int, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels); classes drawn by frequency unless ``labels`` are given."""
        if labels is None:
            labels = torch.multinomial(self.class_probs, n, replacement=True)
        z = torch.randn(n, self.means.shape[1], device=self.means.device)
        x = torch.empty_like(z)
        for c in labels.unique():
            member = labels == c
            x[member] = self.means[c] + z[member] @ self.factors[c].T
        return x.clamp(-1, 1).view(n, *self.shape), labels

    def images(self, n: int) -> torch.Tensor:
        return self.sample(n)[0]


class ClusterGaussians:
    """One Gaussian per k-means cluster of the training images, drawn by cluster size; no labels used
    unless ``labels`` are given, and then ``clusters`` clusters are found within each class. Without labels
    a conditional chain for class y starts from the whole mixture (E(x, y) does the conditioning); with them,
    from the clusters of class y.

    The clusters are KMeans (one restart, ``seed``, one thread) on the images' first ``pca_dim`` principal
    components. A cluster of m members has a covariance of rank below m, so instead of a (D, D) matrix per
    cluster a draw is ``mean + w @ (members - mean) + ridge_std * N(0, I)`` with ``w ~ N(0, 1/m)``: exactly
    the Gaussian of the members' mean and covariance, plus a small isotropic ridge. Members are kept as the
    uint8 images they came from (a quarter of float32's memory).
    """

    def __init__(self, images: torch.Tensor, clusters: int, seed: int = 0, pca_dim: int = 64,
                 ridge_std: float = 1e-2, labels: torch.Tensor | None = None):
        """``images``: uint8 (N, C, H, W); ``labels``: find ``clusters`` clusters in each class."""
        values = None if labels is None else labels.numpy()
        classes = None if labels is None else np.unique(values)
        groups = [np.arange(len(images))] if labels is None else [np.flatnonzero(values == c) for c in classes]
        smallest = min(len(g) for g in groups)
        if not 1 <= clusters <= smallest // 2:
            where = "training images" if labels is None else "images of the smallest class"
            raise ConfigError(f"{clusters} k-means clusters of {smallest} {where}: the chain starts "
                              f"need between 1 and {smallest // 2} (two images per cluster on average)",
                              hint="lower sampler.start_clusters, or train on more images (data.train_limit)")
        self.shape = tuple(images.shape[1:])
        self.members = images.reshape(len(images), -1)
        flat = to_float(self.members).numpy()
        assignment = np.empty(len(flat), dtype=np.int64)
        with threadpool_limits(1):  # k-means sums in chunks per thread: a seed's clusters depend on the count
            reduced = PCA(min(pca_dim, *flat.shape), svd_solver="randomized", random_state=seed).fit_transform(flat)
            for g, members in enumerate(groups):
                found = KMeans(clusters, n_init=1, random_state=seed).fit_predict(reduced[members])
                assignment[members] = g * clusters + found
        # the class of each cluster, so that a chain of class y starts in one of y's clusters
        self.cluster_class = None if labels is None else torch.from_numpy(np.repeat(classes, clusters))
        clusters *= len(groups)
        order = np.argsort(assignment, kind="stable")
        sizes = np.bincount(assignment, minlength=clusters)
        self.starts = torch.from_numpy(np.concatenate([[0], np.cumsum(sizes)]))
        self.order = torch.from_numpy(order)
        pixels = torch.from_numpy(flat)
        self.means = torch.stack([pixels[self._indices(c)].mean(0) for c in range(clusters)])
        self.cluster_probs = torch.from_numpy(sizes).float() / len(images)
        self.ridge_std = ridge_std
        self.device = torch.device("cpu")

    def _indices(self, cluster: int) -> torch.Tensor:
        return self.order[self.starts[cluster]:self.starts[cluster + 1]]

    def to(self, device: torch.device | str) -> "ClusterGaussians":
        self.device = torch.device(device)
        return self

    def sample(self, n: int, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, clusters): ``n`` draws and the cluster each came from; given ``labels`` (the chains'
        classes) and clusters found within classes, each draw comes from a cluster of its class."""
        if labels is None or self.cluster_class is None:
            clusters = torch.multinomial(self.cluster_probs, n, replacement=True)
        else:
            of_class = self.cluster_class == labels.cpu()[:, None]
            clusters = torch.multinomial(self.cluster_probs * of_class, 1).squeeze(1)
        x = torch.empty(n, self.means.shape[1])
        for c in clusters.unique():
            chosen = clusters == c
            members = to_float(self.members[self._indices(int(c))])
            weights = torch.randn(int(chosen.sum()), len(members)) / len(members) ** 0.5
            x[chosen] = self.means[c] + weights @ (members - self.means[c])
        x += self.ridge_std * torch.randn_like(x)
        return x.clamp(-1, 1).view(n, *self.shape).to(self.device), clusters.to(self.device)

    def images(self, n: int) -> torch.Tensor:
        return self.sample(n)[0]


StartDistribution = ClassGaussians | ClusterGaussians


def fit_starts(start: str, images: torch.Tensor, labels: torch.Tensor, num_classes: int, clusters: int,
               seed: int, device: torch.device | str = "cpu") -> StartDistribution | None:
    """The informative start distribution ``start`` names (``sampler.start``), fitted to uint8 training
    ``images`` and drawing on ``device``; None for ``uniform`` noise."""
    if start == "gaussian":
        return ClassGaussians(to_float(images), labels, num_classes).to(device)
    if start == "clusters":
        return ClusterGaussians(images, clusters, seed).to(device)
    if start == "class_clusters":
        return ClusterGaussians(images, clusters, seed, labels=labels).to(device)
    return None
