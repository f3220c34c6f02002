"""`ebm-cifar10-sampling-study`: how the Langevin sampler's settings change the samples of one trained energy.

For a finished `ebm-cifar10-buffer` run, a grid of sampler settings: the form of the update (coupled:
x - eps^2/2 grad + eps noise; decoupled: x - step grad + sigma noise), its step size eps, the chain length
T, the noise schedule along the chain (constant, geometric decay, cosine decay; see
:mod:`genlab.sampling.schedules`) and where chains start (uniform noise, draws from Gaussians fitted to
each class's training images, or the run's saved replay buffer).
Each cell draws the same number of chains from the same starts and records the domain FID of their end
points (in the judge's features), their label-free FID (in the features of a fixed random network,
:mod:`genlab.eval.randnet`), their mean energy against the test images' and the seconds per sample.

Constant-schedule chains are memoryless, so the cells T = 10, 20, 40, 80 of one setting are read off one
chain of 80 steps at those points; a decaying schedule depends on T and runs each length anew. The cost
of a grid in sampler steps is :func:`sample_steps`.

The study's answer is the cell with the lowest mean of its ranks by domain FID and by label-free FID
(:func:`ranked`): the judge's features alone can be fooled by saturated samples that the label-free space
sees. `benchmarks/sampling_study.py` trains with the best few settings (:func:`training_sets`) over seeds.
"""

from __future__ import annotations

import csv
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import torch

from genlab.config import param, section
from genlab.data.batches import to_float
from genlab.errors import ConfigError
from genlab.eval.judge import Judge
from genlab.eval.quality import best_first, fid
from genlab.eval.randnet import randnet_features
from genlab.eval.score import reference_embedding
from genlab.experiments.base import Experiment, RunContext, fitted_starts, trained_state
from genlab.experiments.ebm import EBMConfig, build_model
from genlab.io import read_json
from genlab.report.figures import grids_figure, heatmap_figure
from genlab.sampling import SamplerConfig, buffer_starts, run_chain, uniform_noise

SOURCE_EXPERIMENT = "ebm-cifar10-buffer"
Form = Literal["coupled", "decoupled"]
ScheduleKind = Literal["constant", "decay", "cosine"]
Start = Literal["uniform", "gaussian", "buffer"]


@dataclass
class SourceConfig:
    run_dir: str = param("", f"the trained {SOURCE_EXPERIMENT} run to sample (empty: the pipeline's run of this "
                             "preset and seed in the same runs folder, else the newest finished one there)")


@dataclass
class StudyDataConfig:
    dataset: str = param("cifar10", "the data the sampled energy was trained on: its judge scores the samples")


@dataclass
class GridConfig:
    coupled: tuple[float, ...] = param((0.01, 0.03, 0.1), "eps of the coupled form (drift eps^2/2, noise eps); "
                                                          "empty: no coupled cells", gt=0)
    decoupled: tuple[float, ...] = param((3.0, 10.0, 30.0), "step of the decoupled form; empty: no decoupled "
                                                            "cells", gt=0)
    noise: float = param(0.005, "decoupled form: the noise at the first step (it follows the step's schedule)", ge=0)
    steps: tuple[int, ...] = param((10, 20, 40, 80), "chain lengths T", ge=1)
    schedules: tuple[ScheduleKind, ...] = param(("constant", "decay", "cosine"), "noise schedules along a chain")
    starts: tuple[Start, ...] = param(("uniform", "gaussian", "buffer"),
                                      "chain starts: uniform noise, draws from Gaussians fitted to each class's "
                                      "training images (JEM++'s informative start), the run's replay buffer")
    end_ratio: float = param(0.1, "decaying schedules end at eps * end_ratio", gt=0, le=1)
    samples: int = param(200, "chains per cell (the same starts for every cell)", ge=2)
    batch_size: int = param(100, "chains run at once", ge=1)

    def check(self) -> None:
        if not self.coupled and not self.decoupled:
            raise ConfigError("the grid has no step sizes", hint="set grid.coupled or grid.decoupled, e.g. "
                                                                 "--set grid.decoupled=10")
        for key in ("steps", "schedules", "starts"):
            if not getattr(self, key):
                raise ConfigError(f"grid.{key} is empty", hint=f"give at least one value: --set grid.{key}=...")


@dataclass
class StudyLogConfig:
    tensorboard: bool = param(False, "also write the cells' sample grids to TensorBoard (needs the tensorboard "
                                     "package)")


