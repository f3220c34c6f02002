"""Divergence in a real JEM and GAN run: weights poisoned with NaN mid-run are caught at the next log step;
`guard.policy=rollback` restores the last good checkpoint with half the learning rate, logs the event and
shows it in the report; `guard.policy=stop` ends the run with one message and keeps its checkpoints."""

import json

import pytest
import torch

from genlab.cli import main
from genlab.train.gan import GanTrainer
from genlab.train.jem import JEMTrainer
from conftest import have_dataset

SMOKE = ["--preset", "smoke", "--no-progress", "--device", "cpu"]


def poison_once(monkeypatch, trainer_class, at_step, module_of):
    """Fill one weight tensor with NaN just before ``at_step`` (once: a rollback must cure it)."""
    original, done = trainer_class.train_step, []

    def train_step(self, step):
        if step == at_step and not done:
            done.append(step)
            with torch.no_grad():
                next(module_of(self).parameters()).fill_(float("nan"))
        return original(self, step)

    monkeypatch.setattr(trainer_class, "train_step", train_step)


def events(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "event" in line]


CASES = {
    "jem": (JEMTrainer, lambda t: t.model, "jem-mnist", ("mnist", "fashion_mnist"), 5, 8),
    "gan": (GanTrainer, lambda t: t.critic, "gan-hoda", ("hoda",), 3, 4),
}


def _judges(tmp_path, family):
    missing = [d for d in CASES[family][3] if not have_dataset(d)]
    if missing:
        pytest.skip(f"dataset(s) {', '.join(missing)} not found (no offline mirror; set GENLAB_DATA_DIR)")
    if family == "jem":
        assert main(["run", "classifier-mnist", *SMOKE, "--run-dir", str(tmp_path / "judge")]) == 0
        assert main(["run", "classifier-mnist", *SMOKE, "--seed", "1", "--set", "model.norm=none",
                     "--run-dir", str(tmp_path / "start")]) == 0
    else:
        assert main(["run", "classifier-hoda", *SMOKE, "--run-dir", str(tmp_path / "judge")]) == 0


@pytest.mark.parametrize("family", CASES)
def test_rollback_policy_recovers_and_reports_the_event(family, tmp_path, monkeypatch):
    trainer_class, module_of, experiment, datasets, at_step, caught_at = CASES[family]
    _judges(tmp_path, family)
    poison_once(monkeypatch, trainer_class, at_step, module_of)
    run = tmp_path / "run"
    assert main(["run", experiment, *SMOKE, "--set", "guard.policy=rollback", "--run-dir", str(run)]) == 0
    [event] = events(run)
    assert event["event"] == "rollback" and event["from_step"] == caught_at and event["step"] == 0
    assert "nan" in event["problem"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete"
    assert "<h2>Events</h2>" in (run / "report.html").read_text()


@pytest.mark.parametrize("family", CASES)
def test_stop_policy_ends_with_one_message_and_keeps_checkpoints(family, tmp_path, monkeypatch, capsys):
    trainer_class, module_of, experiment, datasets, at_step, caught_at = CASES[family]
    _judges(tmp_path, family)
    poison_once(monkeypatch, trainer_class, at_step, module_of)
    run = tmp_path / "run"
    assert main(["run", experiment, *SMOKE, "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"diverged at step {caught_at}" in err and "nan" in err and "Traceback" not in err
    assert list((run / "checkpoints").glob("step_*.pt")) and not (run / "summary.json").exists()
