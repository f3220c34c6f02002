"""Device selection with clear errors for devices this machine does not have."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from genlab.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device '{name}'", hint="use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device '{name}' was asked for but CUDA is not available on this machine",
                              hint="use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device '{name}' does not exist: this machine has {torch.cuda.device_count()} "
                              "CUDA device(s)", hint="use cuda:0 .. cuda:N-1, or auto")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(f"device '{name}' was asked for but MPS is not available", hint="use --device cpu")
    elif device.type != "cpu":
        raise ConfigError(f"device type '{device.type}' is not supported", hint="use auto, cpu, cuda, cuda:N or mps")
    return device


def has_native_bf16(device: torch.device) -> bool:
    """Whether this device has bfloat16 instructions (CUDA GPUs that support it; CPUs with AVX-512 BF16 or
    AMX). A fact recorded with each run, not a promise of speed: a CPU with AVX-512 BF16 but no AMX runs bf16
    convolutions slower than float32, which is why ``sampler.precision=auto`` measures instead
    (:mod:`genlab.sampling.precision`)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        probes = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
        return any(probe() for probe in probes if probe is not None)
    return False


def _cpuinfo(field: str) -> str | None:
    """The value of the first ``field`` line of /proc/cpuinfo ("" without one; None where the file is unreadable)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(field)), "")


def cpu_flags() -> set[str]:
    """The CPU's feature flags (from /proc/cpuinfo where there is one; empty elsewhere)."""
    return set((_cpuinfo("flags") or "").split())


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    model = _cpuinfo("model name")
    return model if model is not None else platform.processor()


ISA_LIMIT_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


def onednn_isa_limit() -> str | None:
    """The instruction set the environment limits oneDNN to (torch's CPU library for convolutions and matrix
    products), upper case, or None where it is not limited. With ``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16`` a host
    with AMX runs its convolutions as one without AMX would (bf16 then loses to float32), and with ``AVX2`` (and
    ``ATEN_CPU_CAPABILITY=avx2`` for torch's own kernels) as an AVX2-only host: the CPU flags stay those of the
    machine, so this is part of what the machine is as far as speed goes."""
    for variable in ISA_LIMIT_VARIABLES:
        value = os.environ.get(variable, "").strip().upper()
        if value and value != "ALL":
            return value
    return None


def host_kind() -> str:
    """The host as the speed figures name it: torch's CPU capability, ``-bf16`` with AVX-512 BF16, ``-amx`` or
    ``-noamx``, and ``-onednn-<isa>`` where oneDNN is limited to a smaller instruction set
    (:func:`onednn_isa_limit`), e.g. ``avx512-bf16-amx`` or ``avx2-bf16-amx-onednn-avx2``."""
    amx = torch.cpu._is_amx_tile_supported()
    bf16 = torch.cpu._is_avx512_bf16_supported()
    limit = onednn_isa_limit()
    return (f"{torch.backends.cpu.get_cpu_capability().lower()}{'-bf16' if bf16 else ''}{'-amx' if amx else '-noamx'}"
            + (f"-onednn-{limit.lower()}" if limit else ""))
