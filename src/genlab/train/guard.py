"""The divergence guard: a run whose loss turns non-finite or whose energies explode is caught at the
next log step, then stopped with a message or rolled back to the last good checkpoint."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from genlab.config import param


@dataclass
class GuardConfig:
    policy: Literal["stop", "rollback"] = param("stop", "on divergence: stop with a message, or roll back to "
                                                "the last good checkpoint and soften the step (see the trainer)")
    max_rollbacks: int = param(3, "rollbacks allowed before the run stops", ge=0)
    bound: float = param(1e4, "largest magnitude allowed for the watched bounded metrics (e.g. energies)", gt=0)


class DivergenceGuard:
    """Checks logged metric means: ``finite`` keys must be finite, ``bounded`` keys must stay within the bound."""

    def __init__(self, config: GuardConfig, finite: tuple[str, ...] = ("loss",), bounded: tuple[str, ...] = ()):
        self.config = config
        self.finite = finite
        self.bounded = bounded

    def problem(self, values: dict[str, float]) -> str | None:
        """A description of what diverged, or None when all is well."""
        for key in self.finite + self.bounded:
            if key in values and not math.isfinite(values[key]):
                return f"{key} is {values[key]}"
        for key in self.bounded:
            if key in values and abs(values[key]) > self.config.bound:
                return f"|{key}| = {abs(values[key]):.3g} exceeds the bound {self.config.bound:g}"
        return None
