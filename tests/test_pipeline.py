"""The pipeline: its plan, and the smoke pipeline end to end with its index report."""

import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from genlab.cli import main
from genlab.errors import ConfigError, PipelineError
from genlab.experiments import pipeline
from genlab.experiments.pipeline import plan
from genlab.report.index import build_index
from browser import needs_chromium, render
from conftest import needs_data


def test_plan_adds_the_classifiers_a_study_needs():
    keys = [job.key for job in plan(2, only=["jem"])]
    assert keys[:2] == ["classifier-mnist", "classifier-cifar10"]
    assert "classifier-mnist-seed1-nobn" in keys and "classifier-hoda" not in keys
    assert "jempp-mnist/seed1" in keys and not any(k.startswith("ebm") for k in keys)
    assert all(not k.startswith("jem") for k in [j.key for j in plan(1, skip=["jem"])])
    stages = [job.key for job in plan(2, only=["jem-mnist", "gan-hoda-conditional"])]
    assert stages == ["classifier-mnist", "classifier-hoda", "classifier-mnist-seed1-nobn", "jem-mnist/seed0",
                      "jem-mnist/seed1", "gan-hoda-conditional/seed0", "gan-hoda-conditional/seed1"]
    assert "jempp-mnist-nobn/seed0" not in [job.key for job in plan(1, only=["jem"], skip=["jempp-mnist-nobn"])]


def test_plan_rejects_unknown_studies_and_zero_seeds():
    with pytest.raises(ConfigError, match="unknown study or stage 'vae'"):
        plan(1, only=["vae"])
    with pytest.raises(ConfigError, match="--seeds must be at least 1"):
        plan(0)


def test_a_preset_some_stages_lack_is_refused_before_anything_is_written(tmp_path, capsys):
    """`long` is defined for the Gaussian-start CIFAR-10 energy alone: the whole pipeline is refused with the
    experiments that have it, and no folder is made; that stage and its judge's classifier are not both
    long, so even `--only` it is refused (the run itself is `genlab run ebm-cifar10-gaussian --preset long`)."""
    for only in ([], ["--only", "ebm-cifar10-gaussian"]):
        assert main(["run", "pipeline", "--preset", "long", "--runs-dir", str(tmp_path / "runs"), *only]) == 2
        err = capsys.readouterr().err
        assert "not defined for classifier-cifar10" in err and "that have it: ebm-cifar10-gaussian" in err
        assert not (tmp_path / "runs").exists()


def test_pipeline_flags_only_apply_to_the_pipeline(capsys):
    assert main(["run", "classifier-mnist", "--seeds", "3"]) == 2
    assert "belong to `genlab run pipeline`" in capsys.readouterr().err


