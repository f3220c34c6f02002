"""Starting and resuming runs."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from genlab import __version__, distributed, judges
from genlab.config import from_dict, to_dict
from genlab.data import files
from genlab.data.registry import get_spec
from genlab.data.user import is_user
from genlab.errors import ConfigError, GenlabError, RunError
from genlab.eval.schema import warn_undeclared
from genlab.experiments.base import Experiment, RunContext, check_data
from genlab.experiments.registry import get_experiment
from genlab.train.run_dir import RunDir


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def start_run(name: str, preset: str = "quick", sets: Mapping[str, Any] | None = None, seed: int | None = None,
              device: str = "auto", runs_dir: str | os.PathLike = "runs", run_dir: str | os.PathLike | None = None,
              data_dir: str | os.PathLike | None = None, progress: bool = True, prerequisites: bool = True) -> RunDir:
    """Run an experiment in a new run directory. With ``prerequisites``, the classifiers it needs (its judge,
    JEM's pretrained start) that are not cached yet are trained first, each in its own run under
    ``runs_dir`` (beside ``run_dir`` if that is given); without, a missing one stops the run with the command that trains it."""
    experiment = get_experiment(name)
    config = experiment.config(preset, sets, seed)
    check_data(experiment, config)
    if prerequisites and os.environ.get("WORLD_SIZE", "1") == "1":  # under torchrun the ranks would race
        make_prerequisites(experiment, config, preset, device, Path(run_dir).parent if run_dir else runs_dir,
                           data_dir, progress)
    dist, dev = distributed.setup(device)
    stored = {"experiment": name, "preset": preset, "genlab_version": __version__, "config": to_dict(config)}
    created = None
    if dist.is_main:
        path = Path(run_dir) if run_dir else RunDir.default_path(Path(runs_dir), name, preset, config.seed)
        try:
            created = RunDir.create(path, stored).path
        finally:
            distributed.from_main(str(created) if created else None)
        with RunDir(created).writing():
            return _execute(RunContext(experiment, config, RunDir(created), dev, _path(data_dir), progress))
    created = distributed.from_main(None)
    if created is None:
        raise RunError("rank 0 could not create the run directory (its message says why)")
    return _execute_worker(RunContext(experiment, config, RunDir(created), dev, _path(data_dir), progress), stored)


@dataclass(frozen=True)
class Prerequisite:
    """A classifier a run needs: the experiment and overrides that train it, and how to find it cached."""

    role: str  # "judge" or "start_classifier"
    experiment: str
    seed: int
    sets: dict[str, Any]
    arch: dict[str, Any]


def prerequisites(experiment: Experiment, config: Any) -> list[Prerequisite]:
    """The classifiers a run of ``experiment`` with ``config`` loads, from the pipeline's stages (``Stage.needs``),
    made to fit the run's own dataset and, for JEM's start, its classifier's architecture."""
    from genlab.experiments.pipeline import STAGES  # the pipeline runs experiments through this module

    stage = next((s for s in STAGES if s.experiment == experiment.name), None)
    dataset = config.data.dataset
    if stage is None or not get_spec(dataset).classes:  # unlabelled images are judged without a classifier
        return []
    needed = []
    for need in stage.needs:
        need_sets = next(s for s in STAGES if s.name == need).sets
        sets = {k: v for k, v in need_sets.items() if k != "seed"}
        seed = need_sets.get("seed", 0)
        arch = {}
        if seed != 0 and hasattr(config.model, "pretrained_seed"):  # the classifier JEM starts from
            seed = config.model.pretrained_seed
            arch = {"arch": config.model.arch, "width": config.model.width, "norm": config.model.norm}
            sets.update({f"model.{k}": v for k, v in arch.items()})
        if is_user(dataset):
            sets["data.dataset"] = dataset
        needed.append(Prerequisite("start_classifier" if arch else "judge", judges.classifier_experiment(dataset),
                                   seed, sets, arch))
    return needed


def make_prerequisites(experiment: Experiment, config: Any, preset: str, device: str = "auto",
                       runs_dir: str | os.PathLike = "runs", data_dir: str | os.PathLike | None = None,
                       progress: bool = True) -> list[RunDir]:
    """Train each classifier the run needs that no cached one fit for it provides (smoke runs get smoke
    classifiers, others quick ones), saying so on stderr with its time. Returns the new runs."""
    made = []
    dataset = config.data.dataset
    for need in prerequisites(experiment, config):
        with judges.serving(preset):
            try:
                judges.find(dataset, seed=need.seed if need.arch else None, arch=need.arch or None, role=need.role)
                continue
            except GenlabError:
                pass
        classifier_preset = "smoke" if preset == judges.SMOKE else "quick"
        what = "judge" if need.role == "judge" else "pretrained start"
        print(f"genlab: {experiment.name} needs a {dataset} classifier as its {what} (seed {need.seed}); training "
              f"it first: {need.experiment} --preset {classifier_preset}", file=sys.stderr)
        started = time.perf_counter()
        made.append(start_run(need.experiment, classifier_preset, need.sets, need.seed, device, runs_dir,
                              data_dir=data_dir, progress=progress, prerequisites=False))
        print(f"genlab: the {what} took {time.perf_counter() - started:.0f} s ({made[-1].path})", file=sys.stderr)
    return made


def resume_run(path: str | os.PathLike, device: str = "auto", data_dir: str | os.PathLike | None = None,
               progress: bool = True) -> RunDir:
    """Continue a run from its newest good checkpoint; a finished run only gets its report rebuilt."""
    dist, dev = distributed.setup(device)
    run = RunDir.open(path)
    with run.writing() if dist.is_main else contextlib.nullcontext():
        return _resume(run, dev, data_dir, progress, dist.is_main)


def _resume(run: RunDir, dev: torch.device, data_dir: str | os.PathLike | None, progress: bool,
            is_main: bool) -> RunDir:
    stored = run.read_config()
    experiment = get_experiment(stored["experiment"])
    try:
        config = from_dict(experiment.config_type, stored["config"])
    except ConfigError as err:
        raise RunError(f"{run.config_path} no longer matches experiment '{experiment.name}': {err.message}",
                       hint="restore the original config.json, or start a new run") from None
    summary = run.read_summary()
    if summary and summary.get("status") == "complete":
        return run
    ctx = RunContext(experiment, config, run, dev, _path(data_dir), progress)
    return _execute(ctx) if is_main else _execute_worker(ctx, stored)


def _path(value: str | os.PathLike | None) -> Path | None:
    return Path(value) if value else None


def _execute(ctx: RunContext) -> RunDir:
    seed_everything(ctx.config.seed)
    distributed.decorrelate(ctx.config.seed)
    if ctx.config.log.tensorboard and distributed.current().is_main:
        ctx.tensorboard = _tensorboard_writer(ctx.run.path / "tensorboard")
    preset = ctx.run.read_config().get("preset", "")
    try:
        with files.recording(announce=distributed.current().is_main) as data_roots, \
                judges.serving(preset) as classifiers:
            metrics = ctx.experiment.run(ctx)
    finally:
        if ctx.tensorboard:
            ctx.tensorboard.close()
    # where the data came from and which classifiers judged or started the run (judge, start_classifier)
    ctx.run.write_summary({**ctx.summary(metrics), "data_root": data_roots, **classifiers})
    warn_undeclared(metrics, ctx.experiment.family, ctx.experiment.name)  # after writing: the results are kept
    return ctx.run


def _execute_worker(ctx: RunContext, stored: dict) -> RunDir:
    """A rank other than 0: the same run, reading rank 0's checkpoints, writing into a scratch directory."""
    scratch = Path(tempfile.mkdtemp(prefix=f"genlab-rank{distributed.current().rank}-"))
    try:
        ctx.checkpoints, ctx.run, ctx.progress = ctx.run.checkpoints, RunDir.create(scratch / "run", stored), False
        _execute(ctx)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return RunDir(ctx.checkpoints.parent)


def _tensorboard_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise GenlabError("log.tensorboard=true needs the tensorboard package, which is not installed",
                          hint="pip install 'genlab[tensorboard]', or drop --set log.tensorboard=true") from None
    return SummaryWriter(str(folder))
