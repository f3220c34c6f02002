"""Sampling: Langevin chains (SGLD), step-size schedules, the replay buffer.

p(x) is proportional to exp(-E(x)); see :mod:`genlab.sampling.langevin`.
"""

from genlab.sampling.langevin import Chain, frozen, langevin
from genlab.sampling.replay import ReplayBuffer, uniform_noise
from genlab.sampling.schedules import Constant, GeometricDecay, make_schedule

__all__ = ["Chain", "Constant", "GeometricDecay", "ReplayBuffer", "frozen", "langevin", "make_schedule",
           "uniform_noise"]
