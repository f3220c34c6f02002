"""Where chains start: uniform noise, or JEM++'s informative initialisation.

:class:`ClassGaussians` fits one Gaussian per class (mean and full covariance of that class's training
images) and samples a class, then an image from its Gaussian, clamped to [-1, 1]. Marginally this is a
Gaussian mixture with one component per class, weighted by the class frequencies; conditionally it gives
starts for p(x | y). Covariances get ``ridge`` added to the diagonal so they are positive definite.
"""

from __future__ import annotations

import torch


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
