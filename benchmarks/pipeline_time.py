"""Run the pipeline (or read a finished one) and record its wall time, per-run times and headline numbers.

    python benchmarks/pipeline_time.py --preset quick --jobs 2 [--runs-dir runs/bench-pipeline]
    python benchmarks/pipeline_time.py --existing runs/pipeline-quick      # a pipeline that already ran

The target (issue: one command for everything): the quick pipeline, one seed, in under 3 hours on the
project's 2-core CPU. Writes benchmarks/results/pipeline-<preset>.json: every run's numbers and, for a
pipeline run with ``--seeds N``, each stage's mean and standard deviation over its seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections import defaultdict
from pathlib import Path

import torch

from genlab.eval.targets import PIPELINE_HOURS, verdict
from genlab.experiments.base import machine_info
from genlab.experiments.pipeline import run_pipeline
from genlab.report.index import build_index

HEADLINES = ("test_accuracy", "fid", "class_accuracy", "min_class_accuracy", "conditional_accuracy", "ece",
             "cluster_hungarian_accuracy", "pixels_embedded_hungarian_accuracy", "pseudo_label_classifier_accuracy",
             "true_label_classifier_accuracy", "test_fid", "test_confident_share", "divergence_events")
# the metrics beyond one classifier's features (density and coverage, per class, label-free, memorisation, CAS)
BEYOND = ("precision", "recall", "density", "coverage", "intra_fid", "randnet_fid", "memorised_share", "cas",
          "cas_real", "test_precision", "test_recall", "test_density", "test_coverage", "test_intra_fid",
          "test_randnet_fid", "test_memorised_share")
TARGET_S = PIPELINE_HOURS.threshold * 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs-dir", default="runs/bench-pipeline")
    parser.add_argument("--existing", default=None, help="a pipeline folder to read instead of running one")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    folder = Path(args.existing) if args.existing else run_pipeline(
        args.preset, runs_dir=args.runs_dir, progress=False, build_index=build_index, jobs=args.jobs)
    state = json.loads((folder / "pipeline.json").read_text())
    runs = []
    for key, job in state["jobs"].items():
        summary_path = Path(job["run_dir"]) / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        metrics = summary.get("metrics", {})
        runs.append({"job": key, "status": job["status"], "reused": job.get("reused", False),
                     "seconds": job["seconds"], "run_seconds": summary.get("wall_time_s"),
                     "stage": job.get("stage", key), "seed": job.get("seed"),
                     **{k: metrics[k] for k in HEADLINES + BEYOND if isinstance(metrics.get(k), (int, float))}})
    wall = state["wall_time_s"]
    print(f"| run | status | run minutes | {' | '.join(HEADLINES)} |")
    print("| --- " * (3 + len(HEADLINES)) + "|")
    for run in runs:
        cells = " | ".join(f"{run[k]:.4g}" if k in run else "" for k in HEADLINES)
        minutes = f"{run['run_seconds'] / 60:.1f}" if run["run_seconds"] else ""
        print(f"| {run['job']} | {run['status']} | {minutes} | {cells} |")
    reused = sum(run["reused"] for run in runs)
    print(f"\nthe last pipeline command ({state['preset']}, {state.get('jobs_at_once', 1)} run(s) at once): "
          f"{wall / 60:.1f} min; " + (f"{reused} run record(s) are reuses of finished runs, so no single command's "
                                      "time covers the whole pipeline"
                                      if reused else f"target under {PIPELINE_HOURS.threshold:.0f} h: "
                                      f"{verdict((PIPELINE_HOURS, wall / 3600))}"))
    seeds = over_seeds(runs)
    if any(numbers["seeds"] > 1 for numbers in seeds.values()):
        print("\nmean +- sd over seeds:")
        for stage, numbers in seeds.items():
            print(f"{stage} ({numbers['seeds']} seeds): " + ", ".join(
                f"{k} {v['mean']:.4g} +- {v['sd']:.2g}" for k, v in numbers.items() if k != "seeds"))
    out = Path(args.out or Path(__file__).parent / "results" / f"pipeline-{state['preset']}.json")
    out.write_text(json.dumps({"preset": state["preset"], "jobs_at_once": state.get("jobs_at_once", 1),
                               "wall_time_s": wall, "runs_reused": reused, "target_s": TARGET_S, "machine": machine_info(torch.device("cpu")),
                               "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "runs": runs,
                               "over_seeds": seeds}, indent=2) + "\n")
    print(f"written: {out}")


def over_seeds(runs: list[dict]) -> dict[str, dict]:
    """Each stage's complete runs: how many seeds, and every number's mean and sample standard deviation
    (0 for one seed)."""
    stages: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        if run["status"] == "complete":
            stages[run["stage"]].append(run)
    table = {}
    for stage, found in stages.items():
        keys = [k for k in HEADLINES + BEYOND if any(k in run for run in found)]
        table[stage] = {"seeds": len(found), **{
            k: {"mean": statistics.mean(v), "sd": statistics.stdev(v) if len(v) > 1 else 0.0, "n": len(v)}
            for k in keys for v in [[run[k] for run in found if k in run]]}}
    return table


if __name__ == "__main__":
    main()
