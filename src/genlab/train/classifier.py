"""Supervised classifiers: cross-entropy, SGD with Nesterov momentum, a one-cycle learning rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F

from genlab.config import param
from genlab.data.batches import Batches
from genlab.data.datasets import ImageSet
from genlab.eval.classification import evaluate_classifier
from genlab.train.base import ModelTrainer, set_lr


@dataclass
class ClassifierModelConfig:
    arch: Literal["cnn", "resnet9"] = param("cnn", "cnn: small CNN for 28x28; resnet9: ResNet-9 for 32x32 colour")
    width: int = param(16, "channels of the first stage (later stages use multiples)", ge=1)
    norm: Literal["batch", "none"] = param("batch", "batch norm after each convolution, or none")


@dataclass
class ClassifierTrainConfig:
    epochs: float = param(3.0, "passes over the training set", gt=0)
    batch_size: int = param(128, "images per step", ge=1)
    lr: float = param(0.05, "peak learning rate of the one-cycle schedule", gt=0)
    warmup: float = param(0.2, "fraction of steps spent raising the learning rate linearly from 0", ge=0, lt=1)
    momentum: float = param(0.9, "SGD momentum (Nesterov)", ge=0, lt=1)
    weight_decay: float = param(5e-4, "L2 weight decay", ge=0)
    label_smoothing: float = param(0.0, "cross-entropy label smoothing", ge=0, lt=1)
    augment: Literal["none", "shift", "crop_flip"] = param("shift", "shift: +-2 px translations; "
                                                           "crop_flip: CIFAR-style pad-4 crop and flip")
    channels_last: bool = param(True, "channels-last memory format (about 2x faster convolutions on CPU)")


class ClassifierTrainer(ModelTrainer):
    """One SGD step per call on a batch of the training set; the learning rate is a function of the step."""

    def __init__(self, model: torch.nn.Module, batches: Batches, eval_set: ImageSet, cfg: ClassifierTrainConfig,
                 augment: Callable[[torch.Tensor], torch.Tensor], total_steps: int, device: torch.device):
        self.model, self.batches, self.eval_set, self.cfg = model, batches, eval_set, cfg
        self.augment, self.total_steps, self.device = augment, total_steps, device
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model.to(device=device, memory_format=self.memory_format)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                                         weight_decay=cfg.weight_decay)

    def lr_at(self, step: int) -> float:
        """Linear warm-up to the peak, then linear decay to zero (a stateless one-cycle schedule)."""
        warm = max(1, round(self.cfg.warmup * self.total_steps))
        if step < warm:
            frac = (step + 1) / warm
        else:
            frac = max(0.0, (self.total_steps - step) / max(1, self.total_steps - warm))
        return self.cfg.lr * self.lr_scale * frac

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        x, y = self.batches(step)
        x = self.augment(x).contiguous(memory_format=self.memory_format)
        lr = self.lr_at(step)
        set_lr(self.optimizer, lr)
        logits = self.loss_model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach(), "acc": (logits.argmax(1) == y).float().mean(), "lr": torch.tensor(lr)}

    def evaluate(self, step: int) -> dict[str, float]:
        report = evaluate_classifier(self.model, self.eval_set, self.device, self.cfg.channels_last)
        return {"acc": report["accuracy"], "loss": report["loss"]}
