"""Adversarial training: the GAN, WGAN (weight clipping) and WGAN-GP objectives, and one trainer for all three.

Objectives (D is the discriminator's logit or the critic's score, G the generator):

* ``gan`` (Goodfellow et al. 2014, non-saturating form): D minimises
  -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))); G minimises -log sigmoid(D(G(z))) rather than
  log(1 - sigmoid(D(G(z)))), whose gradient vanishes while D rejects the samples confidently.
* ``wgan`` (Arjovsky et al. 2017): the critic maximises E[D(x)] - E[D(G(z))], the estimate of the
  Wasserstein-1 distance, while every critic weight is clipped to [-c, c] after each step (a crude way to
  keep D Lipschitz); G minimises -E[D(G(z))].
* ``wgan-gp`` (Gulrajani et al. 2017): as ``wgan`` without clipping; the critic's loss adds
  lambda * E[(||grad_x D(x_hat)||_2 - 1)^2] at random interpolates x_hat = eps x + (1 - eps) G(z).

``train.gan_loss=hinge`` replaces the GAN's losses by the hinge form (Lim & Ye 2017; Miyato et al. 2018):
D minimises E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))], G minimises -E[D(G(z))].

With ``model.info_codes=K`` (InfoGAN, Chen et al. 2016, section 5) the discriminator's second head Q reads
back the generator's categorical code c, and both the discriminator (with Q) and the generator add
``train.info_weight`` times the cross-entropy -log Q(c | G(z, c)) to their losses: minimising it maximises
a variational lower bound on the mutual information I(c; G(z, c)) (Chen et al. 2016, eq. 5), which pushes
the generator to draw K distinguishable kinds of image rather than blends of them.

With ``model.clusters=K`` (self-conditioned GAN, Liu et al. 2020) the training images are partitioned
into K clusters before training, without labels, and each image's cluster index takes the place a class
label has in a conditional model: the critic scores real images with their cluster's projection and fakes
are drawn for the clusters of the real batch; the generator's own step draws clusters with their shares of
the training set (``label_shares``). The model stays unconditional, p(x) = sum_k pi_k p_G(x | k), with the
mixture weights pi_k and the partition taken from the data alone: each component only has to draw one
cluster's kind of image, not blends of all of them.

``train.ema_decay`` keeps an exponential moving average of the generator's weights (Yazici et al. 2019),
which samples and is evaluated in place of the generator itself: the average smooths the generator's
oscillation around the game's equilibrium. Its decay at step t is min(decay, (1 + t) / (10 + t)), so
the early average is not dominated by the random initial weights.

One training step is one generator update preceded by ``n_critic`` critic updates, each on a fresh
real batch (batch ``step * n_critic + i`` of the shuffled training set, so the data order depends on
the step alone). Logged per step (means over the critic updates): the losses, the critic's scores of
real and generated images, the Wasserstein estimate (WGANs), the gradient penalty and the input-gradient
norm at the interpolates (WGAN-GP), the share of critic weights at the clipping bound (WGAN), the
gradient norms of both networks and of each critic layer's weights (exploding or vanishing critic
gradients show there first, as in Gulrajani et al. 2017, figure 1b).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from genlab.config import param
from genlab.data.batches import Batches
from genlab.nets.gan import Discriminator, Generator
from genlab.nets.modes import evaluating
from genlab.nets.modes import frozen
from genlab.train.base import ModelTrainer


@dataclass
class GanModelConfig:
    z_dim: int = param(64, "length of the generator's noise vector", ge=1)
    g_width: int = param(32, "generator width w (4w channels at 7x7, 2w at 14x14)", ge=1)
    d_width: int = param(32, "discriminator/critic width w (w, 2w, 4w channels at 14, 7, 4 px)", ge=1)
    d_norm: Literal["batch", "layer", "none"] = param(
        "batch", "normalisation in the discriminator/critic: batch (DCGAN, WGAN), layer or none (WGAN-GP: the "
                 "penalty is per sample, batch norm mixes samples)")
    d_spectral_norm: bool = param(False, "spectral norm on every weight of the discriminator/critic (Miyato et al. "
                                         "2018; gan and wgan-gp: weight clipping is WGAN's own constraint)")
    output: Literal["tanh", "binary"] = param(
        "tanh", "the samples evaluated and kept: the generator's tanh output, or it thresholded at 0 to {-1, 1} "
                "(binary data's samples are binary; training always uses the tanh output)")
    conditional: bool = param(False, "class-conditional: the label goes to the generator (embedding) and the "
                                     "critic (projection)")
    info_codes: int = param(0, "unconditional models: values of an InfoGAN categorical code in the generator's latent "
                               "vector, read back by a second head of the discriminator (0: none)", ge=0)
    clusters: int = param(0, "unconditional models: a mixture prior of K components found without labels (KMeans on "
                             "the training images); generator and critic see an image's component as a conditional "
                             "model sees its class, and samples draw it with its share of the training set "
                             "(self-conditioned GAN, Liu et al. 2020; 0: none)", ge=0)


@dataclass
class GanTrainConfig:
    objective: Literal["gan", "wgan", "wgan-gp"] = param(
        "gan", "gan: non-saturating BCE; wgan: Wasserstein with weight clipping; wgan-gp: with gradient penalty")
    steps: int = param(2000, "generator updates (each after train.n_critic critic updates)", ge=1)
    time_budget_s: float = param(0.0, "stop at the first log step after this many seconds of training "
                                      "(0: no budget; for comparisons at equal wall-clock time)", ge=0)
    batch_size: int = param(64, "images per batch (real and generated alike)", ge=2)
    n_critic: int = param(1, "critic updates per generator update", ge=1)
    optimizer: Literal["adam", "rmsprop"] = param("adam", "optimiser of both networks")
    lr_g: float = param(2e-4, "generator learning rate", gt=0)
    lr_d: float = param(2e-4, "discriminator/critic learning rate", gt=0)
    beta1: float = param(0.5, "Adam beta1", ge=0, lt=1)
    beta2: float = param(0.999, "Adam beta2", ge=0, lt=1)
    clip: float = param(0.01, "wgan only: critic weights are clipped to [-clip, clip] after each update", gt=0)
    gp_weight: float = param(10.0, "wgan-gp only: weight lambda of the gradient penalty", ge=0)
    gan_loss: Literal["nonsaturating", "hinge"] = param(
        "nonsaturating", "gan only: the non-saturating BCE losses or the hinge losses (Lim & Ye 2017)")
    info_weight: float = param(1.0, "weight of the InfoGAN code's cross-entropy in both losses (with "
                                    "model.info_codes; Chen et al. 2016 use 1 for categorical codes)", ge=0)
    ema_decay: float = param(0.0, "decay of the moving average of the generator's weights that samples and is "
                                  "evaluated (0: none, the generator itself; Yazici et al. 2019)", ge=0, lt=1)


def bce_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(real) - log(1 - sigmoid(fake)), written with softplus for stability."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def nonsaturating_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(D(G(z)))."""
    return F.softplus(-fake_logits).mean()


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Minus the critic's Wasserstein estimate E[D(x)] - E[D(G(z))]."""
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    return -fake_scores.mean()


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """E[(||grad_x critic(x_hat)||_2 - 1)^2] at x_hat = eps * real + (1 - eps) * fake, and the norms.

    ``eps`` (one per sample, uniform in [0, 1] when not given) broadcasts over the image dimensions.
    The graph is kept (``create_graph``) so the penalty trains the critic's weights.
    """
    if eps is None:
        eps = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    grad, = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(dim=1)
    return ((norms - 1) ** 2).mean(), norms.detach()


