"""EBM training: the loss sign on a toy problem, the divergence guard, smoke runs and `genlab sample`."""

import json

import numpy as np
import pytest
import torch

from genlab.cli import main
from genlab.data.batches import Batches, to_float
from genlab.data.datasets import ImageSet, load
from genlab.errors import ConfigError, DivergenceError
from genlab.experiments.registry import get_experiment
from genlab.experiments.ebm import energy_per_class
from genlab.nets.energy import Downsample, ResNetEnergy
from genlab.sampling import ClassGaussians, SamplerConfig
from genlab.train.checkpoint import CheckpointStore
from genlab.train.ebm import EBMTrainConfig, EBMTrainer
from genlab.train.guard import DivergenceGuard, GuardConfig
from genlab.train.loop import Schedule, run_loop
from genlab.train.run_dir import RunDir
from conftest import needs_data


def _toy_trainer(trainer_class=EBMTrainer, **sampler):
    """Data: bright 1x4x4 images (all pixels 0.8); negatives from SGLD."""
    data = ImageSet("toy", "train", torch.full((256, 1, 4, 4), 230, dtype=torch.uint8), torch.zeros(256).long(),
                    ("a",))
    model = ResNetEnergy(1, width=4, blocks=(1,), num_outputs=1)
    cfg = EBMTrainConfig(iterations=40, batch_size=32, lr=1e-2, beta1=0.0, alpha=0.1)
    sampler_cfg = SamplerConfig(**{"steps": 5, "step_size": 0.1, "noise": 0.01, "init": "noise", **sampler})
    return trainer_class(model, Batches(data, 32, seed=0), cfg, sampler_cfg, (1, 4, 4), torch.device("cpu"),
                         conditional=False)


def test_training_lowers_data_energy_relative_to_noise():
    torch.manual_seed(0)
    trainer = _toy_trainer()
    data = torch.full((128, 1, 4, 4), 230 / 127.5 - 1)
    noise = torch.rand(128, 1, 4, 4) * 2 - 1
    with torch.no_grad():
        before = float(trainer.model(noise).mean() - trainer.model(data).mean())
    metrics = [trainer.train_step(step) for step in range(40)]
    with torch.no_grad():
        after = float(trainer.model(noise).mean() - trainer.model(data).mean())
    assert after > before + 0.5 and after > 0
    assert float(metrics[-1]["energy_pos"]) < float(metrics[-1]["energy_neg"])
    assert float(metrics[-1]["gap"]) == pytest.approx(float(metrics[-1]["energy_neg"] - metrics[-1]["energy_pos"]))


def test_cosine_learning_rate_falls_from_lr_to_zero_and_respects_rollbacks():
    trainer = _toy_trainer()
    trainer.cfg.lr_decay = "cosine"
    rate = lambda step: trainer.schedule_lr(step, trainer.cfg.lr, trainer.cfg.iterations, "cosine")  # noqa: E731
    assert rate(0) == pytest.approx(1e-2) and rate(20) == pytest.approx(5e-3)
    assert rate(40) == pytest.approx(0, abs=1e-12)
    trainer.soften(1)
    assert rate(20) == pytest.approx(2.5e-3)
    trainer.train_step(20)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(2.5e-3)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(2.5e-3)


def test_class_term_teaches_a_conditional_energy_the_labels():
    """With the cross-entropy of p(y|x) on data, the energy ranks the true label first after a few steps."""
    torch.manual_seed(0)
    images = torch.zeros(256, 1, 4, 4, dtype=torch.uint8)
    labels = torch.arange(256) % 2
    images[labels == 1] = 255  # class 1 bright, class 0 dark
    data = ImageSet("toy", "train", images, labels, ("dark", "bright"))
    model = ResNetEnergy(1, width=4, blocks=(1,), num_outputs=2)
    cfg = EBMTrainConfig(iterations=60, batch_size=32, lr=1e-2, alpha=0.1, class_weight=1.0)
    sampler = SamplerConfig(steps=2, step_size=0.1, noise=0.01, init="noise")
    trainer = EBMTrainer(model, Batches(data, 32, seed=0), cfg, sampler, (1, 4, 4), torch.device("cpu"),
                         conditional=True)
    metrics = [trainer.train_step(step) for step in range(60)]
    assert float(metrics[-1]["class_loss"]) < 0.5 * float(metrics[0]["class_loss"])
    with torch.no_grad():
        predicted = model(images.float() / 127.5 - 1).argmin(1)  # all labels' energies: (B, 2)
    assert (predicted == labels).float().mean() > 0.95


