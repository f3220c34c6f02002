"""Train each classifier's preset over several seeds; print a table and write JSON.

    python benchmarks/classifiers.py --preset quick --seeds 0 1 2 [--datasets mnist hoda] [--out FILE]

Each run is a normal genlab run (under --runs-dir), so its report and cached classifier stay usable.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from genlab.eval.targets import CLASSIFIER_ACCURACY
from genlab.experiments.base import machine_info
from genlab.experiments.runner import start_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--datasets", nargs="+", default=list(CLASSIFIER_ACCURACY))
    parser.add_argument("--runs-dir", default="runs/benchmarks")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="JSON output (default: benchmarks/results/classifiers-<preset>.json)")
    args = parser.parse_args()

    results = []
    for dataset in args.datasets:
        for seed in args.seeds:
            started = time.perf_counter()
            run = start_run(f"classifier-{dataset}", args.preset, seed=seed, device=args.device,
                            runs_dir=args.runs_dir, progress=False)
            summary = run.read_summary()
            results.append({"dataset": dataset, "seed": seed, "test_accuracy": summary["metrics"]["test_accuracy"],
                            "test_images": summary["metrics"]["test_images"],
                            "train_wall_s": summary["wall_time_s"], "total_wall_s": time.perf_counter() - started,
                            "run_dir": str(run.path), "notes": summary["notes"]})
            print(f"{dataset} seed {seed}: {results[-1]['test_accuracy']:.4f} in {results[-1]['total_wall_s']:.0f} s",
                  flush=True)

    print(f"\n| dataset | target | test accuracy (mean, min-max over {len(args.seeds)} seed(s)) | wall time per run |")
    print("| --- | --- | --- | --- |")
    for dataset in args.datasets:
        rows = [r for r in results if r["dataset"] == dataset]
        accs = [r["test_accuracy"] for r in rows]
        walls = [r["total_wall_s"] for r in rows]
        print(f"| {dataset} | >= {CLASSIFIER_ACCURACY[dataset].threshold:.2%} | {statistics.mean(accs):.2%} ({min(accs):.2%}-{max(accs):.2%}) "
              f"| {statistics.mean(walls) / 60:.1f} min |")
    out = Path(args.out or Path(__file__).parent / "results" / f"classifiers-{args.preset}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"preset": args.preset, "machine": machine_info(torch.device("cpu")),
                               "results": results}, indent=2) + "\n")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
