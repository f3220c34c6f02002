"""The dvae experiments end to end: smoke runs write every figure and the summary; a killed run resumes
to the numbers of an uninterrupted one; the trainer's state makes steps repeat exactly."""

import copy
import json
import sys

import pytest
import torch

from genlab.cli import main
from genlab.data.augment import random_affine
from genlab.data.batches import Batches
from genlab.data.datasets import ImageSet
from genlab.nets.vq import build_dvae
from genlab.train.checkpoint import CheckpointStore
from genlab.train.dvae import DVAETrainConfig, DVAETrainer, psnr
from conftest import have_dataset, load_benchmark, needs_data, sigkill_after_checkpoint

FIGURES = {"codebook_usage", "silhouette_vs_k", "silhouette_plot", "cluster_labels", "tsne", "clustering_accuracy",
           "confusion_true_labels", "confusion_pseudo_labels", "curves_classifier_true_labels",
           "curves_classifier_pseudo_labels"}


def _smoke(dataset, run_dir, *sets):
    args = ["run", f"dvae-{dataset}", "--preset", "smoke", "--run-dir", str(run_dir), "--no-progress",
            "--device", "cpu"]
    for item in sets:
        args += ["--set", item]
    assert main(args) == 0
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.parametrize("dataset, quantizer, term, embedding", [
    ("mnist", "vq", "contrastive", []),
    ("fashion_mnist", "gumbel", "invariance", ["cluster.embedding=scan", "cluster.scan_heads=2",
                                               "cluster.scan_epochs=3", "cluster.scan_hidden=16",
                                               "cluster.embed_dim=10"])])
def test_smoke_run_writes_every_figure_and_the_summary(dataset, quantizer, term, embedding, tmp_path):
    if not have_dataset(dataset):
        pytest.skip(f"dataset {dataset} not found (no offline mirror; set GENLAB_DATA_DIR)")
    run_dir = tmp_path / "run"
    summary = _smoke(dataset, run_dir, f"model.quantizer={quantizer}", f"train.{term}_weight=0.5", *embedding,
                     *(["train.contrastive_head=16"] if term == "contrastive" else []))
    metrics = summary["metrics"]
    assert summary["status"] == "complete" and metrics["quantizer"] == quantizer
    assert {p.stem for p in (run_dir / "figures").glob("*.png")} == FIGURES
    assert all((run_dir / "figures" / f"{name}.png").stat().st_size > 2000 for name in FIGURES)
    assert (run_dir / "samples" / "reconstructions.png").exists() and "<table>" in (run_dir / "report.html").read_text()
    for key in ("test_psnr", "test_perplexity", "test_codes_used", "cluster_hungarian_accuracy", "cluster_nmi",
                "cluster_ari", "pixels_plain_hungarian_accuracy", "codes_plain_hungarian_accuracy",
                "true_label_classifier_accuracy", "pseudo_label_classifier_accuracy", "cluster_gmm_hungarian_accuracy",
                "pixels_embedded_hungarian_accuracy", "pixels_embedded_gmm_hungarian_accuracy",
                "ae_embedded_hungarian_accuracy", "ae_embedded_gmm_hungarian_accuracy", "autoencoder_test_psnr"):
        assert isinstance(metrics[key], (int, float)), key
    assert len(metrics["sweep_silhouette"]) == len(metrics["sweep_k"]) == 8
    assert sum(map(sum, metrics["cluster_label_distribution"])) == metrics["train_images"]
    assert sum(map(sum, metrics["pseudo_label_classifier_confusion"])) == metrics["test_images"]
    assert sorted(metrics["cluster_to_class"]["hungarian"]) == list(range(10))
    assert len((run_dir / "study" / "cluster_labels.csv").read_text().splitlines()) == 11  # header + 10 clusters
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"recon_mse", "psnr", "perplexity", "dead_codes", term} <= set(records[0])
    for phase in ("autoencoder", "classifier_true_labels", "classifier_pseudo_labels"):
        assert (run_dir / phase / "metrics.jsonl").exists() and CheckpointStore(run_dir / phase / "checkpoints").paths()


