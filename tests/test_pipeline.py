"""The pipeline: its plan, and the smoke pipeline end to end with its index report."""

import json
import shutil
from pathlib import Path

import pytest

from genlab.cli import main
from genlab.errors import ConfigError
from genlab.experiments.pipeline import plan
from browser import needs_chromium, render
from conftest import needs_data


def test_plan_adds_the_classifiers_a_study_needs():
    keys = [job.key for job in plan(2, only=["jem"])]
    assert keys[:2] == ["classifier-mnist", "classifier-cifar10"]
    assert "classifier-mnist-seed1-nobn" in keys and "classifier-hoda" not in keys
    assert "jempp-mnist/seed1" in keys and not any(k.startswith("ebm") for k in keys)
    assert all(not k.startswith("jem") for k in [j.key for j in plan(1, skip=["jem"])])


def test_plan_rejects_unknown_studies_and_zero_seeds():
    with pytest.raises(ConfigError, match="unknown study 'vae'"):
        plan(1, only=["vae"])
    with pytest.raises(ConfigError, match="--seeds must be at least 1"):
        plan(0)


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
