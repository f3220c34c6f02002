"""Energy-based models trained by contrastive divergence with Langevin negatives (Du & Mordatch 2019).

Each iteration draws a batch of data x+ and runs short SGLD chains to get negatives x-, started from
uniform noise or from a replay buffer. The loss

    L = mean E(x+) - mean E(x-) + alpha * mean(E(x+)^2 + E(x-)^2)

pushes the energy of data down and of samples up; the L2 term keeps energies near zero so they cannot
drift without bound. For a class-conditional model the labels of the negatives come with the buffer and
are held fixed along each chain.

A conditional model can add ``class_weight`` times the cross-entropy of p(y|x) = softmax_y(-E(x, y)) on
data. Since log p(x, y) = log p(x) + log p(y|x), this is the exact gradient of the conditional half of the
joint likelihood (JEM's factorisation), which CD alone estimates only through samples: early on, when the
samples of every label look alike, CD cannot tell labels apart and the label is ignored for a long time.

``kl_weight`` adds the KL term of improved contrastive divergence (Du et al. 2021, see
:func:`sampler_kl_loss`): CD treats the negatives as if they came from the model, and this term trains the
energy so that its own Langevin steps take them there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F
from torch.func import functional_call

from genlab.config import param
from genlab.data.augment import AUGMENTATIONS
from genlab.data.batches import Batches
from genlab.nets.energy import ResNetEnergy
from genlab.sampling import (ChainStarts, SamplerConfig, StartDistribution, balanced_labels, fresh_chains,
                             run_chain)
from genlab.sampling.precision import precision_summary, restore_summary
from genlab.train.base import ModelTrainer


@dataclass
class EnergyNetConfig:
    width: int = param(32, "channels of the first stage (doubling per stage)", ge=1)
    blocks: tuple[int, ...] = param((3, 3, 3), "residual blocks per stage (9 in all by default)", ge=1)
    spectral_norm: bool = param(False, "spectral norm on every layer")
    stem_stride: int = param(1, "stride of the first convolution (2: half resolution from the start)", ge=1, le=2)
    stem_downsample: Literal["stride", "pool"] = param(
        "stride", "how stem_stride=2 halves the resolution: a strided convolution (its input gradient has a "
                  "checkerboard that Langevin chains imprint on backgrounds), or a convolution at full resolution "
                  "then 2x2 average pooling (no checkerboard, a little more compute)")
    pool_edges: Literal["drop", "keep", "overlap"] = param(
        "drop", "average pooling of a map with an odd side: drop its last row and column (PyTorch's floor; "
                "MNIST's 7x7 -> 3x3 leaves the energy nearly blind to the image's bottom and right 4 pixels, "
                "where chains then grow artifacts), keep them as if the map were zero-padded (ceil mode: "
                "7x7 -> 4x4, more compute), or overlap the windows (3x3 at stride 2: 7x7 -> 3x3, no extra cost)")


@dataclass
class EBMTrainConfig:
    iterations: int = param(1000, "training iterations (one SGLD batch and one optimiser step each)", ge=1)
    batch_size: int = param(64, "data and sample batch size", ge=1)
    lr: float = param(1e-4, "Adam learning rate", gt=0)
    beta1: float = param(0.0, "Adam beta1 (0 as in IGEBM: momentum hurts with a moving target)", ge=0, lt=1)
    beta2: float = param(0.999, "Adam beta2", ge=0, lt=1)
    alpha: float = param(1.0, "weight of the L2 energy regulariser", ge=0)
    grad_clip: float = param(1.0, "clip the parameters' gradient norm to this (0: off)", ge=0)
    data_noise: float = param(0.0, "standard deviation of Gaussian noise added to data images", ge=0)
    augment: Literal["none", "flip", "crop_flip"] = param(
        "none", "augmentation of the data images (the positives): a left-right flip, or a crop after reflect "
                "padding and a flip (CIFAR-10's standard); more positives a chain can be pulled towards")
    lr_decay: Literal["none", "cosine"] = param("none", "learning rate constant, or cosine-decayed to 0 over "
                                                        "train.iterations (late CD updates then cannot undo the run)")
    kl_weight: float = param(0.0, "weight of improved contrastive divergence's KL term (Du et al. 2021): one more "
                                  "Langevin step from each negative, differentiated through, scored by the frozen "
                                  "energy (0: off; a double backward pass in float32: 2.3x the time of an iteration of "
                                  "the five-step CIFAR-10 recipe on a CPU with AMX)", ge=0)
    class_weight: float = param(0.0, "conditional models: weight of the cross-entropy of p(y|x) = "
                                     "softmax(-E(x, .)) on data (0: pure contrastive divergence)", ge=0)
    channels_last: bool = param(True, "keep the energy's weights channels-last (faster convolutions on the CPU "
                                      "and on GPUs at width >= 64, above all with bf16; the same math)")
    compile: bool = param(False, "torch.compile the energy for sampling and the loss (a minute or more of "
                                 "compilation first; pays on long runs)")


def contrastive_divergence_loss(e_pos: torch.Tensor, e_neg: torch.Tensor,
                                alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, cd) of contrastive divergence with the L2 energy regulariser (Du & Mordatch 2019, eq. 3 and
    section 3.3):

        cd = mean E(x+) - mean E(x-),   loss = cd + alpha * (mean E(x+)^2 + mean E(x-)^2)

    Minimising cd lowers the energy of data x+ and raises that of samples x-; the L2 term keeps both near
    zero (it balances the CD gradient at |E| = 1 / (2 alpha)), so energies cannot drift without bound."""
    cd = e_pos.mean() - e_neg.mean()
    return cd + alpha * (e_pos.pow(2).mean() + e_neg.pow(2).mean()), cd


