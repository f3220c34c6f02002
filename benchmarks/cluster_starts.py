"""Label-free informative starts: Gaussians fitted to k-means clusters of the training images, scored.

    python benchmarks/cluster_starts.py [--dataset cifar10] [--clusters 10 100 500] [--class-clusters 5 50] [--n 1000]

The Gaussian-start EBM (`ebm-cifar10-gaussian`) starts its chains from one Gaussian per class, fitted with
the labels. Do the labels matter, or would clusters found without them do as well? For each K, n draws of
`genlab.sampling.ClusterGaussians` (the starts of `--set sampler.start=clusters --set sampler.start_clusters=K`):
KMeans on the first 64 principal components of the training images, then the mixture of the clusters'
Gaussians, weighted by cluster size. `--class-clusters K` scores the same with K clusters found within each class
(`--set sampler.start=class_clusters --set sampler.start_clusters=K`: labels used, a finer mixture than one
Gaussian per class). Every draw set is scored
by `genlab.api.score` (the dataset's cached judge; train one with `genlab run classifier-<dataset> --preset
quick`). Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from genlab import api
from genlab.data import load
from genlab.experiments.base import machine_info
from genlab.sampling import ClusterGaussians

COLUMNS = ("fid", "randnet_fid", "precision", "recall", "coverage", "class_coverage")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--clusters", type=int, nargs="*", default=[10, 100, 500])
    parser.add_argument("--class-clusters", type=int, nargs="*", default=[],
                        help="clusters found within each class (uses the labels)")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cluster_starts.json"))
    args = parser.parse_args()
    train = load(args.dataset, "train")
    rows = {}
    settings = [(f"{k}", k, None) for k in args.clusters]
    settings += [(f"{k} per class", k, train.labels) for k in args.class_clusters]
    for name, k, labels in settings:
        started = time.perf_counter()
        torch.manual_seed(0)
        draws = ClusterGaussians(train.images, k, seed=0, labels=labels).images(args.n)
        seconds = time.perf_counter() - started
        scores = api.score(draws, args.dataset, preset="quick")
        rows[name] = {**{c: scores[c] for c in COLUMNS if c in scores}, "fit_and_draw_s": round(seconds, 1)}
        print(f"| {name} | " + " | ".join(f"{rows[name][c]:.4g}" for c in COLUMNS if c in rows[name]) + " |",
              flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine_info(torch.device("cpu")), "dataset": args.dataset, "n": args.n,
                               "columns": COLUMNS, "rows": rows}, indent=2) + "\n")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
