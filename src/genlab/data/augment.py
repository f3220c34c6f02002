"""Batch augmentations on float images in [-1, 1], vectorised over the batch.

Randomness comes from the global torch generator, which checkpoints save and restore.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _crop_at(padded: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Per-sample crops of size (h, w) from ``padded`` at offsets (dy, dx)."""
    b, c = padded.shape[:2]
    device = padded.device
    rows = (torch.arange(h, device=device)[None] + dy[:, None])[:, None, :, None]
    cols = (torch.arange(w, device=device)[None] + dx[:, None])[:, None, None, :]
    return padded[torch.arange(b, device=device)[:, None, None, None], torch.arange(c, device=device)[None, :, None, None],
                  rows, cols]


def random_shift(x: torch.Tensor, max_shift: int = 2) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels, filling with background (-1)."""
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, b)).to(x.device)
    return _crop_at(padded, offsets[0], offsets[1], h, w)


def random_flip(x: torch.Tensor) -> torch.Tensor:
    """Each image mirrored left-right with probability 1/2."""
    flip = (torch.rand(x.shape[0]) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_crop_flip(x: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Random crop after reflect padding, and a horizontal flip with probability 1/2 (CIFAR-10 standard)."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad,) * 4, mode="reflect")
    offsets = torch.randint(0, 2 * pad + 1, (2, b)).to(x.device)
    return random_flip(_crop_at(padded, offsets[0], offsets[1], h, w))


def random_affine(x: torch.Tensor, degrees: float = 15.0, scale: float = 0.1, shift: float = 0.1) -> torch.Tensor:
    """Rotate by up to ``degrees``, rescale by up to ``scale`` and translate by up to ``shift`` of the side,
    each drawn uniformly per image, filling with background (-1): a digit's pose changes, not its class."""
    b = x.shape[0]
    angle = (torch.rand(b) * 2 - 1) * degrees * torch.pi / 180
    factor = 1 + (torch.rand(b) * 2 - 1) * scale
    offset = (torch.rand(b, 2) * 2 - 1) * 2 * shift  # affine_grid's coordinates span [-1, 1]
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], 1), torch.stack([sin, cos, offset[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False) - 1  # zero padding of x + 1 is background -1


def random_resized_crop(x: torch.Tensor, scale: tuple[float, float] = (0.5, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """A random rectangle of ``scale`` of the image's area and aspect ``ratio`` (log-uniform), resized to the
    full image: SimCLR's crop (Chen et al. 2020, https://arxiv.org/abs/2002.05709), the augmentation its
    contrastive learning needs most, here with a gentler smallest area for 28x28 images."""
    b = x.shape[0]
    area = scale[0] + torch.rand(b) * (scale[1] - scale[0])
    aspect = torch.exp(math.log(ratio[0]) + torch.rand(b) * math.log(ratio[1] / ratio[0]))
    width, height = (area * aspect).sqrt().clamp(max=1), (area / aspect).sqrt().clamp(max=1)
    centre = (torch.rand(b, 2) * 2 - 1) * torch.stack([1 - width, 1 - height], 1)  # the crop stays inside
    zero = torch.zeros(b)
    theta = torch.stack([torch.stack([width, zero, centre[:, 0]], 1), torch.stack([zero, height, centre[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)  # the outer half-pixels


def random_intensity(x: torch.Tensor, gain: float = 0.5, gamma: float = 2.0) -> torch.Tensor:
    """Each image's ink rescaled: its intensities above the background multiplied by a gain within
    1 +- ``gain`` and raised to a power between 1 / ``gamma`` and ``gamma`` (log-uniform), the background
    kept. A grey-level version of SimCLR's colour distortion (Chen et al. 2020): two crops of one image share
    their grey levels, so without it a contrastive loss can match views by brightness alone."""
    b = x.shape[0]
    ink = (x + 1) / 2
    factor = (1 + (torch.rand(b) * 2 - 1) * gain).to(x)[:, None, None, None]
    power = torch.exp((torch.rand(b) * 2 - 1) * math.log(gamma)).to(x)[:, None, None, None]
    return (ink.pow(power) * factor).clamp(0, 1) * 2 - 1


def random_crop_flip_intensity(x: torch.Tensor) -> torch.Tensor:
    """``random_crop_flip`` then ``random_intensity``: views that differ in place, side and grey level."""
    return random_intensity(random_crop_flip(x))


AUGMENTATIONS = {"none": lambda x: x, "shift": random_shift, "flip": random_flip, "crop_flip": random_crop_flip,
                 "affine": random_affine, "crop": random_resized_crop,
                 "crop_flip_intensity": random_crop_flip_intensity}
