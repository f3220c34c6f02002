"""The pipeline's Slurm launcher: each job an sbatch job submitted through submitit.

The pipeline (``genlab.experiments.pipeline``) runs its jobs in its own process or as local processes;
``--launcher slurm`` hands them to Slurm instead. Every job that is not finished yet is submitted at once,
with its resources (CPUs, GPUs, memory, a time limit from the stage's expected minutes) and a dependency
on the jobs of the classifiers it needs; the pipeline then watches the queue and records each job as it
ends, in the same pipeline.json, with the same run directories (on a filesystem the nodes share), logs
and index report as with local jobs. A job that has several GPUs runs its training under torchrun.

Slurm sends SIGTERM two minutes before a job's time limit (and on ``scancel``): the run checkpoints and
stops, the job is named as failed, and running the pipeline again resumes it.
"""

from __future__ import annotations

import getpass
import json
import math
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genlab.errors import ConfigError, GenlabError

if TYPE_CHECKING:  # imported where used: a Slurm job unpickles _RunCommand from this module, and needs no torch
    from genlab.experiments import pipeline

STOP_SECONDS = 120  # SIGTERM this long before the time limit: time for the run's last checkpoint
POLL_SECONDS = 2.0
RESULT_GRACE_SECONDS = 10.0  # how long a job that left the queue may take to show its result on a shared filesystem


@dataclass(frozen=True)
class SlurmOptions:
    """What each Slurm job asks for. ``time_factor`` scales a stage's expected minutes (measured for the
    quick preset on 2 CPU cores) into its time limit, with ``min_minutes`` at least; ``time_minutes`` sets
    one limit for every job instead (e.g. for the full preset)."""

    partition: str | None = None
    account: str | None = None
    cpus_per_job: int = 2
    gpus_per_job: int = 0
    mem_gb: float | None = None
    time_factor: float = 3.0
    min_minutes: int = 10
    time_minutes: int | None = None
    sbatch: dict[str, str] = field(default_factory=dict)  # any other sbatch option, e.g. {"qos": "normal"}
    setup: tuple[str, ...] = ()  # shell lines run before the job, e.g. "module load cuda"

    def __post_init__(self) -> None:
        for name in ("cpus_per_job", "min_minutes", "time_minutes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"slurm option {name} must be a whole number of at least 1; got {value!r}")
        if not isinstance(self.gpus_per_job, int) or self.gpus_per_job < 0:
            raise ConfigError(f"slurm option gpus_per_job must be a whole number >= 0; got {self.gpus_per_job!r}")
        if not isinstance(self.sbatch, dict):
            raise ConfigError(f"slurm option sbatch must be a table of sbatch options; got {self.sbatch!r}",
                              hint='e.g. "sbatch": {"qos": "normal", "constraint": "a100"}')


def slurm_options(config_file: str | Path | None = None, **given: Any) -> SlurmOptions:
    """The options from a JSON or TOML file (keys as in SlurmOptions), with those ``given`` (the command
    line's, None where not given) taking precedence."""
    values: dict[str, Any] = {}
    if config_file is not None:
        values = _read_config(Path(config_file))
        known = {f.name for f in fields(SlurmOptions)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{config_file}: unknown slurm option(s) {', '.join(unknown)}",
                              hint=f"known: {', '.join(sorted(known))}")
    values.update({key: value for key, value in given.items() if value is not None})
    if "setup" in values:
        values["setup"] = tuple(values["setup"])
    return SlurmOptions(**values)


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"slurm config file not found: {path}")
    try:
        if path.suffix == ".toml":
            import tomllib

            values = tomllib.loads(path.read_text())
        else:
            values = json.loads(path.read_text())
    except ImportError:
        raise ConfigError(f"{path}: reading TOML needs Python 3.11 or newer", hint="write the file as JSON") from None
    except ValueError as err:
        raise ConfigError(f"{path}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {err}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a table of slurm options")
    return values


def time_limit(stage: pipeline.Stage, options: SlurmOptions) -> int:
    """A job's time limit in minutes, including the minutes between the stop signal and the limit."""
    if options.time_minutes is not None:
        return options.time_minutes
    return max(options.min_minutes, math.ceil(stage.minutes * options.time_factor)) + math.ceil(STOP_SECONDS / 60)


def job_command(command: list[str], gpus: int) -> list[str]:
    """A job's `python -m genlab ...` command, run under torchrun with one process per GPU when it has
    several (`torchrun --standalone --nproc_per_node=N -m genlab ...`)."""
    if gpus <= 1:
        return command
    python, module, args = command[0], command[2], command[3:]
    return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}", "-m", module, *args]


def sbatch_parameters(job: pipeline.Job, options: SlurmOptions, after: list[str]) -> dict[str, Any]:
    """The submitit SlurmExecutor parameters of one job: ``after`` are the Slurm ids of the jobs it needs.

    The dependency is afterany, not afterok: as with local jobs, a job starts once the jobs it needs have
    ended, whatever their outcome, so a failed classifier is named once rather than hiding its dependants."""
    extra = {"signal": f"TERM@{STOP_SECONDS}", **options.sbatch}
    if after:
        extra["dependency"] = "afterany:" + ":".join(after)
    parameters: dict[str, Any] = {
        "job_name": f"genlab-{job.key.replace('/', '-')}", "time": time_limit(job.stage, options), "nodes": 1,
        "ntasks_per_node": 1, "cpus_per_task": options.cpus_per_job, "additional_parameters": extra,
        "setup": list(options.setup), "stderr_to_stdout": True}
    if options.gpus_per_job:
        parameters["gpus_per_node"] = options.gpus_per_job
    if options.mem_gb is not None:
        parameters["mem"] = f"{math.ceil(options.mem_gb * 1024)}M"
    if options.partition:
        parameters["partition"] = options.partition
    if options.account:
        parameters["account"] = options.account
    return parameters


