"""One call that scores a batch of samples against a dataset's test split with the dataset's judge."""

from __future__ import annotations

import os
from typing import Any

import torch

from genlab.data.datasets import load
from genlab.eval.judge import Embedding, Judge
from genlab.eval.quality import (class_accuracy, class_coverage, confident_share, fid, inception_score, kid,
                                 precision_recall)

MAX_REFERENCE = 10_000


_reference_cache: dict[tuple, tuple[Embedding, int, str]] = {}


def reference_embedding(judge: Judge, dataset: str, split: str = "test", data_dir: str | os.PathLike | None = None,
                        limit: int = MAX_REFERENCE, split_seed: int = 0) -> tuple[Embedding, int, str]:
    """The judge's embedding of a dataset split (its first ``limit`` images), cached per process."""
    key = (judge.info.get("folder", id(judge)), str(judge.device), dataset, split, str(data_dir), limit, split_seed)
    if key not in _reference_cache:
        data = load(dataset, split, data_dir, split_seed=split_seed)
        images = data.images[:limit]
        _reference_cache[key] = (judge.embed(images), len(images), data.note)
    return _reference_cache[key]


def score_embeddings(real: Embedding, fake: Embedding, labels: torch.Tensor | None = None) -> dict[str, Any]:
    kid_mean, kid_std = kid(real.features, fake.features)
    is_mean, is_std = inception_score(fake.probs)
    precision, recall = precision_recall(real.features, fake.features)
    scores = {"fid": fid(real.features, fake.features), "kid": kid_mean, "kid_std": kid_std, "is": is_mean,
              "is_std": is_std, "precision": precision, "recall": recall,
              "class_coverage": class_coverage(fake.probs), "confident_share": confident_share(fake.probs)}
    if labels is not None:
        scores["class_accuracy"], scores["per_class_accuracy"] = class_accuracy(fake.probs, labels.cpu())
    return scores


def score_samples(samples: torch.Tensor, dataset: str, labels: torch.Tensor | None = None, judge: Judge | None = None,
                  split: str = "test", data_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                  split_seed: int = 0, reference_limit: int = MAX_REFERENCE) -> dict[str, Any]:
    """Every sample-quality metric of ``samples`` (float in [-1, 1] or uint8) against ``dataset``/``split``
    (its first ``reference_limit`` images)."""
    judge = judge or Judge.load(dataset, device)
    real, n_real, note = reference_embedding(judge, dataset, split, data_dir, reference_limit, split_seed)
    scores = score_embeddings(real, judge.embed(samples), labels)
    scores.update({"samples": len(samples), "reference": f"{dataset}/{split}, {n_real:,} images",
                   "judge": judge.description})
    if note:
        scores["reference_note"] = note
    return scores
