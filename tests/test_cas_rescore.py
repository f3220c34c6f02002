"""benchmarks/cas_rescore.py: the CAS of a finished pipeline's labelled samples, scored again as the run scores them."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import load_benchmark, needs_data
from genlab.data import load



def _run(folder: Path, family: str, images: np.ndarray, labels: np.ndarray | None, file: str) -> Path:
    (folder / "samples").mkdir(parents=True)
    config = {"data": {"dataset": "mnist", "train_limit": 0, "test_limit": 1000},
              "eval": {"reference_images": 1000, "cas_epochs": 1}, "seed": 0}
    (folder / "config.json").write_text(json.dumps({"experiment": family, "config": config}))
    (folder / "summary.json").write_text(json.dumps({"family": family, "metrics": {"cas": 0.1, "cas_real": 0.2}}))
    arrays = {"images": images} if labels is None else {"images": images, "labels": labels}
    np.savez(folder / "samples" / file, **arrays)
    return folder


@needs_data("mnist")
def test_rescoring_scores_real_digits_near_real_and_shuffled_labels_near_chance(tmp_path, monkeypatch):
    rescore = load_benchmark("cas_rescore")
    train = load("mnist", "train")
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(5))[:320]
    images, labels = train.images[pick].numpy(), train.labels[pick].numpy()
    shuffled = np.random.default_rng(0).permutation(labels)
    jobs = {"digits": _run(tmp_path / "a", "ebm", images, labels, "final.npz"),
            "shuffled": _run(tmp_path / "b", "jem", images, shuffled, "conditional.npz"),
            "unlabelled": _run(tmp_path / "c", "ebm", images, None, "final.npz")}
    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    (pipeline / "pipeline.json").write_text(json.dumps({"jobs": {
        key: {"status": "complete", "run_dir": str(folder), "stage": key, "seed": 0}
        for key, folder in jobs.items()}}))
    out = tmp_path / "cas.json"
    monkeypatch.setattr(sys, "argv", ["cas_rescore.py", "--existing", str(pipeline), "--out", str(out)])
    rescore.main()
    result = json.loads(out.read_text())
    runs = {run["job"]: run for run in result["runs"]}
    assert set(runs) == {"digits", "shuffled"}  # the unlabelled samples have no CAS
    digits, shuffled_run = runs["digits"], runs["shuffled"]
    assert digits["cas_epochs"] == 30 and digits["cas_in_summary"] == 0.1  # 10 steps an epoch, 300-step floor
    assert digits["cas"] > 0.8 and abs(digits["cas"] - digits["cas_real"]) < 0.1
    assert shuffled_run["cas"] < 0.25 < shuffled_run["cas_real"]
    assert result["over_seeds"]["digits"]["cas"]["mean"] == pytest.approx(digits["cas"])