def ema_decay_at(step: int, decay: float) -> float:
    """The moving average's decay at step ``step``: ``decay``, lowered early on to (1 + t) / (10 + t)."""
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def update_ema_(average: nn.Module, model: nn.Module, decay: float) -> None:
    """average <- decay * average + (1 - decay) * model for every parameter; buffers (batch norm's running
    statistics) are copied, since they are averages already."""
    for a, p in zip(average.parameters(), model.parameters()):
        a.lerp_(p, 1 - decay)
    for a, b in zip(average.buffers(), model.buffers()):
        a.copy_(b)


def binarise(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] thresholded at 0 to {-1, 1}: a tanh output read as a binary image."""
    return torch.where(images > 0, 1.0, -1.0).to(images.dtype)


@torch.no_grad()
def clip_weights_(module: nn.Module, clip: float) -> torch.Tensor:
    """Clamp every parameter of ``module`` to [-clip, clip] in place, as the WGAN paper's code does
    (normalisation scales and biases included). Returns the share of parameters left at the bound."""
    at_bound, total = torch.zeros((), device=next(module.parameters()).device), 0
    for p in module.parameters():
        p.clamp_(-clip, clip)
        at_bound += (p.abs() >= clip).sum()
        total += p.numel()
    return at_bound / total


def layer_weights(module: nn.Module) -> list[nn.Parameter]:
    """The weight matrices and kernels on the score's path (not biases, normalisation scales, the label embedding
    or the code head), input side first; a spectrally normalised layer's raw weight."""
    return [p for name, p in module.named_parameters() if name.endswith(("weight", "weight.original"))
            and p.dim() > 1 and not name.startswith(("label_embedding", "code_head"))]


def grad_norm(params: list[nn.Parameter]) -> torch.Tensor:
    """L2 norm of the gradients of ``params`` taken together (no host sync)."""
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params
                                                 if p.grad is not None]))


