"""A label-free feature space: a randomly initialised convolutional network with fixed weights.

The judge's features are trained to forget whatever does not change the label, so they miss flaws the
classifier ignores (noise, blur, within-class sameness). Features of a randomly initialised network are
trained on nothing: they keep local image statistics at several scales, and FID in them tracks image
corruptions and diversity (Naeem et al. 2020 evaluate with randomly initialised embeddings; Kynkaanniemi
et al. 2023 show how far ImageNet-trained features lean on class information). Every headline FID gets this
label-free twin.

The network: three 3x3 convolutions (16, 32, 64 channels) with ReLU and 2x2 average pooling between
them; the feature vector is the spatial mean and standard deviation of each stage's channels (224
values). Weights are drawn from N(0, 2 / fan_in) (He initialisation) by a generator seeded with
``SEED``, so the features are the same on every machine and in every run, and need no download.
"""

from __future__ import annotations

import torch
from torch import nn

SEED = 0
WIDTHS = (16, 32, 64)

_networks: dict[int, nn.ModuleList] = {}


def _network(in_channels: int) -> nn.ModuleList:
    if in_channels not in _networks:
        g = torch.Generator().manual_seed(SEED)
        convs = nn.ModuleList()
        c_in = in_channels
        for c_out in WIDTHS:
            conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * (2 / (c_in * 9)) ** 0.5)
            convs.append(conv.requires_grad_(False).eval())
            c_in = c_out
        _networks[in_channels] = convs
    return _networks[in_channels]


@torch.no_grad()
def randnet_features(images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Features (N, 2 * sum(WIDTHS)) of float images in [-1, 1] (or uint8 images), in float64, on the CPU."""
    convs = _network(images.shape[1])
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].cpu()
        x = x.float() / 127.5 - 1 if x.dtype == torch.uint8 else x.float()
        stats = []
        for i, conv in enumerate(convs):
            x = torch.relu(conv(x if i == 0 else nn.functional.avg_pool2d(x, 2)))
            stats += [x.mean((2, 3)), x.std((2, 3))]
        out.append(torch.cat(stats, 1).double())
    return torch.cat(out)
