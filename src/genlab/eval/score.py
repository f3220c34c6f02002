"""One call that scores a batch of samples against a dataset's test split with the dataset's judge.

:func:`score_embeddings` gives the numbers in the judge's feature space (FID, KID, IS, precision/recall,
density/coverage, class metrics and, given the reference's labels, the per-class numbers).
:func:`score_images` adds what needs the images themselves: the label-free twin of FID, precision and
recall (``randnet_*``, features of a fixed random network, eval.randnet) and, given the training images,
memorisation (eval.memorisation). :func:`score_samples` does it all for a file's samples, with the
Classification Accuracy Score (eval.cas) when the samples have labels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from genlab.data.datasets import load
from genlab.eval.cas import classification_accuracy_score
from genlab.eval.judge import Embedding, Judge
from genlab.eval.memorisation import CALIBRATION_IMAGES, TrainNeighbours, memorisation, subset, train_neighbours
from genlab.eval.per_class import per_class_scores
from genlab.eval.quality import (class_accuracy, class_coverage, confident_share, density_coverage, fid,
                                 inception_score, kid, precision_recall)
from genlab.eval.randnet import randnet_features

MAX_REFERENCE = 10_000
CAS_EPOCHS = 2  # `genlab eval samples`: epochs of the CAS classifiers
CAS_IMAGES = 5_000  # `genlab eval samples`: labelled samples the CAS classifier trains on (the first N)


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


@dataclass
class Reference:
    """What samples are scored against: the reference images' judge embedding, true labels and label-free
    features, and (for memorisation) the training images searched with their copy thresholds."""
    embedding: Embedding
    labels: torch.Tensor
    randnet: torch.Tensor
    count: int
    note: str
    neighbours: TrainNeighbours | None = None


_randnet_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def build_reference(judge: Judge, dataset: str, split: str = "test", data_dir: str | os.PathLike | None = None,
                    limit: int = MAX_REFERENCE, split_seed: int = 0,
                    train_images: torch.Tensor | None = None) -> Reference:
    """The reference of ``dataset``/``split`` (its first ``limit`` images); with ``train_images`` (uint8 or
    float, the model's training set) also the memorisation thresholds, from the reference's first
    ``CALIBRATION_IMAGES`` images against a fixed subset of the training images (eval.memorisation)."""
    embedding, count, note = reference_embedding(judge, dataset, split, data_dir, limit, split_seed)
    key = (dataset, split, str(data_dir), limit, split_seed)
    if key not in _randnet_cache:
        data = load(dataset, split, data_dir, split_seed=split_seed)
        _randnet_cache[key] = (data.labels[:limit].clone(), randnet_features(data.images[:limit]))
    labels, randnet = _randnet_cache[key]
    neighbours = None
    if train_images is not None:
        train = _as_float(train_images[subset(len(train_images))])
        test = _as_float(load(dataset, split, data_dir, split_seed=split_seed).images[:min(limit, CALIBRATION_IMAGES)])
        neighbours = train_neighbours(train, judge.embed(train).features, test, embedding.features[:len(test)])
    return Reference(embedding, labels, randnet, count, note, neighbours)


def _as_float(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images.float()


def score_embeddings(real: Embedding, fake: Embedding, labels: torch.Tensor | None = None,
                     real_labels: torch.Tensor | None = None) -> dict[str, Any]:
    """The judge-space scores; with ``real_labels`` (the reference's true labels) also the per-class numbers:
    samples with ``labels`` against the reference images of the same true label; samples without, grouped by
    the judge's label, against the reference images the judge gives the same label (so that a judge's
    mistakes fall alike on both sides)."""
    kid_mean, kid_std = kid(real.features, fake.features)
    is_mean, is_std = inception_score(fake.probs)
    precision, recall = precision_recall(real.features, fake.features)
    density, coverage = density_coverage(real.features, fake.features)
    scores = {"fid": fid(real.features, fake.features), "kid": kid_mean, "kid_std": kid_std, "is": is_mean,
              "is_std": is_std, "precision": precision, "recall": recall, "density": density, "coverage": coverage,
              "class_coverage": class_coverage(fake.probs), "confident_share": confident_share(fake.probs)}
    if labels is not None:
        scores["class_accuracy"], scores["per_class_accuracy"] = class_accuracy(fake.probs, labels.cpu())
    if real_labels is not None:
        if labels is not None:
            real_groups, groups = real_labels, labels.cpu()
        else:
            real_groups, groups = real.probs.argmax(1), fake.probs.argmax(1)
        scores.update(per_class_scores(real.features, real_groups, fake.features, groups, real.probs.shape[1]))
    return scores


def score_images(images: torch.Tensor, judge: Judge, reference: Reference,
                 labels: torch.Tensor | None = None) -> dict[str, Any]:
    """Every sample-quality number of ``images`` (float in [-1, 1] or uint8) that needs no training: the
    judge's, the label-free twins and, if the reference has training images, memorisation (its closest
    sample-training pairs under ``memorisation_pairs``: (pixel distance, sample index, training index))."""
    images = _as_float(images.cpu())
    fake = judge.embed(images)
    scores = score_embeddings(reference.embedding, fake, labels, reference.labels)
    free = randnet_features(images)
    scores["randnet_fid"] = fid(reference.randnet, free)
    scores["randnet_precision"], scores["randnet_recall"] = precision_recall(reference.randnet, free)
    if reference.neighbours is not None:
        found = memorisation(images, fake.features, reference.neighbours)
        found["memorisation_pairs"] = found.pop("pairs")
        scores.update(found)
    return scores


def score_samples(samples: torch.Tensor, dataset: str, labels: torch.Tensor | None = None, judge: Judge | None = None,
                  split: str = "test", data_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                  split_seed: int = 0, reference_limit: int = MAX_REFERENCE) -> dict[str, Any]:
    """Every sample-quality metric of ``samples`` (float in [-1, 1] or uint8) against ``dataset``/``split``
    (its first ``reference_limit`` images), memorisation against the training split and, for labelled
    samples, the CAS of their first ``CAS_IMAGES`` (``CAS_EPOCHS`` epochs) tested on that reference."""
    judge = judge or Judge.load(dataset, device)
    train = load(dataset, "train", data_dir, split_seed=split_seed)
    reference = build_reference(judge, dataset, split, data_dir, reference_limit, split_seed, train.images)
    scores = score_images(samples, judge, reference, labels)
    scores.pop("memorisation_pairs")
    if labels is not None:
        test = load(dataset, split, data_dir, split_seed=split_seed)
        scores.update(classification_accuracy_score(samples[:CAS_IMAGES], labels[:CAS_IMAGES], train.images,
                                                    train.labels, test.images[:reference_limit],
                                                    test.labels[:reference_limit], len(train.classes), CAS_EPOCHS,
                                                    device=device))
    scores.update({"samples": len(samples), "reference": f"{dataset}/{split}, {reference.count:,} images",
                   "judge": judge.description})
    if reference.note:
        scores["reference_note"] = reference.note
    return scores
