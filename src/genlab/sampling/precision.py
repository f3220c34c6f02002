"""The sampler's precision and memory layout chosen by measurement (``sampler.precision=auto``).

Hosts of one nominal size differ: a CPU with AVX-512 BF16 but no AMX runs bf16 convolutions slower than
float32, one with AMX runs them faster, and channels-last pays on some and not on others. No CPU flag says
which, so ``auto`` measures. The first time a (machine, torch version, energy network, batch shape) is
sampled, every candidate the device admits is timed:

* precision: float32; bf16 autocast (the energy's passes in bf16, the chain itself float32) where the
  device runs bf16 at all (every CPU; CUDA GPUs with ``torch.cuda.is_bf16_supported()``); fp16 autocast on
  CUDA GPUs and on CPUs with half-precision arithmetic (AVX512-FP16 or AMX-FP16: elsewhere a CPU converts
  fp16 to float32 for every operation, which can only lose);
* layout: the network's weights and the chain channels-last or contiguous, switched for the chain and
  restored after it (the same numbers up to float rounding), where the energy is a plain module.

``torch.compile`` is not a candidate: compiling a ResNet energy's forward and input-gradient passes takes a
minute or more on a small CPU, for each batch shape, far more than the measurement may cost;
``train.compile`` remains the lever for long runs.

How the winner is picked (:func:`decide`):

0. Screen. One step of each candidate is timed after a warm-up step; a candidate more than :data:`SCREEN`
   (2x) slower than the baseline cannot win and is measured no further (bf16 on an AVX2-only CPU runs 7-20x
   slower than float32: its agreement chain would cost many minutes for nothing).
1. Agreement. Every candidate runs the configured chain (``cfg.steps`` steps) from the same start and the
   same random seed as float32 in the network's own layout (the baseline). Its deviation is the mean
   absolute difference of the end points divided by the mean absolute distance the baseline chains
   moved; a candidate agrees when that is at most :data:`TOLERANCE` (0.05: the chains end within a
   twentieth of how far they travelled; bf16 autocast on the quick presets' networks deviates by about
   0.005, a candidate with broken numerics by far more).
2. Speed. Then ``repeats`` rounds time ``steps`` chain steps of each candidate in turn (round-robin, so a
   busy moment of a shared machine hits all alike). A candidate's speed-up is the median over rounds of
   baseline time / its time, within the round.
3. The agreeing candidate with the largest speed-up wins if that is at least 1 + :data:`MARGIN` (5%);
   otherwise the baseline stays. ``auto`` is thus never slower than float32 eager beyond noise.

The decision is cached as JSON in ``$GENLAB_CACHE_DIR/sampler_precision.json`` under a key made of the
machine (CPU model, torch's CPU capability and any oneDNN instruction-set limit, or the GPU's name), the
torch version and the network's signature (its class, parameter shapes and layout, the input's shape and
dtype). ``--set sampler.precision=fp32|bf16`` bypasses it; ``genlab speed show`` lists the cache and
``genlab speed measure`` re-measures.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import statistics
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from genlab.data.files import cache_dir
from genlab.devices import cpu_flags, cpu_model, onednn_isa_limit

TOLERANCE = 0.05
MARGIN = 0.05
SCREEN = 2.0
CACHE_FILE = "sampler_precision.json"


@dataclass(frozen=True)
class Candidate:
    precision: str  # fp32 | bf16 | fp16
    channels_last: bool

    @property
    def name(self) -> str:
        return f"{self.precision}/{'channels_last' if self.channels_last else 'contiguous'}"

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype of the energy's passes (None: float32)."""
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    @classmethod
    def from_name(cls, name: str) -> "Candidate":
        precision, layout = name.split("/")
        return cls(precision, layout == "channels_last")


@dataclass
class Decision:
    """What the sampler runs: the chosen candidate, how it was found (``measured``: per candidate its
    speed-up over the baseline, its deviation and whether it agrees, or for one screened out the speed-up of
    its one timed step), and whether it came from the cache."""

    chosen: str
    measured: dict[str, dict[str, Any]] = field(default_factory=dict)
    cached: bool = False
    source: str = "measured"  # measured | config | no network

    @property
    def candidate(self) -> Candidate:
        return Candidate.from_name(self.chosen)

    def as_summary(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "measured": self.measured, "cached": self.cached, "source": self.source,
                "description": self.describe()}

    def describe(self) -> str:
        """One line for reports: the choice, how it was made, and each candidate's speed-up."""
        how = {"config": "set by sampler.precision", "no network": "no network to measure"}.get(
            self.source, "measured earlier on this machine (cached)" if self.cached else "measured in this run")
        speeds = ", ".join(f"{name} {m['speedup']:.2f}x" + (" (one step: screened out)" if m.get("screened_out")
                                                             else "" if m["agrees"] else " (disagrees)")
                           for name, m in self.measured.items())
        return f"{self.chosen}: {how}" + (f"; speed-up over fp32 eager: {speeds}" if speeds else "")


