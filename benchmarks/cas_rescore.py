"""Score the Classification Accuracy Score of a finished pipeline's conditional runs again, from their saved samples.

    python benchmarks/cas_rescore.py --existing runs/pipeline-quick [--out benchmarks/results/cas-rescore.json]

For every complete run whose saved samples carry labels (the conditional energy's ``samples/final.npz``, the
JEM family's ``samples/conditional.npz``), CAS and its real-image baseline are computed as the run computes
them (``genlab.eval.cas``: the run's seed, its ``eval.cas_epochs`` with the step floor, its training images
and its test images), with nothing else of the run recomputed. The one difference: the run scores its
float samples, this script the uint8 images it saved. Use it when a pipeline's CAS predates a change to
the CAS schedule. Writes every run's CAS and each stage's mean and standard deviation over its seeds.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from pipeline_time import over_seeds  # noqa: E402  (beside this script)

from genlab.data import load  # noqa: E402
from genlab.eval.cas import classification_accuracy_score  # noqa: E402
from genlab.eval.samples_io import load_samples  # noqa: E402
from genlab.experiments.base import machine_info  # noqa: E402

SAMPLE_FILES = {"ebm": "final.npz", "jem": "conditional.npz"}  # family -> its labelled samples
_load = functools.lru_cache(load)  # every seed and stage of a dataset reads the same splits once


def rescore(run_dir: Path, family: str, data_dir: str | None) -> dict | None:
    """CAS of one run's saved samples, with the run's own seed, schedule, training and test images; None
    where the run saved no labelled samples."""
    path = run_dir / "samples" / SAMPLE_FILES.get(family, "")
    if family not in SAMPLE_FILES or not path.is_file():
        return None
    cfg = json.loads((run_dir / "config.json").read_text())["config"]
    dataset, data, evaluation = cfg["data"]["dataset"], cfg["data"], cfg["eval"]
    train = _load(dataset, "train", data_dir)
    samples, labels = load_samples(path, tuple(train.images.shape[1:]), len(train.classes))
    if labels is None:
        return None
    train = train.subset(torch.arange(min(data["train_limit"], len(train)))) if data.get("train_limit") else train
    test = _load(dataset, "test", data_dir)
    test_limit = evaluation["reference_images"] if family == "ebm" else data.get("test_limit", 0)
    test = test.subset(torch.arange(min(test_limit, len(test)))) if test_limit else test
    scores = classification_accuracy_score(samples, labels, train.images, train.labels, test.images, test.labels,
                                           len(train.classes), evaluation["cas_epochs"], cfg["seed"])
    return {"samples": str(path), **scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--existing", required=True, help="a finished pipeline's folder (holds pipeline.json)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="benchmarks/results/cas-rescore.json")
    args = parser.parse_args()

    state = json.loads((Path(args.existing) / "pipeline.json").read_text())
    runs = []
    for key, job in state["jobs"].items():
        run_dir = Path(job["run_dir"])
        summary_path = run_dir / "summary.json"
        if job["status"] != "complete" or not summary_path.exists():
            continue
        summary = json.loads(summary_path.read_text())
        start = time.perf_counter()
        scores = rescore(run_dir, summary.get("family", ""), args.data_dir)
        if scores is None:
            continue
        before = summary["metrics"]
        runs.append({"job": key, "status": "complete", "stage": job.get("stage", key), "seed": job.get("seed"),
                     **scores, "seconds": round(time.perf_counter() - start, 1),
                     "cas_in_summary": before.get("cas"), "cas_real_in_summary": before.get("cas_real")})
        print(f"{key}: CAS {scores['cas']:.3f} against real {scores['cas_real']:.3f} "
              f"({scores['cas_images']} images, {scores['cas_epochs']} epochs; the run said "
              f"{before.get('cas')} against {before.get('cas_real')})", flush=True)
    stages = {stage: {k: v for k, v in numbers.items() if k in ("seeds", "cas", "cas_real")}
              for stage, numbers in over_seeds(runs).items()}
    for stage, numbers in stages.items():
        print(f"{stage}: CAS {numbers['cas']['mean']:.3f} +- {numbers['cas']['sd']:.3f} against real "
              f"{numbers['cas_real']['mean']:.3f} +- {numbers['cas_real']['sd']:.3f} ({numbers['seeds']} seeds)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"pipeline": str(args.existing), "machine": machine_info(torch.device("cpu")),
                               "runs": runs, "over_seeds": stages}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
