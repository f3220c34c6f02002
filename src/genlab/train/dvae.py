"""Training a discrete VAE: reconstruction MSE plus the quantiser's loss, Adam, stateless schedules.

The loss per batch is ``mse(decoder(quantise(encoder(x))), x) + quantiser loss``, where the quantiser loss
is the commitment term (VQ; its codebook learns by EMA, outside the optimiser) or the weighted KL to the
uniform prior (Gumbel; its codebook learns by gradient). With ``invariance_weight`` > 0 a third term pulls
the encoder outputs of an augmented view of each image onto the image's codes (held fixed; VQ: squared
distance, as the commitment term; Gumbel: cross-entropy): two poses of one digit should get the same codes,
so that distances between codes follow the content. (Comparing the view's straight-through quantised
vectors instead pushes the encoder by a code difference that does not shrink as it moves: on MNIST its
outputs drifted and the codebook fell to 5 effective codes.) This is the consistency idea of
augmentation-based clustering (IIC, Ji et al. 2019, https://arxiv.org/abs/1807.06653; SCAN, Van Gansbeke
et al. 2020, https://arxiv.org/abs/2005.12320) applied to the code grid.

With ``contrastive_weight`` > 0 the clean batch and two augmented views of it are quantised together and
the NT-Xent loss of SimCLR (Chen et al. 2020, https://arxiv.org/abs/2002.05709) makes each view's quantised
vectors (flattened, straight-through, optionally through a projection head) pick the other view of its image
among the batch: images that augmentations connect get near codes, and the rest are pushed apart. The
reconstruction loss stays on the clean images. Augmented views go through the encoder outside the distributed
wrapper, so both augmentation terms are for single-process runs.

Images are in [-1, 1], so PSNR is ``10 log10(2^2 / mse)``: the same number as on [0, 1] images with peak 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genlab import distributed
from genlab.config import param
from genlab.data.augment import AUGMENTATIONS
from genlab.data.batches import Batches, iterate
from genlab.data.datasets import ImageSet
from genlab.errors import ConfigError
from genlab.nets.contrastive import nt_xent, projection_head
from genlab.nets.modes import evaluating
from genlab.nets.vq import (DiscreteVAE, GumbelQuantizer, Quantized, VectorQuantizerEMA, build_dvae, code_counts,
                            perplexity)
from genlab.train.base import ModelTrainer, set_lr


@dataclass
class DVAEModelConfig:
    quantizer: Literal["vq", "gumbel"] = param("vq", "vq: nearest code, straight-through gradients, EMA codebook, "
                                               "dead-code restarts; gumbel: Gumbel-softmax relaxed codes, KL to "
                                               "the uniform prior")
    width: int = param(64, "channels of the encoder and decoder at the 7x7 grid (half that at 14x14)", ge=2)
    res_blocks: int = param(2, "residual blocks in the encoder and in the decoder", ge=0)
    code_dim: int = param(32, "dimension D of a codebook vector", ge=1)
    num_codes: int = param(128, "codebook size K", ge=2)
    downsamples: int = param(2, "stride-2 stages of the encoder: 2 gives a 7x7 code grid on 28x28 images, 3 a 4x4 "
                             "grid (fewer, coarser codes per image)", ge=2, le=4)
    tokens: int = param(0, "0: one code per position of the grid; N > 0: N global codes, each a linear read of "
                        "the encoder's whole map (codes of grid positions describe local patches and keep the "
                        "pixels' neighbourhoods; global codes describe the image as a whole)", ge=0)
    beta: float = param(0.25, "vq: commitment loss weight", ge=0)
    decay: float = param(0.99, "vq: EMA decay of the codebook (also of the code-usage average of both forms)",
                         gt=0, lt=1)
    dead_threshold: float = param(1.0, "a code used fewer times per batch than this (moving average) is dead; "
                                  "vq restarts it from a batch vector", gt=0)
    kl_weight: float = param(0.01, "gumbel: weight of the KL to the uniform prior, per position (at 5e-4 only 14 "
                             "of 128 codes stayed in use on MNIST, at 0.01 112)", ge=0)
    straight_through: bool = param(True, "gumbel: the decoder sees the sample's hard one-hot, the gradient "
                                   "comes from the relaxation (false: the decoder sees the relaxed mixture)")

    def check(self) -> None:
        if self.width % 2:
            raise ConfigError(f"model.width must be even (the 14x14 stage uses width / 2); got {self.width}",
                              hint=f"e.g. --set model.width={self.width + 1}")


@dataclass
class DVAETrainConfig:
    epochs: float = param(3.0, "passes over the training set", gt=0)
    batch_size: int = param(128, "images per step", ge=1)
    lr: float = param(2e-3, "Adam learning rate at the start of the cosine decay", gt=0)
    lr_final: float = param(0.05, "learning rate at the end, as a fraction of lr", ge=0, le=1)
    invariance_weight: float = param(0.0, "weight of the augmentation-invariance loss: an augmented view's encoder "
                                     "outputs pulled onto the image's codes (held fixed), so that codes follow the "
                                     "content more than the pose (0: off)", ge=0)
    invariance_augment: Literal["shift", "affine"] = param("affine", "the augmented view of the invariance loss: "
                                                           "shift = up to 2 pixels, affine = rotation, scale, shift")
    contrastive_weight: float = param(0.0, "weight of the NT-Xent loss (SimCLR) between two augmented views of "
                                      "each image, on what the decoder reads (their quantised vectors, flattened; "
                                      "straight-through gradients), so that images of one class get near codes "
                                      "(0: off). Weight 0.1, head 128, affine, seeds 0-2 on 20,000 MNIST images (4 "
                                      "epochs): KMeans 0.882 on average against 0.832 without it (pixels 0.802); "
                                      "but on all 60,000 (quick, seeds 0, 1) 0.810 and 0.904 against 0.836 and "
                                      "0.926 without it, and on Fashion-MNIST 0.561 against pixels' 0.679: off by "
                                      "default", ge=0)
    contrastive_temperature: float = param(0.5, "temperature of the NT-Xent loss (SimCLR's 0.5; 0.2 gave 0.88 "
                                           "against 0.91 on 20,000 MNIST images)", gt=0)
    contrastive_augment: Literal["shift", "affine", "crop_flip", "crop", "crop_flip_intensity"] = param(
        "affine", "the two views of the contrastive loss: shift = up to 2 pixels, affine = rotation, scale, shift, "
        "crop_flip = padded crop and horizontal flip, crop = SimCLR's random resized crop (half the area or more), "
        "crop_flip_intensity = crop_flip with the ink's grey levels jittered. On 20,000 MNIST images: affine 0.91, "
        "shift 0.82, crop 0.79. On Fashion-MNIST (32 tokens, 20 epochs) the codes' 10-neighbour class purity: "
        "crop_flip 0.828, crop_flip_intensity 0.844, pixels 0.813")
    contrastive_head: int = param(0, "width of SimCLR's projection head (Linear, ReLU, Linear) between the "
                                  "flattened quantised vectors and the loss (0: the loss on them directly, which "
                                  "cost reconstruction and clustering: 0.75 at weight 0.1 against 0.91 with a "
                                  "head of 128 on 20,000 MNIST images)", ge=0)
    tau_start: float = param(1.0, "gumbel: temperature at step 0", gt=0)
    tau_end: float = param(0.1, "gumbel: temperature at the last step (geometric decay in between)", gt=0)

    def check(self) -> None:
        if self.contrastive_head and not self.contrastive_weight:
            raise ConfigError(f"train.contrastive_head ({self.contrastive_head}) is the head of the contrastive "
                              "loss, which is off (train.contrastive_weight = 0)",
                              hint="set train.contrastive_weight above 0, or train.contrastive_head=0")
        if self.tau_end > self.tau_start:
            raise ConfigError(f"train.tau_end ({self.tau_end}) must not exceed train.tau_start ({self.tau_start}): "
                              "the temperature is annealed downwards", hint="e.g. --set train.tau_end=0.1")


def dvae_from_config(cfg: DVAEModelConfig, in_channels: int, side: int = 28,
                     quantizer: str | None = None) -> DiscreteVAE:
    """The configured model; ``quantizer="none"`` builds the same network without quantisation (the
    continuous autoencoder baseline)."""
    return build_dvae(quantizer or cfg.quantizer, in_channels, cfg.width, cfg.code_dim, cfg.num_codes,
                      cfg.res_blocks, cfg.beta, cfg.decay, cfg.dead_threshold, cfg.kl_weight, cfg.straight_through,
                      cfg.downsamples, side, cfg.tokens)


def psnr(mse: torch.Tensor | float) -> torch.Tensor | float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2) from their mean squared error."""
    if isinstance(mse, torch.Tensor):
        return 10 * torch.log10(4.0 / mse.clamp_min(1e-12))
    return 10 * math.log10(4.0 / max(mse, 1e-12))