@dataclass
class SamplingStudyConfig:
    seed: int = param(0, "seeds the chain starts and noise; also picks the pipeline's source run of that seed")
    source: SourceConfig = section(SourceConfig)
    data: StudyDataConfig = section(StudyDataConfig)
    grid: GridConfig = section(GridConfig)
    reference_images: int = param(1000, "test images the samples are compared with (at most)", ge=2)
    corner_images: int = param(64, "samples shown in each corner's grid", ge=1)
    log: StudyLogConfig = section(StudyLogConfig)


@dataclass(frozen=True)
class Cell:
    form: Form
    eps: float
    steps: int
    schedule: ScheduleKind
    start: Start

    @property
    def name(self) -> str:
        return f"{self.form}-eps{self.eps:g}-T{self.steps}-{self.schedule}-{self.start}"

    def describe(self) -> str:
        size = f"eps {self.eps:g}" if self.form == "coupled" else f"step {self.eps:g}"
        return f"{self.form} {size}, T={self.steps}, {self.schedule} schedule, {self.start} start"


def form_values(grid: GridConfig) -> dict[str, tuple[float, ...]]:
    """The step sizes of each form in the grid (forms without any left out)."""
    return {form: values for form, values in (("coupled", grid.coupled), ("decoupled", grid.decoupled)) if values}


def cells(grid: GridConfig) -> list[Cell]:
    """Every cell of the grid: form x eps x T x schedule x start."""
    return [Cell(form, eps, steps, schedule, start) for form, values in form_values(grid).items() for eps in values
            for steps in grid.steps for schedule in grid.schedules for start in grid.starts]


def corners(grid: GridConfig, form: str, schedule: str, start: str) -> list[Cell]:
    """The corners of one (form, schedule, start) panel's eps x T plane: smallest and largest eps, shortest and
    longest chain (fewer when a side has one value)."""
    values = form_values(grid)[form]
    eps_ends = sorted({min(values), max(values)})
    t_ends = sorted({min(grid.steps), max(grid.steps)})
    return [Cell(form, eps, steps, schedule, start) for eps in eps_ends for steps in t_ends]


def sample_steps(grid: GridConfig) -> int:
    """Sampler steps of the whole grid, counted per chain: a constant schedule runs its longest T once (the
    shorter ones are read on the way), a decaying schedule runs every T."""
    per_setting = sum(max(grid.steps) if schedule == "constant" else sum(grid.steps) for schedule in grid.schedules)
    return per_setting * sum(len(v) for v in form_values(grid).values()) * len(grid.starts) * grid.samples


def sampler_for(base: SamplerConfig, cell: Cell, grid: GridConfig) -> SamplerConfig:
    """The run's sampler with the cell's settings (the decoupled noise decays with its step)."""
    return dataclasses.replace(base, kind="sgld", form=cell.form, step_size=cell.eps, steps=cell.steps,
                               schedule=cell.schedule, step_size_end=cell.eps * grid.end_ratio, noise=grid.noise,
                               noise_follows_step=True)


def training_sets(cell: Cell, grid: GridConfig) -> dict[str, Any]:
    """The `--set` overrides that train `ebm-cifar10-buffer` with a cell's sampler: its form, step, schedule and
    chain length, chains from the replay buffer (``buffer``, its fresh 5% as the run drew them) or fresh each
    iteration from uniform noise or the class Gaussians (``uniform``, ``gaussian``)."""
    start = {} if cell.start == "buffer" else {"sampler.start": cell.start}
    return {"sampler.form": cell.form, "sampler.step_size": cell.eps, "sampler.steps": cell.steps,
            "sampler.schedule": cell.schedule, "sampler.step_size_end": cell.eps * grid.end_ratio,
            "sampler.noise": grid.noise, "sampler.noise_follows_step": True,
            "sampler.init": "buffer" if cell.start == "buffer" else "noise", **start}


