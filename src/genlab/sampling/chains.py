"""Chains as the families run them: the configured sampler on an energy, where chains start, and the
fresh chains drawn for evaluation and for `genlab sample`.

An energy here is a callable ``E(x, y=None) -> (B,)``: with labels it is the class-conditional energy,
held fixed along each chain. EBM and JEM runs differ only in the energy they hand over.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from genlab.sampling import precision
from genlab.sampling.config import SamplerConfig
from genlab.sampling.initializers import StartDistribution
from genlab.sampling.langevin import Chain, langevin
from genlab.sampling.proximal import proximal_langevin
from genlab.sampling.replay import ReplayBuffer, uniform_noise
from genlab.sampling.schedules import Scaled, make_schedule

LabelledEnergy = Callable[..., torch.Tensor]


def run_chain(energy: LabelledEnergy, x0: torch.Tensor, cfg: SamplerConfig, *, labels: torch.Tensor | None = None,
              steps: int | None = None, freeze: nn.Module | None = None,
              first_layer: nn.Module | None = None, remeasure: bool = False) -> Chain:
    """Run the configured sampler from ``x0`` (``steps`` overrides ``cfg.steps``; labels held fixed if
    given). ``freeze``: the module whose parameters stop requiring gradients while sampling; ``first_layer``:
    the module whose output gradient proximal SGLD reuses (needed for ``kind=pyld``). The energy's precision
    and layout are ``cfg.precision``, or for ``auto`` those measured fastest for this network and batch
    shape (:mod:`genlab.sampling.precision`; ``remeasure``: measure again even if a decision is cached)."""
    if cfg.kind == "pyld" and first_layer is None:
        raise ValueError("sampler.kind=pyld needs the network's first layer")
    fn = (lambda x: energy(x, labels)) if labels is not None else energy
    network = freeze if freeze is not None else (energy if isinstance(energy, nn.Module) else None)

    def run(candidate: precision.Candidate, n: int) -> Chain:
        return _run(fn, x0, cfg, n, candidate, network, freeze, first_layer)

    steps = steps or cfg.steps
    decision = precision.choose(cfg.precision, network, x0, labels is not None, lambda c, n: run(c, n).x, cfg.steps,
                                switch_layout=not hasattr(energy, "_orig_mod"), remeasure=remeasure)
    return run(decision.candidate, steps)


def _run(fn: LabelledEnergy, x0: torch.Tensor, cfg: SamplerConfig, steps: int, candidate: precision.Candidate,
         network: nn.Module | None, freeze: nn.Module | None, first_layer: nn.Module | None) -> Chain:
    """``steps`` of the configured sampler in the candidate's precision and layout. A layout other than the
    network's own is switched to for the chain (weights and chain) and the end points come back in the
    layout of ``x0``."""
    grad_clip = cfg.grad_clip or None
    switched = network is not None and x0.dim() == 4 and candidate.channels_last != precision.is_channels_last(network)
    start = x0
    if switched:
        start = x0.contiguous(memory_format=torch.channels_last if candidate.channels_last else torch.contiguous_format)
    with precision.layout(network, candidate.channels_last):
        if cfg.kind == "pyld":
            chain = proximal_langevin(fn, first_layer, start, steps, cfg.inner_steps, cfg.step_size, cfg.inner_step,
                                      cfg.bound, cfg.noise, freeze=freeze, autocast=candidate.dtype,
                                      grad_clip=grad_clip)
        else:
            step = make_schedule(cfg.schedule, cfg.step_size, cfg.step_size_end)
            noise = Scaled(step, cfg.noise / cfg.step_size) if cfg.noise_follows_step else cfg.noise
            chain = langevin(fn, start, steps, step, None if cfg.form == "coupled" else noise, form=cfg.form,
                             grad_clip=grad_clip, freeze=freeze, autocast=candidate.dtype)
    if switched:
        chain.x = chain.x.contiguous(memory_format=_layout_of(x0))
    return chain


def _layout_of(x: torch.Tensor) -> torch.memory_format:
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


class ChainStarts:
    """Where a run's chains start (``cfg.init``, ``cfg.start``) and where their end points go back to.

    Fresh starts are uniform noise or draws from Gaussians fitted to the training images (for the chains' own
    labels when a conditional model's labels are given, else of classes drawn by frequency). With
    ``init=buffer`` chains start from the replay buffer, which is filled with fresh starts and re-initialises
    ``reinit_prob`` of its draws with them. ``num_classes`` makes the chains conditional: each carries a label.
    """

    def __init__(self, cfg: SamplerConfig, shape: tuple[int, ...], device: torch.device,
                 num_classes: int | None = None, gaussians: StartDistribution | None = None):
        if cfg.start != "uniform" and gaussians is None:
            raise ValueError(f"sampler.start={cfg.start} needs the Gaussians fitted to the training images")
        self.cfg, self.shape, self.device = cfg, tuple(shape), device
        self.num_classes, self.gaussians = num_classes, gaussians
        self.buffer = (ReplayBuffer(cfg.buffer_size, shape, device, cfg.reinit_prob, cfg.buffer_policy,
                                    num_classes=num_classes, init=self.fresh)
                       if cfg.init == "buffer" else None)

    def fresh(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` fresh starts (``cfg.start``), for their labels if given."""
        if self.cfg.start != "uniform":
            return self.gaussians.sample(n, labels)[0]
        return uniform_noise(n, self.shape, self.device)

    def random_labels(self, n: int) -> torch.Tensor | None:
        if self.num_classes is None:
            return None
        return torch.randint(0, self.num_classes, (n,), device=self.device)

    def draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(x0, labels, buffer indices) of ``n`` training chains: from the buffer, or fresh with uniform labels."""
        if self.buffer is not None:
            x0, labels, index = self.buffer.sample(n)
            if labels is not None and self.cfg.buffer_labels == "redrawn":
                labels = self.random_labels(n)
            return x0, labels, index
        labels = self.random_labels(n)
        return self.fresh(n, labels), labels, None

    def keep(self, x: torch.Tensor, labels: torch.Tensor | None, index: torch.Tensor | None) -> None:
        """The chains' end points go back to the buffer (if there is one)."""
        if self.buffer is not None:
            self.buffer.push(x, labels, index)

    def state_dict(self) -> dict | None:
        return self.buffer.state_dict() if self.buffer is not None else None

    def load_state_dict(self, state: dict | None) -> None:
        if self.buffer is not None:
            self.buffer.load_state_dict(state)


def balanced_labels(n: int, num_classes: int, device: torch.device | str) -> torch.Tensor:
    """Labels 0..K-1 in turn: equal shares of ``n`` chains per class."""
    return torch.arange(n, device=device) % num_classes


def fresh_chains(energy: LabelledEnergy, starts: Callable[[int, torch.Tensor | None], torch.Tensor], n: int,
                 batch_size: int, cfg: SamplerConfig, *, labels: torch.Tensor | None = None,
                 steps: int | None = None, freeze: nn.Module | None = None,
                 first_layer: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` fresh chains from ``starts(size, labels)``, run ``batch_size`` at a time; ``labels`` (one per
    chain) are held fixed along them. Returns (images, labels)."""
    xs = []
    for begin in range(0, n, batch_size):
        size = min(batch_size, n - begin)
        batch_labels = labels[begin:begin + size] if labels is not None else None
        xs.append(run_chain(energy, starts(size, batch_labels), cfg, labels=batch_labels, steps=steps,
                            freeze=freeze, first_layer=first_layer).x)
    return torch.cat(xs), labels


def buffer_starts(buffer: dict, n: int, labels: torch.Tensor | None, device,
                  fallback: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
    """``n`` chain starts drawn from a saved replay buffer; with labels, each from the entries of its own
    label. Chains whose label the buffer lacks start from ``fallback()`` (``n`` fresh starts), called only
    then: fitting the Gaussians a run's fresh starts come from reads its whole training set. Without
    labels no fallback is needed."""
    images = buffer["images"].to(device)
    if labels is None:
        return images[torch.randint(0, len(images), (n,), device=device)]
    held = buffer["labels"].to(device)
    every_label_held = bool(torch.isin(labels, held).all())
    starts = images.new_empty((n, *images.shape[1:])) if every_label_held else fallback().to(device)
    for c in labels.unique():
        pool = (held == c).nonzero()[:, 0]
        want = (labels == c).nonzero()[:, 0]
        if len(pool):
            starts[want] = images[pool[torch.randint(0, len(pool), (len(want),), device=device)]]
    return starts
