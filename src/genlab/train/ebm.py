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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F

from genlab.config import param
from genlab.data.batches import Batches
from genlab.devices import has_native_bf16
from genlab.nets.energy import ResNetEnergy
from genlab.sampling import ClassGaussians, ReplayBuffer, langevin, make_schedule, uniform_noise
from genlab.train.base import ModelTrainer, lr_factor


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
class SamplerConfig:
    steps: int = param(20, "SGLD steps per chain", ge=1)
    form: Literal["coupled", "decoupled"] = param("decoupled", "coupled: x - eps^2/2 grad + eps noise; "
                                                  "decoupled: x - step grad + noise_scale noise")
    step_size: float = param(10.0, "SGLD step size (eps for the coupled form); the start value when decaying", gt=0)
    step_size_end: float = param(1.0, "step size at the last step of a chain when schedule=decay", gt=0)
    schedule: Literal["constant", "decay"] = param("constant", "decay: eps_t = start * (end/start)^(t/T)")
    noise: float = param(0.005, "noise standard deviation of the decoupled form", ge=0)
    grad_clip: float = param(0.0, "clamp each input-gradient entry to [-c, c] (0: off)", ge=0)
    init: Literal["noise", "buffer"] = param("buffer", "chain starts: uniform noise every time, or the replay buffer")
    buffer_size: int = param(10000, "replay buffer capacity", ge=1)
    reinit_prob: float = param(0.05, "share of chains restarted from noise when using the buffer", ge=0, le=1)
    start: Literal["uniform", "gaussian"] = param(
        "uniform", "what fresh chains start from: uniform noise, or a Gaussian fitted to the training images of "
                   "the chain's class (conditional) or of a class drawn by frequency (JEM++'s informative start)")
    buffer_policy: Literal["fifo", "reservoir", "inplace"] = param("fifo", "how samples return to the buffer")
    buffer_labels: Literal["kept", "redrawn"] = param(
        "kept", "conditional models: a chain from the buffer continues under its image's label, or under a fresh "
                "uniform label (chains then move between classes: no class is left with only its own stuck chains)")
    precision: Literal["auto", "fp32", "bf16"] = param(
        "auto", "precision of the energy's passes inside the sampler (bf16: autocast, the chain itself stays "
                "float32; auto: bf16 where the device has native bf16, else fp32)")

    def settings(self) -> dict[str, Any]:
        """What `genlab sample` needs to rerun the chains as in training (stored in checkpoints)."""
        return {k: getattr(self, k) for k in ("steps", "form", "step_size", "step_size_end", "schedule", "noise",
                                              "grad_clip", "precision")}


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
    lr_decay: Literal["none", "cosine"] = param("none", "learning rate constant, or cosine-decayed to 0 over "
                                                        "train.iterations (late CD updates then cannot undo the run)")
    class_weight: float = param(0.0, "conditional models: weight of the cross-entropy of p(y|x) = "
                                     "softmax(-E(x, .)) on data (0: pure contrastive divergence)", ge=0)
    channels_last: bool = param(True, "keep the energy's weights channels-last (faster convolutions on the CPU "
                                      "and on GPUs at width >= 64, above all with bf16; the same math)")
    compile: bool = param(False, "torch.compile the energy for sampling and the loss (a minute or more of "
                                 "compilation first; pays on long runs)")


def chain(energy, x0: torch.Tensor, cfg: SamplerConfig | dict[str, Any], model: torch.nn.Module,
          labels: torch.Tensor | None = None, steps: int | None = None):
    """Run the configured SGLD chain on ``energy`` from ``x0`` (labels held fixed if given)."""
    s = cfg if isinstance(cfg, dict) else cfg.settings()
    step = make_schedule(s["schedule"], s["step_size"], s["step_size_end"])
    fn = (lambda x: energy(x, labels)) if labels is not None else energy
    return langevin(fn, x0, steps or s["steps"], step, None if s["form"] == "coupled" else s["noise"],
                    form=s["form"], grad_clip=s["grad_clip"] or None, freeze=model,
                    autocast=sampler_dtype(s.get("precision", "fp32"), x0.device))


def sampler_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the energy's passes in the sampler (None: float32)."""
    if precision == "bf16" or (precision == "auto" and has_native_bf16(device)):
        return torch.bfloat16
    return None


