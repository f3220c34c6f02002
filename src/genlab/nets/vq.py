"""A discrete VAE for 28x28 images: a convolutional encoder to a grid of latent vectors (7x7, or 4x4 with
a third stride-2 stage), a quantiser that replaces each vector by one of K codebook entries, and a decoder
back to the image.

Shapes: images (B, C, 28, 28) in [-1, 1]; encoder output (B, D, 7, 7); code indices (B, 7, 7) in [0, K).
In the token form (``build_dvae(tokens=N)``) the grid is a row of N global codes: (B, D, 1, N), (B, 1, N).
Two quantisers share one interface (``forward(z) -> Quantized``, ``lookup(indices)``, ``codebook``):

- :class:`VectorQuantizerEMA`: nearest-codebook assignment, straight-through gradients, a commitment loss,
  the codebook learnt by exponential moving averages, dead codes restarted from the batch (VQ-VAE).
- :class:`GumbelQuantizer`: a categorical distribution over the codes per position, relaxed with
  Gumbel-softmax at a temperature the trainer sets (``quantizer.temperature``), with a KL to the uniform
  prior (the DALL-E dVAE).

:class:`Continuous` passes the encoder's vectors through unchanged: the same network is then a plain
autoencoder of equal size, the baseline that tells what quantisation adds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Quantized:
    """What a quantiser returns: ``quantized`` and ``loss`` carry gradients, the rest are detached statistics."""

    quantized: torch.Tensor  # (B, D, H, W): what the decoder reads; carries gradients to the encoder
    indices: torch.Tensor  # (B, H, W) long: the chosen code per position
    loss: torch.Tensor  # scalar: commitment loss (VQ) or weighted KL to the uniform prior (Gumbel)
    perplexity: torch.Tensor  # scalar: exp(entropy) of the batch's code histogram; K means all codes equally used
    dead_codes: torch.Tensor  # scalar: codes whose moving-average use fell below the threshold


def code_counts(indices: torch.Tensor, num_codes: int) -> torch.Tensor:
    """How often each code occurs in ``indices`` (float, length K); unlike bincount, never syncs with a GPU."""
    flat = indices.flatten()
    return torch.zeros(num_codes, device=flat.device).index_add_(0, flat, torch.ones_like(flat, dtype=torch.float))


def perplexity(counts: torch.Tensor) -> torch.Tensor:
    """exp of the entropy of a code histogram (1 = one code used, K = all K codes used equally)."""
    p = counts / counts.sum()
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())


class ResidualBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))), the block of the VQ-VAE paper's encoder and decoder."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def grid_sides(side: int, downsamples: int) -> list[int]:
    """Side of the feature map after each stride-2 stage: 28 -> [14, 7] (two stages) or [14, 7, 4] (three)."""
    sides = []
    for _ in range(downsamples):
        side = (side + 1) // 2
        sides.append(side)
    return sides


class Encoder(nn.Module):
    """Two stride-2 convolutions (28 -> 14 -> 7), optional further stride-2 3x3 convolutions (7 -> 4: a
    coarser code grid), residual blocks, a 1x1 projection to ``out_dim``."""

    def __init__(self, in_channels: int, width: int, out_dim: int, res_blocks: int = 2, downsamples: int = 2):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, width // 2, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width // 2, width, 4, stride=2, padding=1), nn.ReLU(),
            *[layer for _ in range(downsamples - 2) for layer in (nn.Conv2d(width, width, 3, stride=2, padding=1),
                                                                  nn.ReLU())],
            nn.Conv2d(width, width, 3, padding=1),
            *[ResidualBlock(width, width // 2) for _ in range(res_blocks)], nn.ReLU(),
            nn.Conv2d(width, out_dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """The encoder mirrored: a 3x3 convolution, residual blocks, the extra stages undone by stride-2 3x3
    transposed convolutions (output padding restores even sides), two stride-2 transposed convolutions.
    ``side`` is the image side, which fixes those paddings (28: 4 -> 7 needs none).

    The output is linear, not squashed by tanh: most pixels are background at -1, and a tanh output
    saturates there early in training and stops the gradient (the whole model then learns nothing)."""

    def __init__(self, in_dim: int, width: int, out_channels: int, res_blocks: int = 2, downsamples: int = 2,
                 side: int = 28):
        super().__init__()
        sides = grid_sides(side, downsamples)
        extra = [layer for target in reversed(sides[1:-1])
                 for layer in (nn.ConvTranspose2d(width, width, 3, stride=2, padding=1,
                                                  output_padding=1 - target % 2), nn.ReLU())]
        self.net = nn.Sequential(
            nn.Conv2d(in_dim, width, 3, padding=1),
            *[ResidualBlock(width, width // 2) for _ in range(res_blocks)], nn.ReLU(),
            *extra,
            nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(width // 2, out_channels, 4, stride=2, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ToTokens(nn.Module):
    """The encoder's feature map (B, C, h, w) to ``tokens`` global vectors (B, D, 1, tokens), each a linear
    read of the whole map: the quantiser then sees a row of codes that describe the image as a whole, not
    the local patches of the grid form (whose codes keep the pixels' neighbourhoods)."""

    def __init__(self, map_size: int, tokens: int, dim: int):
        super().__init__()
        self.tokens, self.dim = tokens, dim
        self.linear = nn.Linear(map_size, tokens * dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        tokens = self.linear(features.flatten(1)).reshape(len(features), self.tokens, self.dim)
        return tokens.transpose(1, 2)[:, :, None]


class FromTokens(nn.Module):
    """The decoder's side of :class:`ToTokens`: a row of token vectors (B, D, 1, tokens) to a feature map
    (B, channels, side, side)."""

    def __init__(self, tokens: int, dim: int, channels: int, side: int):
        super().__init__()
        self.shape = (channels, side, side)
        self.linear = nn.Linear(tokens * dim, channels * side * side)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.relu(self.linear(z.transpose(1, 3).flatten(1))).reshape(len(z), *self.shape)


def _flatten_grid(z: torch.Tensor) -> torch.Tensor:
    """(B, D, H, W) -> (B*H*W, D)."""
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def _unflatten_grid(flat: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B*H*W, D) -> (B, D, H, W) with the batch and grid of ``like``."""
    b, _, h, w = like.shape
    return flat.reshape(b, h, w, -1).permute(0, 3, 1, 2)


class VectorQuantizerEMA(nn.Module):
    """Nearest-neighbour quantisation with a codebook learnt by exponential moving averages.

    - Straight-through estimator: the decoder sees the codebook vector, the encoder receives the decoder's
      gradient as if quantisation were the identity (van den Oord et al. 2017, https://arxiv.org/abs/1711.00937).
    - Commitment loss ``beta * ||z_e - sg[e]||^2`` keeps encoder outputs near their codes (same paper, beta 0.25).
    - EMA codebook: each code is the moving average of the encoder outputs assigned to it, with Laplace
      smoothing of the counts (same paper, appendix A.1; Razavi et al. 2019, https://arxiv.org/abs/1906.00446).
    - Dead-code restarts: a code whose moving-average count falls below ``dead_threshold`` assignments per
      batch is moved onto a random encoder output of the batch (Dhariwal et al. 2020, Jukebox,
      https://arxiv.org/abs/2005.00341). Codes start with a count of exactly the threshold, so codes no
      batch picks are re-seeded from data at once: a data-dependent initialisation for free.

    The codebook, counts and sums are buffers, so ``state_dict`` holds everything an exact resume needs.
    The restarts draw from the global torch generator (which checkpoints save). ``sum_over_ranks`` turns
    this process's code counts and sums into the global batch's: the identity in one process; under
    torchrun the trainer sets an all-reduce, so that every rank's codebook moves alike.
    """

    def __init__(self, num_codes: int, dim: int, beta: float = 0.25, decay: float = 0.99,
                 dead_threshold: float = 1.0, eps: float = 1e-5):
        super().__init__()
        self.num_codes, self.dim = num_codes, dim
        self.beta, self.decay, self.dead_threshold, self.eps = beta, decay, dead_threshold, eps
        codebook = torch.randn(num_codes, dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("cluster_size", torch.full((num_codes,), float(dead_threshold)))
        self.register_buffer("embed_sum", codebook * dead_threshold)
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))
        self.sum_over_ranks: Callable[[torch.Tensor], torch.Tensor] = _one_process

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code (squared Euclidean distance) of each row of ``flat`` (N, D)."""
        distances = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.T
                     + self.codebook.pow(2).sum(1)[None])
        return distances.argmin(1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codebook vectors of ``indices`` (B, H, W) as a grid (B, D, H, W)."""
        return F.embedding(indices, self.codebook).permute(0, 3, 1, 2)

    def forward(self, z: torch.Tensor) -> Quantized:
        flat = _flatten_grid(z)
        indices = self.nearest(flat.detach())
        chosen = F.embedding(indices, self.codebook)
        dead = torch.zeros((), dtype=torch.long, device=z.device)
        if self.training:
            dead = self.ema_update(flat.detach(), indices)
        commitment = self.beta * F.mse_loss(flat, chosen)
        straight_through = flat + (chosen - flat).detach()
        return Quantized(_unflatten_grid(straight_through, z), indices.reshape(z.shape[0], *z.shape[2:]),
                         commitment, perplexity(code_counts(indices, self.num_codes)), dead)

    def consistency(self, z: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """How far encoder outputs ``z`` (B, D, H, W) lie from the codes ``indices`` (B, H, W) of another view
        of the same images: the commitment term with those codes (held fixed) in place of the nearest ones."""
        return F.mse_loss(_flatten_grid(z), F.embedding(indices.flatten(), self.codebook).detach())

    @torch.no_grad()
    def ema_update(self, flat: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Move each code toward the mean of the vectors assigned to it; restart dead codes. Returns their count."""
        counts = code_counts(indices, self.num_codes).to(flat.dtype)
        sums = torch.zeros_like(self.embed_sum).index_add_(0, indices, flat)
        counts, sums = self.sum_over_ranks(counts), self.sum_over_ranks(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.num_codes * self.eps) * total
        self.codebook.copy_(self.embed_sum / smoothed[:, None])
        return self.restart_dead(flat)

    @torch.no_grad()
    def restart_dead(self, flat: torch.Tensor) -> torch.Tensor:
        """Re-seed codes used less than ``dead_threshold`` times per batch (moving average) from random rows
        of ``flat``, with a count of exactly the threshold. Sync-free: no data-dependent shapes. (Under
        torchrun the ranks pick different rows; DDP then broadcasts rank 0's codebook to all.)"""
        dead = self.cluster_size < self.dead_threshold
        picks = flat[torch.randint(len(flat), (self.num_codes,), device=flat.device)]
        self.codebook.copy_(torch.where(dead[:, None], picks, self.codebook))
        self.embed_sum.copy_(torch.where(dead[:, None], picks * self.dead_threshold, self.embed_sum))
        self.cluster_size.copy_(torch.where(dead, torch.full_like(self.cluster_size, self.dead_threshold),
                                            self.cluster_size))
        count = dead.sum()
        self.restarts.add_(count)
        return count


def _one_process(values: torch.Tensor) -> torch.Tensor:
    return values


def gumbel_softmax(logits: torch.Tensor, temperature: float, dim: int = 1) -> torch.Tensor:
    """A relaxed one-hot sample: softmax((logits + Gumbel noise) / temperature) along ``dim``.

    Jang et al. 2017 (https://arxiv.org/abs/1611.01144) and Maddison et al. 2017
    (https://arxiv.org/abs/1611.00712). As the temperature goes to 0 the sample becomes the one-hot of
    argmax(logits + noise), an exact draw from softmax(logits).
    """
    uniform = torch.rand_like(logits).clamp_(1e-10, 1.0 - 1e-7)
    gumbel = -torch.log(-torch.log(uniform))
    return F.softmax((logits + gumbel) / temperature, dim=dim)


class GumbelQuantizer(nn.Module):
    """Codes chosen by a categorical distribution per position, relaxed with Gumbel-softmax while training.

    A 1x1 convolution turns each encoder vector into logits over the K codes; training mixes the codebook
    vectors with a relaxed one-hot sample (``temperature`` is annealed by the trainer); evaluation takes the
    most likely code. With ``straight_through`` the forward pass uses the sample's hard one-hot and only the
    gradient comes from the relaxation (Jang et al. 2017, section 2.2): the decoder then never sees
    mixtures of codes, which it otherwise learns to rely on while the most likely codes collapse onto a
    handful (seen on MNIST: 3 of 128 codes picked by argmax while soft training reconstructions were fine).

    The loss is ``kl_weight * KL(q(code | x) || uniform)`` averaged over positions, the prior term of the
    discrete VAE's ELBO (Ramesh et al. 2021, DALL-E, https://arxiv.org/abs/2102.12092); it also keeps
    codes in use (at weight 5e-4, 14 of 128 codes survived on MNIST; at 0.01, 112).
    The codebook is learnt by gradient descent. ``usage`` (a moving average of each code's count of
    argmax picks per batch) is kept only to report dead codes: nothing restarts them here.
    """

    def __init__(self, num_codes: int, in_dim: int, dim: int, kl_weight: float = 0.01,
                 straight_through: bool = True, dead_threshold: float = 1.0, usage_decay: float = 0.99):
        super().__init__()
        self.num_codes, self.dim = num_codes, dim
        self.kl_weight, self.straight_through = kl_weight, straight_through
        self.dead_threshold, self.usage_decay = dead_threshold, usage_decay
        self.to_logits = nn.Conv2d(in_dim, num_codes, 1)
        self.embedding = nn.Embedding(num_codes, dim)
        self.temperature = 1.0
        self.register_buffer("usage", torch.full((num_codes,), float(dead_threshold)))

    @property
    def codebook(self) -> torch.Tensor:
        return self.embedding.weight

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        return self.embedding(indices).permute(0, 3, 1, 2)

    def forward(self, z: torch.Tensor) -> Quantized:
        logits = self.to_logits(z)
        indices = logits.argmax(1)
        if self.training:
            weights = gumbel_softmax(logits, self.temperature, dim=1)
            if self.straight_through:
                indices = weights.argmax(1)
                hard = F.one_hot(indices, self.num_codes).permute(0, 3, 1, 2).to(weights.dtype)
                weights = hard + weights - weights.detach()
            quantized = torch.einsum("bkhw,kd->bdhw", weights, self.embedding.weight)
            dead = self._track_usage(indices)
        else:
            quantized = self.lookup(indices)
            dead = torch.zeros((), dtype=torch.long, device=z.device)
        log_q = F.log_softmax(logits, dim=1)
        kl = (log_q.exp() * (log_q + math.log(self.num_codes))).sum(1).mean()
        return Quantized(quantized, indices, self.kl_weight * kl, perplexity(code_counts(indices, self.num_codes)),
                         dead)

    def consistency(self, z: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the code distributions of encoder outputs ``z`` with the codes ``indices`` of
        another view of the same images (held fixed)."""
        return F.cross_entropy(self.to_logits(z), indices)

    @torch.no_grad()
    def _track_usage(self, indices: torch.Tensor) -> torch.Tensor:
        counts = code_counts(indices, self.num_codes)
        self.usage.mul_(self.usage_decay).add_(counts, alpha=1 - self.usage_decay)
        return (self.usage < self.dead_threshold).sum()


class Continuous(nn.Module):
    """No quantisation: the decoder reads the encoder's vectors as they are (a plain autoencoder). It keeps
    the quantisers' interface so that the same trainer and reports serve it: one code (index 0) everywhere,
    no loss."""

    num_codes = 1

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    @property
    def codebook(self) -> torch.Tensor:
        return torch.zeros(1, self.dim)

    def forward(self, z: torch.Tensor) -> Quantized:
        zero = torch.zeros((), device=z.device)
        return Quantized(z, torch.zeros(z.shape[0], *z.shape[2:], dtype=torch.long, device=z.device), zero,
                         torch.ones((), device=z.device), zero.long())


class DiscreteVAE(nn.Module):
    """Encoder -> quantiser -> decoder. ``forward`` returns the reconstruction and the quantiser's output."""

    def __init__(self, encoder: nn.Module, quantizer: VectorQuantizerEMA | GumbelQuantizer | Continuous,
                 decoder: nn.Module):
        super().__init__()
        self.encoder, self.quantizer, self.decoder = encoder, quantizer, decoder

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Quantized]:
        q = self.quantizer(self.encoder(x))
        return self.decoder(q.quantized), q

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Code indices (B, H, W) of images, as in evaluation (nearest code, or most likely code)."""
        return self.quantizer(self.encoder(x)).indices

    @torch.no_grad()
    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """What the decoder reads (B, D, H, W), as in evaluation: the chosen codes' vectors, or the
        autoencoder's continuous vectors."""
        return self.quantizer(self.encoder(x)).quantized

    @torch.no_grad()
    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.lookup(indices))


def build_dvae(quantizer: str, in_channels: int = 1, width: int = 64, code_dim: int = 32, num_codes: int = 128,
               res_blocks: int = 2, beta: float = 0.25, decay: float = 0.99, dead_threshold: float = 1.0,
               kl_weight: float = 0.01, straight_through: bool = True, downsamples: int = 2,
               side: int = 28, tokens: int = 0) -> DiscreteVAE:
    """A discrete VAE with the ``"vq"`` (EMA codebook) or ``"gumbel"`` quantiser, or the same network
    without quantisation (``"none"``: a continuous autoencoder); ``downsamples`` stride-2 stages. With
    ``tokens`` > 0 the codes are that many global tokens (:class:`ToTokens`) instead of the grid's positions."""
    encoder_dim = width if quantizer == "gumbel" else code_dim
    if quantizer == "vq":
        bottleneck = VectorQuantizerEMA(num_codes, code_dim, beta, decay, dead_threshold)
    elif quantizer == "gumbel":
        bottleneck = GumbelQuantizer(num_codes, width, code_dim, kl_weight, straight_through, dead_threshold, decay)
    elif quantizer == "none":
        bottleneck = Continuous(code_dim)
    else:
        raise ValueError(f"unknown quantizer {quantizer!r}; use 'vq', 'gumbel' or 'none'")
    if not tokens:
        return DiscreteVAE(Encoder(in_channels, width, encoder_dim, res_blocks, downsamples), bottleneck,
                           Decoder(code_dim, width, in_channels, res_blocks, downsamples, side))
    channels, grid = width // 2, grid_sides(side, downsamples)[-1]
    return DiscreteVAE(nn.Sequential(Encoder(in_channels, width, channels, res_blocks, downsamples),
                                     ToTokens(channels * grid * grid, tokens, encoder_dim)),
                       bottleneck,
                       nn.Sequential(FromTokens(tokens, code_dim, channels, grid),
                                     Decoder(channels, width, in_channels, res_blocks, downsamples, side)))
