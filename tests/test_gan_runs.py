"""The GAN experiments end to end on Hoda (smoke presets): what a run writes, the split, exact resume."""

import json

import numpy as np
import pytest
import torch

from genlab.cli import main
from genlab.data.datasets import hoda_split_indices, load
from genlab.experiments.runner import start_run
from genlab.train.gan import GanTrainer
from conftest import needs_data

pytestmark = [needs_data("hoda"), pytest.mark.usefixtures("one_thread")]
EXPERIMENTS = {"gan-hoda": "gan", "wgan-hoda": "wgan", "wgangp-hoda": "wgan-gp"}
OBJECTIVE_KEYS = {"gan": set(), "wgan": {"wasserstein", "clipped_fraction"},
                  "wgan-gp": {"wasserstein", "gp", "interp_grad_norm"}}


@pytest.fixture
def hoda_judge(tmp_path):
    """A smoke-trained Hoda classifier in this test's cache: the judge of sample quality."""
    assert main(["run", "classifier-hoda", "--preset", "smoke", "--run-dir", str(tmp_path / "judge"),
                 "--no-progress", "--device", "cpu"]) == 0


def _run(experiment, run_dir, *sets):
    args = [a for s in sets for a in ("--set", s)]
    return main(["run", experiment, "--preset", "smoke", *args, "--run-dir", str(run_dir), "--no-progress",
                 "--device", "cpu"])


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_smoke_run_writes_grids_curves_samples_and_summary(experiment, hoda_judge, tmp_path):
    run = tmp_path / "run"
    assert _run(experiment, run) == 0
    summary = json.loads((run / "summary.json").read_text())
    metrics, objective = summary["metrics"], EXPERIMENTS[experiment]
    assert summary["status"] == "complete" and summary["steps_done"] == 6
    for key in ("test_fid", "test_kid", "test_is", "test_precision", "test_recall", "test_class_coverage",
                "test_confident_share", "best_val_fid", "last_val_fid"):
        assert isinstance(metrics[key], float), key
    assert metrics["best_step"] in (4, 6) and metrics["best_val_fid"] <= metrics["last_val_fid"]
    assert len(metrics["test_class_histogram"]) == 10 and sum(metrics["test_class_histogram"]) == pytest.approx(1)
    assert [row[0] for row in metrics["val_fid_curve"]] == [4, 6]

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r.get("split") == "train"]
    if objective == "wgan":
        assert metrics["last_clipped_fraction"] == pytest.approx(train[-1]["clipped_fraction"])
        assert metrics["last_clipped_fraction"] > 0
    assert [r["step"] for r in train] == [2, 4, 6]
    assert {"d_loss", "g_loss", "d_grad_norm", "g_grad_norm", "d_grad_layer1"} | OBJECTIVE_KEYS[objective] <= set(train[0])
    evals = [r for r in records if r.get("split") == "eval"]
    assert [r["step"] for r in evals] == [4, 6]
    # the presets sample from the moving average, binary: the generator itself and the raw reading scored beside
    assert {"fid", "raw_fid", "live_fid", "live_raw_fid"} <= set(evals[0])
    assert isinstance(metrics["test_raw_fid"], float) and isinstance(metrics["test_raw_confident_share"], float)

    assert {p.name for p in (run / "samples").glob("*.png")} == {"grid_step0000004.png", "grid_step0000006.png",
                                                                  "final.png"}
    figures = {p.stem for p in (run / "figures").glob("*.png")}
    assert {"curves", "critic_layer_gradients", "critic_weights", "class_histogram", "grids_over_training"} <= figures
    assert ("wasserstein_vs_fid" in figures) == (objective != "gan")
    with np.load(run / "samples" / "final.npz") as samples:
        assert samples["images"].shape == (100, 1, 28, 28) and samples["images"].dtype == np.uint8
        assert set(np.unique(samples["images"]).tolist()) <= {0, 255}  # thresholded at 0, like Hoda's images
    assert "<table>" in (run / "report.html").read_text()


def test_genlab_sample_draws_from_the_best_generator_with_fixed_labels(hoda_judge, tmp_path, capsys):
    run = tmp_path / "run"
    assert _run("gan-hoda", run, "model.conditional=true", "model.clusters=0") == 0
    assert main(["sample", str(run), "--n", "12", "--label", "3", "--device", "cpu"]) == 0
    [npz] = (run / "samples").glob("sample_*_best_generator_label3.npz")
    with np.load(npz) as samples:
        assert samples["images"].shape == (12, 1, 28, 28) and set(samples["labels"].tolist()) == {3}
    assert npz.with_suffix(".png").exists()
    metrics = json.loads((run / "summary.json").read_text())["metrics"]
    assert {"cas", "cas_real", "test_intra_fid", "test_randnet_fid", "test_memorised_share"} <= set(metrics)
    best_step = metrics["best_step"]
    assert json.loads(npz.with_suffix(".json").read_text())["generator_step"] == best_step
    assert main(["sample", str(run), "--label", "10"]) == 2
    assert "--label must be in 0..9; got 10" in capsys.readouterr().err


