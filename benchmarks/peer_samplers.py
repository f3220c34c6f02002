"""genlab's Langevin sampler against a naive loop and the PyPI EBM libraries' samplers, on one energy.

    pip install -e '.[bench]'   # ebmkit 0.16 and torchebm 0.8.9 (optional: a peer that is missing is skipped)
    python benchmarks/peer_samplers.py [--repeats 3] [--steps 20] [--batch 64] [--width 64]

The energy is defined here, IGEBM-style (Du & Mordatch 2019): a 3x3 stem, 9 residual blocks (two 3x3
convolutions, SiLU) in three stages with 2x2 average pooling between them, no normalisation, a linear head;
width 64, batch 64, 3x32x32 images, 20 steps of x - 10 grad E + 0.005 noise clamped to [-1, 1]. Every
sampler runs from the same start; they are timed round-robin (each repeat times every sampler once, in turn)
so a busy moment of a shared machine hits all alike. Reported per sampler: the median ms per step, and its
ratio to the fastest peer library and to genlab fp32 eager.

Where a step's time goes: beside the samplers, the two network passes of a step alone (the energy's forward
and its input gradient at a fixed x, nothing else) are timed in the same rounds, at fp32 and at the auto
decision's precision and layout; the share of genlab's step spent outside them (the update, the noise, the
clamp, autograd's bookkeeping) is 1 - passes / step.

Also measured: the machine's matrix-multiply peak in fp32 and bf16 (a 2048^3 matmul), the FLOPs of one
sampler step (the energy's forward and input-gradient passes, counted by torch.utils.flop_counter), and the
sampler's achieved GFLOP/s as a fraction of the peak at its precision, and the network's own ceiling: the
GFLOP/s of its 3x3 convolutions alone at each stage's shape (what no sampler around them can exceed). JSON goes to
benchmarks/results/peer_samplers-<hostkind>.json.

Other host kinds on one machine: ``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16`` runs the convolutions as a host with
AVX-512 BF16 but no AMX would, ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2``
as an AVX2-only host (MKL: the matrix-multiply peak; the same cores, caches and clock, so the kernels'
instruction set is what differs); the host kind then ends in ``-onednn-<isa>`` (:func:`genlab.devices.host_kind`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from genlab.devices import cpu_model, host_kind, onednn_isa_limit
from genlab.sampling import SamplerConfig, frozen, langevin, precision, run_chain

STEP, NOISE = 10.0, 0.005


class Block(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class IGEBMEnergy(nn.Module):
    """9 residual blocks (3 stages of 3), SiLU, average pooling between stages, no normalisation."""

    def __init__(self, width: int = 64):
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.stages = nn.ModuleList(nn.Sequential(*(Block(width) for _ in range(3))) for _ in range(3))
        self.head = nn.Linear(width, 1)

    def forward(self, x):
        h = self.stem(x)
        for i, stage in enumerate(self.stages):
            h = stage(h)
            if i < 2:
                h = F.avg_pool2d(h, 2)
        return self.head(F.silu(h).mean((2, 3)))[:, 0]


def naive(energy, x0, steps):
    """The loop most code writes: parameters requiring grad, a new noise tensor per step."""
    x = x0.clone()
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(x).sum(), x)
        x = (x - STEP * grad + NOISE * torch.randn_like(x)).clamp(-1, 1)
    return x.detach()


def passes_only(model, x0, steps, dtype):
    """Each step's two network passes and nothing else: the forward and the input gradient at a fixed x, the
    forward under autocast at ``dtype`` as genlab's sampler runs it."""
    x = x0.clone().requires_grad_(True)
    with frozen(model):
        for _ in range(steps):
            with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                e = model(x).float()
            (grad,) = torch.autograd.grad(e.sum(), x)
    return grad


def peers(model, steps):
    """The peer libraries' Langevin samplers that are installed, as callables x0 -> end points."""
    found = {}
    try:
        from ebm.samplers import LangevinDynamics as EbmkitLangevin
        sampler = EbmkitLangevin(step_size=STEP, steps=steps, noise_scale=NOISE, clamp=(-1.0, 1.0))
        found["ebmkit 0.16"] = lambda x0: sampler.sample(model, x0)
    except ImportError:
        pass
    try:
        from torchebm.core import BaseModel
        from torchebm.samplers import LangevinDynamics as TorchebmLangevin

        class Wrapped(BaseModel):  # torchebm samples its own model class; this one shares the energy's weights
            def __init__(self):
                super().__init__()
                self.net = model

            def forward(self, x):
                return self.net(x)

        sampler_t = TorchebmLangevin(Wrapped(), step_size=STEP, noise_scale=NOISE, clamp=(-1.0, 1.0))
        found["torchebm 0.8.9"] = lambda x0: sampler_t.sample(x=x0, n_steps=steps)
    except ImportError:
        pass
    return found