def sampler_kl_loss(model: torch.nn.Module, x_neg: torch.Tensor, drift: float,
                    labels: torch.Tensor | None = None) -> torch.Tensor:
    """The KL term of improved contrastive divergence (Du et al. 2021, eq. 7 and their released code, which
    differentiates through the last Langevin step): one more gradient step from the negatives,

        x' = x- - drift * grad_x E_theta(x-),   loss = mean E_stop(theta)(x'),

    kept differentiable in theta through grad_x E_theta (create_graph), and scored with theta's values frozen,
    so the gradient reaches theta only through the step. Lowering it makes the energy's own Langevin steps
    lower the energy further: the sampler that CD assumes has converged gets closer to it in few steps. The
    step is noiseless (the noise does not depend on theta) and in float32."""
    args = (labels,) if labels is not None else ()
    x = x_neg.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x, *args).sum(), x, create_graph=True)
    frozen = {name: p.detach() for name, p in model.named_parameters()}
    return functional_call(model, frozen, (x - drift * grad, *args)).mean()


class EBMTrainer(ModelTrainer):
    """One contrastive-divergence iteration per call."""

    def __init__(self, model: ResNetEnergy, batches: Batches, cfg: EBMTrainConfig, sampler: SamplerConfig,
                 image_shape: tuple[int, int, int], device: torch.device, conditional: bool,
                 evaluator: Callable[["EBMTrainer", int], dict[str, Any]] | None = None,
                 gaussians: StartDistribution | None = None):
        self.model, self.batches, self.cfg, self.sampler = model.to(device), batches, cfg, sampler
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        # The energy as sampling and the loss call it; the plain model holds the weights and the checkpoints.
        self.energy = torch.compile(model) if cfg.compile else model
        self.evaluator = evaluator
        self.shape, self.device, self.conditional = image_shape, device, conditional
        self.optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        self.starts = ChainStarts(sampler, image_shape, device, model.num_outputs if conditional else None, gaussians)

    def negatives(self, n: int):
        """(chain, labels, buffer indices) of ``n`` chains run as in training."""
        x0, labels, index = self.starts.draw(n)
        return run_chain(self.energy, x0, self.sampler, labels=labels, freeze=self.model), labels, index

    def fresh_samples(self, n: int, steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``n`` fresh chains (``sampler.start``); for a conditional model labels 0..K-1 in equal shares."""
        labels = balanced_labels(n, self.model.num_outputs, self.device) if self.conditional else None
        return fresh_chains(self.model, self.starts.fresh, n, self.cfg.batch_size, self.sampler, labels=labels,
                            steps=steps, freeze=self.model)

    @property
    def loss_energy(self) -> torch.nn.Module:
        """The compiled energy, unless under torchrun, where the loss goes through the DDP wrapper."""
        return self.loss_model if self.loss_model is not self.model else self.energy

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        self.schedule_lr(step, self.cfg.lr, self.cfg.iterations, self.cfg.lr_decay)
        x_pos, y_pos = self.batches(step)
        x_pos = AUGMENTATIONS[self.cfg.augment](x_pos)
        if self.cfg.data_noise:
            x_pos = x_pos + self.cfg.data_noise * torch.randn_like(x_pos)
        result, y_neg, index = self.negatives(len(x_pos))
        self.starts.keep(result.x, y_neg, index)
        x = torch.cat([x_pos, result.x])
        extra = {}
        if self.conditional:
            every_label = self.loss_energy(x)  # (2B, K): one pass gives the CD energies and p(y|x)
            e_pos, e_neg = every_label.gather(1, torch.cat([y_pos, y_neg]).view(-1, 1))[:, 0].chunk(2)
            extra["class_loss"] = F.cross_entropy(-every_label[:len(x_pos)], y_pos)
        else:
            e_pos, e_neg = self.loss_energy(x).chunk(2)
        loss, cd = contrastive_divergence_loss(e_pos, e_neg, self.cfg.alpha)
        if self.cfg.class_weight and self.conditional:
            loss = loss + self.cfg.class_weight * extra["class_loss"]
        if self.cfg.kl_weight:
            extra["kl"] = sampler_kl_loss(self.model, result.x, self.sampler.last_drift(),
                                          y_neg if self.conditional else None)
            loss = loss + self.cfg.kl_weight * extra["kl"]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip or float("inf"))
        self.optimizer.step()
        return {"loss": loss.detach(), "cd": cd.detach(), "energy_pos": e_pos.detach().mean(),
                "energy_neg": e_neg.detach().mean(), "gap": (e_neg.detach().mean() - e_pos.detach().mean()),
                "grad_norm": grad_norm, "chain_energy_start": result.energy_trace[0],
                "chain_energy_end": result.energy_trace[-1], **{k: v.detach() for k, v in extra.items()}}

    def evaluate(self, step: int) -> dict[str, Any]:
        return self.evaluator(self, step) if self.evaluator else {}

    @torch.no_grad()
    def current_samples(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the model produces now, as in training: buffer entries (the newest, for a ring; no extra
        sampling), or ``n`` fresh chains. Labels come along for a conditional model."""
        if self.starts.buffer is not None:
            return self.starts.buffer.current(n)
        return self.fresh_samples(n)

    def extra_state(self) -> dict[str, Any]:
        return {"buffer": self.starts.state_dict(), "sampling": self.sampler.settings(),
                "sampler_precision": precision_summary(self.model)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.starts.load_state_dict(state["buffer"])
        restore_summary(self.model, state.get("sampler_precision"))  # absent from older checkpoints
