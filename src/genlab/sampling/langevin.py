"""Langevin sampling (SGLD) of an energy-based model.

Sign convention, said once for all of genlab: p(x) is proportional to exp(-E(x)). Low energy means
likely; the sampler descends E, and training pushes the energy of data down and of samples up.

Two forms of the update:

* ``coupled`` (the textbook discretisation of Langevin dynamics, whose stationary law is p for small
  steps): x <- x - (eps^2 / 2) grad E(x) + eps * noise, noise ~ N(0, I).
* ``decoupled`` (what EBM papers use in practice: Du & Mordatch 2019, Grathwohl et al. 2019):
  x <- x - step * grad E(x) + sigma * noise, with ``step`` and ``sigma`` set independently, usually with
  much less noise than the coupled form would add (a biased, faster-mixing sampler).

:func:`langevin` takes any callable energy ``E(x) -> (B,)``, so it samples anyone's networks; a class
-conditional energy is sampled with its label held fixed by closing over it: ``lambda x: E(x, y)``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import nn

from genlab.nets.modes import frozen
from genlab.sampling.schedules import Constant

Energy = Callable[[torch.Tensor], torch.Tensor]
Schedule = Callable[[int, int], float]


@dataclass
class Chain:
    """The chain's end points and the mean energy at each step (before that step's move)."""

    x: torch.Tensor
    energy_trace: torch.Tensor | None


def drift(eps: float, form: Literal["coupled", "decoupled"]) -> float:
    """How far a step of size ``eps`` moves along the negative energy gradient: eps^2/2 in the coupled form
    (x - eps^2/2 grad + eps noise), eps itself in the decoupled one."""
    return eps * eps / 2 if form == "coupled" else eps


def _as_schedule(value: float | Schedule) -> Schedule:
    return Constant(float(value)) if isinstance(value, (int, float)) else value


def langevin(energy: Energy, x0: torch.Tensor, steps: int, step_size: float | Schedule,
             noise_scale: float | Schedule | None = None, *, form: Literal["coupled", "decoupled"] = "decoupled",
             grad_clip: float | None = None, clamp: tuple[float, float] | None = (-1.0, 1.0),
             record_energy: bool = True, freeze: nn.Module | None = None,
             autocast: torch.dtype | None = None) -> Chain:
    """Run ``steps`` Langevin updates from ``x0``.

    ``step_size`` and ``noise_scale`` are numbers or schedules ``f(t, steps)``. In the coupled form the
    noise is ``eps`` itself and ``noise_scale`` must be None. ``grad_clip`` clamps each gradient entry to
    [-grad_clip, grad_clip]; ``clamp`` keeps the chain in the data range. The parameters of ``freeze`` (by
    default the energy itself, if it is a module) are frozen while sampling. Nothing is read back to the
    host: the energy trace stays on the device. ``autocast`` (e.g. ``torch.bfloat16``) runs the energy's
    forward and backward passes in that precision; the chain itself (x, noise, updates) stays float32.
    The noise is drawn in a contiguous buffer, so a channels-last ``x0`` gets the same noise per pixel.
    """
    if form == "coupled" and noise_scale is not None:
        raise ValueError("the coupled form ties the noise to the step size; leave noise_scale unset")
    if form == "decoupled" and noise_scale is None:
        raise ValueError("the decoupled form needs a noise_scale")
    step_of = _as_schedule(step_size)
    noise_of = _as_schedule(noise_scale) if noise_scale is not None else None
    x = x0.detach().clone()
    noise = torch.empty(x.shape, device=x.device, dtype=x.dtype)
    trace = torch.empty(steps, device=x.device) if record_energy else None
    precision = (torch.autocast(x.device.type, dtype=autocast) if autocast is not None
                 else contextlib.nullcontext())
    with frozen(freeze if freeze is not None else energy), torch.enable_grad():
        for t in range(steps):
            x.requires_grad_(True)
            with precision:
                e = energy(x).float()
            (grad,) = torch.autograd.grad(e.sum(), x)
            x = x.detach()
            if record_energy:
                trace[t] = e.detach().mean()
            if grad_clip is not None:
                grad.clamp_(-grad_clip, grad_clip)
            eps = step_of(t, steps)
            sigma = eps if form == "coupled" else noise_of(t, steps)
            x.add_(grad, alpha=-drift(eps, form))
            if sigma:
                x.add_(noise.normal_(), alpha=sigma)
            if clamp is not None:
                x.clamp_(*clamp)
    return Chain(x, trace)
