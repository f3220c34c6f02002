"""One writer per run directory and per runs folder: a second `genlab run`/`resume` or pipeline stops
with a clear message, and a killed writer's lock dies with it."""

import json
import os
import signal
import subprocess
import sys

import pytest

from genlab.cli import main
from genlab.config import to_dict
from genlab.experiments.registry import get_experiment
from genlab.io import exclusive
from genlab.train.run_dir import RunDir
from conftest import needs_data, sigkill_after_checkpoint


def _run_dir(path) -> RunDir:
    config = get_experiment("classifier-mnist").config("smoke")
    return RunDir.create(path, {"experiment": "classifier-mnist", "preset": "smoke", "config": to_dict(config)})


def test_a_second_resume_of_a_run_being_written_stops_with_exit_code_2(tmp_path, capsys):
    run = _run_dir(tmp_path / "run")
    with run.writing():
        assert main(["resume", str(run.path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"run directory {run.path} is being written by another genlab process (pid {os.getpid()})" in err
    assert "wait for that process to end" in err
    assert not (run.path / "summary.json").exists()


def test_a_second_pipeline_on_the_same_runs_folder_stops(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    with exclusive(runs / ".pipeline.lock", "held"):
        assert main(["run", "pipeline", "--preset", "smoke", "--runs-dir", str(runs), "--no-progress"]) == 2
    assert f"the runs folder {runs} (a pipeline) is being written by another genlab process" in capsys.readouterr().err
    assert not (runs / "pipeline-smoke").exists()


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    lock = tmp_path / ".lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from genlab.io import exclusive\n"
                               f"with exclusive({str(lock)!r}, 'x'):\n print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(Exception, match="being written by another genlab process"):
        with exclusive(lock, "x"):
            pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with exclusive(lock, "x"):  # the OS dropped the dead process's lock
        assert lock.read_text() == str(os.getpid())


@pytest.mark.slow
@needs_data("mnist")
def test_two_resumes_of_a_killed_run_started_together_one_refuses(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "genlab", "run", "classifier-mnist", "--preset", "smoke", "--set", "train.epochs=20",
           "--run-dir", str(run), "--no-progress", "--device", "cpu"]
    sigkill_after_checkpoint(cmd, run / "checkpoints", step=32)
    resume = [sys.executable, "-m", "genlab", "resume", str(run), "--no-progress", "--device", "cpu"]
    both = [subprocess.Popen(resume, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = sorted((p.wait(timeout=300), p.stderr.read()) for p in both)
    assert [code for code, _ in results] == [0, 2]
    assert "is being written by another genlab process" in results[1][1]
    assert json.loads((run / "summary.json").read_text())["status"] == "complete"
