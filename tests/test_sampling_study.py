"""The sampling study of a trained CIFAR-10 energy: its grid, the two forms at a cell, the rule that picks the
best cell (by domain and label-free FID), a smoke run end to end with its figures, table and report lines, and
its place in the pipeline."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from genlab.cli import main
from genlab.errors import ConfigError
from genlab.experiments.pipeline import STAGES, plan
from genlab.experiments.registry import get_experiment
from genlab.experiments.runner import prerequisites
from genlab.eval.quality import best_first
from genlab.experiments.sampling_study import (CELL_COLUMNS, Cell, GridConfig, cells, corners, ranked, sample_steps,
                                               sampler_for, training_sets)
from genlab.report.figures import heatmap_figure
from genlab.report.studies import sampling_study_lines
from genlab.sampling import SamplerConfig, run_chain
from genlab.train.run_dir import RunDir
from conftest import load_benchmark, needs_data

STUDY = "ebm-cifar10-sampling-study"
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
FID, RANDNET = CELL_COLUMNS.index("fid"), CELL_COLUMNS.index("randnet_fid")


def test_grid_cells_corners_and_cost_by_hand():
    grid = GridConfig(coupled=(0.01, 0.1), decoupled=(10.0,), steps=(10, 20, 40), schedules=("constant", "decay"),
                      starts=("uniform", "buffer"), samples=50)
    found = cells(grid)
    assert len(found) == 3 * 3 * 2 * 2 == len(set(found))
    assert Cell("coupled", 0.1, 40, "decay", "buffer") in found
    assert corners(grid, "coupled", "decay", "uniform") == [
        Cell("coupled", 0.01, 10, "decay", "uniform"), Cell("coupled", 0.01, 40, "decay", "uniform"),
        Cell("coupled", 0.1, 10, "decay", "uniform"), Cell("coupled", 0.1, 40, "decay", "uniform")]
    assert len(corners(grid, "decoupled", "constant", "buffer")) == 2  # one step size: two corners
    # per (form, eps, start): constant runs T=40 once, decay runs 10 + 20 + 40; 3 step sizes, 2 starts, 50 chains
    assert sample_steps(grid) == (40 + 70) * 3 * 2 * 50
    assert len(cells(GridConfig(coupled=()))) == 3 * 4 * 3 * 3  # a form without step sizes has no cells


def test_quick_grid_is_the_counted_one():
    grid = get_experiment(STUDY).config("quick").grid
    assert len(cells(grid)) == 216 and sample_steps(grid) == (80 + 2 * 150) * 6 * 3 * 200


def test_empty_grid_is_refused():
    with pytest.raises(ConfigError, match="no step sizes"):
        get_experiment(STUDY).config("quick", {"grid.coupled": "", "grid.decoupled": ""})


def test_best_is_the_lowest_mean_rank_by_domain_and_label_free_fid():
    # (name, domain FID, label-free FID): "fooled" is best by domain FID but worst label-free
    table = [("fooled", 50.0, 1.2), ("worst", 80.0, 0.1), ("good", 60.0, 0.07), ("label-free best", 70.0, 0.06)]
    order = best_first(table, lambda r: r[1], lambda r: r[2])
    # rank sums: fooled 0 + 3, worst 3 + 2, good 1 + 1, label-free best 2 + 0; the tie of good and label-free
    # best goes to the lower domain FID
    assert [r[0] for r in order] == ["good", "label-free best", "fooled", "worst"]
    assert [r[0] for r in best_first(table, lambda r: r[1], lambda r: math.nan)] == [
        "fooled", "good", "label-free best", "worst"]  # no label-free FID: by domain FID
    blown_up = [("nan", math.nan, math.nan), ("none", None, None), ("ok", 100.0, 0.5), ("fine", 90.0, 0.4)]
    assert [r[0] for r in best_first(blown_up, lambda r: r[1], lambda r: r[2])] == ["fine", "ok", "nan", "none"]
    rows = [{"cell": name, "fid": d, "randnet_fid": r} for name, d, r in table]
    assert ranked(rows)[0]["cell"] == "good"


def test_the_benchmark_trains_the_top_cells_by_the_same_rule(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # its shared helpers (energy_models)
    benchmark = load_benchmark("sampling_study")
    run = RunDir.create(tmp_path / "study", {"experiment": STUDY, "config": {}})

    def study(rows):
        run.write_summary({"status": "complete", "metrics": {"sampling_cells": rows}})
        return [name for name, _ in benchmark.best_settings(run.path, 2)]

    fooled, good = Cell("decoupled", 30.0, 80, "constant", "uniform"), Cell("decoupled", 10.0, 20, "decay", "gaussian")
    other = Cell("coupled", 0.01, 10, "cosine", "buffer")
    rows = [[c.form, c.eps, c.steps, c.schedule, c.start, fid, 1.0, 0.1, free]
            for c, fid, free in ((fooled, 50.0, 1.2), (good, 60.0, 0.07), (other, 70.0, 0.08))]
    assert study(rows) == [good.describe(), fooled.describe()]  # rank sums: good 1 + 0, fooled 0 + 2, other 2 + 1
    assert study([row[:RANDNET] for row in rows]) == [fooled.describe(), good.describe()]  # an older study


def test_coupled_and_decoupled_forms_at_a_cell():
    """E(x) = sum(x) has gradient 1: one coupled step of eps 0.1 from 0 moves by -eps^2/2 = -0.005 with noise 0.1;
    one decoupled step of 0.1 moves by -0.1 with noise 0.005 (the grid's noise at the first step)."""
    grid = GridConfig(noise=0.005)
    base = SamplerConfig(precision="fp32")
    x0 = torch.zeros(40000, 1)
    torch.manual_seed(0)
    coupled = run_chain(lambda x: x.sum(1), x0, sampler_for(base, Cell("coupled", 0.1, 1, "constant", "uniform"),
                                                            grid)).x
    decoupled = run_chain(lambda x: x.sum(1), x0, sampler_for(base, Cell("decoupled", 0.1, 1, "constant", "uniform"),
                                                              grid)).x
    assert coupled.mean().item() == pytest.approx(-0.005, abs=0.002)
    assert coupled.std().item() == pytest.approx(0.1, rel=0.03)
    assert decoupled.mean().item() == pytest.approx(-0.1, abs=1e-4)
    assert decoupled.std().item() == pytest.approx(0.005, rel=0.03)


def test_a_cell_trains_with_its_own_sampler_settings():
    grid = GridConfig(end_ratio=0.1, noise=0.01)
    sets = training_sets(Cell("decoupled", 10.0, 40, "cosine", "uniform"), grid)
    cfg = get_experiment("ebm-cifar10-buffer").config("smoke", sets)
    assert (cfg.sampler.init, cfg.sampler.steps, cfg.sampler.schedule) == ("noise", 40, "cosine")
    assert cfg.sampler.step_size_end == pytest.approx(1.0) and cfg.sampler.noise_follows_step
    assert cfg.sampler.start == "uniform"
    gaussian = get_experiment("ebm-cifar10-buffer").config(
        "smoke", training_sets(Cell("decoupled", 10.0, 40, "cosine", "gaussian"), grid)).sampler
    assert (gaussian.init, gaussian.start) == ("noise", "gaussian")
    buffer = training_sets(Cell("decoupled", 10.0, 40, "cosine", "buffer"), grid)
    assert buffer["sampler.init"] == "buffer" and "sampler.start" not in buffer  # fresh 5% as the run drew them


def test_the_pipeline_runs_the_study_after_its_energy_and_trains_only_its_judge_first():
    keys = [job.key for job in plan(2, only=[STUDY])]
    assert keys == ["classifier-cifar10", "ebm-cifar10-buffer/seed0", "ebm-cifar10-buffer/seed1",
                    f"{STUDY}/seed0", f"{STUDY}/seed1"]
    stage = next(s for s in STAGES if s.name == STUDY)
    assert stage.waits_for == ("classifier-cifar10", "ebm-cifar10-buffer")
    experiment = get_experiment(STUDY)
    needed = prerequisites(experiment, experiment.config("smoke"))
    assert [(n.role, n.experiment) for n in needed] == [("judge", "classifier-cifar10")]


def test_heat_maps_share_one_scale_centred_where_asked_and_leave_missing_cells_blank():
    panels = [("a", ["eps 1", "eps 2"], ["T=1"], [[-1.0], [float("nan")]]), ("b", ["eps 1"], ["T=1"], [[3.0]])]
    fig = heatmap_figure(panels, "gap", columns=3, cmap="coolwarm", centre=0.0)
    first, second, spare = fig.axes[:3]
    assert first.images[0].get_clim() == second.images[0].get_clim() == (-3.0, 3.0)
    assert [t.get_text() for t in first.texts] == ["-1"] and [t.get_text() for t in second.texts] == ["3"]
    assert not spare.axison  # the third column of the row has no panel
    assert heatmap_figure(panels, "fid", columns=2).axes[0].images[0].get_clim() == (-1.0, 3.0)


def test_report_lines_name_the_best_setting_over_seeds():
    def summary(seed, fids):
        rows = [["decoupled", 10.0, t, "constant", s, fid, 1.0 + t / 10, 0.01 * t]
                for (t, s), fid in zip([(10, "uniform"), (20, "uniform"), (10, "buffer"), (20, "buffer")], fids)]
        return {"seed": seed, "metrics": {"sampling_cells": rows, "sampling_energy_data": 1.0,
                                          "sampling_samples_per_cell": 200}}

    lines = sampling_study_lines([summary(0, [90, 80, 70, 100]), summary(1, [90, 80, 90, 100])])
    # mean FID over seeds: uniform T=10 90, T=20 80, buffer T=10 80, T=20 100; the first of the tied 80s wins
    assert "decoupled step 10, T=20, constant schedule, uniform start</strong>, domain FID 80" in lines[0]
    assert "by start: buffer 80, uniform 80" in lines[0] and "along T at the best setting: T=10 90, T=20 80" in lines[0]
    assert "+2" in lines[0] and "200 ms per sample" in lines[0]  # energy 1 + 20/10 against the data's 1; 0.2 s
    assert lines[-1].startswith("<table>") and lines[-1].count("<tr>") == 5
    assert sampling_study_lines([]) == []


def test_report_names_the_best_setting_by_both_fids():
    # (T, start, domain FID, label-free FID): T=40 is best by domain FID, but the worst label-free
    cells = [(10, "uniform", 80, 0.07), (20, "uniform", 70, 0.08), (40, "uniform", 50, 1.2), (10, "buffer", 90, 0.3)]
    rows = [["decoupled", 10.0, t, "constant", s, fid, 1.0, 0.01, free] for t, s, fid, free in cells]
    lines = sampling_study_lines([{"seed": 0, "metrics": {"sampling_cells": rows, "sampling_energy_data": 1.0,
                                                          "sampling_samples_per_cell": 200}}])
    # rank sums: T=10 2 + 0, T=20 1 + 1, T=40 0 + 3, buffer 3 + 2; the tie of T=10 and T=20 goes to T=20's FID
    assert "T=20, constant schedule, uniform start</strong>, domain FID 70, label-free FID 0.08" in lines[0]
    assert "can be fooled" in lines[0] and "by start: buffer 90 / 0.3, uniform 70 / 0.08" in lines[0]
    assert "it ranks best at T=20 (FID 70 / 0.08" in lines[1] and "lower at T=40 (50 / 1.2, " in lines[1]
    assert lines[-1].index("T=20") < lines[-1].index("T=10") < lines[-1].index("T=40")  # the table, best first
    assert "<td>0.08</td>" in lines[-1]


@needs_data("cifar10")
def test_smoke_study_end_to_end(tmp_path, one_thread):
    assert main(["run", "classifier-cifar10", "--preset", "smoke", "--run-dir", str(tmp_path / "judge"),
                 "--no-progress"]) == 0
    assert main(["run", STUDY, "--preset", "smoke", "--runs-dir", str(tmp_path), "--no-progress"]) == 2  # no energy
    assert main(["run", "ebm-cifar10-buffer", "--preset", "smoke", "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    assert main(["run", STUDY, "--preset", "smoke", "--runs-dir", str(tmp_path), "--run-dir",
                 str(tmp_path / "study"), "--no-progress"]) == 0
    run = tmp_path / "study"
    summary = json.loads((run / "summary.json").read_text())
    metrics = summary["metrics"]
    grid = get_experiment(STUDY).config("smoke").grid
    assert len(metrics["sampling_cells"]) == len(cells(grid)) == 2 * 2 * 3 * 3
    assert {row[4] for row in metrics["sampling_cells"]} == {"uniform", "gaussian", "buffer"}
    assert metrics["sampling_steps"] == sample_steps(grid) and metrics["sampling_samples_per_cell"] == grid.samples
    assert all(len(row) == len(CELL_COLUMNS) and math.isfinite(row[RANDNET]) and row[RANDNET] >= 0
               for row in metrics["sampling_cells"])
    best = best_first(metrics["sampling_cells"], lambda row: row[FID], lambda row: row[RANDNET])[0]
    assert (metrics["fid"], metrics["sampling_best_randnet_fid"]) == (best[FID], best[RANDNET])
    assert metrics["sampling_best"] == Cell(*best[:5]).describe()
    assert any(str(tmp_path / "ebm-cifar10-buffer") in note for note in summary["notes"])
    with open(run / "sampling_table.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(cells(grid)) and float(table[0]["fid"]) == metrics["fid"]
    assert float(table[0]["randnet_fid"]) == metrics["sampling_best_randnet_fid"]
    assert all(math.isfinite(float(row["randnet_fid"])) for row in table)
    for name in ("sampling_fid", "sampling_randnet_fid", "sampling_energy_gap", "sampling_corners"):
        assert (run / "figures" / f"{name}.png").stat().st_size > 1000
    assert len(list((run / "samples" / "cells").glob("*.png"))) == len(cells(grid))
    assert "the best setting is" in sampling_study_lines([summary])[0]
