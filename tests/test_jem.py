"""JEM / JEM++: energy identities, the Gaussian initialiser, proximal SGLD's bound, ablation switches, smoke runs."""

import json
import math

import numpy as np
import pytest
import torch

from genlab.cli import main
from genlab.data.batches import Batches
from genlab.data.datasets import ImageSet
from genlab.experiments.registry import get_experiment
from genlab.nets.classifiers import build_classifier
from genlab.sampling import ClassGaussians, proximal_langevin
from genlab.sampling import SamplerConfig
from genlab.train.jem import JEM_SAMPLER, JEMTrainConfig, JEMTrainer, bn_mode, energy
from conftest import needs_data


def test_energy_identities():
    torch.manual_seed(0)
    model = build_classifier("cnn", 1, 10, 4).eval()
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    logits = model(x)
    assert torch.allclose(energy(model, x), -torch.logsumexp(logits, 1))
    y = torch.arange(6) % 10
    assert torch.allclose(energy(model, x, y), -logits[torch.arange(6), y])
    # p(y|x) from the energies is the classifier's softmax, untouched by the energy view
    e_all = torch.stack([energy(model, x, torch.full((6,), c)) for c in range(10)], 1)
    assert torch.allclose(torch.softmax(-e_all, 1), torch.softmax(logits, 1), atol=1e-6)


def test_class_gaussians_reproduce_per_class_moments():
    torch.manual_seed(0)
    means = torch.tensor([[0.5, -0.2, 0.1], [-0.4, 0.3, 0.0]])
    scales = torch.tensor([[0.1, 0.05, 0.02], [0.03, 0.08, 0.06]])
    labels = torch.arange(2).repeat_interleave(4000)
    images = (means[labels] + scales[labels] * torch.randn(8000, 3)).view(8000, 3, 1, 1)
    gaussians = ClassGaussians(images, labels, num_classes=2, ridge=1e-8)
    x, y = gaussians.sample(8000, labels)
    for c in range(2):
        drawn = x[y == c].view(-1, 3)
        assert torch.allclose(drawn.mean(0), means[c], atol=0.01)
        assert torch.allclose(drawn.std(0), scales[c], rtol=0.08)
    _, free = gaussians.sample(4000)
    assert abs(float((free == 0).float().mean()) - 0.5) < 0.03  # classes drawn by frequency


def test_proximal_moves_stay_within_the_bound():
    torch.manual_seed(0)
    model = build_classifier("cnn", 1, 10, 4).eval()
    x0 = torch.rand(8, 1, 28, 28) * 2 - 1
    fn = lambda x: energy(model, x)  # noqa: E731
    inner, inner_step, bound = 4, 0.01, 0.5
    # no outer move (tiny step): every move comes from the clamped inner steps
    chain = proximal_langevin(fn, model.first_layer, x0, outer_steps=3, inner_steps=inner, step_size=1e-12,
                              inner_step=inner_step, bound=bound, clamp=None, freeze=model)
    moved = (chain.x - x0).abs().max()
    assert 0 < moved <= 3 * inner * inner_step * bound + 1e-6
    assert chain.energy_trace.shape == (3,)
    assert all(p.requires_grad for p in model.parameters())
    assert not model.first_layer._forward_hooks  # the hook is removed


def test_bn_policy_eval_leaves_running_stats_untouched():
    model = build_classifier("cnn", 1, 10, 4).train()
    before = model.body[0][1].running_mean.clone()
    with bn_mode(model, "eval"):
        model(torch.randn(4, 1, 28, 28))
        assert not model.body[0][1].training
    assert torch.equal(model.body[0][1].running_mean, before) and model.body[0][1].training
    model(torch.randn(4, 1, 28, 28))
    assert not torch.equal(model.body[0][1].running_mean, before)


@pytest.mark.parametrize("policy, stats_move", [("frozen", False), ("eval", True), ("train", True)])
def test_bn_policy_decides_whether_a_training_step_moves_the_running_stats(policy, stats_move):
    torch.manual_seed(0)
    model = build_classifier("cnn", 1, 10, 4)
    images = ImageSet("toy", "train", torch.randint(0, 256, (32, 1, 28, 28), dtype=torch.uint8),
                      torch.arange(32) % 10, tuple("0123456789"))
    cfg = JEMTrainConfig(batch_size=8, warmup=0, bn_policy=policy)
    sampler = SamplerConfig(**{**JEM_SAMPLER, "steps": 2, "buffer_size": 16})
    trainer = JEMTrainer(model, Batches(images, 8, 0), cfg, sampler, None, (1, 28, 28), torch.device("cpu"))
    norm = model.body[0][1]
    before = norm.running_mean.clone()
    trainer.train_step(0)
    assert (not torch.equal(norm.running_mean, before)) == stats_move
    assert norm.training  # the trainer leaves the model in train mode either way