def _tiny_trainer(quantizer, **options):
    g = torch.Generator().manual_seed(0)
    data = ImageSet("toy", "train", torch.randint(0, 256, (64, 1, 28, 28), generator=g, dtype=torch.uint8),
                    torch.zeros(64, dtype=torch.long), tuple("0123456789"))
    torch.manual_seed(0)
    model = build_dvae(quantizer, width=8, code_dim=4, num_codes=16, res_blocks=1)
    return DVAETrainer(model, Batches(data, 16, 0), data, DVAETrainConfig(**options), 20,
                       torch.device("cpu"))


@pytest.mark.parametrize("quantizer, options", [("vq", {}), ("gumbel", {}), ("vq", {"invariance_weight": 0.5}),
                                                ("vq", {"contrastive_weight": 0.5, "contrastive_head": 16})])
def test_trainer_state_makes_the_next_steps_repeat_exactly(quantizer, options):
    """Weights, the projection head, Adam moments, the EMA codebook and its counts are all in the state (the
    RNG, which also draws the augmentations, is the loop's)."""
    trainer = _tiny_trainer(quantizer, **options)
    for step in range(3):
        trainer.train_step(step)
    state, rng = copy.deepcopy(trainer.state_dict()), torch.get_rng_state()
    first = [trainer.train_step(step) for step in range(3, 6)]
    resumed = _tiny_trainer(quantizer, **options)
    resumed.load_state_dict(state)
    torch.set_rng_state(rng)
    again = [resumed.train_step(step) for step in range(3, 6)]
    for a, b in zip(first, again):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_invariance_loss_is_added_with_its_weight():
    trainer = _tiny_trainer("vq", invariance_weight=0.5)
    metrics = trainer.train_step(0)
    assert metrics["invariance"] > 0
    assert metrics["loss"].item() == pytest.approx((metrics["recon_mse"] + metrics["quant_loss"]
                                                    + 0.5 * metrics["invariance"]).item(), rel=1e-5)
    assert "invariance" not in _tiny_trainer("vq").train_step(0)


def test_affine_augmentation_without_range_is_the_identity_and_keeps_the_background():
    x = torch.full((2, 1, 28, 28), -1.0)
    x[:, :, 10:18, 10:18] = 1.0
    assert torch.allclose(random_affine(x, degrees=0, scale=0, shift=0), x, atol=1e-5)
    moved = random_affine(x)
    assert moved.shape == x.shape and moved.min() >= -1 - 1e-6 and moved.max() <= 1 + 1e-6
    assert torch.allclose(moved[:, :, :3, :3], torch.full((2, 1, 3, 3), -1.0))  # corners stay background


def test_schedules_run_from_their_start_to_their_end_values():
    trainer = _tiny_trainer("gumbel")
    cfg = trainer.cfg
    assert trainer.lr_at(0) == pytest.approx(cfg.lr) and trainer.lr_at(19) == pytest.approx(cfg.lr * cfg.lr_final)
    assert trainer.temperature_at(0) == pytest.approx(cfg.tau_start)
    assert trainer.temperature_at(19) == pytest.approx(cfg.tau_end)
    assert trainer.temperature_at(5) > trainer.temperature_at(10) > trainer.temperature_at(15)


def test_psnr_of_images_in_minus_one_to_one():
    assert psnr(0.04) == pytest.approx(20.0)  # an error of 0.1 on [0, 1] images is 0.2 on [-1, 1]
    assert psnr(torch.tensor(0.0004)).item() == pytest.approx(40.0)


