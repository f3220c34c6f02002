"""Memorisation: is a sample a copy of a training image?

For each sample, its nearest training image in pixel space (Euclidean distance of the images in [-1, 1])
and in the judge's feature space. The rule: a sample is flagged as a copy when its nearest-training-image
distance is below the 1st percentile of the same distance for real test images (images the model never
saw, from the same distribution). Real test images are thus flagged at the base rate of about 1% by
construction (the threshold and the flagged images are different test images); copies of training images
sit at distance 0 and are all flagged. The distance ratio (median sample distance over median test distance)
says the same on a continuous scale: about 1 for new images drawn like the data, near 0 for copies.

The search runs against at most ``TRAIN_IMAGES`` training images (a fixed random subset when there are
more; the number used is reported): a copy of an image outside the subset is not found.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TRAIN_IMAGES = 10_000
CALIBRATION_IMAGES = 2_000  # test images whose distances set the threshold
PERCENTILE = 0.01


def nearest(queries: torch.Tensor, keys: torch.Tensor, chunk: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance to and index of the nearest row of ``keys`` for each row of ``queries`` (flattened)."""
    queries, keys = queries.flatten(1).float(), keys.flatten(1).float()
    dist, index = [], []
    for start in range(0, len(queries), chunk):
        d, i = torch.cdist(queries[start:start + chunk], keys).min(1)
        dist.append(d)
        index.append(i)
    return torch.cat(dist), torch.cat(index)


@dataclass
class TrainNeighbours:
    """The training images searched and the distance below which a sample counts as a copy, per space."""
    pixels: torch.Tensor  # (M, C, H, W) float in [-1, 1]
    features: torch.Tensor  # (M, D) judge features
    threshold_pixels: float
    threshold_features: float
    median_pixels: float  # median test-to-train distance
    median_features: float


def train_neighbours(train_pixels: torch.Tensor, train_features: torch.Tensor, test_pixels: torch.Tensor,
                     test_features: torch.Tensor) -> TrainNeighbours:
    """Thresholds from held-out real images: the 1st percentile of their nearest-training-image distances."""
    d_pix, _ = nearest(test_pixels, train_pixels)
    d_feat, _ = nearest(test_features, train_features)
    return TrainNeighbours(train_pixels, train_features, float(d_pix.quantile(PERCENTILE)),
                           float(d_feat.quantile(PERCENTILE)), float(d_pix.median()), float(d_feat.median()))


def subset(n: int, limit: int = TRAIN_IMAGES, seed: int = 0) -> torch.Tensor:
    """Indices of a fixed random subset of ``limit`` of ``n`` images (all of them, in order, when n <= limit)."""
    if n <= limit:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].sort().values


def memorisation(pixels: torch.Tensor, features: torch.Tensor, reference: TrainNeighbours) -> dict:
    """The memorisation numbers of samples (images in [-1, 1] and their judge features), and the nearest
    pairs: ``pairs`` holds (distance, sample index, training index) in pixel space, closest first."""
    d_pix, i_pix = nearest(pixels.float(), reference.pixels)
    d_feat, _ = nearest(features, reference.features)
    order = d_pix.argsort()
    return {"memorised_share": float((d_pix < reference.threshold_pixels).double().mean()),
            "memorised_share_features": float((d_feat < reference.threshold_features).double().mean()),
            "train_distance_ratio": float(d_pix.median()) / max(reference.median_pixels, 1e-12),
            "train_distance_ratio_features": float(d_feat.median()) / max(reference.median_features, 1e-12),
            "memorisation_train_images": len(reference.pixels),
            "pairs": [(float(d_pix[i]), int(i), int(i_pix[i])) for i in order[:20]]}
