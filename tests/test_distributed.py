"""Data parallelism under torchrun (2 gloo processes on the CPU) against one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import needs_data
from genlab.data.batches import Batches
from genlab.data.datasets import ImageSet
from genlab.errors import ConfigError
from genlab.train.checkpoint import CheckpointStore

# No batch norm and no augmentation: then two ranks of 32 images compute exactly the mean gradient of one
# batch of 64, and the curves may differ only by float summation order.
_EXACT = ["--set", "model.norm=none", "--set", "train.augment=none"]


def _genlab(args: list[str], processes: int = 1) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                str(processes)] if processes > 1 else [sys.executable]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*launcher, "-m", "genlab", *args, "--no-progress"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _train_losses(run: Path) -> list[tuple[int, float]]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in records if r.get("split") == "train"]


def test_ranks_split_each_global_batch_into_disjoint_shares():
    data = ImageSet("toy", "train", torch.zeros(100, 1, 2, 2, dtype=torch.uint8), torch.arange(100), ("a",))
    whole = Batches(data, 20, seed=3)
    shares = [Batches(data, 20, seed=3, rank=r, world_size=2) for r in range(2)]
    for step in (0, 4, 7):
        assert torch.equal(torch.cat([s.indices(step) for s in shares]), whole.indices(step))
    with pytest.raises(ConfigError, match="divide evenly"):
        Batches(data, 21, seed=3, world_size=2)
    with pytest.raises(ConfigError, match="larger than the 100 images of toy/train"):
        Batches(data, 101, seed=3)


@pytest.mark.slow
@needs_data("mnist")
def test_two_processes_follow_one_process_loss_curve_and_resume(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    _genlab(["run", "classifier-mnist", "--preset", "smoke", *_EXACT, "--run-dir", str(one)])
    out = _genlab(["run", "classifier-mnist", "--preset", "smoke", *_EXACT, "--run-dir", str(two)], processes=2)
    assert out.stdout.count("run complete") == 1  # rank 0 alone reports
    curve_one, curve_two = _train_losses(one), _train_losses(two)
    assert [s for s, _ in curve_one] == [s for s, _ in curve_two] and len(curve_one) >= 3
    assert curve_one[-1][1] < curve_one[0][1]  # it learns, so equal curves say something
    # Summation order differs, and a network that learns carries the difference forward: the curves agree
    # to about 1e-5 of the loss, where a wrong share of the batch or a missing average moves them by percents.
    for (_, a), (_, b) in zip(curve_one, curve_two):
        assert b == pytest.approx(a, rel=1e-4)
    summary = json.loads((two / "summary.json").read_text())
    assert summary["machine"]["processes"] == 2
    assert summary["metrics"]["test_accuracy"] == pytest.approx(
        json.loads((one / "summary.json").read_text())["metrics"]["test_accuracy"], abs=0.005)
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("genlab-rank1-*"))  # scratch removed

    # Rank 0's mid-run checkpoint resumes under two processes and under one: the same curve again.
    final = CheckpointStore(two / "checkpoints").paths()[0]
    for processes in (2, 1):
        copy = tmp_path / f"resumed{processes}"
        subprocess.run(["cp", "-r", str(two), str(copy)], check=True)
        (copy / "summary.json").unlink()
        (copy / "checkpoints" / final.name).unlink()
        _genlab(["resume", str(copy)], processes=processes)
        resumed = _train_losses(copy)
        assert [s for s, _ in resumed] == [s for s, _ in curve_two]
        for (_, a), (_, b) in zip(curve_two, resumed):
            assert b == pytest.approx(a, abs=1e-5)


@pytest.mark.slow
@needs_data("mnist")
def test_an_ebm_trains_under_two_processes_with_a_buffer_per_rank(tmp_path):
    _genlab(["run", "classifier-mnist", "--preset", "smoke", "--run-dir", str(tmp_path / "judge")])
    run = tmp_path / "ebm"
    _genlab(["run", "ebm-mnist-cond", "--preset", "smoke", "--run-dir", str(run)], processes=2)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["machine"]["processes"] == 2
    assert (run / "samples" / "final.png").exists()
    state = torch.load(CheckpointStore(run / "checkpoints").paths()[0], weights_only=True)
    assert not any(k.startswith("module.") for k in state["trainer"]["model"])  # loadable without DDP
    assert state["trainer"]["buffer"]["images"].shape[0] == 256
