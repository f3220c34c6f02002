"""The divergence guard: a run whose loss turns non-finite or whose energies explode is caught at the
next log step, then stopped with a message or rolled back to the last good checkpoint.

Energies are watched two ways. An absolute bound catches a run that leaves any sane range. A bound
relative to the run's own history catches a runaway that stays below it: a JEM run whose data energy
went from about -10 to -3,768 within a few hundred iterations ruined its classifier long before 1e4,
while healthy runs here never log an energy more than 5 times the median of their earlier log steps.

The opposite failure is watched too: a network that has gone flat. A CIFAR-10 energy of width 32 trained at
lr 1e-3 without spectral norm swung for 500 iterations, then collapsed to a constant (|E| 1e-6, the
parameters' gradient norm 2e-5 from about 0.5), after which its chains never moved: a run that finishes with
its samples equal to their starts and nothing said. Three healthy CIFAR-10 runs beside it never logged a
gradient norm below 1/10 of their median; it was caught 10 log steps after falling below 1/1,000 of its median.
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
# A vanishing metric: below this share of the median of its earlier log steps for this many log steps in a row.
VANISHED_SHARE = 1e-3
VANISHED_LOGS = 10


@dataclass
class GuardConfig:
    policy: Literal["stop", "rollback"] = param("stop", "on divergence: stop with a message, or roll back to "
                                                "the last good checkpoint and soften the step (see the trainer)")
    max_rollbacks: int = param(3, "rollbacks allowed before the run stops", ge=0)
    bound: float = param(1e4, "largest magnitude allowed for the watched bounded metrics (e.g. energies)", gt=0)


class DivergenceGuard:
    """Checks logged metric means: ``finite`` keys must be finite, ``bounded`` keys must stay within the
    absolute bound and within ``RELATIVE_BOUND`` times the median of their earlier magnitudes, and
    ``vanishing`` keys (a gradient norm) must not stay below ``VANISHED_SHARE`` of theirs for
    ``VANISHED_LOGS`` log steps. The history starts empty when a run is resumed."""

    def __init__(self, config: GuardConfig, finite: tuple[str, ...] = ("loss",), bounded: tuple[str, ...] = (),
                 vanishing: tuple[str, ...] = ()):
        self.config = config
        self.finite = finite
        self.bounded = bounded
        self.vanishing = vanishing
        self.history: dict[str, list[float]] = {key: [] for key in bounded + vanishing}
        self.low_streak = dict.fromkeys(vanishing, 0)

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
        for key in self.vanishing:
            earlier = self.history[key]
            if key in values and len(earlier) >= WARMUP_LOGS:
                floor = VANISHED_SHARE * statistics.median(earlier)
                self.low_streak[key] = self.low_streak[key] + 1 if abs(values[key]) < floor else 0
                if self.low_streak[key] >= VANISHED_LOGS:
                    return (f"{key} has stayed below {floor:.3g} ({VANISHED_SHARE:g} of the median of its earlier "
                            f"log steps) for {VANISHED_LOGS} log steps: the network has gone flat and stopped "
                            f"learning")
        for key in self.bounded + self.vanishing:
            if key in values and not self.low_streak.get(key):  # low values do not redefine normal
                self.history[key].append(abs(values[key]))
        return None
