import os
import signal
import time

import pytest
import torch

from genlab.errors import DivergenceError
from genlab.train.checkpoint import CheckpointStore
from genlab.train.guard import DivergenceGuard, GuardConfig
from genlab.train.loop import TIMING_KEYS, RunInterrupted, Schedule, run_loop
from genlab.train.run_dir import RunDir

META = {"experiment": "toy", "config_hash": "h"}
SCHEDULE = Schedule(total_steps=40, log_every=5, checkpoint_every=10, eval_every=20)


class Crash(Exception):
    pass


class ToyTrainer:
    """Noisy SGD on a linear regression; draws from the global RNG every step like real trainers do."""

    def __init__(self, crash_at=None, nan_from=None, signal_at=None, signum=signal.SIGINT):
        g = torch.Generator().manual_seed(0)
        self.x, self.w_true = torch.randn(64, 3, generator=g), torch.tensor([1.0, -2.0, 0.5])
        self.w = torch.zeros(3)
        self.lr_scale = 1.0
        self.crash_at, self.nan_from, self.signal_at, self.signum = crash_at, nan_from, signal_at, signum

    def train_step(self, step):
        if step == self.crash_at:
            raise Crash
        if step == self.signal_at:
            os.kill(os.getpid(), self.signum)
        idx = torch.randint(0, 64, (8,))
        x = self.x[idx]
        y = x @ self.w_true + 0.1 * torch.randn(8)
        residual = x @ self.w - y
        self.w -= 0.05 * self.lr_scale * (x.T @ residual) / 8
        loss = (residual ** 2).mean()
        if self.nan_from is not None and step >= self.nan_from and self.lr_scale == 1.0:
            loss = loss * float("nan")
        return {"loss": loss}

    def evaluate(self, step):
        return {"error": float((self.w - self.w_true).norm())}

    def state_dict(self):
        return {"w": self.w.clone(), "lr_scale": self.lr_scale}

    def load_state_dict(self, state):
        self.w, self.lr_scale = state["w"].clone(), state["lr_scale"]

    def soften(self, attempt):
        self.lr_scale *= 0.5
        return f"lr scale {self.lr_scale}"


def _run(tmp_path, name, trainer, policy="stop", schedule=SCHEDULE):
    run = RunDir(tmp_path / name) if (tmp_path / name).exists() else RunDir.create(tmp_path / name, {})
    guard = DivergenceGuard(GuardConfig(policy=policy, max_rollbacks=2), finite=("loss",))
    run_loop(run, trainer, schedule, guard, CheckpointStore(run.checkpoints), META, torch.device("cpu"), progress=False)
    return run


def _records(run):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in run.read_metrics() if "event" not in r]


def test_crash_and_resume_equals_uninterrupted(tmp_path):
    torch.manual_seed(0)
    reference = ToyTrainer()
    ref_run = _run(tmp_path, "ref", reference)
    torch.manual_seed(0)
    with pytest.raises(Crash):
        _run(tmp_path, "crashed", ToyTrainer(crash_at=23))
    torch.manual_seed(123)  # the resumed process starts with another RNG state; the checkpoint restores it
    resumed = ToyTrainer()
    run = _run(tmp_path, "crashed", resumed)
    assert torch.equal(resumed.w, reference.w)
    assert _records(run) == _records(ref_run)
    assert any(r.get("event") == "resumed" and r["step"] == 20 for r in run.read_metrics())


def test_divergence_stops_with_a_message(tmp_path):
    torch.manual_seed(0)
    with pytest.raises(DivergenceError, match="diverged at step 15: loss is nan; the policy is to stop"):
        _run(tmp_path, "nan", ToyTrainer(nan_from=12))
    run = RunDir(tmp_path / "nan")
    assert run.read_metrics()[-1]["event"] == "divergence"
    assert CheckpointStore(run.checkpoints).paths()[0].name == "step_00000010.pt"


