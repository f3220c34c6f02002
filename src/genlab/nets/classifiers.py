"""Classifiers for 28x28 grey and 32x32 colour images.

Both expose ``features(x)`` (the penultimate vector, used as a feature space for sample-quality metrics),
``logits(features)`` and ``forward(x) = logits(features(x))``.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class Residual(nn.Module):
    """x + two conv-bn-relu layers of the same width."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(channels, channels), conv_bn_relu(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SmallCNN(nn.Module):
    """Two conv blocks per resolution (28 -> 14 -> 7), global average pool, linear head."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 32):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            conv_bn_relu(in_channels, w), conv_bn_relu(w, w), nn.MaxPool2d(2),
            conv_bn_relu(w, 2 * w), conv_bn_relu(2 * w, 2 * w), nn.MaxPool2d(2),
            conv_bn_relu(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.feature_dim = 4 * w
        self.head = nn.Linear(self.feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.features(x))


class ResNet9(nn.Module):
    """The ResNet-9 of the DAWNBench CIFAR-10 entries (Page 2018), at a configurable width.

    Widths w, 2w, 4w, 8w over resolutions 32, 16, 8, 4; residual blocks after the 2w and 8w stages;
    global max pool; the logits scaled by 1/8 as in the original.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 16):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            conv_bn_relu(in_channels, w),
            conv_bn_relu(w, 2 * w), nn.MaxPool2d(2), Residual(2 * w),
            conv_bn_relu(2 * w, 4 * w), nn.MaxPool2d(2),
            conv_bn_relu(4 * w, 8 * w), nn.MaxPool2d(2), Residual(8 * w),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        )
        self.feature_dim = 8 * w
        self.head = nn.Linear(self.feature_dim, num_classes, bias=False)
        self.logit_scale = 0.125

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features) * self.logit_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.features(x))


ARCHITECTURES = {"cnn": SmallCNN, "resnet9": ResNet9}


def build_classifier(arch: str, in_channels: int, num_classes: int, width: int) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown classifier architecture '{arch}'; known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](in_channels=in_channels, num_classes=num_classes, width=width)