@needs_data("mnist")
@pytest.mark.slow
def test_sigkill_in_the_pseudo_label_phase_then_resume_matches_an_uninterrupted_run(tmp_path):
    sets = ["classifier.epochs=6"]
    ref = _smoke("mnist", tmp_path / "ref", *sets)

    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "genlab.cli", "run", "dvae-mnist", "--preset", "smoke", "--set", sets[0],
           "--run-dir", str(killed), "--no-progress", "--device", "cpu"]
    sigkill_after_checkpoint(cmd, killed / "classifier_pseudo_labels" / "checkpoints", step=16, timeout=300)
    assert not (killed / "summary.json").exists()

    assert main(["resume", str(killed), "--no-progress", "--device", "cpu"]) == 0
    got = json.loads((killed / "summary.json").read_text())
    assert got["metrics"] == ref["metrics"]


@needs_data("mnist")
@pytest.mark.slow
def test_sigkill_in_the_code_study_then_resume_matches_an_uninterrupted_run(tmp_path):
    # The code study (embedding, K sweep, pseudo-labels) keeps no checkpoint: killed inside it, the resumed run
    # studies the codes again from the start and must reach the same numbers.
    ref = _smoke("mnist", tmp_path / "ref")
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "genlab.cli", "run", "dvae-mnist", "--preset", "smoke", "--run-dir", str(killed),
           "--no-progress", "--device", "cpu"]
    last_autoencoder_step = 12  # 600 images in batches of 50, one epoch
    sigkill_after_checkpoint(cmd, killed / "autoencoder" / "checkpoints", step=last_autoencoder_step, timeout=300)
    assert not (killed / "study" / "study.json").exists() and not (killed / "classifier_true_labels").exists()

    assert main(["resume", str(killed), "--no-progress", "--device", "cpu"]) == 0
    got = json.loads((killed / "summary.json").read_text())
    assert got["metrics"] == ref["metrics"]


@needs_data("mnist")
def test_comparing_representations_repeats_the_run_s_clustering_and_reseeds_only_the_pipeline(tmp_path):
    metrics = _smoke("mnist", tmp_path / "run", "cluster.autoencoder_epochs=0")["metrics"]
    compare = load_benchmark("dvae_clustering").compare_representations
    # The run twice: its codes are clustered for each, the pixels (which no model changes) once.
    rows = compare([str(tmp_path / "run")] * 2, ["quantized", "pixels"], ["spectral"], pipeline_seeds=[0, 1])
    assert [(row["representation"], row["pipeline_seed"]) for row in rows] == [
        ("quantized", 0), ("quantized", 1), ("pixels", 0), ("pixels", 1), ("quantized", 0), ("quantized", 1)]
    by = {(row["representation"], row["pipeline_seed"]): row for row in rows}
    assert by["quantized", 0]["kmeans"] == pytest.approx(metrics["cluster_hungarian_accuracy"])
    assert by["quantized", 0]["gmm"] == pytest.approx(metrics["cluster_gmm_hungarian_accuracy"])
    assert by["pixels", 0]["kmeans"] == pytest.approx(metrics["pixels_embedded_hungarian_accuracy"])
    changed = compare([str(tmp_path / "run")], ["pixels"], ["spectral"], cluster_sets={"cluster.embed_dim": 3})
    assert changed[0]["embed_dim"] == 3 and changed[0]["pipeline_seed"] == 0


@needs_data("mnist")
def test_tabulating_a_finished_run_reads_its_summary_and_says_whether_it_ran_the_preset(tmp_path):
    tabulated = load_benchmark("dvae_clustering").tabulated
    metrics = _smoke("mnist", tmp_path / "preset")["metrics"]
    row = tabulated(str(tmp_path / "preset"))
    assert row["cluster_hungarian_accuracy"] == metrics["cluster_hungarian_accuracy"]
    assert row["config_is_the_preset"] is True
    assert row["minutes"] == json.loads((tmp_path / "preset" / "summary.json").read_text())["wall_time_s"] / 60
    assert (row["dataset"], row["quantizer"], row["preset"]) == ("mnist", "vq", "smoke")
    _smoke("mnist", tmp_path / "changed", "cluster.k=9")
    assert tabulated(str(tmp_path / "changed"))["config_is_the_preset"] is False
