"""Bad input gives one clear line and a hint, exit code 2, no traceback."""

import json

import pytest
import torch

from genlab.cli import main


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("genlab: error: ") and "Traceback" not in err
    return err


def test_unknown_experiment(capsys):
    assert "unknown experiment 'nope'; experiments: classifier-mnist" in _error(capsys, ["run", "nope"])


def test_unknown_preset(capsys):
    assert "has no preset 'huge'; presets: smoke, quick, full" in _error(
        capsys, ["run", "classifier-mnist", "--preset", "huge"])


def test_unknown_key(capsys):
    err = _error(capsys, ["run", "classifier-mnist", "--set", "train.lrr=0.1"])
    assert "unknown config key 'train.lrr'" in err and "did you mean 'lr'" in err


@pytest.mark.parametrize("assignment, message", [
    ("train.batch_size=0", "'train.batch_size' must be >= 1; got 0"),
    ("train.lr=-1", "'train.lr' must be > 0; got -1.0"),
    ("train.epochs=many", "'train.epochs' expects a float, got 'many'"),
    ("model.arch=vgg", "'model.arch' must be one of 'cnn', 'resnet9'; got 'vgg'"),
    ("log.checkpoint_every=7", "must be a multiple of log.every"),
])
def test_bad_values(capsys, assignment, message):
    assert message in _error(capsys, ["run", "classifier-mnist", "--set", assignment])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_device(capsys, tmp_path):
    err = _error(capsys, ["run", "classifier-mnist", "--device", "cuda", "--run-dir", str(tmp_path / "r")])
    assert "CUDA is not available" in err and "--device cpu" in err
    assert not (tmp_path / "r").exists()


def test_resume_of_a_directory_that_is_not_a_run(capsys, tmp_path):
    assert "is not a genlab run directory (it has no config.json)" in _error(capsys, ["resume", str(tmp_path)])
    assert "does not exist" in _error(capsys, ["resume", str(tmp_path / "missing")])


def test_run_directory_that_already_exists(capsys, tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "keep.txt").write_text("precious")
    err = _error(capsys, ["run", "classifier-mnist", "--run-dir", str(tmp_path / "r")])
    assert "already exists and is not empty" in err and "genlab resume" in err
    assert (tmp_path / "r" / "keep.txt").read_text() == "precious"


def test_unwritable_output_folder(capsys, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    err = _error(capsys, ["run", "classifier-mnist", "--run-dir", str(tmp_path / "file" / "run")])
    assert "cannot write the run directory" in err


def test_resume_with_a_config_of_another_shape(capsys, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"experiment": "classifier-mnist",
                                                      "config": {"train": {"speed": 3}}}))
    assert "no longer matches experiment 'classifier-mnist'" in _error(capsys, ["resume", str(tmp_path)])


def test_unknown_dataset(capsys):
    assert "unknown dataset 'svhn'" in _error(capsys, ["data", "check", "svhn"])


def test_debug_shows_the_traceback(capsys):
    from genlab.errors import ConfigError
    with pytest.raises(ConfigError):
        main(["--debug", "run", "nope"])