class DVAETrainer(ModelTrainer):
    """One Adam step per call on a batch; learning rate and temperature are functions of the step."""

    def __init__(self, model: DiscreteVAE, batches: Batches, eval_set: ImageSet, cfg: DVAETrainConfig,
                 total_steps: int, device: torch.device):
        self.model, self.batches, self.eval_set, self.cfg = model.to(device), batches, eval_set, cfg
        self.total_steps, self.device = total_steps, device
        self.head = self._projection_head(eval_set.images.shape[1:]).to(device)
        self.optimizer = torch.optim.Adam([*model.parameters(), *self.head.parameters()], lr=cfg.lr)
        self.gumbel = isinstance(model.quantizer, GumbelQuantizer)

    def _projection_head(self, image_shape: torch.Size) -> nn.Module:
        """SimCLR's head on the flattened quantised vectors, or the identity (``contrastive_head`` = 0)."""
        if not self.cfg.contrastive_head:
            return nn.Identity()
        with torch.no_grad():
            grid = self.model.encoder(torch.zeros(1, *image_shape, device=self.device)).shape[2:]
        return projection_head(self.model.quantizer.dim * grid.numel(), self.cfg.contrastive_head)

    def networks(self) -> dict[str, nn.Module]:
        return {"model": self.model, **({"head": self.head} if self.cfg.contrastive_head else {})}

    def distribute(self, device: torch.device) -> None:
        """Under torchrun, also the EMA codebook learns from the global batch (the sum of every rank's)."""
        for name in ("invariance_weight", "contrastive_weight"):
            if getattr(self.cfg, name) > 0 and distributed.current().world_size > 1:
                raise ConfigError(f"train.{name} runs augmented views outside the distributed wrapper, so it is "
                                  "for single-process runs", hint="run without torchrun, or set it to 0")
        super().distribute(device)
        if isinstance(self.model.quantizer, VectorQuantizerEMA):
            self.model.quantizer.sum_over_ranks = distributed.sum_over_ranks

    def lr_at(self, step: int) -> float:
        """Cosine decay from ``lr`` to ``lr * lr_final``."""
        frac = min(step / max(1, self.total_steps - 1), 1.0)
        scale = self.cfg.lr_final + (1 - self.cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * frac))
        return self.cfg.lr * self.lr_scale * scale

    def temperature_at(self, step: int) -> float:
        """Geometric decay from ``tau_start`` to ``tau_end`` (Jang et al. 2017 anneal exponentially)."""
        frac = min(step / max(1, self.total_steps - 1), 1.0)
        return self.cfg.tau_start * (self.cfg.tau_end / self.cfg.tau_start) ** frac

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        x, _ = self.batches(step)
        lr = self.lr_at(step)
        set_lr(self.optimizer, lr)
        metrics = {"lr": torch.tensor(lr)}
        if self.gumbel:
            self.model.quantizer.temperature = self.temperature_at(step)
            metrics["tau"] = torch.tensor(self.model.quantizer.temperature)
        self.model.train()
        if self.cfg.contrastive_weight > 0:
            recon, q, contrastive = self._contrastive_forward(x)
            metrics["contrastive"] = contrastive.detach()
        else:
            (recon, q), contrastive = self.loss_model(x), 0.0
        mse = F.mse_loss(recon, x)
        loss = mse + q.loss + self.cfg.contrastive_weight * contrastive
        if self.cfg.invariance_weight > 0:
            view = self.model.encoder(AUGMENTATIONS[self.cfg.invariance_augment](x))
            invariance = self.model.quantizer.consistency(view, q.indices[:len(x)].detach())
            loss = loss + self.cfg.invariance_weight * invariance
            metrics["invariance"] = invariance.detach()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        mse = mse.detach()
        return {"loss": loss.detach(), "recon_mse": mse, "psnr": psnr(mse), "quant_loss": q.loss.detach(),
                "perplexity": q.perplexity, "dead_codes": q.dead_codes.float(), **metrics}

    def _contrastive_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Quantized, torch.Tensor]:
        """The clean batch and two augmented views of it quantised together (the quantiser's loss and codebook
        updates see all three); the decoder reconstructs the clean batch; NT-Xent (SimCLR) between the views'
        quantised vectors, flattened, through the projection head."""
        augment, b = AUGMENTATIONS[self.cfg.contrastive_augment], len(x)
        q = self.model.quantizer(self.model.encoder(torch.cat([x, augment(x), augment(x)])))
        views = self.head(q.quantized[b:].flatten(1))
        return (self.model.decoder(q.quantized[:b]), q,
                nt_xent(views[:b], views[b:], self.cfg.contrastive_temperature))

    def evaluate(self, step: int) -> dict[str, float]:
        return reconstruction_report(self.model, self.eval_set, self.device)


