"""The shared training loop: steps, logging, evaluation, checkpoints, progress, guard, Ctrl-C.

A trainer supplies ``train_step(step) -> dict of scalar tensors`` (detached; read on the host only at
log steps), ``evaluate(step) -> dict of floats``, ``state_dict()``/``load_state_dict()``,
``soften(attempt) -> str`` (what it changed after a rollback, e.g. a smaller step size) and
``distribute(device)`` (wrap its models for data parallelism; a no-op outside torchrun). Everything that
makes a resumed run equal an uninterrupted one lives here: the step counter, the metric sums pending
between log steps, the wall time and every random state go into each checkpoint.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from genlab import distributed
from genlab.config import param
from genlab.errors import ConfigError, DivergenceError, GenlabError
from genlab.train.checkpoint import CheckpointStore, capture_rng, restore_rng
from genlab.train.guard import DivergenceGuard
from genlab.train.run_dir import RunDir


class Trainer(Protocol):
    def train_step(self, step: int) -> dict[str, torch.Tensor]: ...
    def evaluate(self, step: int) -> dict[str, float]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...
    def soften(self, attempt: int) -> str: ...
    def distribute(self, device: torch.device) -> None: ...


TIMING_KEYS = ("wall_s", "step_s")  # logged times: they differ between otherwise identical runs


def divergence_events(records: list[dict[str, Any]]) -> int:
    """How many times the divergence guard stepped in (a rollback, or the divergence that stopped the run)
    in a run's metrics records."""
    return sum(1 for r in records if r.get("event") in ("rollback", "divergence"))


class RunInterrupted(GenlabError):
    """Ctrl-C: the run stopped cleanly after a checkpoint."""


@dataclass(frozen=True)
class Schedule:
    total_steps: int
    log_every: int
    checkpoint_every: int
    eval_every: int = 0  # 0: evaluate only at the end
    time_budget_s: float = 0.0  # > 0: stop at the first log step after this much training time


