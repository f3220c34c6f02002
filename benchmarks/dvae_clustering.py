"""Run the dvae experiments over seeds; print the study's table per dataset and write JSON.

    python benchmarks/dvae_clustering.py --preset quick --seeds 0 1 2 [--datasets mnist fashion_mnist]
        [--quantizers vq gumbel] [--set data.train_limit=20000 ...] [--threads 1] [--out FILE]

Columns: clustering accuracy of the codes (Hungarian, K = cluster.k), NMI, ARI, the pseudo-label and
true-label classifiers' test accuracy, the raw-pixel KMeans baseline, plain KMeans on the codes and the
same embedding on pixels, reconstruction PSNR and codebook use; mean +- standard deviation (min-max) over
seeds. Each run is a normal genlab run under --runs-dir, with its report.

On a shared CPU, OpenMP threads spin-wait for each other and a run can take ten times longer with two
threads than with one; so this script uses passive waiting and --threads 1 unless told otherwise.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when OpenMP starts: before torch is imported

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from genlab.config import parse_assignments  # noqa: E402
from genlab.eval import targets as t  # noqa: E402
from genlab.eval.targets import verdict  # noqa: E402
from genlab.experiments.base import machine_info  # noqa: E402
from genlab.experiments.runner import start_run  # noqa: E402

COLUMNS = {  # summary metric -> table heading
    "cluster_hungarian_accuracy": "code clustering acc",
    "cluster_nmi": "NMI",
    "cluster_ari": "ARI",
    "pseudo_label_classifier_accuracy": "pseudo-label clf acc",
    "true_label_classifier_accuracy": "true-label clf acc",
    "pixels_plain_hungarian_accuracy": "pixel KMeans acc",
    "codes_plain_hungarian_accuracy": "plain code KMeans acc",
    "pixels_embedded_hungarian_accuracy": "pixels, same embedding acc",
    "test_psnr": "PSNR (dB)",
    "test_codes_used_fraction": "codes used",
}


def spread(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return (f"{statistics.mean(values):.{digits}f} +- {statistics.stdev(values):.{digits}f} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


def targets(dataset: str, rows: list[dict]) -> list[str]:
    """The issue's targets for the quick preset, checked on the mean over seeds."""
    mean = lambda key: statistics.mean(r[key] for r in rows)  # noqa: E731
    codes, pixels, used, minutes = (mean(key) for key in ("cluster_hungarian_accuracy",
                                                          "pixels_plain_hungarian_accuracy",
                                                          "test_codes_used_fraction", "minutes"))
    checks = [(f"code clustering {codes:.3f} > pixel KMeans {pixels:.3f}", t.DVAE_CODES_OVER_PIXELS, codes - pixels),
              (f"at least {t.DVAE_CODES_USED.threshold:.0%} of codes used ({used:.0%})", t.DVAE_CODES_USED, used),
              (f"within {t.DVAE_MINUTES.threshold:.0f} min per run ({minutes:.1f} min)", t.DVAE_MINUTES, minutes)]
    if dataset == "mnist":
        psnr = mean("test_psnr")
        checks += [(f"code clustering >= {t.DVAE_MNIST_CLUSTERING.threshold:.2f} ({codes:.3f})",
                    t.DVAE_MNIST_CLUSTERING, codes),
                   (f"PSNR >= {t.DVAE_MNIST_PSNR.threshold:g} dB ({psnr:.1f})", t.DVAE_MNIST_PSNR, psnr)]
    return [f"{verdict((target, value))}: {text}" for text, target, value in checks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion_mnist"])
    parser.add_argument("--quantizers", nargs="+", default=["vq"], choices=["vq", "gumbel"])
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every run (e.g. a reduced data.train_limit)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--runs-dir", default="runs/benchmarks")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None,
                        help="JSON output (default: benchmarks/results/dvae_clustering-<preset>.json)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sets = parse_assignments(args.sets)

    results = []
    for dataset in args.datasets:
        for quantizer in args.quantizers:
            for seed in args.seeds:
                started = time.perf_counter()
                run = start_run(f"dvae-{dataset}", args.preset, {**sets, "model.quantizer": quantizer}, seed=seed,
                                device=args.device, runs_dir=args.runs_dir, progress=False)
                summary = run.read_summary()
                row = {"dataset": dataset, "quantizer": quantizer, "seed": seed,
                       **{key: summary["metrics"][key] for key in COLUMNS},
                       "minutes": (time.perf_counter() - started) / 60, "run_dir": str(run.path),
                       "notes": summary["notes"]}
                results.append(row)
                print(f"{dataset} {quantizer} seed {seed}: code clustering {row['cluster_hungarian_accuracy']:.3f}, "
                      f"pixels {row['pixels_plain_hungarian_accuracy']:.3f}, pseudo-label classifier "
                      f"{row['pseudo_label_classifier_accuracy']:.3f}, {row['minutes']:.1f} min", flush=True)

    lines = []
    for dataset in args.datasets:
        for quantizer in args.quantizers:
            rows = [r for r in results if r["dataset"] == dataset and r["quantizer"] == quantizer]
            lines += ["", f"### {dataset}, {quantizer} ({args.preset} preset, {len(rows)} seed(s): "
                          f"mean +- sd (min-max))", "", "| metric | value |", "| --- | --- |"]
            lines += [f"| {heading} | {spread([r[key] for r in rows])} |" for key, heading in COLUMNS.items()]
            lines += [f"| minutes per run | {spread([r['minutes'] for r in rows], 1)} |", ""]
            if args.preset == "quick" and not sets:
                lines += [f"- {check}" for check in targets(dataset, rows)]
    print("\n".join(lines))
    out = Path(args.out or Path(__file__).parent / "results" / f"dvae_clustering-{args.preset}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"preset": args.preset, "sets": sets, "threads": torch.get_num_threads(),
                               "machine": machine_info(torch.device("cpu")), "results": results,
                               "table": lines}, indent=2) + "\n")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