def find_source(ctx: RunContext) -> Path:
    """The trained run this study samples: ``source.run_dir``; else the pipeline's `ebm-cifar10-buffer` run of
    this preset and seed in this run's runs folder; else the newest finished run of that preset and seed there
    (the runs folder: the one above this run's experiment folder, or for a run placed with --run-dir, the
    folder holding it)."""
    cfg: SamplingStudyConfig = ctx.config
    if cfg.source.run_dir:
        return Path(cfg.source.run_dir)
    from genlab.experiments.pipeline import STAGES, Job, run_dir_of  # the pipeline imports the registry

    preset = ctx.run.read_config().get("preset", "quick")
    runs_dir = ctx.run.path.parent.parent
    stage = next(s for s in STAGES if s.name == SOURCE_EXPERIMENT)
    planned, _ = run_dir_of(runs_dir, preset, Job(stage, cfg.seed))
    if _finished(planned):
        return planned
    folders = [d / SOURCE_EXPERIMENT for d in (runs_dir, ctx.run.path.parent)]
    found = sorted((p for folder in folders for p in folder.glob("*") if _finished(p) and
                    read_json(p / "config.json").get("preset") == preset and
                    read_json(p / "config.json")["config"].get("seed") == cfg.seed),
                   key=lambda p: (p / "summary.json").stat().st_mtime)
    if not found:
        raise ConfigError(f"no finished {SOURCE_EXPERIMENT} run of preset {preset} and seed {cfg.seed} in "
                          f"{' or '.join(str(f) for f in dict.fromkeys(folders))}",
                          hint=f"train one first (genlab run {SOURCE_EXPERIMENT} --preset {preset} --seed {cfg.seed} "
                               f"--runs-dir {runs_dir}), or name it with --set source.run_dir=PATH")
    return found[-1]


def _finished(path: Path) -> bool:
    return (path / "summary.json").exists() and read_json(path / "summary.json").get("status") == "complete"


@torch.no_grad()
def mean_energy(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 500) -> float:
    device = next(model.parameters()).device
    total = sum(model(images[i:i + batch_size].to(device)).float().sum().item()
                for i in range(0, len(images), batch_size))
    return total / len(images)


