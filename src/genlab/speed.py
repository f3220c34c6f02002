"""`genlab speed`: the sampler decisions cached on this machine, and measuring one experiment's afresh.

The measurement itself lives in :mod:`genlab.sampling.precision`; this module builds an EBM experiment's
network and a batch of chain starts as its training run would, and re-measures them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from genlab.devices import resolve_device
from genlab.errors import ConfigError
from genlab.sampling import precision, run_chain, uniform_noise


def cached_decisions() -> dict[str, dict[str, Any]]:
    """Every cached decision on this machine, by cache key."""
    return precision.read_cache()


def measure_experiment(name: str, preset: str = "quick", sets: dict[str, Any] | None = None,
                       device: str = "auto") -> dict[str, Any]:
    """Measure (again) the sampler of an EBM experiment's training chains: its network in its training
    layout, a batch of ``train.batch_size`` uniform-noise starts and, for a conditional model, labels
    (whatever the preset's ``sampler.precision``). Returns the decision as a run's summary records it."""
    from genlab.data.registry import get_spec
    from genlab.experiments.ebm import build_model
    from genlab.experiments.registry import get_experiment

    experiment = get_experiment(name)
    if experiment.family != "ebm":
        raise ConfigError(f"`genlab speed measure` knows the ebm experiments; '{name}' is {experiment.family}",
                          hint="run `genlab list` for the ebm experiments")
    cfg = experiment.config(preset, sets)
    spec, where = get_spec(cfg.data.dataset), resolve_device(device)
    model = build_model(cfg).to(where)
    if cfg.train.channels_last:
        model.to(memory_format=torch.channels_last)
    torch.manual_seed(cfg.seed)
    x0 = uniform_noise(cfg.train.batch_size, spec.image_shape, where)
    labels = (torch.randint(0, len(spec.classes), (len(x0),), device=where) if cfg.data.conditional else None)
    auto = dataclasses.replace(cfg.sampler, precision="auto")
    run_chain(model, x0, auto, labels=labels, steps=1, freeze=model, remeasure=True)
    return precision.precision_summary(model)
