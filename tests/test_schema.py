"""The metrics schema and the table of targets: what the experiments write, the report and benchmarks read and
the targets check are the same declared keys."""

import ast
import json
import warnings
from pathlib import Path

import pytest

import genlab.eval.targets as targets_module
import genlab.report.studies as studies_module
from genlab.eval.schema import FAMILIES, METRICS, UndeclaredMetricWarning, _declarations, undeclared, warn_undeclared
from genlab.eval.targets import TARGETS, Target, verdict
from genlab.experiments.base import Experiment
from conftest import load_benchmark
from genlab.experiments.classifiers import ClassifierConfig
from genlab.experiments.runner import start_run

ROOT = Path(__file__).resolve().parents[1]
STUDY_FAMILY = {"classifiers": "classifier", "ebm": "ebm", "jem": "jem", "dvae": "dvae", "gan": "gan"}
# The report's accessors of a summary metric, and the position of their key argument.
READERS = {"metric": 1, "values": 1, "mean": 1, "spread": 1, "_per_class_means": 1, "time_to_fid": 2,
           "_times_to_fid": 2}


def test_each_metric_is_declared_once_with_a_meaning_a_unit_and_its_families():
    names = [metric.name for metric in _declarations()]
    assert len(names) == len(set(names)) == len(METRICS)
    for metric in METRICS.values():
        assert metric.meaning and metric.unit, metric.name
        assert metric.families and set(metric.families) <= set(FAMILIES), metric.name


def test_undeclared_names_unknown_keys_and_keys_of_another_family():
    assert undeclared({"fid": 10.0, "grad_norm_spikes": 0, "fid_curve": []}, "ebm") == []
    assert undeclared({"fid": 10.0, "best_val_fid": 4.0, "fidd": 9.0}, "ebm") == ["best_val_fid", "fidd"]
    assert undeclared({"test_fid": 3.0}, "gan") == []


def test_an_undeclared_metric_warns_and_the_test_suite_makes_it_an_error():
    with pytest.raises(UndeclaredMetricWarning, match="'jem-mnist' .*: accuracy_typo"):
        warn_undeclared({"test_accuracy": 0.99, "accuracy_typo": 0.99}, "jem", "jem-mnist")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_undeclared({"test_accuracy": 0.99}, "jem", "jem-mnist")  # declared: no warning


def test_a_run_writing_an_undeclared_metric_keeps_its_summary_and_warns(tmp_path, monkeypatch):
    written = {"test_accuracy": 0.5, "made_up_key": 1.0}
    fake = Experiment("fake-classifier", "classifier", "writes one undeclared key", ClassifierConfig,
                      lambda ctx: dict(written), presets={"smoke": {}})
    monkeypatch.setattr("genlab.experiments.runner.get_experiment", lambda name: fake)
    with pytest.warns(UndeclaredMetricWarning, match="made_up_key"):
        run = start_run("fake-classifier", "smoke", run_dir=tmp_path / "run", device="cpu", progress=False)
    assert json.loads((run.path / "summary.json").read_text())["metrics"] == written


def _report_keys(path: Path) -> set[str]:
    """Every literal key the report module at ``path`` passes to a metric accessor."""
    keys = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in READERS:
            given = [*node.args[READERS[node.func.id]:][:1], *(k.value for k in node.keywords
                                                               if k.arg in ("key", "curve_key"))]
            keys |= {a.value for a in given if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return keys


def test_every_key_the_report_reads_is_declared():
    keys = set()
    for name in ("studies.py", "index.py", "html.py"):
        keys |= _report_keys(ROOT / "src/genlab/report" / name)
    assert {"wasserstein_fid_spearman", "per_class_energy_samples", "fid_curve", "val_fid_curve",
            "classifier_ece"} <= keys  # the scan finds them
    assert sorted(keys - set(METRICS)) == []


def test_every_column_of_a_study_is_written_by_its_family():
    for name, study in studies_module.STUDIES.items():
        for key, _ in study.columns:
            assert STUDY_FAMILY[name] in METRICS[key].families, (name, key)


def test_the_benchmarks_read_declared_keys():
    energy, dvae, pipeline = load_benchmark("energy_models"), load_benchmark("dvae_clustering"), load_benchmark("pipeline_time")
    for family, columns in energy.COLUMNS.items():
        for key in columns:
            assert key == "minutes" or family in METRICS[key].families, (family, key)  # minutes: the wall time
    assert all("dvae" in METRICS[key].families for key in dvae.COLUMNS)
    assert set(pipeline.HEADLINES + pipeline.BEYOND) <= set(METRICS)


def test_every_target_is_in_the_table_and_reads_keys_its_study_writes():
    defined = [v for value in vars(targets_module).values()
               for v in (value.values() if isinstance(value, dict) else [value]) if isinstance(v, Target)]
    assert len(TARGETS) == len(set(TARGETS)) == len(defined) and set(defined) == set(TARGETS)
    for target in TARGETS:
        family = STUDY_FAMILY.get(target.study)
        assert family or target.study == "pipeline", target
        for key in target.keys:
            assert family in METRICS[key].families, (target.measure, key)


def test_verdict_compares_as_the_target_says_and_needs_every_check_met():
    at_least = Target("x", "a share", ("test_accuracy",), ">=", 0.9, "fraction")
    above = Target("x", "a margin", ("test_accuracy",), ">", 0, "fraction")
    within = Target("x", "minutes", (), "<=", 20, "min")
    under = Target("x", "hours", (), "<", 3, "h")
    assert verdict((at_least, 0.9)) == "met" and verdict((at_least, 0.8999)) == "not met"
    assert verdict((above, 0.001)) == "met" and verdict((above, 0)) == "not met"
    assert verdict((within, 20)) == "met" and verdict((within, 20.1)) == "not met"
    assert verdict((under, 2.99)) == "met" and verdict((under, 3)) == "not met"
    assert verdict((at_least, 0.95), (within, 19)) == "met"
    assert verdict((at_least, 0.95), (within, 21)) == "not met"
