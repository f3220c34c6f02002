"""Sampling: Langevin chains (SGLD), proximal Langevin (PYLD), step-size schedules, the replay buffer,
chain initialisers, the one sampler config and the chains every family runs with it.

p(x) is proportional to exp(-E(x)); see :mod:`genlab.sampling.langevin`.
"""

from genlab.sampling.chains import (ChainStarts, balanced_labels, buffer_starts, fresh_chains, run_chain)
from genlab.sampling.config import SamplerConfig, sampler_section
from genlab.sampling.initializers import ClassGaussians, ClusterGaussians, StartDistribution, fit_starts
from genlab.sampling.langevin import Chain, frozen, langevin
from genlab.sampling.proximal import proximal_langevin
from genlab.sampling.replay import ReplayBuffer, uniform_noise
from genlab.sampling.schedules import Constant, CosineDecay, GeometricDecay, make_schedule

__all__ = ["Chain", "ChainStarts", "ClassGaussians", "ClusterGaussians", "Constant", "CosineDecay", "GeometricDecay", "ReplayBuffer",
           "SamplerConfig", "StartDistribution", "balanced_labels", "buffer_starts", "fit_starts", "fresh_chains", "frozen",
           "langevin", "make_schedule", "proximal_langevin", "run_chain", "sampler_section", "uniform_noise"]
