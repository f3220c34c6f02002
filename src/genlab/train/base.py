"""What trainers of one model with one optimiser share: their checkpoint state, their answer to a
divergence rollback (halve the learning rate) and data parallelism under torchrun."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch

from genlab import distributed


def lr_factor(step: int, iterations: int, decay: Literal["none", "cosine"] = "none", warmup: int = 0) -> float:
    """The learning-rate multiplier at ``step``: a linear warm-up over ``warmup`` steps, then constant or
    cosine-decayed to 0 at ``iterations``."""
    ramp = min(1.0, (step + 1) / warmup) if warmup else 1.0
    return ramp * (0.5 * (1 + math.cos(math.pi * step / iterations)) if decay == "cosine" else 1.0)


class ModelTrainer:
    """Subclasses set ``self.model`` and ``self.optimizer``; a trainer that sets its learning rate every step
    multiplies it by ``self.lr_scale``. ``extra_state``/``load_extra_state`` add anything else to resume.

    Forward passes whose loss is backpropagated go through ``self.loss_model``: the model itself, or its
    DistributedDataParallel wrapper under torchrun (whose backward averages gradients over ranks).
    Sampling, evaluation and checkpoints use ``self.model``.
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    lr_scale: float = 1.0
    _parallel: torch.nn.Module | None = None

    @property
    def loss_model(self) -> torch.nn.Module:
        return self._parallel or self.model

    def distribute(self, device: torch.device) -> None:
        self._parallel = distributed.wrap(self.model, device)

    def soften(self, attempt: int) -> str:
        self.lr_scale *= 0.5
        for group in self.optimizer.param_groups:
            group["lr"] *= 0.5
        return f"learning rate scaled by {self.lr_scale:g}"

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "lr_scale": self.lr_scale, **self.extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scale = state["lr_scale"]
        self.load_extra_state(state)
