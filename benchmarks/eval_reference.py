"""Reference values of the domain sample-quality metrics, so every number in a study has a scale.

    python benchmarks/eval_reference.py [--datasets mnist fashion_mnist hoda cifar10] [--n 10000]

For each dataset, candidate sets of N images are scored against the test split with the dataset's
cached judge classifier (train one first: `genlab run classifier-<dataset> --preset quick`):
training images (the floor: what a perfect generator would score), training images with Gaussian
noise of sigma 0.1 and 0.3 (in units of the [0, 1] pixel range), blurred training images (Gaussian,
sigma 1 px), uniform noise (the ceiling) and one training image repeated N times (mode collapse).
Prints a markdown table and the time to compute domain FID for N samples; writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torchvision.transforms.functional as TF

from genlab.data import load
from genlab.eval.judge import Judge
from genlab.eval.quality import feature_stats, frechet_distance
from genlab.eval.score import reference_embedding, score_embeddings
from genlab.experiments.base import machine_info

COLUMNS = ("fid", "kid", "is", "precision", "recall", "class_coverage", "confident_share")


def candidates(train: torch.Tensor, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = train[:n].float() / 127.5 - 1
    noise = lambda sigma: (x + 2 * sigma * torch.randn(x.shape, generator=g)).clamp(-1, 1)  # noqa: E731
    return {"train images (floor)": x, "noise sigma 0.1": noise(0.1), "noise sigma 0.3": noise(0.3),
            "blur sigma 1": TF.gaussian_blur(x, kernel_size=5, sigma=1.0),
            "uniform noise (ceiling)": torch.rand(x.shape, generator=g) * 2 - 1,
            "one image repeated": x[:1].expand(n, -1, -1, -1).clone()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion_mnist", "hoda", "cifar10"])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "eval_reference.json"))
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    results = {}
    for dataset in args.datasets:
        judge = Judge.load(dataset)
        real, n_real, note = reference_embedding(judge, dataset, "test")
        train = load(dataset, "train").images
        rows = {}
        for name, images in candidates(train, min(args.n, len(train))).items():
            started = time.perf_counter()
            fake = judge.embed(images)
            fid_value = frechet_distance(*feature_stats(real.features), *feature_stats(fake.features))
            fid_seconds = time.perf_counter() - started
            rows[name] = {**score_embeddings(real, fake), "fid": fid_value, "fid_seconds": fid_seconds}
        results[dataset] = {"judge": judge.description, "reference": f"{dataset}/test, {n_real:,} images",
                            "note": note, "candidates": len(images), "rows": rows}
        print(f"\n### {dataset}: {len(images):,} candidates vs {n_real:,} test images\n{judge.description}"
              + (f"\n{note}" if note else ""))
        print("\n| candidates | " + " | ".join(COLUMNS) + " |\n|" + " --- |" * (len(COLUMNS) + 1))
        for name, row in rows.items():
            print(f"| {name} | " + " | ".join(f"{row[c]:.4g}" for c in COLUMNS) + " |")
        seconds = [r["fid_seconds"] for r in rows.values()]
        print(f"\ndomain FID of {len(images):,} samples (embedding + statistics): "
              f"{min(seconds):.1f}-{max(seconds):.1f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine_info(torch.device("cpu")), "results": results}, indent=2) + "\n")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
