"""A data root the user named is used or refused, never passed over; the root used is said and recorded."""

import json

import numpy as np
import pytest

from genlab.cli import main
from genlab.data import files
from genlab.data.files import locate
from genlab.data.registry import HODA, MNIST
from genlab.errors import DataError
from conftest import needs_data, write_cdb


def _partial_hoda(root):
    (root / "hoda").mkdir(parents=True)
    image = np.zeros((4, 4), np.uint8)
    write_cdb(root / "hoda" / "Train 60000.cdb", [image], [1])
    write_cdb(root / "hoda" / "RemainingSamples.cdb", [image], [2])


@pytest.mark.parametrize("how", ["--data-dir", "$GENLAB_DATA_DIR"])
def test_a_named_root_with_part_of_a_dataset_is_an_error_naming_the_missing_files(tmp_path, monkeypatch, how):
    _partial_hoda(tmp_path)  # the roots after it (shared/data, where present) hold all of Hoda: not to be used
    if how == "--data-dir":
        call = lambda: locate(HODA, tmp_path)  # noqa: E731
    else:
        monkeypatch.setenv("GENLAB_DATA_DIR", str(tmp_path))
        call = lambda: locate(HODA)  # noqa: E731
    with pytest.raises(DataError) as err:
        call()
    assert f"the data root {tmp_path} ({how}) holds part of dataset 'hoda'" in err.value.message
    assert "but not Test 20000.cdb" in err.value.message and "put the missing file(s)" in err.value.hint


def test_a_named_root_without_the_dataset_leaves_it_to_the_other_roots(tmp_path, monkeypatch):
    other = tmp_path / "other"
    (other / "mnist").mkdir(parents=True)
    for name in (f.name for f in MNIST.files):
        (other / "mnist" / name).write_bytes(b"")
    monkeypatch.setattr(files, "candidate_roots", lambda data_dir=None: [
        (tmp_path / "named", "--data-dir"), (other, "shared/data beside the checkout")])
    (tmp_path / "named").mkdir()
    found = locate(MNIST, tmp_path / "named")
    assert found.root == other and found.found_by == "shared/data beside the checkout"


def test_the_root_of_each_dataset_is_recorded_and_announced_once(tmp_path, capsys):
    (tmp_path / "mnist").mkdir()
    for name in (f.name for f in MNIST.files):
        (tmp_path / "mnist" / name).write_bytes(b"")
    with files.recording(announce=True) as roots:
        locate(MNIST, tmp_path)
        locate(MNIST, tmp_path)
    assert roots == {"mnist": {"root": str(tmp_path), "found_by": "--data-dir"}}
    assert capsys.readouterr().err == f"genlab: data: mnist from {tmp_path} (--data-dir)\n"
    locate(MNIST, tmp_path)  # outside a recording: nothing said
    assert capsys.readouterr().err == ""


@needs_data("mnist")
def test_a_run_says_its_data_root_at_the_start_and_records_it(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "classifier-mnist", "--preset", "smoke", "--set", "train.epochs=1", "--run-dir", str(run),
                 "--no-progress", "--device", "cpu"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    root = summary["data_root"]["mnist"]
    assert set(root) == {"root", "found_by"} and (files.Path(root["root"]) / "mnist").is_dir()
    assert capsys.readouterr().err.splitlines()[0] == f"genlab: data: mnist from {root['root']} ({root['found_by']})"


def test_a_failed_pipeline_job_is_not_described_by_its_data_line(tmp_path):
    from genlab.experiments.pipeline import _outcome

    log = tmp_path / "job.log"
    log.write_text("genlab: data: mnist from /data (--data-dir)\nTraceback (most recent call last):\nValueError: boom\n")
    assert _outcome(1, log)["error"] == "ValueError: boom"
