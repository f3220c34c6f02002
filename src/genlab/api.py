"""genlab from Python and notebooks: run an experiment, load what it trained, sample, score, report.

    from genlab import api
    summary, run_dir = api.run("ebm-cifar10-buffer", "smoke", sets={"data.dataset": "folder:~/faces?size=32"})
    trained = api.load(run_dir)            # its config, summary and trained network
    images = api.sample(trained, n=64)     # float (64, C, H, W) in [-1, 1]
    api.score(images, "folder:~/faces?size=32", preset="smoke")
    api.report(run_dir)                    # the run's report.html

The same functions the CLI calls; errors are :class:`genlab.errors.GenlabError` with a ``hint``. Training
shows a progress bar (a notebook widget in Jupyter, through ``tqdm.auto``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from genlab import judges
from genlab.config import from_dict
from genlab.data.registry import get_spec
from genlab.errors import ConfigError
from genlab.eval.samples_io import load_samples
from genlab.eval.score import score_samples
from genlab.experiments.base import trained_state
from genlab.experiments.registry import get_experiment
from genlab.experiments.runner import start_run
from genlab.nets.classifiers import build_classifier
from genlab.report.html import build_report
from genlab.train.run_dir import RunDir

__all__ = ["Trained", "load", "report", "run", "sample", "score"]


def run(experiment: str, preset: str = "smoke", seed: int | None = None, sets: Mapping[str, Any] | None = None, *,
        runs_dir: str | os.PathLike = "runs", device: str = "auto", data_dir: str | os.PathLike | None = None,
        progress: bool = True, prerequisites: bool = True) -> tuple[dict[str, Any], Path]:
    """Run ``experiment`` with ``preset`` and ``sets`` (dotted keys, as ``--set``) in a new run directory,
    training the classifiers it needs first (unless ``prerequisites`` is false), and build its report.
    Returns the run's summary and its directory."""
    done = start_run(experiment, preset, sets, seed, device, runs_dir, data_dir=data_dir, progress=progress,
                     prerequisites=prerequisites)
    build_report(done.path)
    return done.read_summary(), done.path


@dataclass
class Trained:
    """A finished run as Python objects: its experiment, typed config, summary and trained network (in eval
    mode: the energy network, JEM's classifier, the GAN's best generator, the discrete VAE or the classifier)."""

    run_dir: Path
    experiment: str
    config: Any
    summary: dict[str, Any]
    model: torch.nn.Module

    @property
    def figures(self) -> list[Path]:
        """The run's figures (PNG), by name."""
        return sorted((self.run_dir / "figures").glob("*.png"))


def load(run_dir: str | os.PathLike, device: torch.device | str = "cpu") -> Trained:
    """A trained run: its config, summary and the network of its newest checkpoint."""
    stored = RunDir.open(run_dir).read_config()
    experiment = get_experiment(stored["experiment"])
    run_, config, state = trained_state(run_dir, experiment.config_type, device)
    model = _network(experiment.family, config, state["trainer"]).to(device).eval()
    return Trained(run_.path, experiment.name, config, run_.read_summary() or {}, model)


def _network(family: str, cfg: Any, state: dict[str, Any]) -> torch.nn.Module:
    """The trained network of a family's checkpoint state, built as its run built it."""
    spec = get_spec(cfg.data.dataset)
    if family == "ebm":
        from genlab.experiments.ebm import build_model
        model = build_model(cfg)
    elif family == "gan":
        from genlab.experiments.gans import build_networks
        model = build_networks(cfg)[0]
        state = {"model": state["best"]["generator"] or state["generator"]}
    elif family == "dvae":
        from genlab.train.dvae import dvae_from_config
        model = dvae_from_config(cfg.model, spec.image_shape[0], spec.image_shape[-1])
    else:  # jem, classifier
        model = build_classifier(cfg.model.arch, spec.image_shape[0], len(spec.classes), cfg.model.width,
                                 cfg.model.norm)
    model.load_state_dict(state["model"])
    return model


def sample(run: str | os.PathLike | Trained, n: int = 100, label: int | None = None, steps: int | None = None,
           init: str = "buffer", device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` samples of a trained EBM, JEM or GAN run (of class ``label`` for a conditional one) as float
    images (n, C, H, W) in [-1, 1], drawn as `genlab sample` draws them (and saved with the run likewise)."""
    run_dir = run.run_dir if isinstance(run, Trained) else Path(run)
    experiment = get_experiment(RunDir.open(run_dir).read_config()["experiment"])
    if experiment.sample is None:
        raise ConfigError(f"{experiment.name} runs have no sampler ({experiment.family} models are not generative "
                          "here)", hint="sample an ebm, jem or gan run")
    path = experiment.sample(run_dir, n=n, label=label, steps=steps, init=init, device=device)
    stored = RunDir.open(run_dir).read_config()
    shape = get_spec(from_dict(experiment.config_type, stored["config"]).data.dataset).image_shape
    return load_samples(path, shape)[0]


def score(samples: torch.Tensor, dataset: str, labels: torch.Tensor | None = None, preset: str | None = None,
          split: str = "test", device: torch.device | str = "cpu",
          data_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Every sample-quality metric of ``samples`` (float in [-1, 1] or uint8) against ``dataset``'s ``split``,
    read by the dataset's judge. A judge must be fit for ``preset``: smoke classifiers judge only when
    ``preset="smoke"`` (the samples of a smoke run)."""
    with judges.serving(preset) if preset else contextlib.nullcontext():
        return score_samples(samples, dataset, labels, split=split, data_dir=data_dir, device=device)


def report(run_dir: str | os.PathLike) -> Path:
    """Build (or rebuild) a run's ``report.html`` from its directory; returns its path."""
    return build_report(run_dir)
