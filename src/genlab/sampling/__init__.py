"""Sampling: Langevin chains (SGLD), proximal Langevin (PYLD), step-size schedules, the replay buffer,
chain initialisers.

p(x) is proportional to exp(-E(x)); see :mod:`genlab.sampling.langevin`.
"""

from genlab.sampling.initializers import ClassGaussians
from genlab.sampling.langevin import Chain, frozen, langevin
from genlab.sampling.proximal import proximal_langevin
from genlab.sampling.replay import ReplayBuffer, uniform_noise
from genlab.sampling.schedules import Constant, GeometricDecay, make_schedule

__all__ = ["Chain", "ClassGaussians", "Constant", "GeometricDecay", "ReplayBuffer", "frozen", "langevin",
           "make_schedule", "proximal_langevin", "uniform_noise"]
