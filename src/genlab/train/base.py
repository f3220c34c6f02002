"""What trainers share: the learning-rate schedule, their checkpoint state, their answer to a divergence
rollback (halve the learning rates) and data parallelism under torchrun."""

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


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Give every parameter group of ``optimizer`` the learning rate ``lr``."""
    for group in optimizer.param_groups:
        group["lr"] = lr


class ModelTrainer:
    """Subclasses set ``self.model`` and ``self.optimizer``; a trainer that sets its learning rate every step
    multiplies it by ``self.lr_scale`` (``schedule_lr`` does). ``extra_state``/``load_extra_state`` add anything
    else to resume. A trainer of several networks (the GAN's generator and critic) names them in ``networks``
    and its optimisers in ``optimizers`` instead: those names are the keys of its checkpoint state.

    Forward passes whose loss is backpropagated go through ``self.loss_model`` (``loss_network(name)`` for
    several networks): the network itself, or its DistributedDataParallel wrapper under torchrun (whose
    backward averages gradients over ranks). Sampling, evaluation and checkpoints use the bare networks.
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    lr_scale: float = 1.0
    _parallel: dict[str, torch.nn.Module] = {}

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"model": self.model}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"optimizer": self.optimizer}

    def loss_network(self, name: str) -> torch.nn.Module:
        return self._parallel[name] if name in self._parallel else self.networks()[name]

    @property
    def loss_model(self) -> torch.nn.Module:
        return self.loss_network("model")

    def distribute(self, device: torch.device) -> None:
        self._parallel = {name: distributed.wrap(net, device) for name, net in self.networks().items()}

    def schedule_lr(self, step: int, lr: float, iterations: int, decay: str = "none", warmup: int = 0) -> float:
        """Set the learning rate of step ``step``: ``lr`` times the rollback scale times ``lr_factor``."""
        value = lr * self.lr_scale * lr_factor(step, iterations, decay, warmup)
        set_lr(self.optimizer, value)
        return value

    def soften(self, attempt: int) -> str:
        """After a rollback: every learning rate halved, now and (through ``lr_scale``) at later steps."""
        self.lr_scale *= 0.5
        for optimizer in self.optimizers().values():
            set_lr(optimizer, 0.5 * optimizer.param_groups[0]["lr"])
        return f"learning rate scaled by {self.lr_scale:g}"

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {**{name: net.state_dict() for name, net in self.networks().items()},
                **{name: opt.state_dict() for name, opt in self.optimizers().items()},
                "lr_scale": self.lr_scale, **self.extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.networks().items():
            net.load_state_dict(state[name])
        for name, opt in self.optimizers().items():
            opt.load_state_dict(state[name])
        self.lr_scale = state["lr_scale"]
        self.load_extra_state(state)
