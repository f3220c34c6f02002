"""Step-size schedules for Langevin chains, as functions of the step index t in [0, T)."""

from __future__ import annotations

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


def make_schedule(kind: str, start: float, end: float | None = None) -> Constant | GeometricDecay:
    if kind == "constant":
        return Constant(start)
    if kind == "decay":
        if end is None:
            raise ValueError("a decaying schedule needs an end value")
        return GeometricDecay(start, end)
    raise ValueError(f"unknown schedule '{kind}'; use constant or decay")