def test_a_self_conditioned_run_draws_its_clusters_found_without_labels_and_keeps_them_on_resume(hoda_judge, tmp_path,
                                                                                                   capsys):
    run = tmp_path / "run"
    assert _run("gan-hoda", run, "model.clusters=5", "train.steps=4") == 0  # the presets' 50: 10 images each
    metrics = json.loads((run / "summary.json").read_text())["metrics"]
    clusters = torch.load(run / "clusters.pt")["clusters"].long()
    assert len(clusters) == 512 and set(clusters.tolist()) == set(range(5))  # the smoke preset's 512 images
    shares = (clusters.bincount(minlength=5).double() / 512).tolist()
    assert metrics["train_cluster_shares"] == pytest.approx(shares)
    labels = load("hoda", "train", split_seed=0).labels[:512]
    majority = sum(int(labels[clusters == k].bincount().max()) for k in range(5))
    assert metrics["train_cluster_purity"] == pytest.approx(majority / 512)
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert not any("class_accuracy" in r for r in evals)  # cluster indices are not classes: nothing to agree with
    with np.load(run / "samples" / "final.npz") as samples:
        assert "labels" not in samples and samples["images"].shape == (100, 1, 28, 28)
    assert main(["sample", str(run), "--n", "7", "--device", "cpu"]) == 0

    (run / "summary.json").unlink()  # resume then finishes the run again from its last checkpoint
    torch.save({"clusters": clusters[:100].to(torch.int32)}, run / "clusters.pt")  # another run's clusters
    assert main(["resume", str(run), "--no-progress", "--device", "cpu"]) == 2
    assert "holds clusters of 100 images, not of the 512 training images" in capsys.readouterr().err


def test_an_infogan_run_reports_how_the_judges_classes_fall_into_its_codes(hoda_judge, tmp_path):
    run = tmp_path / "run"
    assert _run("gan-hoda", run, "model.info_codes=10", "model.clusters=0") == 0
    metrics = json.loads((run / "summary.json").read_text())["metrics"]
    assert 0.1 <= metrics["test_code_purity"] <= 1 and 1 <= metrics["test_code_classes"] <= 10
    train = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"info_loss", "info_accuracy", "g_info_loss"} <= set(next(r for r in train if r.get("split") == "train"))
    assert main(["sample", str(run), "--n", "7", "--device", "cpu"]) == 0
    [npz] = (run / "samples").glob("sample_*_best_generator.npz")
    with np.load(npz) as samples:
        assert samples["images"].shape == (7, 1, 28, 28)


def test_the_saved_split_is_stratified_disjoint_and_complete(hoda_judge, tmp_path):
    run = tmp_path / "run"
    assert _run("gan-hoda", run) == 0
    with np.load(run / "splits" / "hoda_seed0.npz") as saved:
        parts = {name: saved[name] for name in ("train", "val", "test")}
    expected = hoda_split_indices(None, 0)
    assert all(np.array_equal(parts[k], expected[k]) for k in parts)
    joined = np.concatenate(list(parts.values()))
    assert len(np.unique(joined)) == len(joined)  # disjoint
    labels = np.concatenate([load("hoda", k).labels.numpy() for k in parts])
    pool = np.bincount(labels, minlength=10)
    assert len(joined) == pool.sum()  # complete
    for name, fraction in {"train": 0.85, "val": 0.10, "test": 0.05}.items():
        counts = np.bincount(load("hoda", name).labels.numpy(), minlength=10)
        assert np.all(np.abs(counts - fraction * pool) <= 1), name


class Crash(Exception):
    pass


def test_a_crashed_run_resumes_to_the_numbers_of_an_uninterrupted_one(hoda_judge, tmp_path, monkeypatch):
    sets = ("train.steps=10", "log.eval_every=4")
    assert _run("wgangp-hoda", tmp_path / "ref", *sets) == 0

    train_step = GanTrainer.train_step

    def crash_at_7(self, step):
        if step == 7:
            raise Crash
        return train_step(self, step)

    with monkeypatch.context() as patch, pytest.raises(Crash):
        patch.setattr(GanTrainer, "train_step", crash_at_7)
        start_run("wgangp-hoda", "smoke", dict(s.split("=") for s in sets), device="cpu",
                  run_dir=tmp_path / "crashed", progress=False)
    torch.manual_seed(123)  # the checkpoint, not this process, decides every random state
    assert main(["resume", str(tmp_path / "crashed"), "--no-progress", "--device", "cpu"]) == 0

    ref, got = (json.loads((tmp_path / name / "summary.json").read_text())["metrics"] for name in ("ref", "crashed"))
    strip = lambda m: {k: v for k, v in m.items() if k != "val_fid_curve"}  # noqa: E731  (its rows hold wall times)
    assert strip(got) == strip(ref)
    assert [[s, f] for s, _, f in got["val_fid_curve"]] == [[s, f] for s, _, f in ref["val_fid_curve"]]
    records = lambda name: [{k: v for k, v in json.loads(line).items() if k not in ("wall_s", "step_s")}  # noqa: E731
                            for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()
                            if "event" not in line]
    assert records("crashed") == records("ref")