def is_channels_last(module: nn.Module) -> bool:
    """Whether the module's 4-d weights are held channels-last (decided by the first that can tell)."""
    for p in module.parameters():
        if p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) != p.is_contiguous():
            return not p.is_contiguous()
    return False


def bf16_admitted(device: torch.device) -> bool:
    """Whether the device runs bf16 autocast at all (fast or not is for the measurement to say)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu"


def fp16_admitted(device: torch.device) -> bool:
    """Whether fp16 autocast is worth measuring: on CUDA, and on CPUs with half-precision arithmetic."""
    if device.type == "cuda":
        return True
    return device.type == "cpu" and (torch.cpu._is_amx_fp16_supported() or "avx512_fp16" in cpu_flags())


def candidates(device: torch.device, module: nn.Module | None, x: torch.Tensor,
               switch_layout: bool = True) -> list[Candidate]:
    """The candidates this device and network admit; the first is the baseline (float32, the module's own
    layout). The layout is a candidate for 4-d input unless ``switch_layout`` is False (a compiled energy
    would recompile for each layout)."""
    own = is_channels_last(module) if module is not None else False
    layouts = [own]
    if switch_layout and module is not None and x.dim() == 4:
        layouts.append(not own)
    precisions = ["fp32"] + ["bf16"] * bf16_admitted(device) + ["fp16"] * fp16_admitted(device)
    return [Candidate(p, layout) for p in precisions for layout in layouts]


def decide(speedups: dict[str, float], deviations: dict[str, float], baseline: str,
           tolerance: float = TOLERANCE, margin: float = MARGIN) -> str:
    """The agreeing candidate with the largest speed-up over ``baseline`` if that is at least 1 + margin,
    else the baseline."""
    agreeing = {name: s for name, s in speedups.items() if name != baseline and deviations[name] <= tolerance}
    if not agreeing:
        return baseline
    best = max(agreeing, key=agreeing.get)
    return best if agreeing[best] >= 1 + margin else baseline


def deviation(x: torch.Tensor, reference: torch.Tensor, start: torch.Tensor) -> float:
    """Mean |x - reference| over the mean distance the reference chains moved from ``start``."""
    moved = (reference - start).abs().mean()
    return float((x - reference).abs().mean() / moved.clamp_min(1e-12))


def measure(run: Callable[[Candidate, int], torch.Tensor], x0: torch.Tensor, options: list[Candidate],
            chain_steps: int, *, steps: int = 3, repeats: int = 3,
            timer: Callable[[], float] = time.perf_counter) -> Decision:
    """Measure ``options`` (the first is the baseline) with ``run(candidate, steps) -> end points`` and
    decide. The global random state is the same afterwards as before."""
    baseline = options[0].name
    devices = [x0.device.index or 0] if x0.device.type == "cuda" else []

    def timed(c: Candidate, n: int) -> float:
        _synchronize(x0.device)
        start = timer()
        run(c, n)
        _synchronize(x0.device)
        return timer() - start

    with torch.random.fork_rng(devices=devices):
        first = {}
        for c in options:
            torch.manual_seed(0)
            run(c, 1)  # warm-up
            first[c.name] = timed(c, 1)
        screened_out = {c.name for c in options[1:] if first[c.name] > SCREEN * first[baseline]}
        kept = [c for c in options if c.name not in screened_out]
        ends = {}
        for c in kept:
            torch.manual_seed(0)
            ends[c.name] = run(c, chain_steps)
        deviations = {name: deviation(x, ends[baseline], x0) for name, x in ends.items()}
        times: dict[str, list[float]] = {c.name: [] for c in kept}
        for _ in range(repeats):
            for c in kept:
                times[c.name].append(timed(c, steps))
    speedups = {name: statistics.median(b / max(t, 1e-12) for b, t in zip(times[baseline], ts))
                for name, ts in times.items()}
    chosen = decide(speedups, deviations, baseline)
    measured = {name: {"speedup": round(speedups[name], 3), "deviation": round(deviations[name], 4),
                       "agrees": deviations[name] <= TOLERANCE,
                       "ms_per_step": round(1000 * statistics.median(times[name]) / steps, 2)} for name in times}
    for name in screened_out:  # one step's time is all that was measured
        measured[name] = {"speedup": round(first[baseline] / max(first[name], 1e-12), 3), "deviation": None,
                          "agrees": None, "screened_out": True, "ms_per_step": round(1000 * first[name], 2)}
    return Decision(chosen, measured)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def buffers_kept(module: nn.Module) -> Iterator[None]:
    """The module's buffers as they were before the block. The measurement's chains run the network in its
    training mode, which moves state: spectral norm's power-iteration vectors, batch norm's running
    statistics. Without this, a run that measures would end with other numbers than one that reads the
    decision from the cache."""
    saved = [(buffer, buffer.detach().clone()) for buffer in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


# --- layout switched for the duration of a chain ---------------------------------------------------------

@contextlib.contextmanager
def layout(module: nn.Module | None, channels_last: bool) -> Iterator[None]:
    """The module's weights in the given layout for the duration (restored after; values unchanged)."""
    if module is None or is_channels_last(module) == channels_last:
        yield
        return
    own = torch.channels_last if is_channels_last(module) else torch.contiguous_format
    module.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    try:
        yield
    finally:
        module.to(memory_format=own)


