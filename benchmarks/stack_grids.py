"""Several runs' grids over training (``figures/grids_over_training.png``) stacked into one figure, each row
titled with its run's experiment and seed (the GAN comparison's figure in benchmarks/README.md).

    python benchmarks/stack_grids.py RUN_DIR [RUN_DIR ...] --out docs/figures/NAME.png [--titles T ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from genlab.io import read_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--titles", nargs="+", default=[], help="one per run (default: experiment, seed)")
    args = parser.parse_args()
    if args.titles and len(args.titles) != len(args.run_dirs):
        parser.error(f"--titles gives {len(args.titles)} titles for {len(args.run_dirs)} runs")
    images = [mpimg.imread(run / "figures" / "grids_over_training.png") for run in args.run_dirs]
    configs = [read_json(run / "config.json") for run in args.run_dirs]
    titles = args.titles or [f"{c['experiment']}, seed {c['config']['seed']}" for c in configs]
    width = max(image.shape[1] for image in images) / 100
    fig, axes = plt.subplots(len(images), 1, figsize=(width, sum(i.shape[0] for i in images) / 100 + 0.4 * len(images)),
                             squeeze=False)
    for ax, image, title in zip(axes[:, 0], images, titles):
        ax.imshow(image)
        ax.set_title(title, fontsize=14, loc="left")
        ax.axis("off")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=100)
    # a palette of 64 colours keeps sample grids exact enough and the file a fifth of the size
    Image.open(args.out).convert("P", palette=Image.ADAPTIVE, colors=64).save(args.out, optimize=True)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
