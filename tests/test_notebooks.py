"""The notebooks in examples/ run from top to bottom (the smoke preset of each study, through genlab.api) and
show their figures; the repository keeps them without outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import needs_data

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = ("ebm", "jem", "dvae", "gans")
DATASETS = {"ebm": ("cifar10", "mnist"), "jem": ("mnist",), "dvae": ("mnist",), "gans": ("hoda",)}  # each one runs


def test_every_study_has_a_notebook_kept_without_outputs():
    assert sorted(p.stem for p in EXAMPLES.glob("*.ipynb")) == sorted(NOTEBOOKS)
    for name in NOTEBOOKS:
        notebook = nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert code and all(not c.outputs and c.execution_count is None for c in code), name


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=needs_data(*DATASETS[n])) for n in NOTEBOOKS])
def test_notebook_runs_and_shows_its_figures(name, tmp_path):
    shutil.copy(EXAMPLES / f"{name}.ipynb", tmp_path)
    notebook = nbformat.read(tmp_path / f"{name}.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the run's figures, inline
    assert list((tmp_path / "runs").glob("*/*/report.html"))
