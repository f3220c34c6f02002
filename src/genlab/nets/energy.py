"""Energy networks: ResNets that map an image to one energy, or to one energy per class.

Design after Du & Mordatch 2019 (IGEBM): residual blocks with Swish (SiLU) activations and no batch
norm (batch statistics would couple the samples of a chain and differ between data and samples),
average-pool downsampling, optional spectral norm on every convolution and linear layer to bound the
network's Lipschitz constant.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm


def _maybe_sn(layer: nn.Module, on: bool) -> nn.Module:
    return _spectral_norm(layer) if on else layer


class Downsample(nn.Module):
    """Average pooling by ``factor``, with a choice of what happens to a map whose side it does not divide.

    - ``"drop"``: PyTorch's floor: the last rows and columns are left out of every window.
    - ``"keep"``: ceil mode with the divisor fixed at factor^2: a window that runs off the map counts the
      missing pixels as zero, as if the map were zero-padded to a multiple of ``factor``. Every pixel weighs
      the same, and the output has one more row and column (more compute downstream).
    - ``"overlap"``: windows ``factor + remainder`` wide at stride ``factor`` (7 -> 3 with 3x3 windows):
      they tile the whole map, the output is as small as with ``"drop"``, and the pixels where two windows
      meet count twice.

    Maps whose side ``factor`` divides are pooled alike in every mode.
    """

    def __init__(self, factor: int, edges: str = "drop"):
        super().__init__()
        self.factor, self.edges = factor, edges

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.factor
        if self.edges == "keep":
            return F.avg_pool2d(x, k, ceil_mode=True, divisor_override=k * k)
        if self.edges == "overlap":
            return F.avg_pool2d(x, tuple(k + side % k for side in x.shape[-2:]), stride=k)
        return F.avg_pool2d(x, k)


class EnergyBlock(nn.Module):
    """x + conv(silu(conv(silu(x)))), with a 1x1 projection when the width changes."""

    def __init__(self, c_in: int, c_out: int, spectral_norm: bool = False):
        super().__init__()
        self.conv1 = _maybe_sn(nn.Conv2d(c_in, c_out, 3, padding=1), spectral_norm)
        self.conv2 = _maybe_sn(nn.Conv2d(c_out, c_out, 3, padding=1), spectral_norm)
        self.skip = _maybe_sn(nn.Conv2d(c_in, c_out, 1), spectral_norm) if c_in != c_out else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.conv2(self.act(self.conv1(self.act(x))))


class ResNetEnergy(nn.Module):
    """E(x) for images: a stem convolution, stages of residual blocks (width doubling and 2x average-pool
    downsampling between stages), global average pooling and a linear head.

    ``stem_stride=2`` halves the resolution at the stem: a quarter of the compute in the first stage and
    twice the receptive field for the same depth (what a small CPU preset needs). ``stem_downsample`` says
    how: a stride-2 3x3 convolution covers every other input pixel twice and the others once, so its input
    gradient, the drift of every Langevin step, carries a checkerboard that chains imprint on flat
    backgrounds; a stride-1 convolution followed by 2x2 average pooling (``"pool"``) covers every pixel
    alike, for a little more compute in the stem alone.

    Pooling a map with an odd side (MNIST: 28 -> 14 -> 7 -> 3) drops its last row and column by default, so
    the energy sees the image's bottom and right edges only through the convolutions before that pool:
    its input gradient there is a third of the top's and left's. ``pool_edges`` keeps them, by zero-padding
    the map (``"keep"``) or by overlapping windows at no extra cost (``"overlap"``): see ``Downsample``.

    With ``num_outputs=1`` the network is an unconditional energy E(x) -> (B,). With ``num_outputs=K`` it
    is a class-conditional energy that *selects one of K outputs*: ``forward(x, y)`` returns the energy of
    label y, ``energies(x)`` all K. One forward pass gives every label's energy, so conditional sampling
    of all classes and reading p(y|x) cost the same as one unconditional pass.
    """

    def __init__(self, in_channels: int = 3, width: int = 64, blocks: tuple[int, ...] = (3, 3, 3),
                 num_outputs: int = 1, spectral_norm: bool = False, stem_stride: int = 1,
                 stem_downsample: str = "stride", pool_edges: str = "drop"):
        super().__init__()
        self.num_outputs = num_outputs
        pooled = stem_downsample == "pool" and stem_stride > 1
        self.stem = _maybe_sn(nn.Conv2d(in_channels, width, 3, stride=1 if pooled else stem_stride, padding=1),
                              spectral_norm)
        self.stem_pool = Downsample(stem_stride, pool_edges) if pooled else nn.Identity()
        layers: list[nn.Module] = []
        channels = width
        for stage, count in enumerate(blocks):
            out = width * 2 ** stage
            for _ in range(count):
                layers.append(EnergyBlock(channels, out, spectral_norm))
                channels = out
            if stage < len(blocks) - 1:
                layers.append(Downsample(2, pool_edges))
        self.body = nn.Sequential(*layers)
        self.act = nn.SiLU()
        self.head = _maybe_sn(nn.Linear(channels, num_outputs), spectral_norm)

    def energies(self, x: torch.Tensor) -> torch.Tensor:
        """(B, num_outputs) energies."""
        h = self.act(self.body(self.stem_pool(self.stem(x))))
        return self.head(h.mean((2, 3)))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """E(x) -> (B,); for a conditional energy E(x, y) -> (B,), or without labels all K: (B, K)."""
        e = self.energies(x)
        if self.num_outputs == 1:
            return e[:, 0]
        return e if y is None else e.gather(1, y.view(-1, 1))[:, 0]
