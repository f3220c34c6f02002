"""A classifier judges (or starts) only runs it is fit for: its dataset's accuracy bar, and no smoke
classifier for anything but smoke runs."""

import pytest

from genlab import judges
from genlab.errors import GenlabError
from genlab.eval.judge import Judge
from genlab.nets.classifiers import build_classifier
from genlab.report.html import run_report
from genlab.train.run_dir import RunDir

ARCH = {"arch": "cnn", "in_channels": 1, "num_classes": 10, "width": 4, "norm": "batch"}


def _cache(config_hash: str, preset: str, accuracy: float, seed: int = 0) -> None:
    judges.store("mnist", config_hash, build_classifier(**ARCH), ARCH,
                 {"test_accuracy": accuracy, "seed": seed, "preset": preset, "run_dir": "/nowhere"})


def test_the_bars_are_the_classifier_study_targets():
    assert judges.JUDGE_BARS == {"mnist": 0.99, "hoda": 0.99, "fashion_mnist": 0.90, "cifar10": 0.75}
    assert judges.START_BARS == {"mnist": 0.85, "cifar10": 0.70}


def test_a_smoke_classifier_never_judges_a_quick_run_and_the_error_gives_the_command():
    _cache("smokehash", "smoke", 0.995)  # accurate enough, but a smoke classifier
    with judges.serving("quick"), pytest.raises(GenlabError) as err:
        Judge.load("mnist")
    assert "smokehash (smoke, test accuracy 99.50%)" in err.value.message and "at least 99%" in err.value.message
    assert "`genlab run classifier-mnist --preset quick`" in err.value.hint


def test_a_classifier_below_the_bar_never_judges_a_quick_run():
    _cache("weakhash", "quick", 0.95)
    with judges.serving("quick"), pytest.raises(GenlabError, match="weakhash \\(quick, test accuracy 95.00%\\)"):
        Judge.load("mnist")


def test_outside_a_run_the_strict_rule_holds():
    _cache("smokehash", "smoke", 0.995)
    with pytest.raises(GenlabError, match="fit to serve as the judge of these samples"):
        Judge.load("mnist")


def test_a_smoke_run_may_use_any_and_a_quick_run_takes_the_fit_one_and_records_it():
    _cache("smokehash", "smoke", 0.999)
    _cache("quickhash", "quick", 0.992)
    with judges.serving("smoke") as used:
        assert Judge.load("mnist").info["config_hash"] == "smokehash"  # the most accurate
    assert used["judge"]["config_hash"] == "smokehash"
    with judges.serving("quick") as used:
        judge = Judge.load("mnist")
    assert judge.info["config_hash"] == "quickhash"
    assert used == {"judge": {"dataset": "mnist", "config_hash": "quickhash", "preset": "quick", "seed": 0,
                              "test_accuracy": 0.992}}
    assert "quickhash (quick preset, seed 0, test accuracy 99.20%)" in judge.description


def test_jems_start_has_its_own_bar_and_no_smoke_start_for_a_quick_run():
    _cache("startsmoke", "smoke", 0.97, seed=1)
    with judges.serving("quick"), pytest.raises(GenlabError) as err:
        judges.load_classifier("mnist", seed=1, arch={"norm": "batch"})
    assert "start classifier" in err.value.message and "at least 85%" in err.value.message
    assert "`genlab run classifier-mnist --preset quick --seed 1 --set model.norm=batch`" in err.value.hint
    _cache("startquick", "quick", 0.90, seed=1)  # below the judges' bar, above JEM's
    with judges.serving("quick") as used:
        _, info = judges.load_classifier("mnist", seed=1, arch={"norm": "batch"})
    assert info["config_hash"] == "startquick" and used["start_classifier"]["config_hash"] == "startquick"


def test_an_older_cache_entry_takes_its_preset_from_its_run(tmp_path):
    run = RunDir.create(tmp_path / "run", {"experiment": "classifier-mnist", "preset": "smoke", "config": {}})
    judges.store("mnist", "old", build_classifier(**ARCH), ARCH, {"test_accuracy": 0.995, "seed": 0,
                                                                  "run_dir": str(run.path)})
    assert judges.preset_of(judges.entries("mnist")[0]) == "smoke"
    with judges.serving("quick"), pytest.raises(GenlabError, match="old \\(smoke"):
        Judge.load("mnist")


def test_the_report_names_the_judge_and_its_accuracy(tmp_path):
    run = RunDir.create(tmp_path / "run", {"experiment": "gan-hoda", "preset": "quick", "config": {"seed": 0}})
    run.write_summary({"status": "complete", "metrics": {"fid": 1.0},
                       "judge": {"dataset": "hoda", "config_hash": "abc123", "preset": "quick", "seed": 0,
                                 "test_accuracy": 0.9951},
                       "data_root": {"hoda": {"root": "/data", "found_by": "$GENLAB_DATA_DIR"}}})
    page = run_report(run.path)
    assert "hoda classifier abc123 (quick preset, seed 0)" in page and "0.9951" in page
    assert "/data ($GENLAB_DATA_DIR)" in page
