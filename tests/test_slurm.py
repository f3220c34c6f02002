"""The pipeline's Slurm launcher: its sbatch parameters and job commands, and the pipeline through a real
Slurm (the single-node one of .ci/slurm-up.sh; skipped, with the reason, where Slurm is not reachable)."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from genlab.cli import main
from genlab.errors import ConfigError, PipelineError
from genlab.experiments import pipeline
from genlab.experiments.launchers import SlurmOptions, job_command, sbatch_parameters, slurm_options, time_limit
from genlab.experiments.pipeline import Job, plan
from conftest import needs_data


def _job(key: str) -> Job:
    return next(job for job in plan(1, only=["gan"]) if job.key == key)


def test_a_job_with_several_gpus_runs_under_torchrun():
    command = [sys.executable, "-m", "genlab", "run", "gan-hoda", "--preset", "full", "--run-dir", "/r/x"]
    assert job_command(command, 0) == command and job_command(command, 1) == command
    assert job_command(command, 4) == [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                       "--nproc_per_node=4", "-m", "genlab", "run", "gan-hoda", "--preset", "full",
                                       "--run-dir", "/r/x"]


def test_sbatch_parameters_come_from_the_stage_and_the_options():
    gan = _job("gan-hoda/seed0")
    parameters = sbatch_parameters(gan, SlurmOptions(), after=["41", "42"])
    # three times the expected minutes, rounded up, and the two before the stop signal
    assert parameters["time"] == math.ceil(gan.stage.minutes * 3) + 2
    assert parameters["cpus_per_task"] == 2 and "gpus_per_node" not in parameters and "mem" not in parameters
    assert parameters["additional_parameters"] == {"signal": "TERM@120", "dependency": "afterany:41:42"}
    assert parameters["job_name"] == "genlab-gan-hoda-seed0" and "partition" not in parameters

    options = SlurmOptions(partition="gpu", account="lab", cpus_per_job=8, gpus_per_job=2, mem_gb=1.5,
                           sbatch={"qos": "low", "signal": "TERM@300"}, setup=("module load cuda",))
    parameters = sbatch_parameters(_job("classifier-hoda"), options, after=[])
    assert parameters["time"] == 10 + 2  # 3.0 minutes x 3 is under the 10-minute floor
    assert (parameters["partition"], parameters["account"], parameters["cpus_per_task"], parameters["gpus_per_node"],
            parameters["mem"], parameters["setup"]) == ("gpu", "lab", 8, 2, "1536M", ["module load cuda"])
    assert parameters["additional_parameters"] == {"signal": "TERM@300", "qos": "low"}
    assert time_limit(gan.stage, SlurmOptions(time_minutes=600)) == 600


def test_slurm_options_from_a_file_with_the_command_line_first(tmp_path):
    toml = tmp_path / "slurm.toml"
    toml.write_text('partition = "cpu"\ncpus_per_job = 4\nsetup = ["source ~/venv/bin/activate"]\n'
                    '[sbatch]\nqos = "normal"\n')
    options = slurm_options(toml, partition="gpu", account=None, gpus_per_job=None)
    assert options == SlurmOptions(partition="gpu", cpus_per_job=4, sbatch={"qos": "normal"},
                                   setup=("source ~/venv/bin/activate",))
    as_json = tmp_path / "slurm.json"
    as_json.write_text(json.dumps({"account": "lab", "time_factor": 2}))
    assert slurm_options(as_json) == SlurmOptions(account="lab", time_factor=2)
    as_json.write_text(json.dumps({"acount": "lab"}))
    with pytest.raises(ConfigError, match="unknown slurm option.*acount"):
        slurm_options(as_json)
    with pytest.raises(ConfigError, match="cpus_per_job must be a whole number of at least 1"):
        slurm_options(None, cpus_per_job=0)


def test_launcher_options_are_checked(capsys, tmp_path):
    assert main(["run", "pipeline", "--partition", "gpu", "--runs-dir", str(tmp_path)]) == 2
    assert "--partition belong to --launcher slurm" in capsys.readouterr().err
    assert main(["run", "pipeline", "--launcher", "slurm", "--jobs", "2", "--runs-dir", str(tmp_path)]) == 2
    assert "--jobs belongs to the local launcher" in capsys.readouterr().err
    assert main(["run", "classifier-hoda", "--launcher", "slurm"]) == 2
    assert "belong to `genlab run pipeline`" in capsys.readouterr().err


def _slurm_reason() -> str | None:
    """Why the Slurm tests cannot run here, or None when they can."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        return "submitit is not installed"
    if shutil.which("sinfo") is None:
        return "no Slurm here (sinfo not found; .ci/slurm-up.sh starts a single-node one)"
    answer = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    if answer.returncode != 0 or not answer.stdout.split():
        return f"Slurm is not reachable: sinfo says {(answer.stderr or answer.stdout).strip()!r}"
    return None