def test_ablation_switches_change_what_they_say():
    full = get_experiment("jempp-mnist").config("quick")
    assert (full.sampler.kind, full.sampler.start, full.model.norm) == ("pyld", "gaussian", "batch")
    for name, field, value in [("noinit", "start", "uniform"), ("nopyld", "kind", "sgld")]:
        cfg = get_experiment(f"jempp-mnist-{name}").config("quick")
        assert getattr(cfg.sampler, field) == value and cfg.model.norm == "batch"
    assert get_experiment("jempp-mnist-nobn").config("quick").model.norm == "none"
    jem = get_experiment("jem-mnist").config("quick")
    assert (jem.sampler.kind, jem.sampler.start, jem.model.norm, jem.sampler.steps) == ("sgld", "uniform", "none", 20)
    assert (jem.sampler.init, jem.sampler.buffer_policy, jem.sampler.step_size) == ("buffer", "inplace", 1.0)


@needs_data("mnist", "fashion_mnist")
@pytest.mark.parametrize("name, norm", [("jempp-mnist", "batch"), ("jem-mnist", "none")])
def test_smoke_runs_write_grids_and_summary(tmp_path, name, norm):
    common = ["--preset", "smoke", "--no-progress"]
    assert main(["run", "classifier-mnist", *common, "--run-dir", str(tmp_path / "judge")]) == 0
    assert main(["run", "classifier-mnist", *common, "--seed", "1", "--set", f"model.norm={norm}",
                 "--run-dir", str(tmp_path / "start")]) == 0
    run = tmp_path / name
    assert main(["run", name, *common, "--run-dir", str(run)]) == 0
    metrics = json.loads((run / "summary.json").read_text())["metrics"]
    for key in ("test_accuracy", "ece", "ood_auroc_energy", "fid", "conditional_accuracy", "classifier_ece",
                "seconds_per_1000_iterations", "divergence_events", "randnet_fid", "memorised_share", "cas",
                "conditional_intra_fid"):
        assert key in metrics
    assert len(metrics["per_class_accuracy"]) == 10
    for name_ in ("final.png", "conditional.png", "final.npz", "conditional.npz"):
        assert (run / "samples" / name_).exists()
    assert (run / "figures" / "reliability.png").exists()
    # Killed in its final evaluation (after the last checkpoint): the resumed run samples no training chain,
    # yet its summary names the precision the training chains ran in, from the checkpoint.
    decision = json.loads((run / "summary.json").read_text())["sampler_precision"]
    (run / "summary.json").unlink()
    assert main(["resume", str(run), "--no-progress"]) == 0
    assert json.loads((run / "summary.json").read_text())["sampler_precision"] == decision
    for args, labels in ((["--label", "3", "--steps", "2"], [3] * 12), (["--init", "noise"], None), ([], None)):
        assert main(["sample", str(run), "--n", "12", *args]) == 0
        written = max((run / "samples").glob("sample_*.npz"), key=lambda p: p.stat().st_mtime_ns)
        with np.load(written) as data:
            assert data["images"].shape[0] == 12
            assert (data["labels"].tolist() if "labels" in data else None) == labels


@needs_data("mnist")
def test_missing_pretrained_classifier_says_how_to_make_it(tmp_path, capsys):
    assert main(["run", "classifier-mnist", "--preset", "smoke", "--no-progress", "--run-dir", str(tmp_path / "j")]) == 0
    assert main(["run", "jem-mnist", "--preset", "smoke", "--no-progress", "--no-prerequisites",
                 "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "no trained mnist classifier with seed 1" in err and "--seed 1" in err and "--set model.norm=none" in err



def test_learning_rate_warms_up_then_cosine_decays_to_zero():
    model = build_classifier("cnn", 1, 10, 4)
    images = ImageSet("toy", "train", torch.randint(0, 256, (32, 1, 28, 28), dtype=torch.uint8),
                      torch.arange(32) % 10, tuple("0123456789"))
    cfg = JEMTrainConfig(iterations=20, batch_size=8, lr=1e-3, warmup=4, lr_decay="cosine")
    sampler = SamplerConfig(**{**JEM_SAMPLER, "steps": 1, "buffer_size": 16})
    trainer = JEMTrainer(model, Batches(images, 8, 0), cfg, sampler, None, (1, 28, 28), torch.device("cpu"))
    rates = []
    for step in range(20):
        trainer.train_step(step)
        rates.append(trainer.optimizer.param_groups[0]["lr"])
    assert rates[0] == pytest.approx(1e-3 / 4 * (0.5 + 0.5 * math.cos(0)))
    assert rates[3] == pytest.approx(1e-3 * (0.5 + 0.5 * math.cos(math.pi * 3 / 20)))
    assert rates[10] == pytest.approx(5e-4) and rates[19] < 1e-5
    assert all(a > b for a, b in zip(rates[3:], rates[4:]))  # falling after the warm-up