class EBMTrainer(ModelTrainer):
    """One contrastive-divergence iteration per call."""

    def __init__(self, model: ResNetEnergy, batches: Batches, cfg: EBMTrainConfig, sampler: SamplerConfig,
                 image_shape: tuple[int, int, int], device: torch.device, conditional: bool,
                 evaluator: Callable[["EBMTrainer", int], dict[str, Any]] | None = None,
                 gaussians: ClassGaussians | None = None):
        if sampler.start == "gaussian" and gaussians is None:
            raise ValueError("sampler.start=gaussian needs the Gaussians fitted to the training images")
        self.gaussians = gaussians
        self.model, self.batches, self.cfg, self.sampler = model.to(device), batches, cfg, sampler
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        # The energy as sampling and the loss call it; the plain model holds the weights and the checkpoints.
        self.energy = torch.compile(model) if cfg.compile else model
        self.evaluator = evaluator
        self.shape, self.device, self.conditional = image_shape, device, conditional
        self.optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        self.buffer = (ReplayBuffer(sampler.buffer_size, image_shape, device, sampler.reinit_prob,
                                    sampler.buffer_policy, num_classes=model.num_outputs if conditional else None,
                                    init=self.fresh_starts)
                       if sampler.init == "buffer" else None)

    def fresh_starts(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images fresh chains start from (``sampler.start``), for their labels if given."""
        if self.sampler.start == "gaussian":
            return self.gaussians.sample(n, labels)[0]
        return uniform_noise(n, self.shape, self.device)

    def chain_starts(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(x0, labels, buffer indices) as in training: from the buffer, or noise with uniform labels."""
        if self.buffer is not None:
            x0, labels, index = self.buffer.sample(n)
            if labels is not None and self.sampler.buffer_labels == "redrawn":
                labels = self.random_labels(n)
            return x0, labels, index
        labels = self.random_labels(n) if self.conditional else None
        return self.fresh_starts(n, labels), labels, None

    def random_labels(self, n: int) -> torch.Tensor:
        return torch.randint(0, self.model.num_outputs, (n,), device=self.device)

    def negatives(self, n: int):
        x0, labels, index = self.chain_starts(n)
        result = chain(self.energy, x0, self.sampler, self.model, labels)
        return result, labels, index

    @property
    def loss_energy(self) -> torch.nn.Module:
        """The compiled energy, unless under torchrun, where the loss goes through the DDP wrapper."""
        return self.loss_model if self.loss_model is not self.model else self.energy

    def lr_at(self, step: int) -> float:
        return self.cfg.lr * self.lr_scale * lr_factor(step, self.cfg.iterations, self.cfg.lr_decay)

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(step)
        x_pos, y_pos = self.batches(step)
        if self.cfg.data_noise:
            x_pos = x_pos + self.cfg.data_noise * torch.randn_like(x_pos)
        result, y_neg, index = self.negatives(len(x_pos))
        if self.buffer is not None:
            self.buffer.push(result.x, y_neg, index)
        x = torch.cat([x_pos, result.x])
        extra = {}
        if self.conditional:
            every_label = self.loss_energy(x)  # (2B, K): one pass gives the CD energies and p(y|x)
            e_pos, e_neg = every_label.gather(1, torch.cat([y_pos, y_neg]).view(-1, 1))[:, 0].chunk(2)
            extra["class_loss"] = F.cross_entropy(-every_label[:len(x_pos)], y_pos)
        else:
            e_pos, e_neg = self.loss_energy(x).chunk(2)
        cd = e_pos.mean() - e_neg.mean()
        loss = cd + self.cfg.alpha * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
        if self.cfg.class_weight and self.conditional:
            loss = loss + self.cfg.class_weight * extra["class_loss"]
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
        sampling), or ``n`` fresh chains from noise. Labels come along for a conditional model."""
        if self.buffer is not None:
            n = min(n, self.buffer.capacity)
            if self.buffer.policy == "fifo":
                slots = (self.buffer.pushed - 1 - torch.arange(n, device=self.device)) % self.buffer.capacity
            else:
                slots = torch.randperm(self.buffer.capacity, device=self.device)[:n]
            labels = self.buffer.labels[slots] if self.buffer.labels is not None else None
            return self.buffer.images[slots].clone(), labels
        xs, ys = [], []
        for start in range(0, n, self.cfg.batch_size):
            result, labels, _ = self.negatives(min(self.cfg.batch_size, n - start))
            xs.append(result.x)
            ys.append(labels)
        return torch.cat(xs), (torch.cat(ys) if self.conditional else None)

    def extra_state(self) -> dict[str, Any]:
        return {"buffer": self.buffer.state_dict() if self.buffer is not None else None,
                "sampling": self.sampler.settings()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if self.buffer is not None:
            self.buffer.load_state_dict(state["buffer"])