@pytest.fixture
def slurm():
    reason = _slurm_reason()
    if reason:
        pytest.skip(reason)


_FAKE_JOB = """
import json, pathlib, sys, time
key, run_dir, events, mode = sys.argv[1:5]
with open(events, "a") as f:
    f.write(f"start {key} {time.time()}\\n")
if mode == "first" and key == "gan-hoda/seed0":
    time.sleep(300)  # until it is cancelled
if mode == "first" and key == "gan-hoda-conditional/seed0":
    print("genlab: error: the critic diverged")
    sys.exit(2)
pathlib.Path(run_dir).mkdir(parents=True, exist_ok=True)
(pathlib.Path(run_dir) / "summary.json").write_text(json.dumps({"status": "complete"}))
with open(events, "a") as f:
    f.write(f"end {key} {time.time()}\\n")
"""


def _events(path: Path) -> list[tuple[str, str, float]]:
    return [(kind, key, float(t)) for kind, key, t in (line.split() for line in path.read_text().splitlines())]


@pytest.mark.slow
def test_slurm_jobs_wait_for_their_needs_failures_are_named_and_a_rerun_finishes_the_rest(slurm, tmp_path,
                                                                                          monkeypatch):
    """Fake jobs on the real Slurm: the GANs start after the classifier they need has ended; a job that fails
    and one cancelled with scancel are named; the rerun submits only those two and reuses the classifier."""
    events, mode = tmp_path / "events.txt", ["first"]
    monkeypatch.setattr(pipeline, "_command", lambda job, record, *rest: [
        sys.executable, "-c", _FAKE_JOB, job.key, record["run_dir"], str(events), mode[0]])

    def cancel_the_waiting_job():
        deadline = time.time() + 120
        while time.time() < deadline and "start gan-hoda/seed0" not in (events.read_text() if events.exists() else ""):
            time.sleep(0.2)
        subprocess.run(["scancel", "--name", "genlab-gan-hoda-seed0"], check=True)

    threading.Thread(target=cancel_the_waiting_job, daemon=True).start()
    with pytest.raises(PipelineError, match="2 of 3 jobs failed: gan-hoda/seed0, gan-hoda-conditional/seed0"):
        pipeline.run_pipeline("smoke", only=["gan-hoda", "gan-hoda-conditional"], runs_dir=tmp_path,
                              slurm=SlurmOptions(cpus_per_job=1), out=lambda line: None)
    state = json.loads((tmp_path / "pipeline-smoke" / "pipeline.json").read_text())
    assert {k: j["status"] for k, j in state["jobs"].items()} == {
        "classifier-hoda": "complete", "gan-hoda/seed0": "failed", "gan-hoda-conditional/seed0": "failed"}
    assert state["jobs"]["gan-hoda-conditional/seed0"]["error"] == "error: the critic diverged"
    assert "Slurm" in state["jobs"]["gan-hoda/seed0"]["error"]
    seen = _events(events)
    classifier_end = next(t for kind, key, t in seen if kind == "end" and key == "classifier-hoda")
    assert all(t >= classifier_end for kind, key, t in seen if kind == "start" and key != "classifier-hoda")

    mode[0], first = "again", len(seen)
    pipeline.run_pipeline("smoke", only=["gan-hoda", "gan-hoda-conditional"], runs_dir=tmp_path,
                          slurm=SlurmOptions(cpus_per_job=1), out=lambda line: None)
    state = json.loads((tmp_path / "pipeline-smoke" / "pipeline.json").read_text())
    assert {j["status"] for j in state["jobs"].values()} == {"complete"}
    assert state["jobs"]["classifier-hoda"]["reused"] and "slurm_job" not in state["jobs"]["classifier-hoda"]
    assert sorted(key for kind, key, _ in _events(events)[first:] if kind == "start") == [
        "gan-hoda-conditional/seed0", "gan-hoda/seed0"]