@pytest.mark.slow
@needs_chromium
@needs_data("mnist", "fashion_mnist", "hoda", "cifar10")
def test_smoke_pipeline_end_to_end_reuse_and_reports_in_a_browser(tmp_path, capsys):
    assert main(["run", "pipeline", "--preset", "smoke", "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "pipeline-smoke"
    assert f"report: {folder / 'index.html'}" in out
    state = json.loads((folder / "pipeline.json").read_text())
    assert {job["status"] for job in state["jobs"].values()} == {"complete"}
    page = (folder / "index.html").read_text()
    for study in state["studies"]:
        assert f'id="{study}"' in page
    stamps = {k: (Path(j["run_dir"]) / "summary.json").stat().st_mtime_ns for k, j in state["jobs"].items()}
    (folder / "index.html").unlink()
    assert main(["report", str(folder)]) == 0  # the index rebuilt from the pipeline folder alone
    assert "with 1 run(s) at once" in (folder / "index.html").read_text()

    assert main(["run", "pipeline", "--preset", "smoke", "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    again = {k: (Path(j["run_dir"]) / "summary.json").stat().st_mtime_ns for k, j in state["jobs"].items()}
    assert again == stamps  # finished runs with the same config are reused, not redone

    seen = render(folder / "index.html")
    assert seen["errors"] == [] and seen["broken"] == 0 and seen["images"] > 0 and seen["requests"] == []
    assert set(state["studies"]) <= set(seen["sections"])
    assert all(rows >= 2 for rows in seen["tableRows"])

    run = Path(next(iter(state["jobs"].values()))["run_dir"])
    moved = tmp_path / "elsewhere" / run.name
    shutil.copytree(run, moved)
    assert main(["report", str(moved)]) == 0
    seen = render(moved / "report.html")
    assert seen["errors"] == [] and seen["broken"] == 0 and seen["images"] > 0 and "<table>" in (moved / "report.html").read_text()


_FAKE_JOB = """
import sys, time
key, log = sys.argv[1], sys.argv[2]
with open(log, "a") as f:
    f.write(f"start {key} {time.time()}\\n")
time.sleep(0.3)
with open(log, "a") as f:
    f.write(f"end {key} {time.time()}\\n")
if key == "wgan-hoda/seed0":
    print("genlab: error: the critic diverged")
    sys.exit(2)
"""


def test_parallel_jobs_respect_needs_and_the_job_limit_and_record_failures(tmp_path, monkeypatch):
    events = tmp_path / "events.txt"
    monkeypatch.setattr(pipeline, "_command",
                        lambda job, record, *rest: [sys.executable, "-c", _FAKE_JOB, job.key, str(events)])
    with pytest.raises(PipelineError, match="1 of 5 jobs failed: wgan-hoda/seed0"):
        pipeline.run_pipeline("smoke", only=["gan"], runs_dir=tmp_path, jobs=2, out=lambda line: None)
    state = json.loads((tmp_path / "pipeline-smoke" / "pipeline.json").read_text())
    assert {k: j["status"] for k, j in state["jobs"].items()} == {
        "classifier-hoda": "complete", "gan-hoda/seed0": "complete", "gan-hoda-conditional/seed0": "complete",
        "wgan-hoda/seed0": "failed", "wgangp-hoda/seed0": "complete"}
    assert state["jobs"]["wgan-hoda/seed0"]["error"] == "error: the critic diverged"
    times = [(line.split()[0], line.split()[1], float(line.split()[2])) for line in events.read_text().splitlines()]
    classifier_end = next(t for kind, key, t in times if kind == "end" and key == "classifier-hoda")
    assert all(t >= classifier_end for kind, key, t in times if kind == "start" and key != "classifier-hoda")
    running = 0
    for kind, _, _ in sorted(times, key=lambda e: e[2]):
        running += 1 if kind == "start" else -1
        assert running <= 2


_WAITING_JOB = """
import signal, sys, time
key, log = sys.argv[1], sys.argv[2]
def stop(signum, frame):
    with open(log, "a") as f:
        f.write(f"stopped {key}\\n")
    sys.exit(130)
signal.signal(signal.SIGINT, stop)
with open(log, "a") as f:
    f.write(f"start {key}\\n")
time.sleep(60)
"""


def test_sigterm_stops_the_pipeline_and_its_job_processes(tmp_path, monkeypatch):
    """Jobs run in sessions of their own, so a SIGTERM to the pipeline (`kill`, `timeout`) must be passed
    on: every running job is told to stop and recorded as interrupted, none is left training unseen."""
    events = tmp_path / "events.txt"
    monkeypatch.setattr(pipeline, "_command",
                        lambda job, record, *rest: [sys.executable, "-c", _WAITING_JOB, job.key, str(events)])
    before = signal.getsignal(signal.SIGTERM)

    def terminate_when_two_jobs_run():
        deadline = time.time() + 30
        while time.time() < deadline and (not events.exists() or events.read_text().count("start") < 2):
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate_when_two_jobs_run, daemon=True).start()
    code = main(["run", "pipeline", "--preset", "smoke", "--only", "dvae", "--jobs", "2", "--runs-dir", str(tmp_path)])
    assert code == 130
    lines = events.read_text().splitlines()
    started = sorted(line.split()[1] for line in lines if line.startswith("start"))
    assert started == ["dvae-fashion_mnist/seed0", "dvae-mnist/seed0"]
    assert sorted(line.split()[1] for line in lines if line.startswith("stopped")) == started
    state = json.loads((tmp_path / "pipeline-smoke" / "pipeline.json").read_text())
    assert {k: j["status"] for k, j in state["jobs"].items()} == dict.fromkeys(started, "interrupted")
    assert signal.getsignal(signal.SIGTERM) is before


def test_jobs_start_with_what_others_need_then_the_longest_and_later_invocations_add_to_the_index(
        tmp_path, monkeypatch):
    events = tmp_path / "events.txt"
    monkeypatch.setattr(pipeline, "_command",
                        lambda job, record, *rest: [sys.executable, "-c", _FAKE_JOB, job.key, str(events)])
    lines = []
    with pytest.raises(PipelineError):  # the fake WGAN job fails
        pipeline.run_pipeline("quick", only=["gan"], runs_dir=tmp_path, jobs=2, out=lines.append)
    # The order the pipeline launched them in (its progress lines): two processes launched together may
    # write their own start lines in either order.
    starts = [line.split()[2] for line in lines if line.startswith("[")]
    minutes = {job.stage.name: job.stage.minutes for job in plan(1, only=["gan"])}
    assert starts[0] == "classifier-hoda"
    assert [minutes[name] for name in starts[1:]] == sorted(minutes[name] for name in starts[1:])[::-1]
    folder = pipeline.run_pipeline("quick", seeds=2, only=["dvae"], runs_dir=tmp_path, jobs=2, out=lambda line: None)
    state = json.loads((folder / "pipeline.json").read_text())
    assert {"gan-hoda/seed0", "dvae-mnist/seed0", "dvae-mnist/seed1"} <= set(state["jobs"])
    assert state["studies"] == ["classifiers", "dvae", "gan"] and state["seeds"] == 2


def test_the_time_estimate_leaves_out_runs_already_complete(tmp_path):
    jobs = plan(1, only=["dvae"])
    done = pipeline.run_dir_of(tmp_path, "quick", jobs[0])[0]
    done.mkdir(parents=True)
    (done / "summary.json").write_text(json.dumps({"status": "complete"}))
    book = pipeline._Book(tmp_path, "quick", 1, jobs, 1, out=lambda line: None)
    assert book.time_left() == jobs[1].stage.minutes * 60
    record = book.begin(jobs[0])
    assert record["reused"]
    book.end(jobs[0], {**record, "status": "complete"})
    assert book.time_left() == jobs[1].stage.minutes * 60  # a reused run says nothing of the pace


def test_an_earlier_record_of_a_job_to_run_again_is_dropped(tmp_path):
    """A run folder removed (or left unfinished) since an earlier invocation: its old record would call a run
    complete that is not; the records of other finished jobs stay."""
    jobs = plan(1, only=["dvae"])
    kept, redone = jobs[0], jobs[1]
    done = pipeline.run_dir_of(tmp_path, "quick", kept)[0]
    done.mkdir(parents=True)
    (done / "summary.json").write_text(json.dumps({"status": "complete"}))
    folder = tmp_path / "pipeline-quick"
    folder.mkdir()
    earlier = {key: {"status": "complete"} for key in (kept.key, redone.key, "gan-hoda/seed0")}
    (folder / "pipeline.json").write_text(json.dumps({"seeds": 1, "studies": ["dvae", "gan"], "jobs": earlier}))
    book = pipeline._Book(tmp_path, "quick", 1, jobs, 1, out=lambda line: None)
    assert set(book.state["jobs"]) == {kept.key, "gan-hoda/seed0"}


def test_a_parallel_job_runs_the_same_command_a_user_would(tmp_path):
    job = next(j for j in plan(1, only=["jem"]) if j.key == "classifier-mnist-seed1-nobn")
    record = {"run_dir": str(tmp_path / "run"), "sets": {"model.norm": "none", "train.augment": True}}
    command = pipeline._command(job, record, "quick", "cpu", None)
    assert command[1:] == ["-m", "genlab", "run", "classifier-mnist", "--preset", "quick", "--seed", "1",
                           "--run-dir", str(tmp_path / "run"), "--set", "model.norm=none", "--set",
                           "train.augment=true", "--device", "cpu", "--no-progress"]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    assert pipeline._command(job, record, "quick", "cpu", "/data")[3:] == [
        "resume", str(tmp_path / "run"), "--device", "cpu", "--no-progress", "--data-dir", "/data"]


def test_time_left_scales_the_expected_minutes_by_the_pace_and_shares_them_among_the_runs_at_once(tmp_path):
    jobs = plan(1, only=["dvae"])
    first, second = (job.stage.minutes * 60 for job in jobs)
    book = pipeline._Book(tmp_path, "quick", 1, jobs, 2, out=lambda line: None)
    assert book.time_left() == pytest.approx((first + second) / 2)
    record = book.begin(jobs[0])
    record.update(status="complete", clock=record["clock"] - 2 * first)  # took twice the expected time
    book.end(jobs[0], record)
    assert book.time_left() == pytest.approx(second * 2 / 2, rel=1e-3)
    assert pipeline._Book(tmp_path, "smoke", 1, jobs, 1, out=lambda line: None).time_left() is None


def test_time_left_counts_what_the_running_jobs_have_done(tmp_path):
    jobs = plan(1, only=["dvae"])
    first, second = (job.stage.minutes * 60 for job in jobs)
    book = pipeline._Book(tmp_path, "quick", 1, jobs, 2, out=lambda line: None)
    book.begin(jobs[0])
    book.begin(jobs[1])
    start, expected = book.running[jobs[0].key]
    book.running[jobs[0].key] = (start - first / 2, expected)  # halfway through
    assert book.time_left() == pytest.approx((first / 2 + second) / 2, rel=1e-3)
    book.running[jobs[0].key] = (start - 3 * first, expected)  # overdue: counted as done, not negative
    assert book.time_left() == pytest.approx(second / 2, rel=1e-3)


def test_index_tables_give_the_spread_over_seeds(tmp_path):
    folder = tmp_path / "pipeline-quick"
    folder.mkdir()
    jobs = {}
    for stage, accuracies in (("jem-mnist", (0.978, 0.981, 0.975)), ("jempp-mnist", (0.9903, 0.9905, 0.9904))):
        for seed, accuracy in enumerate(accuracies):
            run = tmp_path / stage / f"s{seed}"
            run.mkdir(parents=True)
            (run / "config.json").write_text(json.dumps({"experiment": stage, "preset": "quick", "config": {"seed": seed}}))
            (run / "summary.json").write_text(json.dumps({"status": "complete", "seed": seed, "wall_time_s": 60.0,
                                                          "metrics": {"test_accuracy": accuracy, "fid": 10.0 + seed}}))
            jobs[f"{stage}/seed{seed}"] = {"study": "jem", "stage": stage, "seed": seed, "run_dir": str(run),
                                           "status": "complete"}
    (folder / "pipeline.json").write_text(json.dumps({"preset": "quick", "seeds": 3, "jobs": jobs}))
    page = build_index(folder).read_text()
    assert "0.978 &plusmn; 0.003 (n=3)" in page and "0.99 &plusmn; 0.0001 (n=3)" in page
    assert "11 &plusmn; 1 (n=3)" in page  # the FID column
    assert (tmp_path / "jem-mnist" / "s2" / "report.html").exists()  # every run's own report refreshed


def test_index_prose_is_escaped_so_an_order_reads_as_text(tmp_path):
    """Where the label-free FID orders two stages unlike the judge's FID, the index says 'a < b': shown as
    text (&lt;), not read as the start of a tag."""
    folder = tmp_path / "pipeline-quick"
    folder.mkdir()
    jobs = {}
    for stage, fid, free in (("jem-mnist", 40.0, 0.1), ("jempp-mnist", 10.0, 0.2)):
        run = tmp_path / stage / "s0"
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({"experiment": stage, "preset": "quick", "config": {"seed": 0}}))
        (run / "summary.json").write_text(json.dumps({"status": "complete", "seed": 0, "wall_time_s": 60.0,
                                                      "metrics": {"fid": fid, "randnet_fid": free}}))
        jobs[f"{stage}/seed0"] = {"study": "jem", "stage": stage, "seed": 0, "run_dir": str(run), "status": "complete"}
    (folder / "pipeline.json").write_text(json.dumps({"preset": "quick", "seeds": 1, "jobs": jobs}))
    page = build_index(folder).read_text()
    assert "judge jempp-mnist &lt; jem-mnist, label-free jem-mnist &lt; jempp-mnist" in page
    assert "jempp-mnist < jem-mnist" not in page


def test_a_resumed_run_does_not_set_the_pace(tmp_path):
    """A run an earlier invocation left near its end finishes in seconds: that says nothing about how fast
    the fresh runs will go, so the estimate keeps its pace of 1."""
    jobs = plan(1, only=["dvae"])
    first, second = (job.stage.minutes * 60 for job in jobs)
    started = pipeline.run_dir_of(tmp_path, "quick", jobs[0])[0]
    started.mkdir(parents=True)
    (started / "config.json").write_text("{}")
    book = pipeline._Book(tmp_path, "quick", 1, jobs, 1, out=lambda line: None)
    record = book.begin(jobs[0])
    record.update(status="complete", clock=record["clock"] - first / 20)
    book.end(jobs[0], record)
    assert book.time_left() == pytest.approx(second, rel=1e-3)
