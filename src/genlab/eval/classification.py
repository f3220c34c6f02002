"""Predictions of a classifier over a dataset, accuracy and confusion matrices."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix

from genlab.data.batches import to_float
from genlab.data.datasets import ImageSet
from genlab.nets.modes import evaluating


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 500,
                   channels_last: bool = False) -> torch.Tensor:
    """Logits for uint8 images (N, C, H, W), in eval mode, returned on the CPU."""
    out = []
    with evaluating(model):
        for start in range(0, len(images), batch_size):
            x = to_float(images[start:start + batch_size].to(device))
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            out.append(model(x).float().cpu())
    return torch.cat(out)


def classification_report(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """Accuracy, mean cross-entropy, per-class accuracy and the confusion matrix (rows = true labels)."""
    predicted = logits.argmax(1).numpy()
    truth = labels.numpy()
    matrix = confusion_matrix(truth, predicted, labels=np.arange(num_classes))
    per_class = matrix.diagonal() / np.maximum(matrix.sum(1), 1)
    return {"accuracy": float((predicted == truth).mean()),
            "loss": float(F.cross_entropy(logits, labels)),
            "per_class_accuracy": per_class.tolist(),
            "confusion": matrix.tolist()}


def evaluate_classifier(model: torch.nn.Module, data: ImageSet, device: torch.device,
                        channels_last: bool = False) -> dict:
    logits = predict_logits(model, data.images, device, channels_last=channels_last)
    return classification_report(logits, data.labels, len(data.classes))
