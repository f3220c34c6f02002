"""Module states for the duration of a block: eval mode without losing the training mode, parameters frozen
without losing which of them learn."""

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


@contextlib.contextmanager
def frozen(module: object) -> Iterator[None]:
    """Parameters of an ``nn.Module`` stop requiring gradients for the duration (a sampler needs gradients
    with respect to its input only; a generator's step, none of the critic's); anything else passes through."""
    if not isinstance(module, nn.Module):
        yield
        return
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