def matmul_peak(dtype, n=2048, repeats=3) -> float:
    """GFLOP/s of an n x n x n matrix multiply (best of ``repeats``)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def conv_ceiling(width: int, batch: int, dtype, channels_last: bool, repeats: int = 3) -> float:
    """GFLOP/s of the energy's 3x3 convolutions alone (width -> width at 32x32, 16x16 and 8x8, the three
    stages' shapes), forward and input gradient, at ``dtype`` and layout: the most the sampler could reach
    with this network, whatever it does around the passes (best of ``repeats``)."""
    flops = seconds = 0.0
    conv = nn.Conv2d(width, width, 3, padding=1).requires_grad_(False)
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)
    for side in (32, 16, 8):
        x = torch.randn(batch, width, side, side)
        x = (x.contiguous(memory_format=torch.channels_last) if channels_last else x).requires_grad_(True)

        def passes():
            with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                y = conv(x).float()
            torch.autograd.grad(y.sum(), x)

        passes()
        seconds += min(_seconds(passes) for _ in range(repeats))
        flops += 2 * 2 * batch * width * width * 9 * side * side  # forward and input gradient, 2 FLOPs per MAC
    return flops / seconds / 1e9


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def step_flops(model, x0, dtype) -> int:
    """FLOPs of one sampler step: the energy's forward and its input-gradient pass."""
    x = x0.clone().requires_grad_(True)
    with frozen(model), FlopCounterMode(display=False) as counter:
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            e = model(x).float()
        e.sum().backward()  # the counter does not follow autograd.grad; parameters frozen: input gradient only
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = IGEBMEnergy(args.width)
    x0 = torch.rand(args.batch, 3, 32, 32) * 2 - 1
    cfg = SamplerConfig(steps=args.steps, step_size=STEP, noise=NOISE)
    # genlab's default: what sampler.precision=auto measures fastest here (cached per machine and network)
    run_chain(model, x0, cfg, steps=1, freeze=model)
    decision = precision.precision_summary(model)
    chosen = precision.Candidate.from_name(decision["chosen"])

    def genlab_auto(x):
        return run_chain(model, x, cfg, freeze=model).x

    def auto_passes(x):
        with precision.layout(model, chosen.channels_last):
            start = x.contiguous(memory_format=torch.channels_last) if chosen.channels_last else x
            return passes_only(model, start, args.steps, chosen.dtype)

    samplers = {"naive loop": lambda x: naive(model, x, args.steps),
                "genlab fp32 eager": lambda x: langevin(model, x, args.steps, STEP, NOISE, freeze=model).x,
                f"genlab auto ({decision['chosen']})": genlab_auto, **peers(model, args.steps),
                "network passes only, fp32": lambda x: passes_only(model, x, args.steps, None),
                "network passes only, auto": auto_passes}
    for fn in samplers.values():  # warm-up
        fn(x0)
    times = {name: [] for name in samplers}
    for r in range(args.repeats):
        for name, fn in samplers.items():
            torch.manual_seed(r)
            times[name].append(_seconds(lambda: fn(x0)) / args.steps)
    ms = {name: 1000 * statistics.median(ts) for name, ts in times.items()}
    peer_names = [n for n in ms if n.startswith(("ebmkit", "torchebm"))]
    fastest_peer = min((ms[n] for n in peer_names), default=None)
    auto_name = next(n for n in ms if n.startswith("genlab auto"))

    outside = {"fp32": 1 - ms["network passes only, fp32"] / ms["genlab fp32 eager"],
               "auto": 1 - ms["network passes only, auto"] / ms[auto_name]}
    print(f"share of a step outside the two network passes: fp32 {outside['fp32']:.1%}, auto {outside['auto']:.1%}")
    auto_precision = chosen.precision
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, auto_precision: chosen.dtype or torch.float32}
    peaks = {name: matmul_peak(dtype) for name, dtype in dtypes.items()}
    flops = {name: step_flops(model, x0, None if name == "fp32" else dtype) for name, dtype in dtypes.items()}
    ceilings = {"fp32": conv_ceiling(args.width, args.batch, None, False),
                auto_precision: conv_ceiling(args.width, args.batch, chosen.dtype, chosen.channels_last)}
    achieved = {"genlab fp32 eager": flops["fp32"] / (ms["genlab fp32 eager"] / 1000) / 1e9,
                auto_name: flops[auto_precision] / (ms[auto_name] / 1000) / 1e9}
    rows = {name: {"ms_per_step": round(v, 1), "vs_genlab_fp32": round(ms["genlab fp32 eager"] / v, 3),
                   "vs_fastest_peer": round(fastest_peer / v, 3) if fastest_peer else None}
            for name, v in ms.items()}
    for name, row in rows.items():
        print(f"{name:40s} {row['ms_per_step']:8.1f} ms/step   x{row['vs_genlab_fp32']:.2f} of genlab fp32"
              + (f"   x{row['vs_fastest_peer']:.2f} of the fastest peer" if fastest_peer else ""))
    print(f"matmul peak: {', '.join(f'{n} {g:.0f}' for n, g in peaks.items())} GFLOP/s; one step "
          f"{flops['fp32'] / 1e9:.2f} GFLOP")
    for name, g in achieved.items():
        p = "fp32" if name == "genlab fp32 eager" else auto_precision
        print(f"{name}: {g:.0f} GFLOP/s = {g / peaks[p]:.0%} of the {p} matmul peak; its 3x3 convolutions alone "
              f"reach {ceilings[p]:.0f} GFLOP/s ({ceilings[p] / peaks[p]:.0%} of the peak), the sampler "
              f"{g / ceilings[p]:.0%} of that")
    kind = host_kind()
    out = Path(args.out or Path(__file__).parent / "results" / f"peer_samplers-{kind}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "host_kind": kind, "cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "avx512_bf16": torch.cpu._is_avx512_bf16_supported(), "amx": torch.cpu._is_amx_tile_supported(),
        "onednn_isa_limit": onednn_isa_limit(),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "config": vars(args),
        "auto_decision": decision, "ms_per_step": rows, "matmul_peak_gflops": peaks, "step_flops": flops,
        "achieved_gflops": achieved, "conv_ceiling_gflops": ceilings, "share_outside_network_passes": outside,
        "achieved_share_of_peak": {n: g / peaks["fp32" if n == "genlab fp32 eager" else auto_precision]
                                   for n, g in achieved.items()}}, indent=2) + "\n")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
