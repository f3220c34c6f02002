"""Reference values of the sample-quality metrics, so every number in a study has a scale.

    python benchmarks/eval_reference.py [--datasets mnist fashion_mnist hoda cifar10] [--n 10000]

For each dataset, candidate sets of N images are scored against the test split with the dataset's
cached judge classifier (train one first: `genlab run classifier-<dataset> --preset quick`) and with
every other metric of `genlab.eval.score.score_images`: density/coverage, per-class numbers, the
label-free random-network twins and memorisation against a fixed subset of 10,000 training images
(eval.memorisation). The candidates: copies of searched training images (the FID floor: what a perfect
generator would score, and what memorisation must flag), training images outside the searched subset
(new real images: flagged at the rule's base rate of about 1%), copies with Gaussian noise of sigma
0.1 and 0.3 (in units of the [0, 1] pixel range), blurred copies (Gaussian, sigma 1 px), uniform noise
(the ceiling), one training image repeated N times (total mode collapse), one training image per
class, each repeated N/classes times (collapse within every class), and draws from a Gaussian fitted to
each class's training images (the informative start of JEM++ and of Gaussian-start EBMs: where such a
sampler begins before its energy does anything). Candidates with labels (the
training labels) are also scored per intended class and by the Classification Accuracy Score: a
fresh classifier trained on the first ``--cas-n`` of them for ``--cas-epochs`` epochs (or as many more as
``genlab.eval.cas.MIN_STEPS`` optimiser steps need), tested on the
test split, beside the same classifier trained on as many other real training images (``cas_real``).
Prints a markdown table and the time to score N samples; writes JSON (entries of datasets not rerun
are kept).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torchvision.transforms.functional as TF

from genlab.data import load
from genlab.eval.cas import epochs_for, train_and_test
from genlab.eval.judge import Judge
from genlab.eval.memorisation import subset
from genlab.eval.quality import feature_stats, frechet_distance
from genlab.eval.score import build_reference, score_images
from genlab.experiments.base import machine_info
from genlab.sampling import ClassGaussians

COLUMNS = ("fid", "kid", "is", "precision", "recall", "class_coverage", "confident_share")
NEW_COLUMNS = ("density", "coverage", "intra_fid", "intra_coverage", "randnet_fid", "randnet_precision",
               "randnet_recall", "memorised_share", "memorised_share_features", "train_distance_ratio", "cas")


def candidates(train: torch.Tensor, labels: torch.Tensor, n: int,
               seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """Candidate sets (images in [-1, 1], training labels or None) from the training split, whose first
    images in ``subset`` order are the ones memorisation searches."""
    g = torch.Generator().manual_seed(seed)
    searched = subset(len(train))
    unsearched = torch.ones(len(train), dtype=torch.bool)
    unsearched[searched] = False
    pick, other = searched[:n], unsearched.nonzero().squeeze(1)[:n]
    x, y = train[pick].float() / 127.5 - 1, labels[pick]
    noise = lambda sigma: (x + 2 * sigma * torch.randn(x.shape, generator=g)).clamp(-1, 1)  # noqa: E731
    classes = int(labels.max()) + 1
    firsts = torch.stack([x[y == c][0] for c in range(classes)])
    torch.manual_seed(seed)
    gaussian_draws, gaussian_labels = ClassGaussians(train.float() / 127.5 - 1, labels, classes).sample(n)
    return {"train images (floor, copies)": (x, y),
            "other train images (new)": (train[other].float() / 127.5 - 1, labels[other]),
            "noise sigma 0.1": (noise(0.1), y), "noise sigma 0.3": (noise(0.3), y),
            "blur sigma 1": (TF.gaussian_blur(x, kernel_size=5, sigma=1.0), y),
            "uniform noise (ceiling)": (torch.rand(x.shape, generator=g) * 2 - 1, None),
            "one image repeated": (x[:1].expand(n, -1, -1, -1).clone(), None),
            "one image per class": (firsts.repeat_interleave(n // classes, 0),
                                    torch.arange(classes).repeat_interleave(n // classes)),
            "class Gaussians (no model)": (gaussian_draws, gaussian_labels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion_mnist", "hoda", "cifar10"])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--cas-n", type=int, default=2_000)
    parser.add_argument("--cas-epochs", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "eval_reference.json"))
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    out = Path(args.out)
    results = json.loads(out.read_text())["results"] if out.exists() else {}
    for dataset in args.datasets:
        judge = Judge.load(dataset)
        train_set, test_set = load(dataset, "train"), load(dataset, "test")
        reference = build_reference(judge, dataset, "test", train_images=train_set.images)
        real = reference.embedding
        n = min(args.n, len(train_set) - len(reference.neighbours.pixels))
        cas_test = (test_set.images[:reference.count], test_set.labels[:reference.count])
        classes = len(train_set.classes)
        cas_epochs = epochs_for(args.cas_n, args.cas_epochs)  # what train_and_test trains, the step floor included
        real_pick = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(1))[:args.cas_n]
        cas_real = train_and_test(train_set.images[real_pick].float() / 127.5 - 1, train_set.labels[real_pick],
                                  *cas_test, classes, args.cas_epochs)
        rows = {}
        for name, (images, labels) in candidates(train_set.images, train_set.labels, n).items():
            started = time.perf_counter()
            fake = judge.embed(images)
            fid_value = frechet_distance(*feature_stats(real.features), *feature_stats(fake.features))
            fid_seconds = time.perf_counter() - started
            scores = score_images(images, judge, reference, labels)
            scores.pop("memorisation_pairs")
            if labels is not None:
                scores["cas"] = train_and_test(images[:args.cas_n], labels[:args.cas_n], *cas_test, classes,
                                               args.cas_epochs)
            rows[name] = {**scores, "fid": fid_value, "fid_seconds": fid_seconds,
                          "score_seconds": time.perf_counter() - started}
        results[dataset] = {"judge": judge.description, "reference": f"{dataset}/test, {reference.count:,} images",
                            "note": reference.note, "candidates": n, "cas_images": args.cas_n,
                            "cas_epochs": cas_epochs, "cas_real": cas_real, "rows": rows}
        print(f"\n### {dataset}: {n:,} candidates vs {reference.count:,} test images\n{judge.description}"
              + (f"\n{reference.note}" if reference.note else ""))
        for columns in (COLUMNS, NEW_COLUMNS):
            print("\n| candidates | " + " | ".join(columns) + " |\n|" + " --- |" * (len(columns) + 1))
            for name, row in rows.items():
                print(f"| {name} | " + " | ".join(f"{row[c]:.4g}" if c in row else "-" for c in columns) + " |")
        print(f"\nCAS of {args.cas_n:,} real training images ({cas_epochs} epochs): {cas_real:.4f}")
        seconds = [r["fid_seconds"] for r in rows.values()]
        total = [r["score_seconds"] for r in rows.values()]
        print(f"domain FID of {n:,} samples (embedding + statistics): {min(seconds):.1f}-{max(seconds):.1f} s; "
              f"every metric: {min(total):.1f}-{max(total):.1f} s")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine_info(torch.device("cpu")), "results": results}, indent=2) + "\n")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
