"""Data-parallel training under ``torchrun``: one process per device, gradients averaged by
DistributedDataParallel (NCCL on GPUs, gloo on CPUs).

genlab runs SPMD: every rank executes the same experiment on its share of each global batch (see
:class:`genlab.data.batches.Batches`), with its own random stream, so its own Langevin chains and its
own replay buffer. Rank 0 alone writes the run directory: metrics (means over all ranks), checkpoints,
samples, figures, summary and report. Other ranks write into a scratch directory removed at the end,
and read checkpoints from rank 0's folder, so a run resumes under any world size. A checkpoint holds
rank 0's replay buffer and random state; on resume every rank starts from that buffer and re-derives
its own random stream, so only a single-process run resumes bit for bit.

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) every function here is a no-op.
"""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import nn

from genlab.devices import resolve_device
from genlab.errors import ConfigError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_current = Dist()


def current() -> Dist:
    """This process's place in the job (rank 0 of 1 outside ``torchrun``)."""
    return _current


def setup(device_name: str = "auto") -> tuple[Dist, torch.device]:
    """Join the process group that ``torchrun`` describes in the environment; pick this rank's device."""
    global _current
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        _current = Dist()
        return _current, resolve_device(device_name)
    if torch_dist.is_initialized():
        return _current, _rank_device(device_name, _current)
    dist = Dist(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    device = _rank_device(device_name, dist)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    _current = dist
    return dist, device


def _rank_device(device_name: str, dist: Dist) -> torch.device:
    device = resolve_device(device_name)
    if device.type == "mps":
        raise ConfigError("torchrun with MPS is not supported", hint="use --device cpu for multi-process runs")
    if device.type == "cuda":
        if device.index is not None:
            raise ConfigError(f"--device {device_name} names one GPU, but torchrun gives each rank its own",
                              hint="use --device cuda (rank r takes cuda:LOCAL_RANK) or auto")
        device = torch.device("cuda", dist.local_rank)
        resolve_device(str(device))
    return device


def shutdown() -> None:
    global _current
    if torch_dist.is_initialized():
        torch_dist.destroy_process_group()
    _current = Dist()


def wrap(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` in DistributedDataParallel when running under torchrun, else itself. Use the wrapper for
    forward passes whose loss is backpropagated (its backward averages the gradients over ranks) and the
    bare module for everything else (sampling, evaluation, checkpoints)."""
    if not _current.enabled:
        return module
    # A kernel with a dimension of size 1 (e.g. a 1-channel output layer) has two valid stride layouts;
    # its gradient may take the other one, which DDP reports although it costs nothing measurable.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    return nn.parallel.DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                               gradient_as_bucket_view=True)


def sum_over_ranks(values: torch.Tensor) -> torch.Tensor:
    if not _current.enabled:
        return values
    values = values.clone()
    torch_dist.all_reduce(values)
    return values


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    return sum_over_ranks(values) / _current.world_size


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any (e.g. one rank got Ctrl-C)."""
    if not _current.enabled:
        return flag
    value = torch.tensor([float(flag)], device=device)
    torch_dist.all_reduce(value, op=torch_dist.ReduceOp.MAX)
    return bool(value.item())


def from_main(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. the run directory rank 0 created)."""
    if not _current.enabled:
        return obj
    box = [obj]
    torch_dist.broadcast_object_list(box, src=0)
    return box[0]


def decorrelate(salt: int) -> None:
    """Give ranks other than 0 their own random streams (derived from ``salt`` and the rank), after a
    seed or a checkpoint made them all equal. Rank 0 keeps its stream, so a 1-process run is unchanged."""
    if _current.rank == 0:
        return
    seed = (salt * 1_000_003 + 7919 * _current.rank) % 2**63
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
