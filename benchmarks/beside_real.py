"""A run's final samples beside real test images of its dataset, as one figure (the README's sample figures).

    python benchmarks/beside_real.py RUN_DIR --out docs/figures/NAME.png [--n 64] [--title TEXT]

The samples are the first ``n`` of the run's ``samples/final.npz``; the real images are the first ``n`` of
the dataset's test split, on the same grid.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torchvision.utils as vutils

from genlab.data import get_spec, load
from genlab.data.batches import to_float
from genlab.eval.samples_io import load_samples
from genlab.io import read_json
from genlab.report.figures import grids_figure, save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--title", default="", help="the samples' title (default: the experiment's name)")
    args = parser.parse_args()
    config = read_json(args.run_dir / "config.json")
    dataset = config["config"]["data"]["dataset"]
    samples = load_samples(args.run_dir / "samples" / "final.npz", get_spec(dataset).image_shape)[0][:args.n]
    real = to_float(load(dataset, "test").images[:args.n])
    nrow = round(args.n ** 0.5)
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / "samples.png", Path(folder) / "real.png"]
        for images, path in zip((samples, real), paths):
            vutils.save_image(images.float().clamp(-1, 1), path, nrow=nrow, normalize=True, value_range=(-1, 1),
                              padding=2)
        fig = grids_figure(paths, [args.title or config["experiment"], f"real {dataset} test images"])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save(fig, args.out)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
