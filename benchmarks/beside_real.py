"""Runs' final samples beside real test images of their dataset, as one figure (the README's sample figures).

    python benchmarks/beside_real.py RUN_DIR [RUN_DIR ...] --out docs/figures/NAME.png [--n 64] [--titles T ...]

The samples are the first ``n`` of each run's ``samples/final.npz``; the real images are the first ``n`` of
the (first run's) dataset's test split, on the same grid. ``--gaussians`` adds ``n`` draws from Gaussians
fitted to each class's training images, with no model: where Gaussian-start chains begin.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--titles", nargs="+", default=[], help="one per run (default: the experiments' names)")
    parser.add_argument("--gaussians", action="store_true", help="a panel of class-Gaussian draws (seed 0)")
    args = parser.parse_args()
    configs = [read_json(run / "config.json") for run in args.run_dirs]
    dataset = configs[0]["config"]["data"]["dataset"]
    shape = get_spec(dataset).image_shape
    grids = [load_samples(run / "samples" / "final.npz", shape)[0][:args.n] for run in args.run_dirs]
    titles = args.titles or [c["experiment"] for c in configs]
    if args.gaussians:
        torch.manual_seed(0)
        grids.append(fitted_starts("gaussian", dataset, 0, "cpu").images(args.n))
        titles.append("class-Gaussian draws, no model")
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
