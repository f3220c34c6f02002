"""Every named experiment."""

from __future__ import annotations

from genlab.errors import ConfigError
from genlab.experiments.base import Experiment
from genlab.experiments.classifiers import CLASSIFIER_EXPERIMENTS
from genlab.experiments.dvae import DVAE_EXPERIMENTS
from genlab.experiments.ebm import EBM_EXPERIMENTS
from genlab.experiments.gans import GAN_EXPERIMENTS
from genlab.experiments.jem import JEM_EXPERIMENTS
from genlab.experiments.sampling_study import SAMPLING_EXPERIMENTS

_ALL = (*CLASSIFIER_EXPERIMENTS, *DVAE_EXPERIMENTS, *EBM_EXPERIMENTS, *SAMPLING_EXPERIMENTS, *GAN_EXPERIMENTS,
        *JEM_EXPERIMENTS)
EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in _ALL}


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment '{name}'; experiments: {', '.join(EXPERIMENTS)}",
                          hint="run `genlab list`")
    return EXPERIMENTS[name]
