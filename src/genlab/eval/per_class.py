"""Per-class sample quality: each class's samples against that class's real images.

A generator can score well on whole-set FID while drawing one good image per class: the mixture over
classes then looks varied. Within a class such a generator has no spread at all, so the Frechet distance
of each class's samples to the real images of that class (intra-class FID, as in Miyato & Koyama 2018)
and the coverage of each class's real images (Naeem et al. 2020) expose it.

Samples are grouped by their intended label (conditional models; the real images by their true label)
or, without one, by the judge's label (its argmax; the real images likewise). A class with fewer than two
samples has no covariance: its FID is NaN and left out of the
mean, and its coverage is 0 (nothing of that class was drawn).
"""

from __future__ import annotations

import math

import torch

from genlab.eval.quality import DENSITY_K, density_coverage, fid


def per_class_scores(real: torch.Tensor, real_labels: torch.Tensor, fake: torch.Tensor, fake_labels: torch.Tensor,
                     classes: int, k: int = DENSITY_K) -> dict[str, float | list[float]]:
    """Intra-class FID per class and its mean over the classes that have one; coverage per class and its mean."""
    real_labels, fake_labels = real_labels.cpu(), fake_labels.cpu()
    fids, coverages = [], []
    for c in range(classes):
        r, f = real[real_labels == c], fake[fake_labels == c]
        fids.append(fid(r, f) if len(r) >= 2 and len(f) >= 2 else float("nan"))
        coverages.append(density_coverage(r, f, min(k, len(r) - 1))[1] if len(f) and len(r) >= 2 else 0.0)
    present = [v for v in fids if math.isfinite(v)]
    return {"intra_fid": sum(present) / len(present) if present else float("nan"), "per_class_fid": fids,
            "intra_coverage": sum(coverages) / classes, "per_class_coverage": coverages}