@dataclass(frozen=True)
class _RunCommand:
    """What a Slurm job runs: the job's command line, its output in the pipeline's log of the job; returns
    the exit status. Runs on the node, in the job's step, so Slurm's stop signal reaches the run."""

    command: list[str]
    log: str
    threads: int

    def __call__(self) -> int:
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads))
        with open(self.log, "w") as sink:
            return subprocess.run(self.command, stdout=sink, stderr=subprocess.STDOUT, env=env).returncode


def run_in_slurm(book: pipeline._Book, options: SlurmOptions, device: str, data_dir: str | Path | None) -> None:
    """Submit every unfinished job of the book to Slurm and record each as it ends; Ctrl-C (or SIGTERM)
    cancels the submitted jobs, which checkpoint and stop, and records them as interrupted."""
    try:
        import submitit
    except ImportError:
        raise GenlabError("--launcher slurm needs submitit", hint="pip install submitit") from None
    from genlab.experiments import pipeline

    executor = submitit.SlurmExecutor(folder=book.folder / "slurm" / "%j", max_num_timeout=0)
    logs = book.folder / "logs"
    logs.mkdir(exist_ok=True)
    threads = max(1, options.cpus_per_job // max(1, options.gpus_per_job))
    slurm_ids: dict[str, list[str]] = {}  # stage name -> its submitted jobs' Slurm ids
    pending: list[tuple[pipeline.Job, dict[str, Any], Any, Path]] = []
    try:
        for job in book.jobs:  # in plan order: the classifiers a stage needs come before it
            record = book.begin(job)
            if job.key not in book.todo:
                book.end(job, {**record, "status": "complete"})
                continue
            log = logs / f"{job.key.replace('/', '-')}.log"
            after = [i for name in job.stage.waits_for for i in slurm_ids.get(name, [])]
            executor.update_parameters(**sbatch_parameters(job, options, after))
            command = job_command(pipeline._command(job, record, book.preset, device, data_dir), options.gpus_per_job)
            try:
                submitted = executor.submit(_RunCommand(command, str(log), threads))
            except Exception as err:  # noqa: BLE001 - sbatch refused it: named like a failed job
                book.end(job, {**record, "status": "failed", "error": f"sbatch refused the job: {err}".strip()})
                continue
            record["slurm_job"] = submitted.job_id
            slurm_ids.setdefault(job.stage.name, []).append(submitted.job_id)
            pending.append((job, record, submitted, log))
        gone: dict[str, float] = {}  # Slurm id -> when it was first seen out of the queue without a result
        while pending:
            time.sleep(POLL_SECONDS)
            queued = _queued()
            if queued is None:
                continue  # the controller did not answer: ask again
            for entry in [e for e in pending if e[2].job_id not in queued]:
                job, record, submitted, log = entry
                if not submitted.paths.result_pickle.exists():
                    first = gone.setdefault(submitted.job_id, time.monotonic())
                    if time.monotonic() - first < RESULT_GRACE_SECONDS:
                        continue
                pending.remove(entry)
                book.end(job, {**record, **_outcome(submitted, log)})
    except KeyboardInterrupt:
        for job, record, submitted, log in pending:
            submitted.cancel(check=False)  # Slurm's SIGTERM: the run checkpoints and stops
            book.end(job, {**record, "status": "interrupted", "log": str(log)})
        raise


def _queued() -> set[str] | None:
    """The Slurm ids of this user's jobs still in the queue (pending, running or completing)."""
    try:
        listed = subprocess.run(["squeue", "-h", "-o", "%i", "-u", getpass.getuser()], capture_output=True,
                                text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return set(listed.stdout.split()) if listed.returncode == 0 else None


def _outcome(submitted: Any, log: Path) -> dict[str, Any]:
    """An ended Slurm job's status: as a local job's from its exit status and log; a run stopped by Slurm
    (time limit, scancel) or a job that left no result is failed, so that it is named."""
    from genlab.experiments import pipeline

    if not submitted.paths.result_pickle.exists():
        return {"status": "failed", "log": str(submitted.paths.stdout),
                "error": f"Slurm job {submitted.job_id} ended without finishing (cancelled, over its time or memory "
                         f"limit, or its node failed); see {submitted.paths.stdout}"}
    try:
        returncode = submitted.result()
    except Exception as err:  # noqa: BLE001 - the job's wrapper failed before or around the command
        lines = [line for line in str(err).splitlines() if line.strip()]
        return {"status": "failed", "error": lines[-1] if lines else repr(err), "log": str(submitted.paths.stdout)}
    outcome = pipeline._outcome(returncode, log)
    if outcome["status"] == "interrupted" or returncode < 0:  # the run checkpointed and stopped, or was killed
        how = f"killed ({signal.Signals(-returncode).name})" if returncode < 0 else "stopped"
        outcome.update(status="failed", error=f"{how} by Slurm (its time limit or scancel) before its end; run the "
                                              f"pipeline again to resume it")
    return outcome