class MeanAccumulator:
    """Sums of per-step metric tensors, turned into means with one host sync at log steps."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        for key, value in metrics.items():
            value = value.detach().double()
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.count += 1

    def pop(self) -> dict[str, float]:
        """Means since the last pop (and over all ranks under torchrun, so that every rank's divergence
        guard sees the same numbers)."""
        if not self.sums:
            return {}
        keys = list(self.sums)
        means = distributed.mean_over_ranks(torch.stack([self.sums[k] for k in keys]) / self.count).tolist()
        self.sums, self.count = {}, 0
        return dict(zip(keys, means))

    def state_dict(self) -> dict[str, Any]:
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "count": self.count}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.sums = {k: v.to(device) for k, v in state["sums"].items()}
        self.count = state["count"]


class _StopRequest:
    """First Ctrl-C (or SIGTERM: `kill`, `timeout`, a job scheduler) asks the loop to checkpoint and stop
    after the current step; a second one aborts."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        tqdm.write("stopping after this step (Ctrl-C again to abort without a checkpoint)", file=sys.stderr)

    def __enter__(self):
        try:
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        except ValueError:  # not the main thread
            self._previous = {}
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def run_loop(run: RunDir, trainer: Trainer, schedule: Schedule, guard: DivergenceGuard, store: CheckpointStore,
             meta: dict[str, Any], device: torch.device, progress: bool = True, desc: str = "train",
             on_log=None) -> dict[str, Any]:
    """Train to ``schedule.total_steps`` from the newest checkpoint (or from scratch).

    Returns loop facts for the summary: wall time, rollbacks, steps done (fewer than planned when a time
    budget ran out). ``on_log(step, split, values)`` receives every logged record (used for TensorBoard).
    """
    pending, multi = MeanAccumulator(), distributed.current().enabled
    checkpoints = LoopCheckpoints(store, meta, trainer, pending, device)
    loop = checkpoints.resume()
    if loop is None:
        loop = LoopState()
        checkpoints.save(loop)
    else:
        run.truncate_metrics(loop.step)
        run.append_metrics({"step": loop.step, "event": "resumed"})
    loop.start_clock()

    with _StopRequest() as stop, tqdm(total=schedule.total_steps, initial=loop.step, desc=desc, disable=not progress,
                                      dynamic_ncols=True, mininterval=1.0, file=sys.stderr) as bar:
        while loop.step < schedule.total_steps and not loop.finished:
            started = time.perf_counter()
            pending.add(trainer.train_step(loop.step))
            loop.time_step(time.perf_counter() - started)
            bar.update(1)
            last = loop.step == schedule.total_steps
            at_log = loop.step % schedule.log_every == 0 or last
            if at_log:
                values = pending.pop()
                problem = guard.problem(values)
                if problem:
                    _handle_divergence(loop, problem, run, guard, checkpoints)
                    bar.reset(total=schedule.total_steps)
                    bar.update(loop.step)
                    continue
                _log(run, loop, "train", values, on_log)
                bar.set_postfix({k: f"{v:.4g}" for k, v in list(values.items())[:4]}, refresh=False)
                spent = schedule.time_budget_s and loop.wall_s() >= schedule.time_budget_s
                if distributed.any_rank(bool(spent), device):
                    last = loop.finished = True
                    run.append_metrics({"step": loop.step, "event": "time budget spent",
                                        "budget_s": schedule.time_budget_s})
            if (schedule.eval_every and loop.step % schedule.eval_every == 0) or last:
                _log(run, loop, "eval", trainer.evaluate(loop.step), on_log)
            # Under torchrun the ranks agree on Ctrl-C at log steps only, where they synchronise anyway
            # (agreeing every step would cost a host sync per step).
            stopping = (at_log or not multi) and distributed.any_rank(stop.requested, device)
            if loop.step % schedule.checkpoint_every == 0 or last or stopping:
                checkpoints.save(loop)
            if stopping:
                raise RunInterrupted(f"stopped at step {loop.step} of {schedule.total_steps}; a checkpoint was "
                                     f"saved in {store.folder}", hint=f"continue with `genlab resume {run.path}`")
    return {"wall_time_s": loop.wall_s(), "rollbacks": loop.rollbacks, "steps": loop.step}


@dataclass
class LoopState:
    """Where the loop stands. Its step, rollbacks, finished flag and wall time go into every checkpoint; the
    step timing (time spent in ``train_step`` since the last train log) does not."""

    step: int = 0
    rollbacks: int = 0
    finished: bool = False  # a time budget ran out: the run is done before total_steps
    saved_wall_s: float = 0.0  # training time of the sessions before this one
    clock_start: float | None = None  # perf_counter() reading at which the run's training time was 0
    step_seconds: float = 0.0
    steps_timed: int = 0

    def start_clock(self) -> None:
        self.clock_start = time.perf_counter() - self.saved_wall_s

    def wall_s(self) -> float:
        """Training time so far, this session's and the earlier ones'."""
        return self.saved_wall_s if self.clock_start is None else time.perf_counter() - self.clock_start

    def time_step(self, seconds: float) -> None:
        """One more step done, which took ``seconds`` of training."""
        self.step += 1
        self.step_seconds += seconds
        self.steps_timed += 1

    def pop_step_time(self) -> float | None:
        """Mean seconds per step since the last call (None when no step was timed)."""
        if not self.steps_timed:
            return None
        mean = self.step_seconds / self.steps_timed
        self.step_seconds, self.steps_timed = 0.0, 0
        return mean