@torch.no_grad()
def reconstruction_report(model: DiscreteVAE, data: ImageSet, device: torch.device, batch_size: int = 500) -> dict:
    """Mean squared error and PSNR of the reconstructions of ``data``, and how its images use the codebook:
    perplexity of the code histogram, codes used at least once (count and fraction of K)."""
    num_codes = model.quantizer.num_codes
    squared, counts = 0.0, torch.zeros(num_codes, device=device)
    with evaluating(model):
        for x, _ in iterate(data, batch_size, device):
            recon, q = model(x)
            squared += float(F.mse_loss(recon, x, reduction="sum"))
            counts += code_counts(q.indices, num_codes)
    mse = squared / max(1, data.images[0].numel() * len(data))
    used = int((counts > 0).sum())
    return {"recon_mse": mse, "psnr": psnr(mse), "perplexity": float(perplexity(counts)),
            "codes_used": used, "codes_used_fraction": used / num_codes}


@torch.no_grad()
def encode_dataset(model: DiscreteVAE, data: ImageSet, device: torch.device, batch_size: int = 500) -> torch.Tensor:
    """The code indices (N, H, W) of every image of ``data``, in order, on the CPU."""
    with evaluating(model):
        return torch.cat([model.encode(x).cpu() for x, _ in iterate(data, batch_size, device)])


@torch.no_grad()
def encode_latents(model: DiscreteVAE, data: ImageSet, device: torch.device, batch_size: int = 500) -> torch.Tensor:
    """What the decoder reads for every image of ``data`` (N, D, H, W), in order, on the CPU: the codes'
    vectors of a discrete VAE, the continuous vectors of an autoencoder."""
    with evaluating(model):
        return torch.cat([model.latents(x).cpu() for x, _ in iterate(data, batch_size, device)])
