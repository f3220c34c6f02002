"""Experiments: a config type, named presets of it, and the function that runs it in a run directory."""

from __future__ import annotations

import functools
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torchvision.utils as vutils

from genlab import __version__, distributed
from genlab.config import ConfigError, config_hash, from_dict, override
from genlab.data.batches import Batches
from genlab.data.datasets import ImageSet, load, split_indices
from genlab.data.registry import cache_key, get_spec
from genlab.data.user import is_user
from genlab.devices import cpu_model, has_native_bf16, host_kind
from genlab.errors import CheckpointError, DataError
from genlab.report.figures import plt, save
from genlab.sampling import StartDistribution, fit_starts
from genlab.train.checkpoint import CheckpointStore
from genlab.train.guard import DivergenceGuard
from genlab.train.loop import Trainer, run_loop
from genlab.train.run_dir import RunDir

@dataclass(frozen=True)
class Experiment:
    """``presets`` map a preset name to dotted-key overrides of ``config_type``'s defaults, on top of ``base``."""

    name: str
    family: str
    summary: str
    config_type: type
    run: Callable[["RunContext"], dict[str, Any]]
    presets: Mapping[str, Mapping[str, Any]]
    base: Mapping[str, Any] = field(default_factory=dict)
    sample: Callable[..., Path] | None = None  # `genlab sample RUN_DIR` for this experiment's runs

    def config(self, preset: str = "quick", sets: Mapping[str, Any] | None = None, seed: int | None = None) -> Any:
        if preset not in self.presets:
            raise ConfigError(f"experiment '{self.name}' has no preset '{preset}'; presets: {', '.join(self.presets)}",
                              hint=f"use --preset {' or '.join(self.presets)}")
        cfg = override(self.config_type(), {**self.base, **self.presets[preset]})
        cfg = override(cfg, dict(sets or {}))
        return override(cfg, {"seed": seed}) if seed is not None else cfg


def trained_state(run_dir: str | Path, config_cls: type, device: torch.device | str) -> tuple[RunDir, Any, dict]:
    """A run's directory, its config and its latest checkpoint, for sampling a trained model."""
    run = RunDir.open(run_dir)
    stored = run.read_config()
    cfg = from_dict(config_cls, stored["config"])
    store = CheckpointStore(run.checkpoints)
    state = store.latest({"experiment": stored["experiment"], "config_hash": config_hash(stored["config"])},
                         map_location=device)
    if state is None:
        unreadable = len(store.paths())  # latest() skipped each with a warning naming it
        if unreadable:
            raise CheckpointError(f"none of the {unreadable} checkpoints in {run.checkpoints} is readable",
                                  hint="restore them from a backup, or train the run again")
        raise CheckpointError(f"{run.checkpoints} holds no checkpoint to sample from",
                              hint="train the run first (genlab run or genlab resume)")
    return run, cfg, state


def fitted_starts(start: str, dataset: str, train_limit: int, device: torch.device | str, clusters: int = 0,
                  seed: int = 0) -> StartDistribution | None:
    """The informative chain starts (``sampler.start``: ``gaussian``, ``clusters``) a run fitted to its training
    images (the first ``train_limit``, 0: all), refitted the same way; None for uniform noise."""
    train = load(dataset, "train")
    limit = train_limit or len(train)
    return fit_starts(start, train.images[:limit], train.labels[:limit], len(train.classes), clusters, seed, device)


def uses_labels(experiment: Experiment, config: Any) -> bool:
    """Whether a run of ``experiment`` with ``config`` needs labelled data: classifiers, JEM, the discrete VAE's
    true-vs-pseudo comparison, and conditional or class-Gaussian-started EBMs and GANs."""
    if experiment.family in ("classifier", "jem", "dvae"):
        return True
    conditional = any(getattr(getattr(config, section, None), "conditional", False) for section in ("data", "model"))
    return conditional or getattr(getattr(config, "sampler", None), "start", "") == "gaussian"


# the image side each family's networks are built for, where they are not size-free: the DCGAN networks make
# 28x28 images; the discrete VAE's encoder halves the side twice
_SIDES = {"gan": (lambda side: side == 28, "28"), "dvae": (lambda side: side % 4 == 0, "a multiple of 4")}


def check_data(experiment: Experiment, config: Any) -> None:
    """What a study asks of a user's dataset, checked before its run starts: labels of two classes at least
    where it uses them, and square images of a side its networks are built for."""
    name = config.data.dataset
    if not is_user(name):
        return
    spec = get_spec(name)
    if uses_labels(experiment, config) and len(spec.classes) < 2:
        found = "has no labels (a flat folder, or an .npz file without 'labels')" if not spec.classes else \
            f"has one class only ({spec.classes[0]})"
        raise DataError(f"{experiment.name} with these settings needs labelled images of two classes at least; "
                        f"{name} {found}", hint="put each class's images in its own sub-folder (or save labels in "
                                                "the .npz file), or run an unconditional study (ebm-cifar10-buffer, "
                                                "gan-hoda)")
    rule = _SIDES.get(experiment.family)
    _, h, w = spec.image_shape
    if rule and (h != w or not rule[0](h)):
        raise DataError(f"{experiment.name} needs square images of side {rule[1]}; {name} has {h}x{w}",
                        hint=f"fit them in the dataset name, e.g. {name.partition('?')[0]}?size=28&fit=pad")


