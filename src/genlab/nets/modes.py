"""Train/eval modes: evaluating a network in the middle of training without losing its mode."""

from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn


@contextlib.contextmanager
def evaluating(*modules: nn.Module) -> Iterator[None]:
    """The modules in eval mode for the duration (batch norm uses its running statistics, dropout is off, a
    quantiser leaves its codebook alone). Afterwards every module and submodule has its own training flag
    back, so a network whose parts were in different modes comes back exactly as it was."""
    flags = [(m, m.training) for module in modules for m in module.modules()]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for m, training in flags:
            m.training = training
