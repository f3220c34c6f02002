"""Classification Accuracy Score (Ravuri & Vinyals 2019): how useful a model's class-conditional samples are.

A fresh classifier is trained on the samples and their intended labels only, then tested on real test
images. Beside it the same classifier, with the same schedule, is trained on as many real training
images (a fixed random subset): the gap between the two is what the samples lack (wrong labels, missing
variety, artefacts the classifier learns instead of digits). CAS near the real baseline means the samples
carry the class information of as many real images; near 1/classes means none.

The classifier is genlab's SmallCNN (``nets.classifiers``; ResNet-9 for colour images) at width 8 (the
quick MNIST judge's), trained with Adam (learning rate 3e-3 decayed to 0 on a cosine, batch 32) for a fixed
number of epochs, and for at least ``MIN_STEPS`` optimiser steps: the 500 conditional samples of a quick JEM
run give 16 steps in one epoch, and after 2 epochs even the classifier trained on 500 real MNIST images scored
0.23 (after 19 epochs, 304 steps: 0.93), so the score measured the schedule, not the samples. On MNIST,
2,000 real images and 3 epochs reach 0.86-0.90 test accuracy in about 6 s on one CPU thread (two random
subsets), so differences of a few points between two CAS values are noise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from genlab.eval.classification import predict_logits
from genlab.nets.classifiers import build_classifier

WIDTH = 8
BATCH = 32
LR = 3e-3
MIN_STEPS = 300


def train_and_test(images: torch.Tensor, labels: torch.Tensor, test_images: torch.Tensor, test_labels: torch.Tensor,
                   classes: int, epochs: int, seed: int = 0, device: torch.device | str = "cpu",
                   min_steps: int = MIN_STEPS) -> float:
    """Test accuracy of a fresh classifier trained on ``images`` (float in [-1, 1]) with ``labels`` for
    ``epochs`` passes, or more passes where those take fewer than ``min_steps`` steps."""
    torch.manual_seed(seed)
    arch = "cnn" if images.shape[1] == 1 else "resnet9"
    model = build_classifier(arch, images.shape[1], classes, WIDTH).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=LR)
    epochs = epochs_for(len(images), epochs, min_steps)
    steps = epochs * _steps_per_epoch(len(images))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
    g = torch.Generator().manual_seed(seed)
    images, labels = images.float().cpu(), labels.long().cpu()
    model.train()
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(len(images), generator=g)
            for start in range(0, len(images), BATCH):
                batch = order[start:start + BATCH]
                if len(batch) < 2:
                    continue
                loss = F.cross_entropy(model(images[batch].to(device)), labels[batch].to(device))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
    logits = predict_logits(model, _as_uint8(test_images), torch.device(device))
    return float((logits.argmax(1) == test_labels.cpu()).double().mean())


def _steps_per_epoch(images: int) -> int:
    return sum(1 for start in range(0, images, BATCH) if images - start >= 2)  # batch norm needs two per batch


def epochs_for(images: int, epochs: int, min_steps: int = MIN_STEPS) -> int:
    """``epochs``, or as many more as ``min_steps`` optimiser steps on ``images`` images need."""
    return max(epochs, -(-min_steps // max(_steps_per_epoch(images), 1)))


def _as_uint8(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def classification_accuracy_score(samples: torch.Tensor, labels: torch.Tensor, train_images: torch.Tensor,
                                  train_labels: torch.Tensor, test_images: torch.Tensor, test_labels: torch.Tensor,
                                  classes: int, epochs: int, seed: int = 0, device: torch.device | str = "cpu",
                                  min_steps: int = MIN_STEPS) -> dict[str, float]:
    """CAS of labelled samples and the real-data baseline of as many training images (images in [-1, 1] or
    uint8), both tested on ``test_images``."""
    n = min(len(samples), len(train_images))
    pick = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(seed))[:n]
    real = train_images[pick]
    real = real.float() / 127.5 - 1 if real.dtype == torch.uint8 else real
    fake = samples.float() / 127.5 - 1 if samples.dtype == torch.uint8 else samples
    return {"cas": train_and_test(fake, labels, test_images, test_labels, classes, epochs, seed, device, min_steps),
            "cas_real": train_and_test(real, train_labels[pick], test_images, test_labels, classes, epochs, seed,
                                       device, min_steps),
            "cas_images": len(samples), "cas_epochs": epochs_for(len(samples), epochs, min_steps)}
