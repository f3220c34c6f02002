"""JEM and JEM++: a classifier f read as an energy model, trained for p(y|x) and p(x) at once.

E(x) = -logsumexp_y f(x)[y],  E(x, y) = -f(x)[y],  p(y|x) = softmax f(x)   (Grathwohl et al. 2019)

The loss is cross-entropy on labelled data plus the generative term E(x+) - E(x-), with x- from a
sampler started from a replay buffer. JEM samples with SGLD from uniform-noise starts (20 steps of size
1, noise 0.01). JEM++ (Yang & Ji 2021) changes three things, each switchable for ablation:

1. informative initialisation: starts (and buffer re-initialisations) from class-conditional Gaussians
   fitted to the training data (``sampler.start=gaussian``);
2. proximal SGLD with reused first-layer gradients (``sampler.kind=pyld``), far cheaper per step;
3. batch norm kept in the network (the classifier is built with ``norm=batch``; JEM used none).

Batch-norm policy (``train.bn_policy``): ``frozen`` (default) keeps batch norm in eval mode throughout,
with the pretrained classifier's running statistics fixed (each layer a learnt per-channel affine map):
chains never interact through batch statistics, samples never enter the statistics, and the network
that classifies is the network whose energy is trained. ``eval`` runs the sampler and both energy terms
in eval mode but the cross-entropy pass in train mode; it fails on MNIST: the generative term shapes
only the eval-mode network, the classifier only the train-mode one, and test accuracy (eval mode) fell
to chance within 600 iterations. ``train`` is the JEM++ code's default: batch norm in train mode
throughout.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal

import torch
import torch.nn.functional as F
from torch import nn

from genlab.config import param
from genlab.data.batches import Batches
from genlab.nets.modes import evaluating
from genlab.sampling import ChainStarts, SamplerConfig, StartDistribution, fresh_chains, run_chain
from genlab.sampling.precision import precision_summary, restore_summary
from genlab.train.base import ModelTrainer


def energy(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """E(x) = -logsumexp f(x), or E(x, y) = -f(x)[y] when labels are given."""
    logits = model(x)
    if y is None:
        return -torch.logsumexp(logits, dim=1)
    return -logits.gather(1, y.view(-1, 1))[:, 0]


# JEM's sampler (Grathwohl et al. 2019, the JEM code): steps of size 1 with noise 0.01, each chain's end point
# written back to the buffer entry it started from; the energy's passes in float32.
JEM_SAMPLER = {"step_size": 1.0, "noise": 0.01, "buffer_policy": "inplace", "precision": "fp32"}


def jem_loss(logits: torch.Tensor, labels: torch.Tensor, e_pos: torch.Tensor, e_neg: torch.Tensor,
             ce_weight: float = 1.0, gen_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, ce, gen) of JEM (Grathwohl et al. 2019, eq. 8-9), as its code and JEM++'s weight the terms:

        ce = cross-entropy of softmax(logits) with the labels,   gen = mean E(x+) - mean E(x-),
        loss = ce_weight * ce + gen_weight * gen

    ce trains p(y|x); gen is the contrastive-divergence estimate of the gradient of -log p(x), with x- from
    the sampler and E(x) = -logsumexp_y f(x)[y]."""
    ce = F.cross_entropy(logits, labels)
    gen = e_pos.mean() - e_neg.mean()
    return ce_weight * ce + gen_weight * gen, ce, gen


@dataclass
class JEMTrainConfig:
    iterations: int = param(2000, "training iterations", ge=1)
    batch_size: int = param(64, "labelled batch and sample batch size", ge=1)
    lr: float = param(1e-4, "Adam learning rate (JEM and JEM++ code)", gt=0)
    warmup: int = param(200, "iterations of linear learning-rate warm-up", ge=0)
    lr_decay: Literal["none", "cosine"] = param("none", "after the warm-up, learning rate constant or cosine-decayed "
                                                        "to 0 over train.iterations")
    weight_decay: float = param(0.0, "Adam weight decay", ge=0)
    gen_weight: float = param(1.0, "weight of the generative term E(x+) - E(x-)", ge=0)
    ce_weight: float = param(1.0, "weight of the cross-entropy term", ge=0)
    data_noise: float = param(0.03, "Gaussian noise added to data images (JEM: 0.03)", ge=0)
    grad_clip: float = param(0.0, "clip the parameters' gradient norm (0: off)", ge=0)
    bn_policy: Literal["frozen", "eval", "train"] = param(
        "frozen", "batch norm: frozen (eval mode everywhere), eval (eval mode for sampling and the energy terms "
                  "only) or train (train mode everywhere)")


