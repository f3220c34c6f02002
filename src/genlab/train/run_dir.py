"""A run's directory: the one place a run writes, and all a report needs.

Layout: ``config.json`` (full, resolved), ``metrics.jsonl`` (one JSON object per logged step or
event), ``checkpoints/``, ``samples/``, ``figures/``, ``summary.json`` (final numbers), ``report.html``, and
``.lock``, which the one process writing the run holds (see :meth:`RunDir.writing`).
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any, ContextManager

from genlab.errors import RunError
from genlab.io import dumps, exclusive, read_json, write_atomic, write_json


class RunDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    summary_path = property(lambda self: self.path / "summary.json")
    report_path = property(lambda self: self.path / "report.html")
    checkpoints = property(lambda self: self.path / "checkpoints")
    samples = property(lambda self: self.path / "samples")
    figures = property(lambda self: self.path / "figures")
    lock_path = property(lambda self: self.path / ".lock")

    @staticmethod
    def default_path(runs_root: Path, experiment: str, preset: str, seed: int) -> Path:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path(runs_root) / experiment / f"{stamp}-{preset}-s{seed}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        return path

    @classmethod
    def create(cls, path: str | os.PathLike, config: dict[str, Any]) -> "RunDir":
        run = cls(path)
        if run.path.exists() and (not run.path.is_dir() or not run._unstarted()):
            raise RunError(f"run directory {run.path} already exists and is not empty",
                           hint=f"continue it with `genlab resume {run.path}`, or choose another --run-dir")
        try:
            for folder in (run.path, run.checkpoints, run.samples, run.figures):
                folder.mkdir(parents=True, exist_ok=True)
            write_json(run.config_path, config)
        except OSError as err:
            raise RunError(f"cannot write the run directory {run.path}: {err.strerror or err}",
                           hint="choose a writable place with --runs-dir or --run-dir") from None
        return run

    def _unstarted(self) -> bool:
        """Whether the folder holds at most what :meth:`create` makes before config.json is in place: its empty
        folders and a config temp file. A run killed while being created (a pipeline's job, say) is then
        created again rather than refused, as it has no config.json to be resumed from."""
        made = {self.checkpoints, self.samples, self.figures}
        return all(p in made and p.is_dir() and not any(p.iterdir())
                   or p.name.startswith(".config.json.") and p.name.endswith(".tmp") for p in self.path.iterdir())

    @classmethod
    def open(cls, path: str | os.PathLike) -> "RunDir":
        run = cls(path)
        if not run.path.is_dir():
            raise RunError(f"{run.path} does not exist or is not a directory",
                           hint="pass the directory of a run, e.g. runs/classifier-mnist/<timestamp>")
        if not run.config_path.is_file():
            raise RunError(f"{run.path} is not a genlab run directory (it has no config.json)",
                           hint="pass the directory `genlab run` created, e.g. runs/classifier-mnist/<timestamp>")
        try:
            config = read_json(run.config_path)
        except (OSError, json.JSONDecodeError) as err:
            raise RunError(f"{run.config_path} cannot be read: {err}") from None
        if not isinstance(config, dict) or "experiment" not in config or "config" not in config:
            raise RunError(f"{run.config_path} is not a genlab run config (no 'experiment' and 'config' keys)")
        for folder in (run.checkpoints, run.samples, run.figures):
            folder.mkdir(exist_ok=True)
        return run

    def writing(self) -> ContextManager[None]:
        """Hold the run's lock while training or resuming it: a second `genlab run`/`resume` (or pipeline)
        on the same directory stops with RunError instead of writing it too."""
        return exclusive(self.lock_path, f"run directory {self.path}")

    def read_config(self) -> dict[str, Any]:
        return read_json(self.config_path)

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every complete record; a last line cut short by a kill is skipped."""
        if not self.metrics_path.exists():
            return []
        records = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def truncate_metrics(self, step: int) -> None:
        """Drop records logged after ``step``: a resumed run logs them again."""
        kept = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        write_atomic(self.metrics_path, "".join(dumps(r) + "\n" for r in kept))

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.summary_path, summary)

    def read_summary(self) -> dict[str, Any] | None:
        if not self.summary_path.exists():
            return None
        summary = read_json(self.summary_path)
        if not isinstance(summary, dict):
            raise RunError(f"{self.summary_path} is not a genlab summary (it holds a {type(summary).__name__})",
                           hint="delete it: `genlab resume RUN_DIR` writes it again")
        return summary
