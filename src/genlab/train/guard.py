"""The divergence guard: a run whose loss turns non-finite or whose energies explode is caught at the
next log step, then stopped with a message or rolled back to the last good checkpoint.

Energies are watched two ways. An absolute bound catches a run that leaves any sane range. A bound
relative to the run's own history catches a runaway that stays below it: a JEM run whose data energy
went from about -10 to -3,768 within a few hundred iterations ruined its classifier long before 1e4,
while healthy runs here never log an energy more than 5 times the median of their earlier log steps.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Literal

from genlab.config import param

# The relative bound: a multiple of the median magnitude of the earlier log steps, applied once that many
# log steps were seen, with a floor under the median (energies of an EBM start near 0, where a ratio
# means nothing). Healthy runs stay 10 times below it; the two runaways measured went over 500 times.
RELATIVE_BOUND = 50.0
WARMUP_LOGS = 5
MEDIAN_FLOOR = 1.0


@dataclass
class GuardConfig:
    policy: Literal["stop", "rollback"] = param("stop", "on divergence: stop with a message, or roll back to "
                                                "the last good checkpoint and soften the step (see the trainer)")
    max_rollbacks: int = param(3, "rollbacks allowed before the run stops", ge=0)
    bound: float = param(1e4, "largest magnitude allowed for the watched bounded metrics (e.g. energies)", gt=0)


class DivergenceGuard:
    """Checks logged metric means: ``finite`` keys must be finite, ``bounded`` keys must stay within the
    absolute bound and within ``RELATIVE_BOUND`` times the median of their earlier magnitudes. The history
    starts empty when a run is resumed."""

    def __init__(self, config: GuardConfig, finite: tuple[str, ...] = ("loss",), bounded: tuple[str, ...] = ()):
        self.config = config
        self.finite = finite
        self.bounded = bounded
        self.history: dict[str, list[float]] = {key: [] for key in bounded}

    def problem(self, values: dict[str, float]) -> str | None:
        """A description of what diverged, or None when all is well (the values then join the history)."""
        for key in self.finite + self.bounded:
            if key in values and not math.isfinite(values[key]):
                return f"{key} is {values[key]}"
        for key in self.bounded:
            if key in values and abs(values[key]) > self.config.bound:
                return f"|{key}| = {abs(values[key]):.3g} exceeds the bound {self.config.bound:g}"
        for key in self.bounded:
            earlier = self.history[key]
            if key in values and len(earlier) >= WARMUP_LOGS:
                limit = RELATIVE_BOUND * max(MEDIAN_FLOOR, statistics.median(earlier))
                if abs(values[key]) > limit:
                    return (f"|{key}| = {abs(values[key]):.3g} is over {RELATIVE_BOUND:g} times the "
                            f"median of its earlier log steps ({limit:.3g})")
        for key in self.bounded:
            if key in values:
                self.history[key].append(abs(values[key]))
        return None