class LoopCheckpoints:
    """What one checkpoint holds (trainer, pending metric sums, loop state, random states) and getting it back.
    Only rank 0 writes; every rank reads."""

    def __init__(self, store: CheckpointStore, meta: dict[str, Any], trainer: Trainer, pending: MeanAccumulator,
                 device: torch.device):
        self.store, self.meta, self.trainer, self.pending, self.device = store, meta, trainer, pending, device

    def save(self, loop: LoopState) -> None:
        if not distributed.current().is_main:
            return
        self.store.save(loop.step, {
            "meta": {**self.meta, "step": loop.step}, "trainer": self.trainer.state_dict(),
            "loop": {"step": loop.step, "pending": self.pending.state_dict(), "wall_s": loop.wall_s(),
                     "rollbacks": loop.rollbacks, "finished": loop.finished},
            "rng": capture_rng()})

    def resume(self) -> LoopState | None:
        """Trainer, pending sums and random states restored from the newest checkpoint, and its loop state
        (None when there is no checkpoint)."""
        state = self.store.latest(self.meta, map_location=self.device)
        if state is None:
            return None
        self.trainer.load_state_dict(state["trainer"])
        self.pending.load_state_dict(state["loop"]["pending"], self.device)
        restore_rng(state["rng"])
        loop = state["loop"]
        distributed.decorrelate(loop["step"])
        return LoopState(loop["step"], loop["rollbacks"], loop["finished"], saved_wall_s=loop["wall_s"])


def _log(run: RunDir, loop: LoopState, split: str, values: dict[str, Any], on_log) -> None:
    record = {"step": loop.step, "split": split, **values, "wall_s": round(loop.wall_s(), 3)}
    if split == "train":
        step_s = loop.pop_step_time()
        if step_s is not None:
            record["step_s"] = step_s
    run.append_metrics(record)
    if on_log:
        on_log(loop.step, split, values)


def _handle_divergence(loop: LoopState, problem: str, run: RunDir, guard: DivergenceGuard,
                       checkpoints: LoopCheckpoints) -> None:
    """Stop with a DivergenceError, or roll the trainer and ``loop.step`` back to the newest checkpoint and
    soften the trainer (the rollback count and the clock run on)."""
    loop.rollbacks += 1
    policy = guard.config.policy
    if policy == "stop" or loop.rollbacks > guard.config.max_rollbacks:
        run.append_metrics({"step": loop.step, "event": "divergence", "problem": problem, "policy": policy})
        why = "the policy is to stop" if policy == "stop" else \
            f"{guard.config.max_rollbacks} rollbacks were already spent"
        raise DivergenceError(f"training diverged at step {loop.step}: {problem}; {why}. Checkpoints up to the last "
                              f"good step are kept in {checkpoints.store.folder}",
                              hint="lower the learning rate or step size, or set guard.policy=rollback")
    diverged_at = loop.step
    loop.step = checkpoints.resume().step
    change = checkpoints.trainer.soften(loop.rollbacks)
    run.truncate_metrics(loop.step)
    run.append_metrics({"step": loop.step, "event": "rollback", "problem": problem, "from_step": diverged_at,
                        "attempt": loop.rollbacks, "change": change})
    tqdm.write(f"diverged at step {diverged_at} ({problem}); rolled back to step {loop.step}: {change}",
               file=sys.stderr)


@dataclass
class LogConfig:
    every: int = param(50, "log the mean of the train metrics every this many steps", ge=1)
    eval_every: int = param(0, "evaluate every this many steps (0: only at the end)", ge=0)
    checkpoint_every: int = param(500, "write a checkpoint every this many steps (a multiple of log.every)", ge=1)
    keep_checkpoints: int = param(3, "checkpoints kept (older ones are deleted)", ge=1)
    tensorboard: bool = param(False, "also write TensorBoard scalars and images (needs the tensorboard package)")

    def check(self) -> None:
        if self.checkpoint_every % self.every:
            raise ConfigError(f"log.checkpoint_every ({self.checkpoint_every}) must be a multiple of log.every "
                              f"({self.every}) so that every checkpoint follows a divergence check",
                              hint="e.g. --set log.checkpoint_every=" + str(self.every * 10))

    def schedule(self, total_steps: int, time_budget_s: float = 0.0) -> Schedule:
        return Schedule(total_steps, self.every, self.checkpoint_every, self.eval_every, time_budget_s)
