"""A replay buffer of past chain end points (Du & Mordatch 2019): chains restart where earlier ones
stopped, so short chains per iteration add up to long ones over training.

Each chain starts from a buffer entry with probability ``1 - reinit_prob`` and from fresh noise
otherwise (95% / 5% by default). The buffer starts full of noise. After sampling, the new end points go
back in by one of three policies:

* ``fifo``: a ring; each new sample replaces the oldest entry.
* ``reservoir``: reservoir sampling over every sample ever pushed, so the buffer stays a uniform sample
  of the whole history (old samples persist longer than in a ring).
* ``inplace``: each sample replaces the entry its chain started from (the JEM code's policy).

For class-conditional models the buffer keeps each entry's label; fresh entries get uniform labels, and
``init`` is told them (so it can start each chain near its own class, as JEM++'s Gaussians do).
Randomness comes from the global torch generator, which checkpoints save.
"""

from __future__ import annotations

from typing import Callable, Literal

import torch

Policy = Literal["fifo", "reservoir", "inplace"]


def uniform_noise(n: int, shape: tuple[int, ...], device: torch.device | str) -> torch.Tensor:
    return torch.rand(n, *shape, device=device) * 2 - 1


class ReplayBuffer:
    def __init__(self, capacity: int, shape: tuple[int, ...], device: torch.device | str = "cpu",
                 reinit_prob: float = 0.05, policy: Policy = "fifo", num_classes: int | None = None,
                 init: Callable[[int, torch.Tensor | None], torch.Tensor] | None = None):
        """``init(n, labels)`` gives n fresh images (labels: theirs, or None for an unconditional buffer)."""
        self.capacity, self.shape, self.device = capacity, tuple(shape), torch.device(device)
        self.reinit_prob, self.policy, self.num_classes = reinit_prob, policy, num_classes
        self.init = init or (lambda n, labels: uniform_noise(n, self.shape, self.device))
        self.labels = self._random_labels(capacity)
        self.images = self.init(capacity, self.labels)
        self.pushed = 0  # samples pushed so far (the ring pointer and the reservoir's count)

    def _random_labels(self, n: int) -> torch.Tensor | None:
        if self.num_classes is None:
            return None
        return torch.randint(0, self.num_classes, (n,), device=self.device)

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Chain starts: (images, labels or None, buffer indices they came from)."""
        index = torch.randint(0, self.capacity, (n,), device=self.device)
        x = self.images[index].clone()
        labels = self.labels[index].clone() if self.labels is not None else None
        fresh = torch.rand(n, device=self.device) < self.reinit_prob
        fresh_labels = self._random_labels(n)
        x = torch.where(fresh.view(-1, *[1] * len(self.shape)), self.init(n, fresh_labels), x)
        if labels is not None:
            labels = torch.where(fresh, fresh_labels, labels)
        return x, labels, index

    def push(self, x: torch.Tensor, labels: torch.Tensor | None = None, index: torch.Tensor | None = None) -> None:
        n = len(x)
        if self.policy == "inplace":
            if index is None:
                raise ValueError("the inplace policy needs the indices the chains started from")
            slots = index
        elif self.policy == "fifo":
            slots = (torch.arange(n, device=self.device) + self.pushed) % self.capacity
        else:
            slots = self._reservoir_slots(n)
        keep = slots >= 0
        self.images[slots[keep]] = x.detach()[keep]
        if self.labels is not None and labels is not None:
            self.labels[slots[keep]] = labels[keep]
        self.pushed += n

    def _reservoir_slots(self, n: int) -> torch.Tensor:
        """Algorithm R: the k-th sample ever seen (counting the initial noise) replaces a uniform slot
        with probability capacity / k; -1 marks samples that are not kept."""
        seen = self.capacity + self.pushed + torch.arange(1, n + 1, device=self.device)
        draw = (torch.rand(n, device=self.device) * seen).long()
        return torch.where(draw < self.capacity, draw, torch.full_like(draw, -1))

    def current(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(images, labels) of ``min(n, capacity)`` entries that stand for what the chains produce now: the
        newest ones for a ring, distinct random ones otherwise. No sampling, no change to the buffer."""
        n = min(n, self.capacity)
        if self.policy == "fifo":
            slots = (self.pushed - 1 - torch.arange(n, device=self.device)) % self.capacity
        else:
            slots = torch.randperm(self.capacity, device=self.device)[:n]
        return self.images[slots].clone(), (self.labels[slots].clone() if self.labels is not None else None)

    def state_dict(self) -> dict:
        return {"images": self.images, "labels": self.labels, "pushed": self.pushed}

    def load_state_dict(self, state: dict) -> None:
        self.images = state["images"].to(self.device)
        self.labels = state["labels"].to(self.device) if state["labels"] is not None else None
        self.pushed = state["pushed"]
