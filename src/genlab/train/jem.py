"""JEM and JEM++: a classifier f read as an energy model, trained for p(y|x) and p(x) at once.

E(x) = -logsumexp_y f(x)[y],  E(x, y) = -f(x)[y],  p(y|x) = softmax f(x)   (Grathwohl et al. 2019)

The loss is cross-entropy on labelled data plus the generative term E(x+) - E(x-), with x- from a
sampler started from a replay buffer. JEM samples with SGLD from uniform-noise starts (20 steps of size
1, noise 0.01). JEM++ (Yang & Ji 2021) changes three things, each switchable for ablation:

1. informative initialisation: starts (and buffer re-initialisations) from class-conditional Gaussians
   fitted to the training data (``sampler.init=gaussian``);
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
from genlab.sampling import ClassGaussians, ReplayBuffer, langevin, proximal_langevin, uniform_noise
from genlab.train.base import ModelTrainer, lr_factor


def energy(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """E(x) = -logsumexp f(x), or E(x, y) = -f(x)[y] when labels are given."""
    logits = model(x)
    if y is None:
        return -torch.logsumexp(logits, dim=1)
    return -logits.gather(1, y.view(-1, 1))[:, 0]


@dataclass
class JEMSamplerConfig:
    kind: Literal["sgld", "pyld"] = param("sgld", "sgld: plain SGLD (JEM); pyld: proximal SGLD with first-layer "
                                          "gradient reuse (JEM++)")
    init: Literal["noise", "gaussian"] = param("noise", "chain starts and buffer re-initialisations: uniform "
                                               "noise (JEM) or class-conditional Gaussians (JEM++)")
    steps: int = param(20, "SGLD steps (sgld) or outer steps M (pyld) per iteration", ge=1)
    inner_steps: int = param(3, "pyld: cheap first-layer steps N after each outer step", ge=0)
    step_size: float = param(1.0, "SGLD step size / pyld outer step size", gt=0)
    inner_step: float = param(0.01, "pyld: inner step size", gt=0)
    bound: float = param(1.0, "pyld: per-pixel clamp of the inner gradient (the proximal bound)", gt=0)
    noise: float = param(0.01, "noise standard deviation per step", ge=0)
    buffer_size: int = param(10000, "replay buffer capacity", ge=1)
    reinit_prob: float = param(0.05, "share of chains restarted from the initial distribution", ge=0, le=1)


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
    """Batch-norm layers in eval mode for the duration unless the policy is ``train``."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if policy == "train" or not norms:
        yield
        return
    for m in norms:
        m.eval()
    try:
        yield
    finally:
        for m in norms:
            m.train()


class JEMTrainer(ModelTrainer):
    def __init__(self, model: nn.Module, batches: Batches, cfg: JEMTrainConfig, sampler: JEMSamplerConfig,
                 init: ClassGaussians | None, shape: tuple[int, int, int], device: torch.device,
                 evaluator: Callable[["JEMTrainer", int], dict[str, Any]] | None = None):
        self.model, self.batches, self.cfg, self.sampler = model.to(device).train(), batches, cfg, sampler
        self.gaussians, self.shape, self.device, self.evaluator = init, shape, device, evaluator
        self.optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.buffer = ReplayBuffer(sampler.buffer_size, shape, device, sampler.reinit_prob, policy="inplace",
                                   init=self.initial_images)

    def initial_images(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.sampler.init == "gaussian":
            return self.gaussians.sample(n, labels)[0]
        return uniform_noise(n, self.shape, self.device)

    def sample(self, x0: torch.Tensor, labels: torch.Tensor | None = None, steps: int | None = None):
        """Run the configured sampler on E(x) (or E(x, y) with labels held fixed)."""
        s = self.sampler
        fn = lambda x: energy(self.model, x, labels)  # noqa: E731
        with bn_mode(self.model, self.cfg.bn_policy):
            if s.kind == "pyld":
                return proximal_langevin(fn, self.model.first_layer, x0, steps or s.steps, s.inner_steps, s.step_size,
                                         s.inner_step, s.bound, s.noise, freeze=self.model)
            return langevin(fn, x0, steps or s.steps, s.step_size, s.noise, freeze=self.model)

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.lr * self.lr_scale * lr_factor(step, self.cfg.iterations, self.cfg.lr_decay,
                                                                  self.cfg.warmup)
        x, y = self.batches(step)
        if self.cfg.data_noise:
            x = x + self.cfg.data_noise * torch.randn_like(x)
        with bn_mode(self.model, "eval" if self.cfg.bn_policy == "frozen" else "train"):
            logits = self.loss_model(x)
        ce = F.cross_entropy(logits, y)
        x0, _, index = self.buffer.sample(len(x))
        chain = self.sample(x0)
        self.buffer.push(chain.x, index=index)
        with bn_mode(self.model, self.cfg.bn_policy):
            e_pos = energy(self.loss_model, x)
            e_neg = energy(self.loss_model, chain.x)
        gen = e_pos.mean() - e_neg.mean()
        loss = self.cfg.ce_weight * ce + self.cfg.gen_weight * gen
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
        return {"buffer": self.buffer.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.buffer.load_state_dict(state["buffer"])