def machine_info(device: torch.device) -> dict[str, Any]:
    """Where a run or a benchmark ran. The CPU model and the vector instructions torch uses are recorded
    because hosts of the same nominal size differ (AMX, AVX-512 BF16 without AMX, AVX2): what runs the sampler
    fastest there is measured, not read from these flags (sampler.precision=auto, :mod:`genlab.sampling.precision`)."""
    info = {"device": str(device), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "native_bf16": has_native_bf16(device), "host_kind": host_kind(), "cpu_threads": torch.get_num_threads(),
            "processes": distributed.current().world_size}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


@dataclass
class RunContext:
    """What an experiment's run function gets: its config, run directory, device and helpers."""

    experiment: Experiment
    config: Any
    run: RunDir
    device: torch.device
    data_dir: Path | None = None
    progress: bool = True
    notes: list[str] = field(default_factory=list)
    loop_facts: dict[str, Any] = field(default_factory=dict)
    tensorboard: Any = None
    classes: tuple[str, ...] | None = None
    checkpoints: Path | None = None  # where checkpoints live, if not in ``run`` (ranks > 0 under torchrun)
    sampler_precision: dict[str, Any] | None = None  # the sampler's precision decision (families that sample)

    @functools.cached_property
    def config_hash(self) -> str:
        """The hash of the config as the run's config.json holds it. Not of the parsed config: that one
        also holds any field added to genlab since the run started (at its default), and its hash would
        make the run's own checkpoints look like another config's."""
        return config_hash(self.run.read_config()["config"])

    def load_data(self, name: str, split: str, limit: int = 0, split_seed: int = 0) -> ImageSet:
        """A dataset split (its first ``limit`` images if > 0); partial-data notes go to the summary."""
        data = load(name, split, self.data_dir, split_seed=split_seed)
        if data.note and data.note not in self.notes:
            self.notes.append(data.note)
        self._save_split(name, split_seed)
        return data.subset(torch.arange(min(limit, len(data)))) if limit else data

    def batches(self, data: ImageSet, batch_size: int, seed: int) -> Batches:
        """Shuffled training batches; under torchrun each rank gets its share of every global batch."""
        dist = distributed.current()
        return Batches(data, batch_size, seed, self.device, dist.rank, dist.world_size)

    def _save_split(self, name: str, split_seed: int) -> None:
        """Hoda's and a user dataset's held-out images are chosen by a seeded split: keep the indices with
        the run (``splits/hoda_seed0.npz``, ``splits/user-<content hash>_seed0.npz``)."""
        path = self.run.path / "splits" / f"{cache_key(name)}_seed{split_seed}.npz"
        if not path.exists():
            indices = split_indices(name, self.data_dir, split_seed)
            if indices is not None:
                path.parent.mkdir(exist_ok=True)
                np.savez_compressed(path, **indices)

    def train(self, trainer: Trainer, total_steps: int, guard: DivergenceGuard, desc: str | None = None,
              time_budget_s: float = 0.0) -> None:
        """Run the shared loop to ``total_steps`` (or until ``time_budget_s`` of training, if > 0), resuming
        from the newest checkpoint if there is one."""
        log = self.config.log
        meta = {"experiment": self.experiment.name, "config_hash": self.config_hash}
        store = CheckpointStore(self.checkpoints or self.run.checkpoints, keep=log.keep_checkpoints)
        trainer.distribute(self.device)
        self.loop_facts = run_loop(self.run, trainer, log.schedule(total_steps, time_budget_s), guard, store, meta, self.device,
                                   progress=self.progress, desc=desc or self.experiment.name,
                                   on_log=self._tensorboard_scalars if self.tensorboard else None)

    def _tensorboard_scalars(self, step: int, split: str, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.tensorboard.add_scalar(f"{split}/{key}", value, step)

    def save_figure(self, fig: plt.Figure, name: str) -> Path:
        return save(fig, self.run.figures / f"{name}.png")

    def save_grid(self, images: torch.Tensor, name: str, nrow: int = 10, step: int | None = None) -> Path:
        """Save float images in [-1, 1] as a PNG grid under samples/ (and to TensorBoard if on)."""
        grid = vutils.make_grid(images.detach().float().cpu().clamp(-1, 1), nrow=nrow, normalize=True,
                                value_range=(-1, 1), padding=2)
        path = self.run.samples / f"{name}.png"
        vutils.save_image(grid, path)
        if self.tensorboard:
            self.tensorboard.add_image(name, grid, step or 0)
        return path

    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]:
        stored = self.run.read_config()
        return {"experiment": self.experiment.name, "family": self.experiment.family,
                "preset": stored.get("preset"), "seed": self.config.seed, "status": "complete",
                "metrics": metrics, "classes": list(self.classes) if self.classes else None, "notes": self.notes,
                "wall_time_s": round(self.loop_facts.get("wall_time_s", 0.0), 2),
                "rollbacks": self.loop_facts.get("rollbacks", 0), "steps_done": self.loop_facts.get("steps"),
                "machine": machine_info(self.device), "genlab_version": __version__,
                **({"sampler_precision": self.sampler_precision} if self.sampler_precision else {}),
                "finished_at": time.strftime("%Y-%m-%d %H:%M:%S")}
