"""Damaged files of a run directory or a pipeline folder give one clear error naming the file; a directory a
kill left half-created is created again."""

import pytest

from genlab.cli import main
from genlab.config import to_dict
from genlab.errors import RunError
from genlab.experiments.registry import get_experiment
from genlab.train.run_dir import RunDir


def _run(path) -> RunDir:
    config = get_experiment("classifier-mnist").config("smoke")
    return RunDir.create(path, {"experiment": "classifier-mnist", "preset": "smoke", "config": to_dict(config)})


@pytest.mark.parametrize("command", ["resume", "report"])
def test_a_summary_cut_short_is_named(tmp_path, capsys, command):
    run = _run(tmp_path / "run")
    run.summary_path.write_text('{"status": "compl')
    assert main([command, str(run.path)]) == 2
    err = capsys.readouterr().err
    assert f"{run.summary_path} is not valid JSON" in err and "Traceback" not in err
    assert "`genlab resume RUN_DIR` writes it again" in err


def test_a_summary_that_is_not_an_object_is_named(tmp_path, capsys):
    run = _run(tmp_path / "run")
    run.summary_path.write_text("[1, 2]")
    assert main(["resume", str(run.path)]) == 2
    assert f"{run.summary_path} is not a genlab summary (it holds a list)" in capsys.readouterr().err


def test_a_config_cut_short_is_named(tmp_path, capsys):
    run = _run(tmp_path / "run")
    run.config_path.write_text('{"experiment": ')
    assert main(["report", str(run.path)]) == 2
    assert f"{run.config_path} is not valid JSON" in capsys.readouterr().err


def test_a_damaged_pipeline_state_is_named(tmp_path, capsys):
    folder = tmp_path / "runs" / "pipeline-smoke"
    folder.mkdir(parents=True)
    (folder / "pipeline.json").write_bytes(b"\xff\xfe garbage")
    assert main(["run", "pipeline", "--preset", "smoke", "--runs-dir", str(tmp_path / "runs"), "--no-progress"]) == 2
    assert f"{folder / 'pipeline.json'} is not valid JSON" in capsys.readouterr().err


def test_a_run_killed_while_its_directory_was_created_is_created_again(tmp_path):
    path = tmp_path / "run"
    for folder in ("checkpoints", "samples", "figures"):
        (path / folder).mkdir(parents=True)
    (path / ".config.json.4242.tmp").write_text('{"experi')  # the config write the kill cut short
    RunDir.create(path, {"experiment": "classifier-mnist", "config": {}})
    assert RunDir.open(path).read_config()["experiment"] == "classifier-mnist"


@pytest.mark.parametrize("left", ["checkpoints/step_00000004.pt", "notes.txt"])
def test_a_directory_holding_anything_else_is_not_created_over(tmp_path, left):
    path = tmp_path / "run"
    for folder in ("checkpoints", "samples", "figures"):
        (path / folder).mkdir(parents=True)
    (path / left).write_text("kept")
    with pytest.raises(RunError, match="already exists and is not empty"):
        RunDir.create(path, {"experiment": "classifier-mnist", "config": {}})
    assert (path / left).read_text() == "kept" and not (path / "config.json").exists()
