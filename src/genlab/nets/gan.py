"""DCGAN-style generator and discriminator/critic for 28x28 single-channel images (Radford et al. 2016).

The generator maps a noise vector z (and, if conditional, a class label) to an image in [-1, 1]:
a linear layer to a 7x7 map of 4w channels, two stride-2 transposed convolutions (7 -> 14 -> 28),
batch norm and ReLU between them, tanh at the end.

The discriminator maps an image to one real number per image. A GAN reads it as the logit of
"real"; a WGAN reads the same number as the critic's score f(x) (no sigmoid anywhere in the net).
Three stride-2 convolutions (28 -> 14 -> 7 -> 4) with LeakyReLU(0.2), then a linear layer. The
normalisation after the second and third convolutions is a choice, because the gradient penalty of
WGAN-GP is a per-sample quantity that batch norm breaks by mixing samples (Gulrajani et al. 2017,
section 4): ``"batch"`` (DCGAN, WGAN), ``"layer"`` (per-sample over C, H, W: WGAN-GP) or ``"none"``.
``spectral_norm=True`` divides every convolution and linear weight of the discriminator by its largest
singular value, estimated by one power iteration per training forward pass (Miyato et al. 2018): each
layer is then 1-Lipschitz, which steadies the GAN's discriminator and the WGAN-GP's critic alike.

Conditional variants: the generator concatenates a learnt label embedding to z; the discriminator adds
the projection term <embed(y), h(x)> to its output (Miyato & Koyama 2018).

Latent codes (InfoGAN, Chen et al. 2016), for unconditional models: with ``codes=K`` the generator's latent
vector is z followed by a one-hot categorical code c drawn uniformly from K values, and the discriminator
has a second head Q(c|x) on its shared body, K logits per image. Training maximises a lower bound on the
mutual information between c and the image, so each code value comes to stand for a mode of the data
(on digit datasets, mostly one digit each). No label is used anywhere: c is part of the model's prior.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

IMAGE_SIZE = 28
NORMS = ("batch", "layer", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # one group = layer norm over (C, H, W), per-channel affine
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown normalisation '{kind}'; known: {', '.join(NORMS)}")


class Generator(nn.Module):
    def __init__(self, z_dim: int = 64, width: int = 32, channels: int = 1, num_classes: int = 0, codes: int = 0):
        super().__init__()
        self.z_dim, self.num_classes, self.codes = z_dim, num_classes, codes
        self.label_embedding = nn.Embedding(num_classes, z_dim) if num_classes else None
        in_dim = self.latent_dim + (z_dim if num_classes else 0)
        w = width
        self.project = nn.Sequential(nn.Linear(in_dim, 4 * w * 7 * 7, bias=False), nn.Unflatten(1, (4 * w, 7, 7)),
                                     nn.BatchNorm2d(4 * w), nn.ReLU(inplace=True))
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(4 * w, 2 * w, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * w),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * w, channels, 4, stride=2, padding=1), nn.Tanh())

    @property
    def latent_dim(self) -> int:
        """Length of the generator's input: z, then the one-hot code if any."""
        return self.z_dim + self.codes

    def latent(self, n: int, generator: torch.Generator | None = None, codes: torch.Tensor | None = None,
               device: torch.device | str | None = None) -> torch.Tensor:
        """n latent vectors drawn on ``device`` (the random ``generator``'s device if one is given): z ~ N(0, I),
        then (with codes) a one-hot code, uniform unless ``codes`` gives its values. z is drawn first, so a
        model without codes consumes the random stream exactly as torch.randn(n, z_dim)."""
        z = torch.randn(n, self.z_dim, generator=generator, device=device)
        if not self.codes:
            return z
        if codes is None:
            codes = torch.randint(0, self.codes, (n,), generator=generator, device=device)
        return torch.cat([z, nn.functional.one_hot(codes.to(z.device), self.codes).to(z.dtype)], dim=1)

    def code_of(self, latent: torch.Tensor) -> torch.Tensor:
        """The categorical code of each latent vector (its one-hot part's index)."""
        return latent[:, self.z_dim:].argmax(1)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.label_embedding is not None:
            z = torch.cat([z, self.label_embedding(y)], dim=1)
        return self.upsample(self.project(z))


class Discriminator(nn.Module):
    """One score per image: a GAN's logit or a WGAN's critic value; with ``codes``, also Q(c|x)'s logits."""

    def __init__(self, width: int = 32, norm: str = "batch", channels: int = 1, num_classes: int = 0,
                 spectral_norm: bool = False, codes: int = 0):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(channels, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1, bias=norm == "none"), _norm(norm, 2 * w),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1, bias=norm == "none"), _norm(norm, 4 * w),
            nn.LeakyReLU(0.2, inplace=True), nn.Flatten())
        features = 4 * w * 4 * 4
        self.head = nn.Linear(features, 1)
        self.label_embedding = nn.Embedding(num_classes, features) if num_classes else None
        self.code_head = nn.Linear(features, codes) if codes else None
        if spectral_norm:
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    _spectral_norm(m)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None,
                code_logits: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The scores; with ``code_logits`` (a model with codes), the scores and Q(c|x)'s logits of one pass."""
        h = self.body(x)
        score = self.head(h).squeeze(1)
        if self.label_embedding is not None:
            score = score + (self.label_embedding(y) * h).sum(1)
        return (score, self.code_head(h)) if code_logits else score


def init_dcgan(module: nn.Module) -> None:
    """DCGAN's initialisation: weights N(0, 0.02), norm scales N(1, 0.02), biases 0 (a spectrally normalised
    layer's raw weight, before its normalisation)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            weight = m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight
            nn.init.normal_(weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