def _index(folder: Path) -> dict[str, tuple[str, str]]:
    """Each job of pipeline.json: its run directory and status."""
    jobs = json.loads((folder / "pipeline.json").read_text())["jobs"]
    return {key: (job["run_dir"], job["status"]) for key, job in jobs.items()}


@pytest.mark.slow
@needs_data("hoda")
def test_the_smoke_pipeline_through_slurm_gives_the_local_launchers_index(slurm, tmp_path, capsys):
    """The classifier and the GAN judged by it, as Slurm jobs: the same run directories as the local
    launcher's (which then finds every run finished and reuses it), and a rerun through Slurm reuses all."""
    common = ["run", "pipeline", "--preset", "smoke", "--only", "gan-hoda", "--runs-dir", str(tmp_path), "--no-progress"]
    assert main([*common, "--launcher", "slurm", "--cpus-per-job", "1"]) == 0
    folder = tmp_path / "pipeline-smoke"
    assert f"report: {folder / 'index.html'}" in capsys.readouterr().out
    through_slurm = _index(folder)
    expected = {job.key: str(pipeline.run_dir_of(tmp_path, "smoke", job)[0]) for job in plan(1, only=["gan-hoda"])}
    assert through_slurm == {key: (run_dir, "complete") for key, run_dir in expected.items()}
    assert all(json.loads((Path(d) / "summary.json").read_text())["status"] == "complete" for d in expected.values())

    for launcher in ("local", "slurm"):
        assert main([*common, "--launcher", launcher]) == 0
        assert _index(folder) == through_slurm
        jobs = json.loads((folder / "pipeline.json").read_text())["jobs"].values()
        assert all(job["reused"] and "slurm_job" not in job for job in jobs)


_WAITING_JOB = """
import sys, time
key, events = sys.argv[1], sys.argv[2]
with open(events, "a") as f:
    f.write(f"start {key} {time.time()}\\n")
time.sleep(300)
"""


def test_sigterm_to_the_pipeline_cancels_its_slurm_jobs(slurm, tmp_path, monkeypatch):
    events = tmp_path / "events.txt"
    monkeypatch.setattr(pipeline, "_command", lambda job, record, *rest: [
        sys.executable, "-c", _WAITING_JOB, job.key, str(events)])

    def terminate_when_two_jobs_run():
        deadline = time.time() + 120
        while time.time() < deadline and (not events.exists() or events.read_text().count("start") < 2):
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate_when_two_jobs_run, daemon=True).start()
    code = main(["run", "pipeline", "--preset", "smoke", "--only", "dvae", "--launcher", "slurm", "--cpus-per-job", "1",
                 "--runs-dir", str(tmp_path)])
    assert code == 130
    jobs = json.loads((tmp_path / "pipeline-smoke" / "pipeline.json").read_text())["jobs"]
    assert {key: job["status"] for key, job in jobs.items()} == {"dvae-mnist/seed0": "interrupted",
                                                                 "dvae-fashion_mnist/seed0": "interrupted"}
    ids = {job["slurm_job"] for job in jobs.values()}
    deadline = time.time() + 60
    while time.time() < deadline and ids & set(subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True,
                                                              text=True).stdout.split()):
        time.sleep(0.5)
    assert not ids & set(subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split())