def build_optimizer(params, cfg: GanTrainConfig, lr: float) -> torch.optim.Optimizer:
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2))


Scorer = Callable[[torch.Tensor, torch.Tensor | None, int], dict[str, float]]


class GanTrainer(ModelTrainer):
    """Alternates ``n_critic`` critic updates and one generator update per step; keeps the best generator.

    ``scorer(samples, labels, step)`` judges the samples of the fixed evaluation noise at each evaluation
    and returns metrics including ``"fid"``; the generator with the lowest one is kept (model selection on
    the validation split). Without a scorer, evaluation returns nothing. With ``ema_decay`` the moving
    average (``self.ema``) is the generator that samples, is evaluated and is kept; the generator itself is
    scored beside it (``live_`` metrics), the scorer's last call being the average's.

    Under torchrun the backpropagated passes go through DistributedDataParallel wrappers
    (``loss_network``), except that the generator's step runs the bare critic, whose weights it must not
    update.
    """

    def __init__(self, generator: Generator, critic: Discriminator, batches: Batches, cfg: GanTrainConfig,
                 eval_noise: torch.Tensor, device: torch.device, scorer: Scorer | None = None,
                 eval_batch: int = 500, label_shares: torch.Tensor | None = None,
                 eval_labels: torch.Tensor | None = None):
        self.generator, self.critic = generator.to(device), critic.to(device)
        self.batches, self.cfg, self.device, self.scorer, self.eval_batch = batches, cfg, device, scorer, eval_batch
        self.num_classes = generator.num_classes
        self.label_shares = None if label_shares is None else label_shares.to(device)
        self.eval_noise = eval_noise.to(device)
        if eval_labels is None and self.num_classes:
            eval_labels = torch.arange(len(eval_noise)) % self.num_classes
        self.eval_labels = None if eval_labels is None else eval_labels.to(device)
        self.g_optimizer = build_optimizer(generator.parameters(), cfg, cfg.lr_g)
        self.d_optimizer = build_optimizer(critic.parameters(), cfg, cfg.lr_d)
        self.critic_layers = layer_weights(critic)
        self.ema = copy.deepcopy(self.generator).requires_grad_(False) if cfg.ema_decay else None
        self.best: dict[str, Any] = {"fid": float("inf"), "step": -1, "generator": None}

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "critic": self.critic}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g_optimizer": self.g_optimizer, "d_optimizer": self.d_optimizer}

    # -- training -------------------------------------------------------------------------------------

    def noise(self, n: int) -> torch.Tensor:
        return self.generator.latent(n, device=self.device)

    def info_loss(self, code_logits: torch.Tensor, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-log Q(c | x) of the codes the latent vectors carry, and the share Q reads back correctly."""
        codes = self.generator.code_of(latent)
        return (F.cross_entropy(code_logits, codes),
                (code_logits.argmax(1) == codes).float().mean().detach())

    def score_fakes(self, critic: nn.Module, fake: torch.Tensor, y: torch.Tensor | None, latent: torch.Tensor
                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The critic's scores of generated images and, for a model with codes, the code's cross-entropy
        (``info``) and the share Q reads back (``accuracy``), from one pass."""
        if not self.generator.codes:
            return critic(fake, y), {}
        scores, code_logits = critic(fake, y, code_logits=True)
        info, accuracy = self.info_loss(code_logits, latent)
        return scores, {"info": info, "accuracy": accuracy}

    def critic_step(self, real: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """One critic update on a real batch; fakes are drawn for the same labels (if conditional)."""
        y = labels if self.num_classes else None
        latent = self.noise(len(real))
        with torch.no_grad():
            fake = self.generator(latent, y)
        critic = self.loss_network("critic")
        real_scores = critic(real, y)
        fake_scores, code = self.score_fakes(critic, fake, y, latent)
        metrics = {"d_real": real_scores.mean().detach(), "d_fake": fake_scores.mean().detach()}
        if self.cfg.objective == "gan":
            loss = (hinge_discriminator_loss if self.cfg.gan_loss == "hinge" else bce_discriminator_loss)(
                real_scores, fake_scores)
        else:
            loss = wasserstein_critic_loss(real_scores, fake_scores)
            metrics["wasserstein"] = -loss.detach()
        if self.cfg.objective == "wgan-gp":
            penalty, norms = gradient_penalty(lambda x: critic(x, y), real, fake)
            loss = loss + self.cfg.gp_weight * penalty
            metrics.update(gp=penalty.detach(), interp_grad_norm=norms.mean())
        if code:
            loss = loss + self.cfg.info_weight * code["info"]
            metrics.update(info_loss=code["info"].detach(), info_accuracy=code["accuracy"])
        self.d_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        metrics["d_grad_norm"] = grad_norm(list(self.critic.parameters()))
        for i, weight in enumerate(self.critic_layers, 1):
            metrics[f"d_grad_layer{i}"] = torch.linalg.vector_norm(weight.grad)
        self.d_optimizer.step()
        if self.cfg.objective == "wgan":
            metrics["clipped_fraction"] = clip_weights_(self.critic, self.cfg.clip)
        metrics["d_loss"] = loss.detach()
        return metrics

    def draw_labels(self, n: int) -> torch.Tensor | None:
        """Labels (classes or clusters) for ``n`` fakes: with ``label_shares`` drawn in those proportions,
        else uniformly; None for a model without labels."""
        if not self.num_classes:
            return None
        if self.label_shares is None:
            return torch.randint(0, self.num_classes, (n,), device=self.device)
        return torch.multinomial(self.label_shares, n, replacement=True)

    def generator_step(self, n: int) -> dict[str, torch.Tensor]:
        """One generator update on ``n`` samples (a real batch's size: this rank's share under torchrun)."""
        y = self.draw_labels(n)
        latent = self.noise(n)
        with frozen(self.critic):  # the generator's step needs gradients through D, not of D
            scores, code = self.score_fakes(self.critic, self.loss_network("generator")(latent, y), y, latent)
        nonsaturating = self.cfg.objective == "gan" and self.cfg.gan_loss == "nonsaturating"
        loss = nonsaturating_generator_loss(scores) if nonsaturating else wasserstein_generator_loss(scores)
        metrics = {}
        if code:
            loss = loss + self.cfg.info_weight * code["info"]
            metrics["g_info_loss"] = code["info"].detach()
        self.g_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = grad_norm(list(self.generator.parameters()))
        self.g_optimizer.step()
        return {"g_loss": loss.detach(), "g_grad_norm": norm, **metrics}

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        sums: dict[str, torch.Tensor] = {}
        for i in range(self.cfg.n_critic):
            real, labels = self.batches(step * self.cfg.n_critic + i)
            for key, value in self.critic_step(real, labels).items():
                sums[key] = sums[key] + value if key in sums else value
        metrics = {key: value / self.cfg.n_critic for key, value in sums.items()}
        metrics.update(self.generator_step(len(real)))
        if self.ema is not None:
            update_ema_(self.ema, self.generator, ema_decay_at(step, self.cfg.ema_decay))
        return metrics

    # -- sampling and evaluation ----------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, noise: torch.Tensor, labels: torch.Tensor | None = None,
               generator: Generator | None = None) -> torch.Tensor:
        """Images in [-1, 1] for the given noise (and labels), with the sampling generator (the moving
        average if kept, else the generator) in eval mode."""
        generator = generator or self.sampling_generator
        with evaluating(generator):
            return torch.cat([generator(noise[i:i + self.eval_batch],
                                        None if labels is None else labels[i:i + self.eval_batch])
                              for i in range(0, len(noise), self.eval_batch)])

    @property
    def sampling_generator(self) -> Generator:
        return self.ema if self.ema is not None else self.generator

    def best_generator(self) -> Generator:
        """A copy of the sampling generator with the weights of the best evaluation (the current ones if none)."""
        model = copy.deepcopy(self.sampling_generator)
        if self.best["generator"] is not None:
            model.load_state_dict(self.best["generator"])
        return model

    def evaluate(self, step: int) -> dict[str, float]:
        if self.scorer is None:
            return {}
        live = {}
        if self.ema is not None:  # the generator itself too, to show what the average adds
            live = self.scorer(self.sample(self.eval_noise, self.eval_labels, self.generator), self.eval_labels, step)
        scores = self.scorer(self.sample(self.eval_noise, self.eval_labels), self.eval_labels, step)
        if scores["fid"] < self.best["fid"]:
            self.best = {"fid": scores["fid"], "step": step,
                         "generator": {k: v.detach().clone() for k, v in self.sampling_generator.state_dict().items()}}
        return {**scores, **{f"live_{k}": v for k, v in live.items()}, "best_fid": self.best["fid"]}

    # -- divergence and checkpoints -------------------------------------------------------------------

    def soften(self, attempt: int) -> str:
        super().soften(attempt)
        return f"both learning rates scaled by {self.lr_scale:g}"

    def extra_state(self) -> dict[str, Any]:
        return {"eval_noise": self.eval_noise, "best": self.best,
                **({"ema": self.ema.state_dict()} if self.ema is not None else {})}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.eval_noise = state["eval_noise"].to(self.device)
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.best = {**state["best"], "generator": None if state["best"]["generator"] is None else
                     {k: v.to(self.device) for k, v in state["best"]["generator"].items()}}
