"""Starting and resuming runs."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from genlab import __version__, distributed, judges
from genlab.config import from_dict, to_dict
from genlab.data import files
from genlab.errors import ConfigError, GenlabError, RunError
from genlab.eval.schema import warn_undeclared
from genlab.experiments.base import RunContext
from genlab.experiments.registry import get_experiment
from genlab.train.run_dir import RunDir


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def start_run(name: str, preset: str = "quick", sets: Mapping[str, Any] | None = None, seed: int | None = None,
              device: str = "auto", runs_dir: str | os.PathLike = "runs", run_dir: str | os.PathLike | None = None,
              data_dir: str | os.PathLike | None = None, progress: bool = True) -> RunDir:
    experiment = get_experiment(name)
    config = experiment.config(preset, sets, seed)
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
