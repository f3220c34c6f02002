"""genlab.api: a run's round trip from Python (run, load, sample, score, report), and what a run needs first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from genlab import api
from genlab.errors import ConfigError
from genlab.experiments.registry import get_experiment
from genlab.experiments.runner import prerequisites
from test_own_data import write_folder


def test_a_jem_run_needs_its_judge_and_a_seed1_start_built_like_its_own_classifier(tmp_path):
    name = f"folder:{write_folder(tmp_path / 'shapes', per_class=2)}"
    experiment = get_experiment("jem-mnist")
    needs = prerequisites(experiment, experiment.config("smoke", {"data.dataset": name}))
    assert [(n.role, n.experiment, n.seed) for n in needs] == [("judge", "classifier-mnist", 0),
                                                              ("start_classifier", "classifier-mnist", 1)]
    assert needs[0].sets == {"data.dataset": name}
    assert needs[1].sets == {"model.norm": "none", "model.arch": "cnn", "model.width": 8, "data.dataset": name}
    builtin = prerequisites(get_experiment("jempp-mnist"), get_experiment("jempp-mnist").config("quick"))
    assert [(n.experiment, n.seed, n.arch.get("norm")) for n in builtin] == [("classifier-mnist", 0, None),
                                                                             ("classifier-mnist", 1, "batch")]
    flat = f"folder:{write_folder(tmp_path / 'flat', per_class=2, labelled=False)}"
    ebm = get_experiment("ebm-cifar10-buffer")
    assert prerequisites(ebm, ebm.config("smoke", {"data.dataset": flat})) == []  # judged by random features


@pytest.mark.slow
def test_run_load_sample_score_report_round_trip(tmp_path, one_thread):
    name = f"folder:{write_folder(tmp_path / 'shapes')}"
    summary, run_dir = api.run("ebm-mnist-cond", "smoke", sets={"data.dataset": name}, runs_dir=tmp_path / "runs",
                               progress=False)
    assert summary["status"] == "complete" and run_dir.is_dir() and (run_dir / "report.html").is_file()

    trained = api.load(run_dir)
    assert trained.config.data.dataset == name and trained.summary == summary
    assert trained.model.num_outputs == 3 and not trained.model.training
    assert "curves.png" in [p.name for p in trained.figures]

    images = api.sample(trained, n=6, label=2)
    assert images.shape == (6, 1, 28, 28) and images.min() >= -1 and images.max() <= 1
    scores = api.score(images, name, labels=torch.full((6,), 2), preset="smoke")
    assert scores["samples"] == 6 and 0 <= scores["class_accuracy"] <= 1
    with pytest.raises(Exception, match="fit to serve"):  # a smoke judge does not judge samples in general
        api.score(images, name)
    assert api.report(run_dir) == run_dir / "report.html"


def test_sampling_a_run_without_a_sampler_is_one_clear_error(tmp_path):
    from genlab.train.run_dir import RunDir
    run = RunDir.create(tmp_path / "run", {"experiment": "dvae-mnist", "preset": "smoke", "config": {}})
    with pytest.raises(ConfigError, match="no sampler"):
        api.sample(run.path)


def test_the_readme_example_of_the_building_blocks_trains_a_users_own_energy():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("**The building blocks on your own model.**", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    torch.manual_seed(0)
    exec(compile(code, "README.md", "exec"), scope)
    assert torch.isfinite(scope["loss"]) and scope["negatives"].shape == (64, 1, 28, 28)
    assert scope["buffer"].pushed == 64 and scope["negatives"].abs().max() <= 1