def test_divergence_rolls_back_and_softens(tmp_path):
    torch.manual_seed(0)
    trainer = ToyTrainer(nan_from=12)
    run = _run(tmp_path, "rollback", trainer, policy="rollback")
    events = [r for r in run.read_metrics() if "event" in r]
    assert events == [{"step": 10, "event": "rollback", "problem": "loss is nan", "from_step": 15, "attempt": 1,
                       "change": "lr scale 0.5"}]
    steps = [r["step"] for r in run.read_metrics() if r.get("split") == "train"]
    assert steps == list(range(5, 45, 5))  # no duplicate or missing log steps after the rollback
    assert trainer.lr_scale == 0.5 and trainer.evaluate(40)["error"] < 0.5 * float(trainer.w_true.norm())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_checkpoints_and_resumes(tmp_path, signum):
    torch.manual_seed(0)
    reference = ToyTrainer()
    _run(tmp_path, "ref", reference)
    torch.manual_seed(0)
    with pytest.raises(RunInterrupted, match="stopped at step 8 of 40"):
        _run(tmp_path, "int", ToyTrainer(signal_at=7, signum=signum))
    assert CheckpointStore(tmp_path / "int" / "checkpoints").paths()[0].name == "step_00000008.pt"
    resumed = ToyTrainer()
    _run(tmp_path, "int", resumed)
    assert torch.equal(resumed.w, reference.w)


class SlowTrainer(ToyTrainer):
    def train_step(self, step):
        time.sleep(0.01)
        return super().train_step(step)


def test_time_budget_stops_at_a_log_step_and_stays_stopped_on_resume(tmp_path):
    schedule = Schedule(total_steps=1000, log_every=5, checkpoint_every=10, time_budget_s=0.12)
    torch.manual_seed(0)
    run = _run(tmp_path, "budget", SlowTrainer(), schedule=schedule)
    records = run.read_metrics()
    stopped_at = records[-1]["step"]
    assert 5 <= stopped_at < 100 and stopped_at % 5 == 0
    assert any(r.get("event") == "time budget spent" for r in records)
    assert records[-1]["split"] == "eval"
    _run(tmp_path, "budget", SlowTrainer(), schedule=schedule)  # resuming a spent run trains nothing more
    assert run.read_metrics()[-1]["step"] == stopped_at


def test_the_guard_catches_a_runaway_energy_below_the_absolute_bound():
    guard = DivergenceGuard(GuardConfig(bound=1e4), bounded=("energy_pos",))
    for energy in (-10.0, -12.0, -11.0, -13.0, -12.5, -20.0, -45.0):  # healthy drift, 4x the median at most
        assert guard.problem({"loss": 0.1, "energy_pos": energy}) is None
    problem = guard.problem({"loss": 0.1, "energy_pos": -700.0})
    assert problem is not None and "energy_pos" in problem and "median" in problem


def test_the_relative_bound_waits_for_a_history_and_ignores_energies_near_zero():
    guard = DivergenceGuard(GuardConfig(), bounded=("energy_neg",))
    assert guard.problem({"energy_neg": 0.01}) is None
    assert guard.problem({"energy_neg": 30.0}) is None  # only one earlier log step: no history yet
    guard = DivergenceGuard(GuardConfig(), bounded=("energy_neg",))
    for _ in range(5):
        assert guard.problem({"energy_neg": 0.02}) is None
    assert guard.problem({"energy_neg": 40.0}) is None  # 2,000 times the median, but the median is floored at 1
    assert guard.problem({"energy_neg": 60.0}) is not None


def test_the_guard_catches_a_network_gone_flat_and_not_a_dip():
    guard = DivergenceGuard(GuardConfig(), vanishing=("grad_norm",))
    healthy = [0.5, 0.3, 0.8, 0.6, 0.4, 0.7]
    dip = [3e-4] * 9 + [0.9]  # nine log steps near zero, then back: the count starts again
    for norm in healthy + dip:
        assert guard.problem({"grad_norm": norm}) is None
    flat = [2e-4] * 9
    for norm in flat:
        assert guard.problem({"grad_norm": norm}) is None
    problem = guard.problem({"grad_norm": 2e-5})
    assert problem is not None and "grad_norm" in problem and "flat" in problem
