"""Label-free informative starts: Gaussians fitted to k-means clusters of the training images, scored.

    python benchmarks/cluster_starts.py [--dataset cifar10] [--clusters 10 100 500] [--n 1000]

The Gaussian-start EBM (`ebm-cifar10-gaussian`) starts its chains from one Gaussian per class, fitted with
the labels. Do the labels matter, or would clusters found without them do as well? For each K: KMeans (one
restart) on the first 64 principal components of the training images, then n draws from the mixture of the
clusters' Gaussians (weighted by cluster size; each cluster's covariance is that of its members, which has
rank below the pixel count, plus a ridge of 1e-4: drawn as mean + members' deviations times N(0, 1/m) + 0.01
N(0, 1), the same distribution without forming a 3,072 x 3,072 matrix per cluster). Every draw set is scored
by `genlab.api.score` (the dataset's cached judge; train one with `genlab run classifier-<dataset> --preset
quick`). Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from genlab import api
from genlab.data import load
from genlab.data.batches import to_float
from genlab.experiments.base import machine_info

COLUMNS = ("fid", "randnet_fid", "precision", "recall", "coverage", "class_coverage")


def cluster_gaussian_draws(flat: torch.Tensor, clusters: int, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` draws (rows like ``flat``'s, clamped to [-1, 1]) from Gaussians fitted to ``clusters`` k-means
    clusters of ``flat``, each cluster drawn by its share of the images."""
    reduced = PCA(64, svd_solver="randomized", random_state=seed).fit_transform(flat.numpy())
    assignment = torch.from_numpy(KMeans(clusters, n_init=1, random_state=seed).fit_predict(reduced))
    g = torch.Generator().manual_seed(seed)
    sizes = torch.bincount(assignment, minlength=clusters).float()
    picks = torch.multinomial(sizes / sizes.sum(), n, replacement=True, generator=g)
    draws = torch.empty(n, flat.shape[1])
    for c in picks.unique():
        chosen, members = picks == c, flat[assignment == c]
        mean = members.mean(0)
        weights = torch.randn(int(chosen.sum()), len(members), generator=g) / len(members) ** 0.5
        ridge = 1e-2 * torch.randn(int(chosen.sum()), flat.shape[1], generator=g)
        draws[chosen] = mean + weights @ (members - mean) + ridge
    return draws.clamp(-1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--clusters", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cluster_starts.json"))
    args = parser.parse_args()
    train = load(args.dataset, "train")
    flat = to_float(train.images).reshape(len(train.images), -1)
    rows = {}
    for k in args.clusters:
        started = time.perf_counter()
        draws = cluster_gaussian_draws(flat, k, args.n).view(args.n, *train.images.shape[1:])
        seconds = time.perf_counter() - started
        scores = api.score(draws, args.dataset, preset="quick")
        rows[k] = {**{c: scores[c] for c in COLUMNS if c in scores}, "fit_and_draw_s": round(seconds, 1)}
        print(f"| {k} | " + " | ".join(f"{rows[k][c]:.4g}" for c in COLUMNS if c in rows[k]) + " |", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine_info(torch.device("cpu")), "dataset": args.dataset, "n": args.n,
                               "columns": COLUMNS, "rows": rows}, indent=2) + "\n")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
