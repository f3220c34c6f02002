"""Classifiers for 28x28 grey and 32x32 colour images.

Both expose ``features(x)`` (the penultimate vector, used as a feature space for sample-quality metrics),
``logits(features)``, ``forward(x) = logits(features(x))`` and ``first_layer`` (the first convolution,
whose output gradient JEM++'s proximal sampler reuses). ``norm="none"`` builds them without batch norm.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_block(c_in: int, c_out: int, norm: str = "batch") -> nn.Sequential:
    """3x3 convolution, batch norm (or none), ReLU.

    Without batch norm the convolution takes He initialisation (He et al. 2015), which keeps the signal's
    scale through ReLU layers; PyTorch's default (weights with a sixth of He's variance) shrinks it at every
    layer, so the classifiers' initial logits were near zero and they sat at chance for the first epoch, a
    plateau whose end (and the final accuracy) varied with the host's arithmetic.
    """
    if norm == "batch":
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                             nn.ReLU(inplace=True))
    if norm == "none":
        conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        nn.init.zeros_(conv.bias)
        return nn.Sequential(conv, nn.ReLU(inplace=True))
    raise ValueError(f"unknown norm '{norm}'; use batch or none")


class Residual(nn.Module):
    """x + two conv blocks of the same width."""

    def __init__(self, channels: int, norm: str = "batch"):
        super().__init__()
        self.body = nn.Sequential(conv_block(channels, channels, norm), conv_block(channels, channels, norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FeatureClassifier(nn.Module):
    """A ``body`` (starting with a conv block) that gives the feature vector, and a linear ``head``."""

    body: nn.Sequential
    head: nn.Linear
    logit_scale = 1.0

    @property
    def first_layer(self) -> nn.Conv2d:
        return self.body[0][0]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features) * self.logit_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.features(x))


class SmallCNN(FeatureClassifier):
    """Two conv blocks per resolution (28 -> 14 -> 7), global average pool, linear head."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 32, norm: str = "batch"):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            conv_block(in_channels, w, norm), conv_block(w, w, norm), nn.MaxPool2d(2),
            conv_block(w, 2 * w, norm), conv_block(2 * w, 2 * w, norm), nn.MaxPool2d(2),
            conv_block(2 * w, 4 * w, norm), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.feature_dim = 4 * w
        self.head = nn.Linear(self.feature_dim, num_classes)


class ResNet9(FeatureClassifier):
    """The ResNet-9 of the DAWNBench CIFAR-10 entries (Page 2018), at a configurable width.

    Widths w, 2w, 4w, 8w over resolutions 32, 16, 8, 4; residual blocks after the 2w and 8w stages;
    global max pool; the logits scaled by 1/8 as in the original.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 16, norm: str = "batch"):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            conv_block(in_channels, w, norm),
            conv_block(w, 2 * w, norm), nn.MaxPool2d(2), Residual(2 * w, norm),
            conv_block(2 * w, 4 * w, norm), nn.MaxPool2d(2),
            conv_block(4 * w, 8 * w, norm), nn.MaxPool2d(2), Residual(8 * w, norm),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        )
        self.feature_dim = 8 * w
        self.head = nn.Linear(self.feature_dim, num_classes, bias=False)
        self.logit_scale = 0.125


ARCHITECTURES = {"cnn": SmallCNN, "resnet9": ResNet9}


def build_classifier(arch: str, in_channels: int, num_classes: int, width: int, norm: str = "batch") -> nn.Module:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown classifier architecture '{arch}'; known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](in_channels=in_channels, num_classes=num_classes, width=width, norm=norm)
