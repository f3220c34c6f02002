import os
import random

import numpy as np
import pytest
import torch

from genlab.cli import main
from genlab.config import config_hash, to_dict
from genlab.errors import CheckpointError, RunError
from genlab.experiments.base import trained_state
from genlab.experiments.ebm import EBMConfig
from genlab import io
from genlab.io import load_torch as load, save_torch as save_atomic, write_json
from genlab.train.checkpoint import CheckpointStore, capture_rng, restore_rng
from genlab.train.run_dir import RunDir
from conftest import have_dataset

META = {"experiment": "toy", "config_hash": "abc"}


def _state(step, value=1.0):
    return {"meta": {**META, "step": step}, "trainer": {"w": torch.full((3,), value)}}


def test_kill_mid_write_leaves_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_atomic(_state(1, 1.0), path)

    def dying_save(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.torch, "save", dying_save)
    with pytest.raises(RunError, match="could not write checkpoint .*No space left on device.*previous checkpoint is intact"):
        save_atomic(_state(2, 2.0), path)
    monkeypatch.undo()
    assert torch.equal(load(path)["trainer"]["w"], torch.ones(3))
    assert os.listdir(tmp_path) == ["c.pt"]


def test_store_skips_a_corrupt_newest_with_a_warning(tmp_path):
    store = CheckpointStore(tmp_path, keep=3)
    store.save(10, _state(10, 1.0))
    newest = store.save(20, _state(20, 2.0))
    newest.write_bytes(newest.read_bytes()[:100])
    with pytest.warns(UserWarning, match="skipping checkpoint .*step_00000020.pt"):
        state = store.latest(META)
    assert state["meta"]["step"] == 10


def test_store_keeps_only_the_newest(tmp_path):
    store = CheckpointStore(tmp_path, keep=2)
    for step in (1, 2, 3):
        store.save(step, _state(step))
    assert [p.name for p in store.paths()] == ["step_00000003.pt", "step_00000002.pt"]


def test_a_save_deletes_what_killed_writes_left(tmp_path):
    store = CheckpointStore(tmp_path, keep=3)
    store.save(1, _state(1))
    (tmp_path / ".step_00000002.pt.4242.tmp").write_bytes(b"PK\x03\x04 half a zip")  # a write killed midway
    (tmp_path / "notes.tmp").write_text("not a checkpoint")
    store.save(2, _state(2))
    assert sorted(os.listdir(tmp_path)) == ["notes.tmp", "step_00000001.pt", "step_00000002.pt"]
    assert torch.equal(load(tmp_path / "step_00000002.pt")["trainer"]["w"], torch.ones(3))


class Arbitrary:
    """Any class: unpickling it could run code, so weights_only refuses it."""


def test_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"meta": META, "obj": Arbitrary()}, path)
    with pytest.raises(CheckpointError, match="holds objects genlab will not unpickle"):
        load(path)


@pytest.mark.parametrize("content", ["hello", "garbage\n"])
def test_not_a_torch_file(tmp_path, content):
    path = tmp_path / "x.pt"
    path.write_text(content)
    with pytest.raises(CheckpointError, match="x.pt is not a readable checkpoint"):
        load(path)


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"meta": META, "w": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="x.pt is not a readable checkpoint"):
        load(path)


def test_checkpoint_of_another_experiment_or_config(tmp_path):
    store = CheckpointStore(tmp_path)
    store.save(1, _state(1))
    with pytest.raises(CheckpointError, match="belongs to experiment 'toy', not 'other'"):
        store.latest({"experiment": "other", "config_hash": "abc"})
    with pytest.raises(CheckpointError, match="config.json was changed"):
        store.latest({"experiment": "toy", "config_hash": "xyz"})


def test_a_run_from_before_a_config_field_existed_still_loads(tmp_path):
    """A run started before genlab added a config field has a config.json without it, and checkpoints
    hashed without it: its model must still load (the field takes its default), while an edited
    config.json is still refused."""
    stored = to_dict(EBMConfig())
    del stored["model"]["stem_downsample"]
    run = RunDir.create(tmp_path / "old-run", {"experiment": "ebm-cifar10-buffer", "preset": "smoke",
                                               "config": stored})
    meta = {"experiment": "ebm-cifar10-buffer", "config_hash": config_hash(stored), "step": 5}
    CheckpointStore(run.checkpoints).save(5, {"meta": meta, "trainer": {"w": torch.ones(2)}})
    _, cfg, state = trained_state(run.path, EBMConfig, "cpu")
    assert cfg.model.stem_downsample == "stride" and state["meta"]["step"] == 5
    stored["model"]["width"] = 3
    write_json(run.config_path, {"experiment": "ebm-cifar10-buffer", "preset": "smoke", "config": stored})
    with pytest.raises(CheckpointError, match="config.json was changed"):
        trained_state(run.path, EBMConfig, "cpu")


def test_rng_round_trip_through_a_checkpoint(tmp_path):
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    save_atomic({"rng": capture_rng()}, tmp_path / "r.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(load(tmp_path / "r.pt")["rng"])
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]


@pytest.mark.parametrize("errno, reason", [(28, "No space left on device"), (30, "Read-only file system")])
def test_a_run_whose_checkpoint_write_fails_stops_cleanly_and_resumes(tmp_path, monkeypatch, capsys, errno, reason):
    """A disk fault mid-run: one message, exit 2, the earlier checkpoint intact, and `resume` finishes the run."""
    if not have_dataset("mnist"):
        pytest.skip("dataset mnist not found (no offline mirror; set GENLAB_DATA_DIR)")
    real_save, calls = torch.save, []

    def failing_third_save(obj, f):
        calls.append(1)
        if len(calls) == 3:  # checkpoints at steps 0 and 32 are written, the one at 64 fails
            raise OSError(errno, reason)
        real_save(obj, f)

    monkeypatch.setattr(io.torch, "save", failing_third_save)
    run_dir = tmp_path / "run"
    argv = ["run", "classifier-mnist", "--preset", "smoke", "--run-dir", str(run_dir), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "could not write checkpoint" in err and reason in err and "Traceback" not in err
    monkeypatch.undo()
    kept = CheckpointStore(run_dir / "checkpoints").paths()  # newest first
    assert [p.name for p in kept] == ["step_00000032.pt", "step_00000000.pt"] and load(kept[0])["meta"]["step"] == 32
    assert not list((run_dir / "checkpoints").glob(".*.tmp")) and not (run_dir / "summary.json").exists()
    assert main(["resume", str(run_dir), "--no-progress"]) == 0
    assert (run_dir / "summary.json").exists()
