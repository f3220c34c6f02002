"""One sampler config for every family that samples an energy by Langevin chains (EBM, JEM, JEM++).

Its vocabulary, the same everywhere:

* ``kind``: ``sgld`` (Langevin, :func:`genlab.sampling.langevin`) or ``pyld`` (JEM++'s proximal Langevin
  with first-layer gradient reuse, :func:`genlab.sampling.proximal_langevin`);
* ``init``: where each training iteration's chains start: fresh starts every time (``noise``, short-run
  chains) or a replay ``buffer`` of earlier chains' end points with ``reinit_prob`` of fresh starts;
* ``start``: what a fresh start is: ``uniform`` noise, a ``gaussian`` fitted to the training images of
  the chain's class (JEM++'s informative initialisation), or one of ``start_clusters`` Gaussians fitted to
  k-means ``clusters`` of the training images (the same without labels), or ``class_clusters``: that many
  k-means clusters within each class.

A family changes the defaults it needs (JEM: steps of size 1 with noise 0.01, chains written back in
place) by building its section with :func:`sampler_section`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from genlab.config import param, section
from genlab.sampling.langevin import drift
from genlab.sampling.schedules import make_schedule


@dataclass
class SamplerConfig:
    kind: Literal["sgld", "pyld"] = param("sgld", "sgld: Langevin (SGLD); pyld: proximal SGLD with first-layer "
                                          "gradient reuse (JEM++)")
    steps: int = param(20, "SGLD steps (sgld) or outer steps M (pyld) per chain", ge=1)
    form: Literal["coupled", "decoupled"] = param("decoupled", "coupled: x - eps^2/2 grad + eps noise; "
                                                  "decoupled: x - step grad + noise_scale noise")
    step_size: float = param(10.0, "SGLD step size (eps for the coupled form); the start value when decaying", gt=0)
    step_size_end: float = param(1.0, "step size at the last step of a chain when schedule=decay or cosine", gt=0)
    schedule: Literal["constant", "decay", "cosine"] = param(
        "constant", "the step's (and coupled: the noise's) schedule along a chain; decay: eps_t = start * "
                    "(end/start)^(t/T); cosine: end + (start - end) (1 + cos(pi t/T)) / 2 (genlab.sampling.schedules)")
    noise: float = param(0.005, "noise standard deviation of the decoupled form (pyld: added once per outer "
                                "step)", ge=0)
    noise_follows_step: bool = param(False, "decoupled sgld: the noise decays with the step along a chain "
                                            "(noise * step_t / step_size) instead of staying at `noise`")
    grad_clip: float = param(0.0, "clamp each input-gradient entry to [-c, c] (0: off)", ge=0)
    inner_steps: int = param(3, "pyld: cheap first-layer steps N after each outer step", ge=0)
    inner_step: float = param(0.01, "pyld: inner step size", gt=0)
    bound: float = param(1.0, "pyld: per-pixel clamp of the inner gradient (the proximal bound)", gt=0)
    init: Literal["noise", "buffer"] = param("buffer", "chain starts: fresh every time (short-run), or the replay "
                                             "buffer")
    start: Literal["uniform", "gaussian", "clusters", "class_clusters"] = param(
        "uniform", "what fresh chains start from: uniform noise; a Gaussian fitted to the training images of "
                   "the chain's class (conditional) or of a class drawn by frequency (JEM++'s informative start); "
                   "a Gaussian fitted to one of start_clusters k-means clusters of the training images (clusters, "
                   "no labels); or to one of start_clusters k-means clusters within each class (class_clusters)")
    start_clusters: int = param(500, "start=clusters: how many k-means clusters of the training images; "
                                     "start=class_clusters: how many in each class (ebm-cifar10-gaussian: 50; "
                                     "more lie nearer to single training images)", ge=1)
    buffer_size: int = param(10000, "replay buffer capacity", ge=1)
    reinit_prob: float = param(0.05, "share of chains restarted fresh when using the buffer", ge=0, le=1)
    buffer_policy: Literal["fifo", "reservoir", "inplace"] = param("fifo", "how samples return to the buffer")
    buffer_labels: Literal["kept", "redrawn"] = param(
        "kept", "conditional models: a chain from the buffer continues under its image's label, or under a fresh "
                "uniform label (chains then move between classes: no class is left with only its own stuck chains)")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = param(
        "auto", "precision of the energy's passes inside the sampler (bf16, fp16: autocast, the chain itself stays "
                "float32; auto: the fastest whose chains agree with fp32, measured once per machine and network and "
                "cached: genlab speed show)")

    def last_drift(self) -> float:
        """How far the chain's last step moves along the negative energy gradient: the decoupled form's step
        (its schedule's last value), or eps^2/2 in the coupled form."""
        return drift(make_schedule(self.schedule, self.step_size, self.step_size_end)(self.steps - 1, self.steps),
                     self.form)

    def settings(self) -> dict[str, Any]:
        """What `genlab sample` needs to rerun the chains as in training (stored in checkpoints)."""
        return {k: getattr(self, k) for k in ("kind", "steps", "form", "step_size", "step_size_end", "schedule",
                                              "noise", "noise_follows_step", "grad_clip", "inner_steps", "inner_step",
                                              "bound", "precision")}

    def with_settings(self, settings: dict[str, Any]) -> "SamplerConfig":
        """This config with a checkpoint's stored chain settings (older checkpoints store fewer keys)."""
        known = {f.name for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **{k: v for k, v in settings.items() if k in known})


def sampler_section(**defaults: Any) -> Any:
    """A config section of :class:`SamplerConfig` with a family's own defaults."""
    return section(partial(SamplerConfig, **defaults) if defaults else SamplerConfig)