class _Grid:
    """Runs the cells of one (form, eps, schedule, start) setting, batch by batch, and keeps per cell the end
    points and the seconds the chains took."""

    def __init__(self, model: torch.nn.Module, base: SamplerConfig, grid: GridConfig, device: torch.device):
        self.model, self.base, self.grid, self.device = model, base, grid, device

    def warm_up(self, x0: torch.Tensor) -> None:
        """One step at each batch size the cells run, untimed: the sampler's precision for this network and
        batch shape is decided (measured once, then cached) and memory allocated before any cell's clock runs."""
        sizes = {min(self.grid.batch_size, len(x0)), len(x0) % self.grid.batch_size} - {0}
        for size in sizes:
            run_chain(self.model, x0[:size], dataclasses.replace(self.base, steps=1), freeze=self.model)

    def _clock(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def run(self, setting: Cell, x0: torch.Tensor) -> dict[Cell, tuple[torch.Tensor, float]]:
        lengths = sorted(self.grid.steps)
        ends: dict[int, list[torch.Tensor]] = {t: [] for t in lengths}
        seconds = dict.fromkeys(lengths, 0.0)
        for begin in range(0, len(x0), self.grid.batch_size):
            batch = x0[begin:begin + self.grid.batch_size]
            if setting.schedule == "constant":  # one chain, read at each length on the way
                x, done, clock = batch, 0, self._clock()
                for t in lengths:
                    cfg = sampler_for(self.base, dataclasses.replace(setting, steps=t), self.grid)
                    x = run_chain(self.model, x, cfg, steps=t - done, freeze=self.model).x
                    done = t
                    ends[t].append(x)
                    seconds[t] += self._clock() - clock
            else:
                for t in lengths:
                    cfg = sampler_for(self.base, dataclasses.replace(setting, steps=t), self.grid)
                    clock = self._clock()
                    ends[t].append(run_chain(self.model, batch, cfg, freeze=self.model).x)
                    seconds[t] += self._clock() - clock
        return {dataclasses.replace(setting, steps=t): (torch.cat(ends[t]), seconds[t]) for t in lengths}


def run_sampling_study(ctx: RunContext) -> dict[str, Any]:
    cfg: SamplingStudyConfig = ctx.config
    grid = cfg.grid
    source = find_source(ctx)
    run, ebm, state = trained_state(source, EBMConfig, ctx.device)
    if ebm.data.conditional:
        raise ConfigError(f"{run.path} is a conditional energy; the sampling study samples unconditional ones",
                          hint=f"name a {SOURCE_EXPERIMENT} run with --set source.run_dir=PATH")
    if ebm.data.dataset != cfg.data.dataset:
        raise ConfigError(f"{run.path} was trained on {ebm.data.dataset}, not {cfg.data.dataset}",
                          hint=f"--set data.dataset={ebm.data.dataset}")
    ctx.notes.append(f"sampled: {run.path} ({read_json(run.path / 'config.json').get('preset')} preset, seed "
                     f"{ebm.seed}); {grid.samples} chains per cell from the same starts; FID over "
                     f"{grid.samples} samples is biased upwards: compare cells with each other, not with runs that "
                     f"score more samples")
    model = build_model(ebm).to(ctx.device)
    model.load_state_dict(state["trainer"]["model"])
    model.eval()
    base = ebm.sampler.with_settings(state["trainer"]["sampling"])
    dataset = cfg.data.dataset
    judge = Judge.load(dataset, ctx.device)
    real, n_real, note = reference_embedding(judge, dataset, "test", ctx.data_dir, cfg.reference_images)
    ctx.notes += [n for n in (note, judge.description) if n and n not in ctx.notes]
    test = ctx.load_data(dataset, "test", cfg.reference_images)
    energy_data = mean_energy(model, to_float(test.images))
    real_free = randnet_features(test.images)

    shape = tuple(test.images.shape[1:])
    buffer = state["trainer"].get("buffer")
    fresh = uniform_noise(grid.samples, shape, ctx.device)
    starts = {"uniform": fresh,
              "buffer": buffer_starts(buffer, grid.samples, None, ctx.device, lambda: fresh) if buffer else fresh}
    if "gaussian" in grid.starts:
        starts["gaussian"] = fitted_starts("gaussian", dataset, ebm.data.train_limit, ctx.device).images(grid.samples)
    if "buffer" in grid.starts and not buffer:
        ctx.notes.append(f"{run.path} saved no replay buffer: its buffer cells start from uniform noise")

    began = time.perf_counter()
    runner, rows = _Grid(model, base, grid, ctx.device), []
    runner.warm_up(fresh)
    grids_dir = ctx.run.samples / "cells"
    grids_dir.mkdir(exist_ok=True)
    for form, values in form_values(grid).items():
        for eps in values:
            for schedule in grid.schedules:
                for start in grid.starts:
                    for cell, (x, seconds) in runner.run(Cell(form, eps, 0, schedule, start), starts[start]).items():
                        ctx.save_grid(x[:cfg.corner_images], f"cells/{cell.name}", nrow=8)
                        rows.append({"cell": cell, "fid": fid(real.features, judge.embed(x).features),
                                     "randnet_fid": fid(real_free, randnet_features(x)),
                                     "energy": mean_energy(model, x), "seconds_per_sample": seconds / len(x)})
    ctx.loop_facts = {"wall_time_s": time.perf_counter() - began}

    ordered = ranked(rows)
    best = ordered[0]
    _write_table(ctx.run.path / "sampling_table.csv", ordered, energy_data)
    _heat_maps(ctx, grid, rows, energy_data)
    _corners_figure(ctx, grid, ordered)
    return {"fid": best["fid"], "sampling_best_randnet_fid": best["randnet_fid"],
            "sampling_best": best["cell"].describe(),
            "sampling_best_sets": " ".join(f"--set {k}={v}" for k, v in training_sets(best["cell"], grid).items()),
            "sampling_best_energy_gap": best["energy"] - energy_data,
            "sampling_best_seconds_per_sample": best["seconds_per_sample"],
            "sampling_energy_data": energy_data, "sampling_cells": [_row(r) for r in rows],
            "sampling_samples_per_cell": grid.samples, "sampling_steps": sample_steps(grid),
            "reference_images": n_real}


def ranked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cells' results best first: by the mean of their ranks by domain and by label-free FID
    (:func:`genlab.eval.quality.best_first`, which says why)."""
    return best_first(rows, lambda r: r["fid"], lambda r: r["randnet_fid"])


# randnet_fid comes last so that the columns before it read as in summaries written before it was recorded.
CELL_COLUMNS = ("form", "eps", "T", "schedule", "start", "fid", "energy", "seconds_per_sample", "randnet_fid")


def _row(r: dict[str, Any]) -> list[Any]:
    """A cell's result as a list in the order of CELL_COLUMNS (the summary's ``sampling_cells``)."""
    c = r["cell"]
    return [c.form, c.eps, c.steps, c.schedule, c.start, r["fid"], r["energy"], r["seconds_per_sample"],
            r["randnet_fid"]]


def _write_table(path: Path, rows: list[dict[str, Any]], energy_data: float) -> None:
    """Every cell, in the order of ``rows`` (best first)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*CELL_COLUMNS, "energy_minus_data"])
        for r in rows:
            writer.writerow([*_row(r), r["energy"] - energy_data])


