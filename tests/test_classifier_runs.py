"""Each classifier experiment's smoke preset end to end, and SIGKILL + resume equality (real data)."""

import json
import sys

import pytest
import torch

from genlab import judges
from genlab.cli import main
from genlab.io import load_torch as load
from genlab.train.checkpoint import CheckpointStore
from genlab.train.loop import TIMING_KEYS
from conftest import have_dataset, needs_data, sigkill_after_checkpoint


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist", "hoda", "cifar10"])
def test_smoke_run_writes_everything(dataset, tmp_path, capsys):
    if not have_dataset(dataset):
        pytest.skip(f"dataset {dataset} not found (no offline mirror; set GENLAB_DATA_DIR)")
    run_dir = tmp_path / "run"
    assert main(["run", f"classifier-{dataset}", "--preset", "smoke", "--run-dir", str(run_dir), "--no-progress",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert f"run complete: {run_dir}" in out and "report:" in out
    config = json.loads((run_dir / "config.json").read_text())
    assert config["experiment"] == f"classifier-{dataset}" and config["config"]["data"]["dataset"] == dataset
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = summary["metrics"]
    assert summary["status"] == "complete"
    assert len(metrics["per_class_accuracy"]) == 10 and len(metrics["confusion"]) == 10
    assert sum(map(sum, metrics["confusion"])) == metrics["test_images"]
    correct = sum(metrics["confusion"][i][i] for i in range(10))  # the diagonal: right answers
    assert metrics["test_accuracy"] == pytest.approx(correct / metrics["test_images"])
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("split") == "train"] == list(range(16, 65, 16))
    assert {"loss", "acc", "lr"} <= set(records[0])
    assert (run_dir / "figures" / "confusion.png").stat().st_size > 1000
    assert "<table>" in (run_dir / "report.html").read_text()
    assert CheckpointStore(run_dir / "checkpoints").paths()[0].name == "step_00000064.pt"
    if dataset == "cifar10":
        assert any("first 1,000" in n for n in summary["notes"]) or metrics["test_images"] == 256
    if dataset == "hoda":
        assert "val_accuracy" in metrics and (run_dir / "splits" / "hoda_seed0.npz").exists()
    with judges.serving("smoke"):  # a smoke classifier serves smoke runs only
        model, info = judges.load_classifier(dataset)
    assert info["test_accuracy"] == metrics["test_accuracy"] and info["preset"] == "smoke" and not model.training


@needs_data("mnist")
@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    sets = ["--set", "train.epochs=20", "--set", "log.every=8", "--set", "log.checkpoint_every=8"]
    ref = tmp_path / "ref"
    assert main(["run", "classifier-mnist", "--preset", "smoke", *sets, "--run-dir", str(ref), "--no-progress"]) == 0

    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "genlab.cli", "run", "classifier-mnist", "--preset", "smoke", *sets,
           "--run-dir", str(killed), "--no-progress"]
    sigkill_after_checkpoint(cmd, killed / "checkpoints", step=96)
    assert not (killed / "summary.json").exists()

    assert main(["resume", str(killed), "--no-progress"]) == 0
    ref_summary = json.loads((ref / "summary.json").read_text())
    got_summary = json.loads((killed / "summary.json").read_text())
    assert got_summary["metrics"] == ref_summary["metrics"]
    ref_state = load(CheckpointStore(ref / "checkpoints").paths()[0])["trainer"]["model"]
    got_state = load(CheckpointStore(killed / "checkpoints").paths()[0])["trainer"]["model"]
    assert all(torch.equal(ref_state[k], got_state[k]) for k in ref_state)
    strip = lambda path: [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS}  # noqa: E731
                          for line in path.read_text().splitlines() if "event" not in line]
    assert strip(killed / "metrics.jsonl") == strip(ref / "metrics.jsonl")
