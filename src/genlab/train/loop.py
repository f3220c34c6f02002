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
from tqdm import tqdm

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
    budget ran out). ``on_log(step, split, values)`` receives
    every logged record (used for TensorBoard).
    """
    acc = MeanAccumulator()
    main, multi = distributed.current().is_main, distributed.current().enabled

    def save(step: int, state: dict[str, Any]) -> None:
        if main:
            store.save(step, state)

    state = store.latest(meta, map_location=device)
    if state is None:
        step, wall, rollbacks, finished = 0, 0.0, 0, False
        save(0, _checkpoint(meta, 0, trainer, acc, 0.0, 0, False))
    else:
        step, wall, rollbacks, finished = _restore(state, trainer, acc, device)
        run.truncate_metrics(step)
        run.append_metrics({"step": step, "event": "resumed"})
    session_start = time.perf_counter() - wall

    timing = {"step_seconds": 0.0, "steps": 0}  # time spent in train_step since the last log

    def log(split: str, values: dict[str, Any]) -> None:
        record = {"step": step, "split": split, **values, "wall_s": round(time.perf_counter() - session_start, 3)}
        if split == "train" and timing["steps"]:
            record["step_s"] = timing["step_seconds"] / timing["steps"]
            timing.update(step_seconds=0.0, steps=0)
        run.append_metrics(record)
        if on_log:
            on_log(step, split, values)

    with _StopRequest() as stop, tqdm(total=schedule.total_steps, initial=step, desc=desc, disable=not progress,
                                      dynamic_ncols=True, mininterval=1.0, file=sys.stderr) as bar:
        while step < schedule.total_steps and not finished:
            started = time.perf_counter()
            acc.add(trainer.train_step(step))
            timing["step_seconds"] += time.perf_counter() - started
            timing["steps"] += 1
            step += 1
            bar.update(1)
            last = step == schedule.total_steps
            if step % schedule.log_every == 0 or last:
                values = acc.pop()
                problem = guard.problem(values)
                if problem:
                    rollbacks += 1
                    step = _handle_divergence(run, trainer, guard, store, meta, acc, device, step, problem,
                                              rollbacks)
                    bar.reset(total=schedule.total_steps)
                    bar.update(step)
                    continue
                log("train", values)
                bar.set_postfix({k: f"{v:.4g}" for k, v in list(values.items())[:4]}, refresh=False)
                spent = schedule.time_budget_s and time.perf_counter() - session_start >= schedule.time_budget_s
                if distributed.any_rank(bool(spent), device):
                    last = finished = True
                    run.append_metrics({"step": step, "event": "time budget spent",
                                        "budget_s": schedule.time_budget_s})
            if (schedule.eval_every and step % schedule.eval_every == 0) or last:
                log("eval", trainer.evaluate(step))
            # Under torchrun the ranks agree on Ctrl-C at log steps only, where they synchronise anyway
            # (agreeing every step would cost a host sync per step).
            at_log = step % schedule.log_every == 0 or last
            stopping = distributed.any_rank(stop.requested, device) if at_log or not multi else False
            if step % schedule.checkpoint_every == 0 or last or stopping:
                wall = time.perf_counter() - session_start
                save(step, _checkpoint(meta, step, trainer, acc, wall, rollbacks, finished))
            if stopping:
                raise RunInterrupted(f"stopped at step {step} of {schedule.total_steps}; a checkpoint was saved "
                                     f"in {store.folder}", hint=f"continue with `genlab resume {run.path}`")
    return {"wall_time_s": time.perf_counter() - session_start, "rollbacks": rollbacks, "steps": step}


def _checkpoint(meta, step, trainer, acc, wall, rollbacks, finished) -> dict[str, Any]:
    return {"meta": {**meta, "step": step}, "trainer": trainer.state_dict(),
            "loop": {"step": step, "pending": acc.state_dict(), "wall_s": wall, "rollbacks": rollbacks,
                     "finished": finished},
            "rng": capture_rng()}


def _restore(state, trainer, acc, device) -> tuple[int, float, int, bool]:
    trainer.load_state_dict(state["trainer"])
    acc.load_state_dict(state["loop"]["pending"], device)
    restore_rng(state["rng"])
    loop = state["loop"]
    distributed.decorrelate(loop["step"])
    return loop["step"], loop["wall_s"], loop["rollbacks"], loop["finished"]


def _handle_divergence(run, trainer, guard, store, meta, acc, device, step, problem, rollbacks) -> int:
    if guard.config.policy == "stop" or rollbacks > guard.config.max_rollbacks:
        run.append_metrics({"step": step, "event": "divergence", "problem": problem, "policy": guard.config.policy})
        why = "the policy is to stop" if guard.config.policy == "stop" else \
            f"{guard.config.max_rollbacks} rollbacks were already spent"
        raise DivergenceError(f"training diverged at step {step}: {problem}; {why}. Checkpoints up to the last "
                              f"good step are kept in {store.folder}",
                              hint="lower the learning rate or step size, or set guard.policy=rollback")
    state = store.latest(meta, map_location=device)
    back_to, _, _, _ = _restore(state, trainer, acc, device)
    change = trainer.soften(rollbacks)
    run.truncate_metrics(back_to)
    run.append_metrics({"step": back_to, "event": "rollback", "problem": problem, "from_step": step,
                        "attempt": rollbacks, "change": change})
    tqdm.write(f"diverged at step {step} ({problem}); rolled back to step {back_to}: {change}", file=sys.stderr)
    return back_to



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