@contextlib.contextmanager
def bn_mode(model: nn.Module, policy: str) -> Iterator[None]:
    """Batch-norm layers in eval mode for the duration unless the policy is ``train``; each is left in the
    mode it was in before."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if policy == "train" or not norms:
        yield
        return
    with evaluating(*norms):
        yield


class JEMTrainer(ModelTrainer):
    def __init__(self, model: nn.Module, batches: Batches, cfg: JEMTrainConfig, sampler: SamplerConfig,
                 init: StartDistribution | None, shape: tuple[int, int, int], device: torch.device,
                 evaluator: Callable[["JEMTrainer", int], dict[str, Any]] | None = None):
        self.model, self.batches, self.cfg, self.sampler = model.to(device).train(), batches, cfg, sampler
        self.shape, self.device, self.evaluator = shape, device, evaluator
        self.optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.starts = ChainStarts(sampler, shape, device, gaussians=init)

    def energy(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return energy(self.model, x, y)

    def sample(self, x0: torch.Tensor, labels: torch.Tensor | None = None, steps: int | None = None):
        """Run the configured sampler on E(x) (or E(x, y) with labels held fixed)."""
        with bn_mode(self.model, self.cfg.bn_policy):
            return run_chain(self.energy, x0, self.sampler, labels=labels, steps=steps, freeze=self.model,
                             first_layer=self.model.first_layer)

    def fresh_samples(self, labels: torch.Tensor, batch_size: int,
                      steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Fresh chains (``sampler.start``) on E(x, y), one per label, ``batch_size`` at a time."""
        with bn_mode(self.model, self.cfg.bn_policy):
            return fresh_chains(self.energy, self.starts.fresh, len(labels), batch_size, self.sampler,
                                labels=labels, steps=steps, freeze=self.model, first_layer=self.model.first_layer)

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        self.schedule_lr(step, self.cfg.lr, self.cfg.iterations, self.cfg.lr_decay, self.cfg.warmup)
        x, y = self.batches(step)
        if self.cfg.data_noise:
            x = x + self.cfg.data_noise * torch.randn_like(x)
        with bn_mode(self.model, "eval" if self.cfg.bn_policy == "frozen" else "train"):
            logits = self.loss_model(x)
        x0, _, index = self.starts.draw(len(x))
        chain = self.sample(x0)
        self.starts.keep(chain.x, None, index)
        with bn_mode(self.model, self.cfg.bn_policy):
            e_pos = energy(self.loss_model, x)
            e_neg = energy(self.loss_model, chain.x)
        loss, ce, gen = jem_loss(logits, y, e_pos, e_neg, self.cfg.ce_weight, self.cfg.gen_weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip or float("inf"))
        self.optimizer.step()
        return {"loss": loss.detach(), "ce": ce.detach(), "gen": gen.detach(), "energy_pos": e_pos.detach().mean(),
                "energy_neg": e_neg.detach().mean(), "acc": (logits.argmax(1) == y).float().mean(),
                "grad_norm": grad_norm}

    def evaluate(self, step: int) -> dict[str, Any]:
        return self.evaluator(self, step) if self.evaluator else {}

    def extra_state(self) -> dict[str, Any]:
        return {"buffer": self.starts.state_dict(), "sampler_precision": precision_summary(self.model)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.starts.load_state_dict(state["buffer"])
        restore_summary(self.model, state.get("sampler_precision"))  # absent from older checkpoints