def _heat_maps(ctx: RunContext, grid: GridConfig, rows: list[dict[str, Any]], energy_data: float) -> None:
    """Heat maps of domain FID, label-free FID and the energy gap: one eps x T panel per form, schedule and
    start."""
    by_cell = {r["cell"]: r for r in rows}

    def panels(value: Callable[[dict[str, Any]], float]) -> list:
        found = []
        for form, values in form_values(grid).items():
            labels = [f"{'eps' if form == 'coupled' else 'step'} {e:g}" for e in values]
            for start in grid.starts:
                for schedule in grid.schedules:
                    matrix = [[value(by_cell[Cell(form, e, t, schedule, start)]) for t in grid.steps] for e in values]
                    found.append((f"{form}, {schedule}, {start} start", labels, [f"T={t}" for t in grid.steps], matrix))
        return found

    columns = len(grid.schedules)
    ctx.save_figure(heatmap_figure(panels(lambda r: r["fid"]), "domain FID (lower: closer to the data)", columns,
                                   "viridis_r"), "sampling_fid")
    ctx.save_figure(heatmap_figure(panels(lambda r: r["randnet_fid"]), "label-free FID (random network's features; "
                                   "lower: closer to the data)", columns, "viridis_r"), "sampling_randnet_fid")
    ctx.save_figure(heatmap_figure(panels(lambda r: r["energy"] - energy_data), "mean energy of the samples minus "
                                   "the test images'", columns, "coolwarm", centre=0.0), "sampling_energy_gap")


def _corners_figure(ctx: RunContext, grid: GridConfig, rows: list[dict[str, Any]]) -> None:
    """The sample grids at the corners of each form's top panel (the (schedule, start) of its best-ranked cell;
    a row each), then the best cell's. ``rows``: best first (:func:`ranked`)."""
    by_cell = {r["cell"]: r for r in rows}
    best = rows[0]["cell"]
    shown = []  # (cell, title prefix): each form's corners, then the best cell
    for form in form_values(grid):
        top = next(r["cell"] for r in rows if r["cell"].form == form)
        shown += [(corner, "") for corner in corners(grid, form, top.schedule, top.start)]
    per_row = len(corners(grid, best.form, best.schedule, best.start))
    shown.append((best, "best: "))
    picks = [ctx.run.samples / "cells" / f"{cell.name}.png" for cell, _ in shown]
    titles = [f"{prefix}{cell.describe()}\nFID {by_cell[cell]['fid']:.0f}, label-free "
              f"{by_cell[cell]['randnet_fid']:.3g}".replace(", T=", "\nT=") for cell, prefix in shown]
    ctx.save_figure(grids_figure(picks, titles, columns=per_row), "sampling_corners")


def _smoke_grid() -> dict[str, Any]:
    return {"grid.coupled": (0.03,), "grid.decoupled": (10.0,), "grid.steps": (2, 4), "grid.samples": 24,
            "grid.batch_size": 12, "reference_images": 200, "corner_images": 16}


# The quick grid: 2 forms x 3 eps x T in {10, 20, 40, 80} x 3 schedules x 3 starts = 216 cells of 200 chains,
# 1,368,000 sampler steps (sample_steps): 11.4 minutes on one thread of the 2-core AVX-512 BF16 host beside two
# other jobs, fitting the class Gaussians and scoring included (benchmarks/README.md, the sampling study; measured
# before each cell's label-free FID was scored too).
SAMPLING_EXPERIMENTS = (
    Experiment("ebm-cifar10-sampling-study", "ebm",
               f"sampler settings on a trained {SOURCE_EXPERIMENT} energy: form x step size x T x noise schedule x "
               "start; domain and label-free FID, energy against the data's, seconds per sample",
               SamplingStudyConfig, run_sampling_study,
               presets={"smoke": _smoke_grid(), "quick": {},
                        "full": {"grid.coupled": (0.003, 0.01, 0.03, 0.1, 0.3),
                                 "grid.decoupled": (1.0, 3.0, 10.0, 30.0, 100.0), "grid.steps": (10, 20, 40, 80, 160),
                                 "grid.samples": 1000, "grid.batch_size": 250, "reference_images": 10000}}),
)
