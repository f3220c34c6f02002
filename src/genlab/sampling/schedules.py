"""Step-size schedules for Langevin chains, as functions of the step index t in [0, T).

The noise schedule of a chain is its step-size schedule eps_t (``sampler.schedule``):

* in the coupled form the noise *is* eps_t, so a decaying schedule lowers the noise (and the drift,
  eps_t^2 / 2) together: a schedule here is an annealing of the temperature-one Langevin chain;
* in the decoupled form the schedule sets the step (the drift's factor); the noise stays at
  ``sampler.noise`` unless ``sampler.noise_follows_step``, which scales it with the step,
  sigma_t = noise * step_t / step_size, so both decay together by the same factor as in the coupled
  form's noise.

Three shapes, each from ``start`` at the first step to ``end`` at the last: constant, geometric decay
(equal ratios between steps: most of the fall comes early) and cosine decay (a slow start, the fall in
the middle, a slow finish at ``end``: the chain moves with large steps for longer before it settles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Constant:
    value: float

    def __call__(self, t: int, steps: int) -> float:
        return self.value


@dataclass(frozen=True)
class GeometricDecay:
    """eps_t = start * (end / start) ** (t / (T - 1)): exactly ``start`` at the first step, ``end`` at the last.

    (Written t/T in the usual statement; dividing by T - 1 makes the last step of the chain use ``end``.)
    """

    start: float
    end: float

    def __call__(self, t: int, steps: int) -> float:
        if steps <= 1:
            return self.start
        return self.start * (self.end / self.start) ** (t / (steps - 1))


@dataclass(frozen=True)
class CosineDecay:
    """eps_t = end + (start - end) * (1 + cos(pi t / (T - 1))) / 2: ``start`` at the first step, ``end`` at the
    last, half-way between them at the middle step (Loshchilov & Hutter's SGDR shape, applied along a chain)."""

    start: float
    end: float

    def __call__(self, t: int, steps: int) -> float:
        if steps <= 1:
            return self.start
        return self.end + (self.start - self.end) * (1 + math.cos(math.pi * t / (steps - 1))) / 2


@dataclass(frozen=True)
class Scaled:
    """A schedule times a constant factor: the decoupled form's noise when it follows the step."""

    schedule: Constant | GeometricDecay | CosineDecay
    factor: float

    def __call__(self, t: int, steps: int) -> float:
        return self.factor * self.schedule(t, steps)


SCHEDULES = ("constant", "decay", "cosine")


def make_schedule(kind: str, start: float, end: float | None = None) -> Constant | GeometricDecay | CosineDecay:
    """``constant`` (``start`` throughout), ``decay`` (geometric, ``start`` to ``end``) or ``cosine``."""
    if kind == "constant":
        return Constant(start)
    if kind in ("decay", "cosine"):
        if end is None:
            raise ValueError(f"a {kind} schedule needs an end value")
        return GeometricDecay(start, end) if kind == "decay" else CosineDecay(start, end)
    raise ValueError(f"unknown schedule '{kind}'; use {', '.join(SCHEDULES)}")
