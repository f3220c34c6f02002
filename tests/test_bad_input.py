"""Bad input across the experiments and commands: one line saying what is wrong and what to do, exit
code 2, no traceback, nothing written. (Data, checkpoint and reader faults have their own test files.)"""

import pytest

from genlab.cli import main

CASES = {
    "negative step size": (["run", "ebm-mnist-cond", "--set", "sampler.step_size=-1"],
                           "'sampler.step_size' must be > 0; got -1.0"),
    "zero SGLD steps": (["run", "jem-mnist", "--set", "sampler.steps=0"], "'sampler.steps' must be >= 1; got 0"),
    "reinit probability above 1": (["run", "ebm-cifar10-buffer", "--set", "sampler.reinit_prob=1.5"],
                                   "'sampler.reinit_prob' must be <= 1; got 1.5"),
    "K below 2": (["run", "dvae-mnist", "--set", "cluster.k=1"], "'cluster.k' must be >= 2; got 1"),
    "batch norm in a WGAN-GP critic": (["run", "wgangp-hoda", "--set", "model.d_norm=batch"],
                                       "model.d_norm=batch cannot be used with train.objective=wgan-gp"),
    "fewer images than one batch": (["run", "gan-hoda", "--set", "data.train_limit=10"],
                                    "data.train_limit (10) is smaller than one batch"),
    "a CUDA device on a machine without one": (["run", "classifier-mnist", "--device", "cuda:3"],
                                               "device 'cuda:3' was asked for but CUDA is not available"),
    "show an unknown experiment": (["show", "nope"], "unknown experiment 'nope'"),
    "check an unknown dataset": (["data", "check", "nope"], "unknown dataset 'nope'; known datasets: mnist"),
    "pipeline with no seeds": (["run", "pipeline", "--seeds", "0"], "--seeds must be at least 1; got 0"),
    "pipeline with an unknown study": (["run", "pipeline", "--only", "vae"], "unknown study or stage 'vae'"),
}


@pytest.mark.parametrize("argv, message", CASES.values(), ids=CASES.keys())
def test_bad_arguments_are_one_clear_line(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    if argv[0] == "run":
        argv = [*argv, "--runs-dir", str(tmp_path / "runs")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("genlab: error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.json"))


@pytest.mark.parametrize("command", [["report"], ["resume"], ["sample"], ["eval", "run"]])
def test_commands_on_a_folder_that_is_not_a_run(capsys, tmp_path, command):
    (tmp_path / "notes.txt").write_text("mine")
    assert main([*command, str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not a genlab run directory (it has no config.json)" in err and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_scoring_a_samples_file_that_does_not_exist(capsys, tmp_path):
    assert main(["eval", "samples", str(tmp_path / "missing.npz"), "--dataset", "mnist"]) == 2
    assert "samples file" in capsys.readouterr().err
