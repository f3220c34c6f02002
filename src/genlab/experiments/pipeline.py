"""`genlab run pipeline`: every study in a sensible order, reusing what is done, surviving failures.

Classifiers come first (they judge the samples of every other study and JEM starts from them), then
EBM, JEM/JEM++, the discrete VAE with clustering, and the GANs. Each stage is an experiment, a preset,
config overrides and a seed; its run directory is named by the stage and the hash of its full config,
so a finished run with the same config is reused and an unfinished one is resumed. A failing stage is
recorded with its error and the pipeline goes on. The state lives in ``<runs>/pipeline-<preset>/
pipeline.json``, which keeps the records of earlier invocations; the index report is built beside it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from genlab.config import config_hash, to_dict
from genlab.errors import ConfigError, GenlabError, PipelineError
from genlab.experiments.registry import EXPERIMENTS, get_experiment
from genlab.experiments.runner import resume_run, start_run
from genlab.io import exclusive, read_json, write_json

if TYPE_CHECKING:
    from genlab.experiments.launchers import SlurmOptions

STUDIES = ("classifiers", "ebm", "jem", "dvae", "gan")


@dataclass(frozen=True)
class Stage:
    study: str
    experiment: str
    sets: dict[str, Any] = field(default_factory=dict)
    seeded: bool = True  # repeated over the pipeline's seeds (judges and JEM starting points are not)
    # Expected minutes of the quick preset, one thread beside another run on a 2-core CPU (measured in the
    # one-piece quick pipeline of 2026-12-01 on the Intel host with AMX, benchmarks/README.md): the time
    # estimate and the longest-first order.
    minutes: float = 5.0
    label: str = ""
    needs: tuple[str, ...] = ()  # stages (classifiers) this one uses
    after: tuple[str, ...] = ()  # seeded stages whose run of the same seed this one reads (a trained model)

    @property
    def name(self) -> str:
        return self.label or self.experiment

    @property
    def waits_for(self) -> tuple[str, ...]:
        """The stages that must have ended before this one starts."""
        return self.needs + self.after


# JEM starts from classifiers with seed 1: with batch norm (JEM++) and without (JEM, as in its paper). The
# CIFAR-10 one without batch norm learns slower: 73.5% after 5 of its 10 epochs, 83.3% at the end (JEM asks
# for 70%; with batch norm 5 epochs give 86%).
_MNIST, _CIFAR = "classifier-mnist", "classifier-cifar10"
_MNIST_START, _MNIST_START_NOBN = "classifier-mnist-seed1", "classifier-mnist-seed1-nobn"
_CIFAR_START, _CIFAR_START_NOBN = "classifier-cifar10-seed1", "classifier-cifar10-seed1-nobn"

STAGES: tuple[Stage, ...] = (
    Stage("classifiers", _MNIST, seeded=False, minutes=2.2),
    Stage("classifiers", "classifier-fashion_mnist", seeded=False, minutes=8.9),
    Stage("classifiers", "classifier-hoda", seeded=False, minutes=2.4),
    Stage("classifiers", _CIFAR, seeded=False, minutes=25.4),
    Stage("classifiers", _MNIST, {"seed": 1}, False, 2.1, _MNIST_START),
    Stage("classifiers", _MNIST, {"seed": 1, "model.norm": "none"}, False, 1.6, _MNIST_START_NOBN),
    Stage("classifiers", _CIFAR, {"seed": 1, "train.epochs": 5}, False, 8.6, _CIFAR_START),
    Stage("classifiers", _CIFAR, {"seed": 1, "train.epochs": 10, "model.norm": "none"}, False, 14.3,
          _CIFAR_START_NOBN),
    Stage("ebm", "ebm-mnist-cond", minutes=8.0, needs=(_MNIST,)),
    Stage("ebm", "ebm-cifar10-noise", minutes=8.1, needs=(_CIFAR,)),
    Stage("ebm", "ebm-cifar10-buffer", minutes=6.7, needs=(_CIFAR,)),
    Stage("ebm", "ebm-cifar10-buffer-decay", minutes=7.2, needs=(_CIFAR,)),
    Stage("ebm", "ebm-cifar10-gaussian", minutes=9.1, needs=(_CIFAR,)),
    Stage("ebm", "ebm-cifar10-sampling-study", minutes=8.4, needs=(_CIFAR,), after=("ebm-cifar10-buffer",)),
    Stage("jem", "jem-mnist", minutes=19.7, needs=(_MNIST, _MNIST_START_NOBN)),
    Stage("jem", "jempp-mnist", minutes=12.1, needs=(_MNIST, _MNIST_START)),
    Stage("jem", "jempp-mnist-noinit", minutes=12.6, needs=(_MNIST, _MNIST_START)),
    Stage("jem", "jempp-mnist-nopyld", minutes=10.1, needs=(_MNIST, _MNIST_START)),
    Stage("jem", "jempp-mnist-nobn", minutes=10.5, needs=(_MNIST, _MNIST_START_NOBN)),
    Stage("jem", "jem-cifar10", minutes=5.1, needs=(_CIFAR, _CIFAR_START_NOBN)),
    Stage("jem", "jempp-cifar10", minutes=3.3, needs=(_CIFAR, _CIFAR_START)),
    Stage("dvae", "dvae-mnist", minutes=10.4),
    Stage("dvae", "dvae-fashion_mnist", minutes=13.9),
    Stage("gan", "gan-hoda", minutes=18.5, needs=("classifier-hoda",)),
    Stage("gan", "gan-hoda", {"model.conditional": True, "model.clusters": 0}, minutes=18.8, label="gan-hoda-conditional",
          needs=("classifier-hoda",)),
    Stage("gan", "wgan-hoda", minutes=21.4, needs=("classifier-hoda",)),
    Stage("gan", "wgangp-hoda", minutes=16.8, needs=("classifier-hoda",)),
)


@dataclass
class Job:
    stage: Stage
    seed: int

    @property
    def key(self) -> str:
        return f"{self.stage.name}/seed{self.seed}" if self.stage.seeded else self.stage.name


def plan(seeds: int, only: list[str] | None = None, skip: list[str] | None = None) -> list[Job]:
    """The jobs to run, in order: the selected studies or stages, plus the classifiers they need (judges,
    JEM starts) and the trained runs they read (the sampling study's energy). ``only`` and ``skip`` take study
    names (``jem``) or stage names (``jem-mnist``)."""
    stage_names = [s.name for s in STAGES if s.experiment in EXPERIMENTS]
    for name in (only or []) + (skip or []):
        if name not in STUDIES and name not in stage_names:
            raise ConfigError(f"unknown study or stage '{name}'; studies: {', '.join(STUDIES)}; stages: "
                              f"{', '.join(stage_names)}", hint="e.g. --only ebm jem, --only jem-mnist, or --skip gan")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1; got {seeds}")

    def named(stage: Stage, names: list[str]) -> bool:
        return stage.study in names or stage.name in names

    stages = [s for s in STAGES if s.experiment in EXPERIMENTS and (not only or named(s, only))
              and not named(s, skip or [])]
    needed = {name for s in stages for name in s.waits_for}
    stages = [s for s in STAGES if s in stages or s.name in needed]
    return [Job(stage, seed) for stage in stages
            for seed in (range(seeds) if stage.seeded else [stage.sets.get("seed", 0)])]


def run_dir_of(runs_dir: Path, preset: str, job: Job) -> tuple[Path, dict[str, Any]]:
    """The job's run directory, named by its stage, seed and full config hash, and the overrides."""
    sets = {k: v for k, v in job.stage.sets.items() if k != "seed"}
    cfg = get_experiment(job.stage.experiment).config(preset, sets, job.seed)
    digest = config_hash(to_dict(cfg))
    return runs_dir / job.stage.experiment / f"{job.stage.name}-{preset}-s{job.seed}-{digest}", sets


def _check_preset(preset: str, jobs: list[Job]) -> None:
    """Every planned experiment has ``preset``, before anything is written (``long`` is defined for few)."""
    lacking = sorted({j.stage.experiment for j in jobs if preset not in get_experiment(j.stage.experiment).presets})
    if lacking:
        having = [name for name, e in EXPERIMENTS.items() if preset in e.presets]
        raise ConfigError(f"the preset '{preset}' is not defined for {', '.join(lacking)}; experiments that "
                          f"have it: {', '.join(having) or 'none'}",
                          hint=f"run one of those alone (`genlab run EXPERIMENT --preset {preset}`; its judge is "
                               f"the quick classifier), or the pipeline with --preset smoke, quick or full")


def run_pipeline(preset: str = "quick", seeds: int = 1, only: list[str] | None = None, skip: list[str] | None = None,
                 runs_dir: str | Path = "runs", device: str = "auto", data_dir: str | Path | None = None,
                 progress: bool = True, build_index: Callable[[Path], Path] | None = None,
                 out: Callable[[str], None] = print, jobs: int = 1, slurm: SlurmOptions | None = None) -> Path:
    """Run every job of the plan; returns the pipeline folder (with pipeline.json and index.html).

    ``jobs`` > 1 runs that many jobs at once, each in its own process with an equal share of the CPU
    threads; a job starts once the classifiers it needs are done. ``slurm`` submits the jobs to Slurm
    instead (genlab.experiments.launchers). A failed job does not stop the others;
    once all have ended and the report is built, PipelineError names the failed ones.
    """
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1; got {jobs}")
    planned = plan(seeds, only, skip)
    _check_preset(preset, planned)
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    # One pipeline at a time per runs folder: a second would resume the same unfinished runs.
    with exclusive(runs_dir / ".pipeline.lock", f"the runs folder {runs_dir} (a pipeline)"):
        book = _Book(runs_dir, preset, seeds, planned, jobs, out)
        if slurm is not None:
            from genlab.experiments.launchers import run_in_slurm  # it imports this module

            run_in_slurm(book, slurm, device, data_dir)
        elif jobs == 1:
            _run_here(book, device, data_dir, progress)
        else:
            _run_in_processes(book, device, data_dir)
    report = build_index(book.folder) if build_index is not None else None
    if report is not None:
        out(f"report: {report}")
    failed = [j.key for j in book.jobs if book.state["jobs"][j.key]["status"] == "failed"]
    if failed:
        raise PipelineError(f"{len(failed)} of {len(book.jobs)} jobs failed: {', '.join(failed)} (each one's error "
                            f"is above and in {book.folder / 'pipeline.json'})",
                            hint="fix the cause and run the same command again: finished runs are reused"
                                 + (f"; {report} shows what finished" if report else ""))
    return book.folder


class _Book:
    """The pipeline's state file, progress lines and time estimate."""

    def __init__(self, runs_dir: Path, preset: str, seeds: int, jobs: list[Job], at_once: int,
                 out: Callable[[str], None]):
        self.preset, self.jobs, self.out = preset, jobs, out
        self.folder = runs_dir / f"pipeline-{preset}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.run_dirs = {j.key: run_dir_of(runs_dir, preset, j) for j in jobs}  # (path, overrides) per job
        self.todo = {j.key for j in jobs if not _is_complete(self.run_dirs[j.key][0])}
        self.resumed = {key for key in self.todo if _is_started(self.run_dirs[key][0])}
        # Earlier invocations' records stay, so `--only jem --seeds 3` adds seeds to a full pipeline's index;
        # but not those of jobs to run again (their run folder unfinished or gone): they no longer hold.
        earlier = read_json(self.folder / "pipeline.json") if (self.folder / "pipeline.json").exists() else {}
        records = {key: record for key, record in earlier.get("jobs", {}).items() if key not in self.todo}
        self.state = {"preset": preset, "seeds": max(seeds, earlier.get("seeds", 1)),
                      "studies": sorted({j.stage.study for j in jobs} | set(earlier.get("studies", []))),
                      "jobs_at_once": at_once, "jobs": records}
        self.started = time.perf_counter()
        self.at_once, self.begun = at_once, 0
        self.expected_left = (sum(j.stage.minutes for j in jobs if j.key in self.todo) * 60
                              if preset == "quick" else None)
        self.finished_expected = self.finished_actual = 0.0
        self.running: dict[str, tuple[float, float]] = {}  # job key -> (start clock, expected seconds)

    def time_left(self) -> float | None:
        """Seconds left: the expected minutes of the jobs not yet ended, scaled by how the ended jobs' actual
        times compared with their expected ones, less what the running jobs have done so far (up to their
        expected time), shared among the runs at once."""
        if self.expected_left is None:
            return None
        pace = self.finished_actual / self.finished_expected if self.finished_expected > 0 else 1.0
        now = time.perf_counter()
        under_way = sum(min(now - start, expected * pace) for start, expected in self.running.values())
        return max(0.0, self.expected_left * pace - under_way) / self.at_once

    def begin(self, job: Job) -> dict[str, Any]:
        """Announce a job; returns its record (run directory, overrides, start time)."""
        self.begun += 1
        path, sets = self.run_dirs[job.key]
        self.out(_progress_line(self.begun, len(self.jobs), job, time.perf_counter() - self.started, self.time_left()))
        if job.key in self.todo:
            self.running[job.key] = (time.perf_counter(), job.stage.minutes * 60)
        return {"study": job.stage.study, "experiment": job.stage.experiment, "stage": job.stage.name,
                "seed": job.seed, "run_dir": str(path), "sets": sets, "reused": job.key not in self.todo,
                "started_at": time.strftime("%Y-%m-%d %H:%M:%S"), "clock": time.perf_counter()}

    def end(self, job: Job, record: dict[str, Any]) -> None:
        record.pop("sets")
        record["seconds"] = round(time.perf_counter() - record.pop("clock"), 1)
        self.running.pop(job.key, None)
        if record["status"] == "failed":
            self.out(f"  failed: {job.key}: {record['error']}")
        if record["status"] != "interrupted" and self.expected_left is not None and not record["reused"]:
            self.expected_left -= job.stage.minutes * 60
            if job.key not in self.resumed:  # a run resumed near its end would make the pace look fast
                self.finished_expected += job.stage.minutes * 60
                self.finished_actual += record["seconds"]
        self.state["jobs"][job.key] = record
        self.state["wall_time_s"] = round(time.perf_counter() - self.started, 1)
        write_json(self.folder / "pipeline.json", self.state)


def _is_complete(run_dir: Path) -> bool:
    summary = run_dir / "summary.json"
    return summary.exists() and read_json(summary).get("status") == "complete"


def _is_started(run_dir: Path) -> bool:
    """An earlier invocation began this run (it resumes from its checkpoint, or from its start if it has none)."""
    return (run_dir / "config.json").exists()


def _run_here(book: _Book, device: str, data_dir: str | Path | None, progress: bool) -> None:
    for job in book.jobs:
        record = book.begin(job)
        path = Path(record["run_dir"])
        try:
            if _is_started(path):
                resume_run(path, device, data_dir, progress)
            else:
                start_run(job.stage.experiment, book.preset, record["sets"], job.seed, device, run_dir=path,
                          data_dir=data_dir, progress=progress)
            record["status"] = "complete"
        except KeyboardInterrupt:
            record["status"] = "interrupted"
            book.end(job, record)
            raise
        except Exception as err:  # noqa: BLE001 - a failed study is recorded and the pipeline goes on
            record.update(status="failed", error=str(err) if isinstance(err, GenlabError) else repr(err),
                          traceback=None if isinstance(err, GenlabError) else traceback.format_exc())
        book.end(job, record)


def _command(job: Job, record: dict[str, Any], preset: str, device: str, data_dir: str | Path | None) -> list[str]:
    """The `genlab` command line that runs (or resumes) one job in its own process."""
    path = record["run_dir"]
    if _is_started(Path(path)):
        args = ["resume", path]
    else:
        args = ["run", job.stage.experiment, "--preset", preset, "--seed", str(job.seed), "--run-dir", path]
        for key, value in record["sets"].items():
            args += ["--set", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    args += ["--device", device, "--no-progress"] + (["--data-dir", str(data_dir)] if data_dir else [])
    return [sys.executable, "-m", "genlab", *args]


def _run_in_processes(book: _Book, device: str, data_dir: str | Path | None) -> None:
    workers = book.at_once
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    logs = book.folder / "logs"
    logs.mkdir(exist_ok=True)
    planned = {j.stage.name for j in book.jobs}
    needed = {name for j in book.jobs for name in j.stage.waits_for}
    # Finished runs first (they only need reading), then what others wait for, then the longest: the
    # longest-first rule keeps a long run from starting last and running alone at the end.
    waiting = sorted(book.jobs, key=lambda j: (j.key in book.todo, j.stage.name not in needed, -j.stage.minutes))
    running = []
    done: set[str] = set()  # stage names all of whose jobs have ended (their dependants may start)
    try:
        while waiting or running:
            ready = [j for j in waiting if all(n in done or n not in planned for n in j.stage.waits_for)]
            for job in ready[:workers - len(running)]:
                waiting.remove(job)
                record = book.begin(job)
                log = logs / f"{job.key.replace('/', '-')}.log"
                with open(log, "w") as sink:
                    # A session of its own: Ctrl-C reaches the pipeline only, which passes it on once.
                    process = subprocess.Popen(_command(job, record, book.preset, device, data_dir), env=env,
                                               stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
                running.append((job, record, process, log))
            time.sleep(0.5)
            for entry in [e for e in running if e[2].poll() is not None]:
                running.remove(entry)
                job, record, process, log = entry
                record.update(_outcome(process.returncode, log))
                book.end(job, record)
                if not any(j.stage.name == job.stage.name for j in waiting + [e[0] for e in running]):
                    done.add(job.stage.name)
    except KeyboardInterrupt:
        for _, _, process, _ in running:
            process.send_signal(signal.SIGINT)  # the run checkpoints and stops after its current step
        for job, record, process, log in running:
            process.wait()
            record.update(status="interrupted", log=str(log))
            book.end(job, record)
        raise


def _outcome(returncode: int, log: Path) -> dict[str, Any]:
    """A finished job process's status, with the error line from its log when it failed."""
    if returncode == 0:
        return {"status": "complete"}
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("genlab: error", "genlab: stopped", "genlab: interrupted"))]
    message = errors[-1].removeprefix("genlab: ") if errors else (lines[-1] if lines else f"exit status {returncode}")
    return {"status": "interrupted" if returncode == 130 else "failed", "error": message, "log": str(log)}


def _progress_line(number: int, total: int, job: Job, elapsed: float, left: float | None) -> str:
    line = f"[{number}/{total}] {job.stage.study}: {job.stage.name} (seed {job.seed}) - elapsed {elapsed / 60:.0f} min"
    return line + (f", about {left / 60:.0f} min left" if left is not None else "")