class PoisonedTrainer(EBMTrainer):
    """Turns one weight into NaN at step 5 (once), as a blown-up update would."""

    poisoned = False

    def train_step(self, step):
        if step == 5 and not PoisonedTrainer.poisoned:
            PoisonedTrainer.poisoned = True
            with torch.no_grad():
                self.model.head.weight.fill_(float("nan"))
        return super().train_step(step)


@pytest.mark.parametrize("policy", ["stop", "rollback"])
def test_divergence_guard_catches_an_injected_nan(tmp_path, policy):
    torch.manual_seed(0)
    PoisonedTrainer.poisoned = False
    trainer = _toy_trainer(PoisonedTrainer, init="buffer", buffer_size=64)
    run = RunDir.create(tmp_path / "run", {})
    guard = DivergenceGuard(GuardConfig(policy=policy), finite=("loss",), bounded=("energy_pos", "energy_neg"))
    schedule = Schedule(total_steps=16, log_every=4, checkpoint_every=4)
    args = (run, trainer, schedule, guard, CheckpointStore(run.checkpoints), {"experiment": "t", "config_hash": "h"},
            torch.device("cpu"))
    if policy == "stop":
        with pytest.raises(DivergenceError, match="diverged at step 8: loss is nan"):
            run_loop(*args, progress=False)
    else:
        run_loop(*args, progress=False)
        events = [r["event"] for r in run.read_metrics() if "event" in r]
        assert events == ["rollback"] and trainer.lr_scale == 0.5
        assert torch.isfinite(trainer.model.head.weight).all()


@needs_data("mnist")
def test_energy_per_class_averages_each_labels_own_energy_across_batches():
    torch.manual_seed(0)
    model = ResNetEnergy(1, width=4, blocks=(1,), num_outputs=4)
    x, y = torch.randn(7, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 0, 2])
    got = energy_per_class(model, x, y, batch_size=3)
    with torch.no_grad():
        every = model.energies(x)
    for c in range(3):
        assert got[c] == pytest.approx(every[y == c, c].mean().item(), abs=1e-5)
    assert np.isnan(got[3])  # no images of label 3


@needs_data("mnist")
def test_conditional_mnist_smoke_run_and_label_fixed_sampling(tmp_path, capsys):
    assert main(["run", "classifier-mnist", "--preset", "smoke", "--run-dir", str(tmp_path / "judge"),
                 "--no-progress"]) == 0
    run = tmp_path / "ebm"
    assert main(["run", "ebm-mnist-cond", "--preset", "smoke", "--run-dir", str(run), "--no-progress"]) == 0
    full_summary = json.loads((run / "summary.json").read_text())
    decision = full_summary["sampler_precision"]  # measured on this machine: which one wins is not fixed
    assert decision["source"] == "measured" and not decision["cached"]
    assert decision["chosen"] in decision["measured"] and decision["measured"]["fp32/channels_last"]["speedup"] == 1
    assert decision["description"] in (run / "report.html").read_text()
    # Killed in its final evaluation (after the last checkpoint): the resumed run samples no training chain,
    # yet its summary names the decision its training chains ran with, from the checkpoint.
    (run / "summary.json").unlink()
    assert main(["resume", str(run), "--no-progress"]) == 0
    assert json.loads((run / "summary.json").read_text())["sampler_precision"] == decision
    summary = full_summary["metrics"]
    assert {"fid", "kid", "class_accuracy", "min_class_accuracy", "diversity", "grad_norm_spikes", "density",
            "intra_fid", "randnet_fid", "memorised_share", "cas", "cas_real"} <= set(summary)
    assert len(summary["per_class_accuracy"]) == 10
    for key in ("per_class_energy_data", "per_class_energy_samples"):
        assert len(summary[key]) == 10 and all(np.isfinite(summary[key]))
    for name in ("final.png", "final.npz", "samples_step0000008.png"):
        assert (run / "samples" / name).stat().st_size > 100
    for figure in ("curves", "grids_over_training", "sampling", "memorisation"):
        assert (run / "figures" / f"{figure}.png").stat().st_size > 1000
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in line]
    assert len(evals[0]["chain_energy_trace"]) == 5 and "fid" in evals[0]
    assert len(evals[0]["per_class_accuracy"]) == 10
    train = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"train"' in line]
    assert {"energy_pos", "energy_neg", "gap", "grad_norm", "step_s", "chain_energy_end"} <= set(train[0])

    capsys.readouterr()
    assert main(["sample", str(run), "--n", "12", "--label", "3", "--steps", "4"]) == 0
    out = capsys.readouterr().out
    npz = next((run / "samples").glob("sample_*_label3.npz"))
    with np.load(npz) as data:
        assert data["images"].shape == (12, 1, 28, 28) and (data["labels"] == 3).all()
    assert str(npz) in out
    settings = json.loads(npz.with_suffix(".json").read_text())
    assert settings["steps"] == 4 and settings["sampling"]["step_size"] == 10.0

    # The smoke preset trains from class-Gaussian starts: fresh chains must start there too, not from
    # uniform noise, so label-1 samples look like the training ones on average.
    assert main(["sample", str(run), "--n", "20", "--label", "1", "--init", "noise", "--steps", "1"]) == 0
    with np.load(next((run / "samples").glob("sample_*_noise_label1.npz"))) as data:
        mean_sample = torch.from_numpy(data["images"]).float().mean(0).flatten()
    train = load("mnist", "train")
    mean_one = to_float(train.images[train.labels == 1][:2000]).mean(0).flatten()
    assert torch.corrcoef(torch.stack([mean_sample, mean_one]))[0, 1] > 0.8

    checkpoints = sorted((run / "checkpoints").glob("*.pt"))
    for checkpoint in checkpoints:
        checkpoint.write_text("garbage\n")
    capsys.readouterr()
    assert main(["sample", str(run), "--n", "4"]) == 2
    assert f"none of the {len(checkpoints)} checkpoints in" in capsys.readouterr().err


