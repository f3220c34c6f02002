"""A full disk while the report or a figure is written: the run's numbers are kept, and `genlab report`
rebuilds the report once there is space."""

import errno
import json

import matplotlib.pyplot as plt
import pytest

from genlab.cli import main
from genlab.report import figures, html
from conftest import needs_data


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_figure_that_cannot_be_written_is_a_warning_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(plt.Figure, "savefig", _no_space)
    with pytest.warns(UserWarning, match="could not write figure .*a.png: No space left on device"):
        figures.save(plt.figure(), tmp_path / "a.png")
    assert list(tmp_path.iterdir()) == []


@needs_data("mnist")
def test_disk_full_at_the_report_and_figures_keeps_the_numbers_and_the_report_is_rebuilt(tmp_path, monkeypatch,
                                                                                        capsys):
    run = tmp_path / "run"
    with monkeypatch.context() as full:
        full.setattr(html, "write_atomic", _no_space)
        full.setattr(plt.Figure, "savefig", _no_space)
        assert main(["run", "classifier-mnist", "--preset", "smoke", "--set", "train.epochs=1", "--run-dir",
                     str(run), "--no-progress", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "could not write figure" in err and "confusion.png" in err
    assert f"could not write {run / 'report.html'}: No space left on device; the run's numbers" in err
    assert f"`genlab report {run}`" in err and "Traceback" not in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "complete" and 0 <= summary["metrics"]["test_accuracy"] <= 1
    assert (run / "metrics.jsonl").stat().st_size > 0 and list((run / "checkpoints").glob("step_*.pt"))
    assert not (run / "report.html").exists() and not list(run.glob(".*.tmp"))

    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "test_accuracy" in page and "classifier-mnist" in page
