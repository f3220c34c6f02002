"""Scoring saved samples and writing the numbers into a run's ``summary.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genlab.data.datasets import load
from genlab.data.registry import get_spec
from genlab.errors import GenlabError
from genlab.eval.inception import inception_scores, missing
from genlab.eval.samples_io import load_samples
from genlab.eval.score import MAX_REFERENCE, score_samples
from genlab.io import read_json, write_json


def score_file(path: str | Path, dataset: str, split: str = "test", device: str | torch.device = "cpu",
               data_dir: str | Path | None = None, inception: bool = False) -> dict[str, Any]:
    """Domain metrics of a samples file, plus standard Inception FID/IS if asked (and available)."""
    spec = get_spec(dataset)
    images, labels = load_samples(path, spec.image_shape, len(spec.classes))
    if inception and missing():
        inception_scores(images, images)  # raises, naming what is missing, before the long domain scoring
    scores = score_samples(images, dataset, labels, split=split, data_dir=data_dir, device=device)
    if inception:
        reference = load(dataset, split, data_dir).images[:MAX_REFERENCE]
        scores.update(inception_scores(reference, images))
    return scores


def run_of(path: Path) -> Path | None:
    """The run directory a samples file belongs to (``RUN/samples/x.npz``), if any."""
    run = path.resolve().parent.parent
    return run if (run / "config.json").is_file() else None


def record_scores(run: Path, name: str, scores: dict[str, Any]) -> None:
    summary_path = run / "summary.json"
    summary = read_json(summary_path) if summary_path.exists() else {}
    summary.setdefault("eval", {})[name] = scores
    write_json(summary_path, summary)


def rescore_run(run: Path, device: str | torch.device = "cpu", data_dir: str | Path | None = None) -> dict[str, Any]:
    """Score every ``samples/*.npz`` of a run against its dataset's test split; record them in its summary."""
    config = read_json(run / "config.json")
    dataset = config["config"].get("data", {}).get("dataset")
    if dataset is None:
        raise GenlabError(f"the config of {run} names no data.dataset; cannot tell what to score against")
    files = sorted((run / "samples").glob("*.npz"))
    if not files:
        raise GenlabError(f"{run / 'samples'} holds no .npz samples to score",
                          hint="sample the run first (e.g. `genlab sample RUN_DIR`)")
    results = {}
    for path in files:
        results[path.stem] = score_file(path, dataset, device=device, data_dir=data_dir)
        record_scores(run, path.stem, results[path.stem])
    return results