@needs_data("cifar10")
@pytest.mark.parametrize("variant", ["noise", "buffer-decay"])
def test_cifar_smoke_runs(tmp_path, capsys, variant):
    assert main(["run", "classifier-cifar10", "--preset", "smoke", "--run-dir", str(tmp_path / "judge"),
                 "--no-progress"]) == 0
    run = tmp_path / variant
    assert main(["run", f"ebm-cifar10-{variant}", "--preset", "smoke", "--run-dir", str(run), "--no-progress"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["metrics"]["samples"] == 64 and summary["metrics"]["fid"] > 0
    assert any("first 1,000" in note for note in summary["notes"])
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["sampler"]["init"] == ("noise" if variant == "noise" else "buffer")
    assert main(["sample", str(run), "--n", "4", "--label", "1"]) == 2
    assert "unconditional model" in capsys.readouterr().err


@needs_data("cifar10")
@pytest.mark.parametrize("start", ["gaussian", "class_clusters"])
def test_gaussian_start_run_scores_its_starts_alone(tmp_path, start):
    """The informative-start variant reports what its starts score before any step, from their own seed: the
    bar its chains must clear. The random stream of the run is left alone (its samples do not change)."""
    assert main(["run", "classifier-cifar10", "--preset", "smoke", "--run-dir", str(tmp_path / "judge"),
                 "--no-progress"]) == 0
    run = tmp_path / "gaussian"
    assert main(["run", "ebm-cifar10-gaussian", "--preset", "smoke", "--run-dir", str(run), "--no-progress",
                 "--set", f"sampler.start={start}", "--set", "sampler.start_clusters=2"]) == 0
    metrics = json.loads((run / "summary.json").read_text())["metrics"]
    config = json.loads((run / "config.json").read_text())["config"]
    assert (config["sampler"]["init"], config["sampler"]["start"]) == ("noise", start)
    assert config["data"]["conditional"] is False and config["model"]["stem_downsample"] == "pool"
    for key in ("fid", "randnet_fid", "precision", "recall", "coverage"):
        assert 0 <= metrics[f"start_{key}"] < float("inf")
    assert metrics["start_fid"] != metrics["fid"]  # the chains moved the draws


@pytest.mark.parametrize("policy", ["kept", "redrawn"])
def test_buffer_labels_kept_or_redrawn(policy):
    torch.manual_seed(0)
    data = ImageSet("toy", "train", torch.zeros(64, 1, 4, 4, dtype=torch.uint8), torch.arange(64) % 4, tuple("abcd"))
    model = ResNetEnergy(1, width=4, blocks=(1,), num_outputs=4)
    trainer = EBMTrainer(model, Batches(data, 16, seed=0), EBMTrainConfig(batch_size=16),
                         SamplerConfig(steps=1, buffer_size=64, buffer_labels=policy), (1, 4, 4), torch.device("cpu"),
                         conditional=True)
    trainer.starts.buffer.labels.fill_(2)
    _, labels, _ = trainer.starts.draw(4000)
    share_of_2 = float((labels == 2).float().mean())
    if policy == "kept":  # all but the 5% restarted from noise, whose labels are uniform
        assert share_of_2 == pytest.approx(0.95 + 0.05 / 4, abs=0.015)
    else:
        assert share_of_2 == pytest.approx(0.25, abs=0.03)
        assert torch.bincount(labels, minlength=4).min() > 850


@pytest.mark.parametrize("augment", ["none", "flip"])
def test_positives_are_mirrored_when_augmented(augment):
    """With train.augment=flip about half the data images the energy's loss reads are mirrored left-right;
    without it none is. The image's left half is white and its right half black, so a mirror is unmistakable."""
    image = torch.zeros(1, 1, 4, 4, dtype=torch.uint8)
    image[..., :2] = 255
    data = ImageSet("toy", "train", image.repeat(64, 1, 1, 1), torch.zeros(64, dtype=torch.long), ("a",))
    torch.manual_seed(0)
    model = ResNetEnergy(1, width=4, blocks=(1,))
    trainer = EBMTrainer(model, Batches(data, 64, seed=0), EBMTrainConfig(batch_size=64, augment=augment),
                         SamplerConfig(steps=1, init="noise"), (1, 4, 4), torch.device("cpu"), conditional=False)
    seen = []
    model.register_forward_pre_hook(lambda _, args: seen.append(args[0].detach()) if len(args[0]) == 128 else None)
    for step in range(4):
        trainer.train_step(step)
    positives = torch.cat([x[:64] for x in seen])
    mirrored = positives[..., 0].mean((1, 2)) < 0  # the left column black
    clean = to_float(image)[0]
    assert torch.all(positives[~mirrored] == clean) and torch.all(positives[mirrored] == clean.flip(2))
    share = float(mirrored.float().mean())
    assert share == 0 if augment == "none" else 0.4 < share < 0.6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pooled_stem_has_no_checkerboard_in_the_input_gradient(seed):
    """The Langevin drift is the input gradient: by pixel parity (even/odd row and column) the strided
    stem's differs several-fold on a near-flat image; the pooled stem's by under 15%."""
    def parity_means(stem_downsample):
        torch.manual_seed(seed)
        model = ResNetEnergy(1, width=8, blocks=(1, 1), spectral_norm=True, stem_stride=2,
                             stem_downsample=stem_downsample)
        x = (torch.full((4, 1, 28, 28), -1.0) + 0.1 * torch.randn(4, 1, 28, 28)).requires_grad_()
        grad = torch.autograd.grad(model(x).sum(), x)[0][:, :, 4:-4, 4:-4].abs()
        return torch.stack([grad[:, :, i::2, j::2].mean() for i in (0, 1) for j in (0, 1)])

    strided, pooled = parity_means("stride"), parity_means("pool")
    assert strided.min() / strided.max() < 0.7
    assert pooled.min() / pooled.max() > 0.85


def test_kept_pool_edges_let_the_energy_see_the_bottom_and_right_edges():
    """On 28x28 images the third stage pools a 7x7 map: dropping its last row and column leaves the bottom
    and right 4 pixels a third of the input gradient the top and left get (median over random networks);
    zero-padding the map or overlapping the windows evens that out."""
    def edge_ratios(pool_edges):
        ratios = []
        for seed in range(12):
            torch.manual_seed(seed)
            model = ResNetEnergy(1, width=8, blocks=(1, 1, 1), spectral_norm=True, stem_stride=2,
                                 stem_downsample="pool", pool_edges=pool_edges)
            x = (torch.rand(8, 1, 28, 28) * 2 - 1).requires_grad_()
            grad = torch.autograd.grad(model(x).sum(), x)[0].abs().mean((0, 1))
            ratios.append((grad[-4:].mean() + grad[:, -4:].mean()) / (grad[:4].mean() + grad[:, :4].mean()))
        return torch.stack(ratios).median().item()

    assert edge_ratios("drop") < 0.5
    assert 0.7 < edge_ratios("keep") < 1.4
    assert 0.7 < edge_ratios("overlap") < 1.4


def test_downsample_modes_on_an_odd_map():
    """A 7x7 map of ones with a 100 in its last row: dropped it vanishes, kept it fills a fourth row at a
    quarter of its value (zero padding), overlapped it enters the last row of the 3x3 output a third wide."""
    x = torch.ones(1, 1, 7, 7)
    x[..., 6, :] = 100.0
    assert Downsample(2, "drop")(x).shape[-2:] == (3, 3) and Downsample(2, "drop")(x).max() == 1.0
    kept = Downsample(2, "keep")(x)
    assert kept.shape[-2:] == (4, 4)
    assert torch.allclose(kept[0, 0, 3, :3], torch.full((3,), 50.0)) and kept[0, 0, 3, 3] == 25.0
    overlapped = Downsample(2, "overlap")(x)
    assert overlapped.shape[-2:] == (3, 3)
    assert torch.allclose(overlapped[0, 0, 2], torch.full((3,), (2 + 100) / 3))
    assert torch.allclose(overlapped[0, 0, :2], torch.ones(2, 3))
    even = torch.randn(1, 2, 14, 14)
    for edges in ("drop", "keep", "overlap"):
        assert torch.allclose(Downsample(2, edges)(even), torch.nn.functional.avg_pool2d(even, 2))


@pytest.mark.parametrize("init", ["noise", "buffer"])
def test_gaussian_start_draws_each_fresh_chain_near_its_own_class(init):
    """Class 0 is dark (pixels -0.8), class 1 bright (+0.8): every fresh chain of a conditional model must
    start from its own label's Gaussian, in noise-init mode and in the buffer's fill and re-initialisations."""
    torch.manual_seed(0)
    images = torch.cat([torch.full((50, 1, 4, 4), 25), torch.full((50, 1, 4, 4), 230)]).to(torch.uint8)
    images = (images.int() + torch.randint(-10, 11, images.shape)).clamp(0, 255).to(torch.uint8)
    labels = torch.arange(100) // 50
    gaussians = ClassGaussians(to_float(images), labels, 2)
    trainer = EBMTrainer(ResNetEnergy(1, width=4, blocks=(1,), num_outputs=2),
                         Batches(ImageSet("toy", "train", images, labels, ("dark", "bright")), 16, seed=0),
                         EBMTrainConfig(batch_size=16), SamplerConfig(steps=1, buffer_size=64, init=init, start="gaussian"),
                         (1, 4, 4), torch.device("cpu"), conditional=True, gaussians=gaussians)
    if init == "buffer":
        buffer = trainer.starts.buffer
        buffer.reinit_prob = 1.0
        assert torch.equal(buffer.images.mean((1, 2, 3)) > 0, buffer.labels == 1)
    x0, chain_labels, _ = trainer.starts.draw(400)
    assert torch.equal(x0.mean((1, 2, 3)) > 0, chain_labels == 1)
    assert 150 < int(chain_labels.sum()) < 250


def test_gaussian_start_without_gaussians_is_refused():
    with pytest.raises(ValueError, match="start=gaussian"):
        _toy_trainer(start="gaussian")


@pytest.mark.slow
def test_channels_last_and_compiled_energy_train_like_the_plain_one():
    """The speed levers change the layout and the kernels, not the math: same losses to float tolerance."""
    losses = []
    for levers in ({}, {"channels_last": True, "compile": True}):
        torch.manual_seed(0)
        trainer = _toy_trainer(precision="fp32")
        trainer.cfg.channels_last = levers.get("channels_last", False)
        trainer.cfg.compile = levers.get("compile", False)
        trainer = EBMTrainer(trainer.model, trainer.batches, trainer.cfg, trainer.sampler, trainer.shape,
                             trainer.device, conditional=False)
        torch.manual_seed(1)
        losses.append(torch.stack([trainer.train_step(step)["loss"] for step in range(3)]))
    assert torch.allclose(losses[0], losses[1], atol=1e-4), losses


def test_long_preset_lies_between_quick_and_full():
    """`long` exists where a variant defines it (the Gaussian-start CIFAR-10 recipe), trains longer than
    quick on the same network and less than full; the assignment's variants have none."""
    gaussian = get_experiment("ebm-cifar10-gaussian")
    quick, long, full = (gaussian.config(p) for p in ("quick", "long", "full"))
    assert quick.train.iterations < long.train.iterations < full.train.iterations
    assert long.model == quick.model and long.sampler.start == "class_clusters"
    with pytest.raises(ConfigError, match="no preset 'long'"):
        get_experiment("ebm-cifar10-buffer").config("long")
