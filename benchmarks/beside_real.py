"""Runs' final samples beside real test images of their dataset, as one figure (the README's sample figures).

    python benchmarks/beside_real.py RUN_DIR [RUN_DIR ...] --out docs/figures/NAME.png [--n 64] [--titles T ...]

The samples are the first ``n`` of each run's ``samples/final.npz``; the real images are the first ``n`` of
the (first run's) dataset's test split, on the same grid. ``--starts`` adds ``n`` draws from the last run's
informative start distribution (``sampler.start``: class Gaussians, k-means Gaussians), refitted as the run
fitted it, with no model: where its chains begin.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
import torchvision.utils as vutils

from genlab.data import get_spec, load
from genlab.data.batches import to_float
from genlab.eval.samples_io import load_samples
from genlab.experiments.base import fitted_starts
from genlab.io import read_json
from genlab.report.figures import grids_figure, save


STARTS = {"gaussian": "class-Gaussian draws, no model", "clusters": "draws of {k} k-means Gaussians, no model",
          "class_clusters": "draws of {k} k-means Gaussians per class, no model"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--titles", nargs="+", default=[], help="one per run (default: the experiments' names)")
    parser.add_argument("--starts", action="store_true", help="a panel of draws from the last run's start "
                                                                   "distribution (seed 0)")
    args = parser.parse_args()
    configs = [read_json(run / "config.json") for run in args.run_dirs]
    dataset = configs[0]["config"]["data"]["dataset"]
    shape = get_spec(dataset).image_shape
    grids = [load_samples(run / "samples" / "final.npz", shape)[0][:args.n] for run in args.run_dirs]
    titles = args.titles or [c["experiment"] for c in configs]
    if args.starts:
        cfg = configs[-1]["config"]
        sampler = cfg["sampler"]
        starts = fitted_starts(sampler["start"], dataset, cfg["data"]["train_limit"], "cpu",
                               sampler["start_clusters"], cfg["seed"])
        if starts is None:
            parser.error(f"{args.run_dirs[-1]} starts its chains from uniform noise: no start distribution to draw")
        torch.manual_seed(0)
        grids.append(starts.images(args.n))
        titles.append(STARTS[sampler["start"]].format(k=sampler["start_clusters"]))
    grids.append(to_float(load(dataset, "test").images[:args.n]))
    titles.append(f"real {dataset} test images")
    nrow = round(args.n ** 0.5)
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / f"{i}.png" for i in range(len(grids))]
        for images, path in zip(grids, paths):
            vutils.save_image(images.float().clamp(-1, 1), path, nrow=nrow, normalize=True, value_range=(-1, 1),
                              padding=2)
        fig = grids_figure(paths, titles)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save(fig, args.out)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