# --- the cache ---------------------------------------------------------------------------------------------

def machine_key(device: torch.device) -> dict[str, str]:
    """The machine as far as speed goes: the GPU's name, or the CPU model, torch's CPU capability and the
    instruction set oneDNN is limited to, if any (a limited host runs as a smaller one would)."""
    if device.type == "cuda":
        return {"device": torch.cuda.get_device_name(device), "torch": torch.__version__}
    limit = onednn_isa_limit()
    kind = torch.backends.cpu.get_cpu_capability() + (f", oneDNN {limit}" if limit else "")
    return {"device": f"{cpu_model()} ({kind})", "torch": torch.__version__}


def network_signature(module: nn.Module, x: torch.Tensor, labelled: bool, switch_layout: bool = True) -> str:
    """A hash of the network's class, parameter shapes and layout, the input's shape and dtype, whether
    labels are passed and whether layouts are candidates."""
    parts = [type(module).__module__ + "." + type(module).__qualname__,
             *(f"{name}:{tuple(p.shape)}" for name, p in module.named_parameters()),
             f"channels_last={is_channels_last(module)}", f"input={tuple(x.shape)}:{x.dtype}", f"labels={labelled}",
             f"layouts={switch_layout}"]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cache_key(device: torch.device, signature: str) -> str:
    machine = machine_key(device)
    return f"{machine['device']} | torch {machine['torch']} | {device.type} | {signature}"


def cache_path() -> Path:
    return cache_dir() / CACHE_FILE


def read_cache() -> dict[str, dict[str, Any]]:
    path = cache_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}  # an unreadable cache is measured afresh and rewritten


def write_cache(key: str, decision: Decision, facts: dict[str, Any]) -> None:
    entries = read_cache()
    entries[key] = {"chosen": decision.chosen, "measured": decision.measured, **facts,
                    "measured_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
    tmp.replace(path)


# --- the choice the sampler asks for ------------------------------------------------------------------------

_decided: dict[tuple[str, str], Decision] = {}
_first: "weakref.WeakKeyDictionary[nn.Module, Decision]" = weakref.WeakKeyDictionary()


def choose(precision: str, module: nn.Module | None, x0: torch.Tensor, labelled: bool,
           run: Callable[[Candidate, int], torch.Tensor], chain_steps: int, *, switch_layout: bool = True,
           remeasure: bool = False) -> Decision:
    """The decision for a chain from ``x0`` on ``module``: the configured precision in the module's own
    layout, or for ``auto`` the cached or freshly measured one (see the module docstring). ``run(candidate,
    steps)`` runs the chain from ``x0`` and returns its end points."""
    decision = _choose(precision, module, x0, labelled, run, chain_steps, switch_layout, remeasure)
    if module is not None and module not in _first:
        _first[module] = decision
    return decision


def _choose(precision: str, module: nn.Module | None, x0: torch.Tensor, labelled: bool,
            run: Callable[[Candidate, int], torch.Tensor], chain_steps: int, switch_layout: bool,
            remeasure: bool) -> Decision:
    own = is_channels_last(module) if module is not None else False
    if precision != "auto":
        return Decision(Candidate(precision, own).name, source="config")
    if module is None:
        return Decision(Candidate("fp32", own).name, source="no network")
    signature = network_signature(module, x0, labelled, switch_layout)
    key = cache_key(x0.device, signature)
    memo = (str(cache_path()), key)
    if not remeasure:
        if memo in _decided:
            return _decided[memo]
        stored = read_cache().get(key)
        if stored is not None:
            _decided[memo] = Decision(stored["chosen"], stored.get("measured", {}), cached=True)
            return _decided[memo]
    with buffers_kept(module):
        decision = measure(run, x0, candidates(x0.device, module, x0, switch_layout), chain_steps)
    write_cache(key, decision, {**machine_key(x0.device), "network": type(module).__qualname__,
                                "signature": signature, "input": list(x0.shape)})
    _decided[memo] = decision
    return decision


def precision_summary(module: nn.Module) -> dict[str, Any] | None:
    """The decision of the first chain this process sampled on ``module`` (a run's training chains), or the
    one :func:`restore_summary` brought back from a checkpoint, as a run's summary records it (None if
    neither)."""
    decision = _first.get(module)
    return decision.as_summary() if decision is not None else None


def restore_summary(module: nn.Module, summary: dict[str, Any] | None) -> None:
    """Take a checkpoint's ``precision_summary`` as the first decision on ``module``, so that a run resumed
    with no chain left to sample (killed in its final evaluation) still reports what its chains ran."""
    if summary is not None and module not in _first:
        _first[module] = Decision(summary["chosen"], summary["measured"], summary["cached"], summary["source"])
