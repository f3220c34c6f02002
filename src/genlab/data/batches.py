"""Mini-batches from in-memory uint8 images, as float tensors in [-1, 1] on the training device."""

from __future__ import annotations

import torch

from genlab.data.datasets import ImageSet
from genlab.errors import ConfigError


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255] (clamped, rounded)."""
    return ((x.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class Batches:
    """Shuffled mini-batches indexed by global step.

    The order depends only on ``seed`` and the step, so a resumed run sees exactly the batches an
    uninterrupted one would. Each epoch is a fresh permutation; the last partial batch is dropped.
    With ``world_size`` > 1 every rank takes its own slice of each global batch.
    """

    def __init__(self, data: ImageSet, batch_size: int, seed: int, device: torch.device | str = "cpu",
                 rank: int = 0, world_size: int = 1):
        if batch_size > len(data):
            raise ConfigError(f"a batch of {batch_size} is larger than the {len(data)} images of {data.name}/{data.split}",
                              hint="lower the batch size (--set train.batch_size=N), or use more images")
        if batch_size % world_size:
            raise ConfigError(f"a batch of {batch_size} does not divide evenly over {world_size} processes",
                              hint=f"use a batch size that is a multiple of {world_size}")
        self.images = data.images.to(device)
        self.labels = data.labels.to(device)
        self.batch_size, self.seed, self.device = batch_size, seed, torch.device(device)
        self.rank, self.world_size = rank, world_size
        self._share = batch_size // world_size
        self.steps_per_epoch = len(data) // batch_size
        self._epoch, self._order = -1, None

    def indices(self, step: int) -> torch.Tensor:
        """Indices of this rank's share of batch ``step`` (0-based)."""
        epoch, within = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = torch.randperm(len(self.labels), generator=g).to(self.device)
            self._epoch = epoch
        start = within * self.batch_size + self.rank * self._share
        return self._order[start: start + self._share]

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.indices(step)
        return to_float(self.images[idx]), self.labels[idx]


def iterate(data: ImageSet, batch_size: int, device: torch.device | str = "cpu"):
    """Every image once, in order, as (float images, labels) batches: for evaluation."""
    for start in range(0, len(data), batch_size):
        yield (to_float(data.images[start:start + batch_size].to(device)),
               data.labels[start:start + batch_size].to(device))
