"""Train ebm-cifar10-buffer with the best sampler settings of a sampling study, over seeds; print and write a table.

    python benchmarks/sampling_study.py --study runs/ebm-cifar10-sampling-study/<run> --top 3 --seeds 0 1 2

The study (`genlab run ebm-cifar10-sampling-study`, or the pipeline's stage) scores its grid's settings by
the domain and the label-free FID of samples drawn from one trained energy; they rank by the mean of their
two ranks (genlab.eval.quality.best_first; a study written before the label-free column ranks by domain FID
alone). Here the ``--top`` best become training samplers (sampling_study.training_sets: form, step,
schedule, chain length, buffer or noise starts), each trained as ebm-cifar10-buffer at ``--preset`` for
every seed beside the preset's own sampler (the baseline). A setting with longer chains costs more per
iteration: the table gives minutes beside FID. Runs are normal genlab runs under --runs-dir; one found there
with the same experiment, preset, seed and config is reused.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when OpenMP starts: before torch is imported

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from energy_models import divergence, earlier_run, spread  # noqa: E402  (this folder's shared helpers)
from genlab.config import from_dict  # noqa: E402
from genlab.errors import DivergenceError  # noqa: E402
from genlab.eval.quality import best_first  # noqa: E402
from genlab.experiments.base import machine_info  # noqa: E402
from genlab.experiments.runner import start_run  # noqa: E402
from genlab.experiments.sampling_study import (CELL_COLUMNS, SOURCE_EXPERIMENT, Cell,  # noqa: E402
                                               SamplingStudyConfig, training_sets)
from genlab.train.run_dir import RunDir  # noqa: E402


def best_settings(study: Path, top: int) -> list[tuple[str, dict]]:
    """The ``top`` cells of a finished study by the study's rule (best_first), as (description, --set overrides)."""
    run = RunDir.open(study)
    summary = run.read_summary()
    if not summary or summary.get("status") != "complete":
        raise SystemExit(f"{study} is not a finished sampling study (no complete summary.json)")
    grid = from_dict(SamplingStudyConfig, run.read_config()["config"]).grid
    fid, free = CELL_COLUMNS.index("fid"), CELL_COLUMNS.index("randnet_fid")
    rows = best_first(summary["metrics"]["sampling_cells"], lambda row: row[fid],
                      lambda row: row[free] if len(row) > free else math.nan)[:top]
    return [(cell.describe(), training_sets(cell, grid)) for cell in (Cell(*row[:5]) for row in rows)]


def train(sets: dict, preset: str, seed: int, runs_dir: Path, device: str) -> dict:
    """One training run's final FID and minutes (or its divergence), reusing an earlier identical run."""
    run = earlier_run(runs_dir, SOURCE_EXPERIMENT, preset, seed, sets)
    if run is None:
        try:
            run = start_run(SOURCE_EXPERIMENT, preset, sets, seed, device, runs_dir, progress=False)
        except DivergenceError as err:
            return {"seed": seed, "diverged": err.message}
    stopped = divergence(run)
    if stopped and not run.read_summary():
        return {"seed": seed, "diverged": stopped, "run_dir": str(run.path)}
    summary = run.read_summary()
    return {"seed": seed, "fid": summary["metrics"]["fid"], "minutes": summary["wall_time_s"] / 60,
            "run_dir": str(run.path)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", type=Path, required=True, help="a finished ebm-cifar10-sampling-study run")
    parser.add_argument("--top", type=int, default=3, help="best settings to train with")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/benchmarks"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sampling_study.json"))
    args = parser.parse_args()

    settings = [("the preset's own sampler", {})] + best_settings(args.study, args.top)
    table = []
    for name, sets in settings:
        runs = [train(sets, args.preset, seed, args.runs_dir, args.device) for seed in args.seeds]
        finished = [r for r in runs if "diverged" not in r]
        table.append({"setting": name, "sets": sets, "runs": runs, "diverged": len(runs) - len(finished),
                      "fid_mean": statistics.mean(r["fid"] for r in finished) if finished else None,
                      "minutes_mean": statistics.mean(r["minutes"] for r in finished) if finished else None})
        fids = [r["fid"] for r in finished]
        minutes = [r["minutes"] for r in finished]
        print(f"{name}: FID {spread(fids, 1) if fids else '-'}, minutes {spread(minutes, 1) if minutes else '-'}, "
              f"diverged {len(runs) - len(finished)}/{len(runs)}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"study": str(args.study), "preset": args.preset, "seeds": args.seeds,
                                    "settings": table, "machine": machine_info(torch.device("cpu"))}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
