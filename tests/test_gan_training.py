"""GAN losses, gradient penalty, clipping, the n_critic schedule and exact resume, on tiny synthetic data."""

import copy
import dataclasses
import math

import pytest
import torch
from torch import nn

from genlab.data.batches import Batches
from genlab.data.datasets import ImageSet
from genlab.errors import ConfigError
from genlab.experiments.gans import (GAN_BASE, WGAN_BASE, WGANGP_BASE, GanConfig, code_class_agreement,
                                     wasserstein_fid_correlation)
from genlab.config import override
from genlab.nets.gan import Discriminator, Generator, init_dcgan
from genlab.train.checkpoint import capture_rng, restore_rng
from genlab.train.gan import (GanTrainer, bce_discriminator_loss, binarise, clip_weights_, ema_decay_at,
                              gradient_penalty, hinge_discriminator_loss, layer_weights, nonsaturating_generator_loss,
                              update_ema_, wasserstein_critic_loss, wasserstein_generator_loss)

pytestmark = pytest.mark.usefixtures("one_thread")

BASES = {"gan": GAN_BASE, "wgan": WGAN_BASE, "wgan-gp": WGANGP_BASE}



def _images(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(n, 1, 28, 28, generator=g) > 0.8).to(torch.uint8) * 255
    return ImageSet("hoda", "train", images, torch.arange(n) % 10, tuple(str(i) for i in range(10)))


def _trainer(objective, conditional=False, seed=0, spectral_norm=None, codes=0, width=4, **train):
    """A tiny trainer of ``objective`` with the preset's settings, ``train`` fields overridden."""
    cfg = override(GanConfig(), {**BASES[objective], "model.d_width": 4, "train.batch_size": 8})
    torch.manual_seed(seed)
    classes = 10 if conditional else 0
    generator = Generator(8, width, num_classes=classes, codes=codes)
    critic = Discriminator(width, cfg.model.d_norm, num_classes=classes,
                           spectral_norm=cfg.model.d_spectral_norm if spectral_norm is None else spectral_norm,
                           codes=codes)
    init_dcgan(generator)
    init_dcgan(critic)
    return GanTrainer(generator, critic, Batches(_images(), 8, seed=0), dataclasses.replace(cfg.train, **train),
                      generator.latent(20), torch.device("cpu"))


def test_gradient_penalty_of_a_linear_critic_is_hand_computable():
    """D(x) = w.x + b has gradient w everywhere: penalty (||w|| - 1)^2 = (5 - 1)^2 = 16 for w = (3, 4, 0, 0),
    and its gradient with respect to w is 2 (||w|| - 1) w / ||w|| = (4.8, 6.4, 0, 0)."""
    critic = nn.Sequential(nn.Flatten(), nn.Linear(4, 1))
    with torch.no_grad():
        critic[1].weight.copy_(torch.tensor([[3.0, 4.0, 0.0, 0.0]]))
        critic[1].bias.fill_(0.7)
    real, fake = torch.randn(5, 1, 2, 2), torch.randn(5, 1, 2, 2)
    penalty, norms = gradient_penalty(critic, real, fake)
    assert penalty.item() == pytest.approx(16.0) and torch.allclose(norms, torch.full((5,), 5.0))
    penalty.backward()
    assert torch.allclose(critic[1].weight.grad, torch.tensor([[4.8, 6.4, 0.0, 0.0]]))
    assert critic[1].bias.grad is None  # the penalty does not depend on the bias


def test_gradient_penalty_is_taken_at_the_interpolates():
    """D(x) = ||x||^2 / 2 has gradient x: at x_hat = eps real + (1 - eps) fake the norm is ||x_hat||."""
    critic = lambda x: 0.5 * (x ** 2).flatten(1).sum(1)  # noqa: E731
    real = torch.tensor([[4.0, 0.0], [0.0, 2.0]])
    fake = torch.zeros(2, 2)
    penalty, norms = gradient_penalty(critic, real, fake, eps=torch.tensor([[0.5], [0.25]]))
    assert torch.allclose(norms, torch.tensor([2.0, 0.5]))  # x_hat = (2, 0) and (0, 0.5)
    assert penalty.item() == pytest.approx(((2.0 - 1) ** 2 + (0.5 - 1) ** 2) / 2)


def test_losses_at_known_points():
    zero = torch.zeros(4)
    assert bce_discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert nonsaturating_generator_loss(zero).item() == pytest.approx(math.log(2))
    assert bce_discriminator_loss(torch.full((4,), 30.0), torch.full((4,), -30.0)).item() < 1e-12
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert wasserstein_critic_loss(real, fake).item() == pytest.approx(-2.5)  # minus the estimate 2 - (-0.5)
    assert wasserstein_generator_loss(fake).item() == pytest.approx(0.5)
    # hinge: real (2, 0) -> max(0, 1 - D) = (0, 1); fake (-2, 0.5) -> max(0, 1 + D) = (0, 1.5)
    assert hinge_discriminator_loss(torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5])).item() == pytest.approx(1.25)


class ConstantCritic(nn.Module):
    """Scores every image 0.5: the losses of the step are then known numbers."""

    def __init__(self):
        super().__init__()
        self.score = nn.Parameter(torch.tensor(0.5))

    def forward(self, x, y=None):
        return self.score + 0.0 * x.flatten(1).mean(1)  # the generator's gradient flows (as zeros)


@pytest.mark.parametrize("gan_loss, d_loss, g_loss", [
    ("hinge", 0.5 + 1.5, -0.5),  # max(0, 1 - 0.5) + max(0, 1 + 0.5); -D(G(z))
    ("nonsaturating", 2 * math.log1p(math.exp(-0.5)) + 0.5, math.log1p(math.exp(-0.5))),  # softplus(-.5) + softplus(.5)
])
def test_the_gan_step_uses_the_chosen_losses(gan_loss, d_loss, g_loss):
    cfg = override(GanConfig(), {**GAN_BASE, "train.batch_size": 8, "train.gan_loss": gan_loss, "train.lr_d": 1e-9})
    trainer = GanTrainer(Generator(8, 4), ConstantCritic(), Batches(_images(), 8, seed=0), cfg.train,
                         torch.randn(4, 8), torch.device("cpu"))
    metrics = trainer.train_step(0)
    assert metrics["d_loss"].item() == pytest.approx(d_loss, abs=1e-6)
    assert metrics["g_loss"].item() == pytest.approx(g_loss, abs=1e-6)


def test_moving_average_decay_warms_up_and_updates_by_hand():
    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    assert ema_decay_at(90, 0.999) == pytest.approx(0.91)  # 91 / 100
    assert ema_decay_at(100_000, 0.999) == 0.999
    model, average = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        model.weight.fill_(1.0)
        average.weight.fill_(0.0)
        model.running_mean.fill_(3.0)
    update_ema_(average, model, 0.9)
    assert torch.allclose(average.weight, torch.full((2,), 0.1))  # 0.9 * 0 + 0.1 * 1
    assert torch.equal(average.running_mean, model.running_mean)  # buffers copied


def test_trainer_with_a_moving_average_samples_evaluates_and_keeps_the_average():
    trainer = _trainer("gan", ema_decay=0.999)
    first = [p.detach().clone() for p in trainer.ema.parameters()]
    live_before = [p.detach().clone() for p in trainer.generator.parameters()]
    trainer.train_step(0)  # decay 0.1 at step 0: average = 0.1 * before + 0.9 * after
    for a, a0, g in zip(trainer.ema.parameters(), first, trainer.generator.parameters()):
        assert torch.allclose(a, 0.1 * a0 + 0.9 * g, atol=1e-6)
    assert any(not torch.equal(a, g) for a, g in zip(first, live_before)) is False  # it started as the generator
    noise = torch.randn(4, 8)
    with torch.no_grad():
        expected = trainer.ema.eval()(noise)
    assert torch.equal(trainer.sample(noise), expected)
    seen = []
    trainer.scorer = lambda samples, labels, step: (seen.append(samples), {"fid": 1.0 + len(seen)})[1]
    assert trainer.evaluate(1) == {"fid": 3.0, "live_fid": 2.0, "best_fid": 3.0}  # the live generator first
    assert torch.equal(seen[0], trainer.sample(trainer.eval_noise, generator=trainer.generator))
    assert torch.equal(seen[1], trainer.sample(trainer.eval_noise))
    best = trainer.best_generator().state_dict()
    assert all(torch.equal(best[k], v) for k, v in trainer.ema.state_dict().items())
    assert all(not p.requires_grad for p in trainer.ema.parameters())


def test_binarise_thresholds_at_zero():
    x = torch.tensor([-1.0, -0.3, 0.0, 1e-4, 0.9])
    assert binarise(x).tolist() == [-1.0, -1.0, -1.0, 1.0, 1.0]


def test_spectral_norm_makes_every_critic_layer_1_lipschitz():
    torch.manual_seed(0)
    critic = Discriminator(8, "none", spectral_norm=True)
    init_dcgan(critic)
    assert len(layer_weights(critic)) == 4  # the raw weights of three convolutions and the head
    x = torch.rand(16, 1, 28, 28) * 2 - 1
    for _ in range(30):  # training-mode passes run the power iteration
        critic(x)
    critic.eval()
    for module in critic.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            sigma = torch.linalg.matrix_norm(module.weight.detach().flatten(1), ord=2)
            assert sigma.item() == pytest.approx(1.0, abs=0.02)
    raw = critic.body[0].parametrizations.weight.original
    assert raw.std().item() == pytest.approx(0.02, rel=0.3)  # DCGAN's initialisation reached the raw weight


def test_clipping_keeps_every_weight_in_bounds_and_counts_those_at_the_bound():
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -0.005, -2.0], [0.001, 0.01, 0.0]]))
        layer.bias.copy_(torch.tensor([-0.02, 0.003]))
    fraction = clip_weights_(layer, 0.01)
    assert all(p.abs().max() <= 0.01 for p in layer.parameters())
    assert fraction.item() == pytest.approx(4 / 8)  # 0.5, -2.0, 0.01 and -0.02 end at the bound


def test_wgan_training_keeps_every_critic_weight_in_bounds():
    trainer = _trainer("wgan", n_critic=2, lr_d=0.05)  # a large step pushes many weights past c
    for step in range(3):
        trainer.train_step(step)
    metrics = trainer.critic_step(*trainer.batches(6))
    c = trainer.cfg.clip
    weights = torch.cat([p.detach().flatten() for p in trainer.critic.parameters()])
    assert weights.abs().max().item() <= c
    assert metrics["clipped_fraction"].item() == pytest.approx((weights.abs() >= c).double().mean().item())
    assert metrics["clipped_fraction"].item() > 0.1


@pytest.mark.parametrize("n_critic", [1, 3])
def test_critic_runs_n_critic_updates_per_generator_update_on_fresh_batches(n_critic):
    trainer = _trainer("wgan-gp", n_critic=n_critic)
    calls = {"d": 0, "g": 0, "batches": []}

    def counted(optimizer, key):
        step = optimizer.step

        def wrapped(*args, **kwargs):
            calls[key] += 1
            return step(*args, **kwargs)
        optimizer.step = wrapped

    counted(trainer.d_optimizer, "d")
    counted(trainer.g_optimizer, "g")
    batches = trainer.batches
    trainer.batches = lambda index: (calls["batches"].append(index), batches(index))[1]
    trainer.batches.batch_size = batches.batch_size
    for step in range(4):
        trainer.train_step(step)
    assert calls["g"] == 4 and calls["d"] == 4 * n_critic
    assert calls["batches"] == list(range(4 * n_critic))


@pytest.mark.parametrize("objective", ["gan", "wgan", "wgan-gp"])
def test_step_logs_the_objectives_metrics_as_detached_scalars(objective):
    metrics = _trainer(objective).train_step(0)
    expected = {"d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm",
                "d_grad_layer1", "d_grad_layer2", "d_grad_layer3", "d_grad_layer4"}
    expected |= {"gan": set(), "wgan": {"wasserstein", "clipped_fraction"},
                 "wgan-gp": {"wasserstein", "gp", "interp_grad_norm"}}[objective]
    assert set(metrics) == expected
    assert all(v.dim() == 0 and not v.requires_grad and torch.isfinite(v) for v in metrics.values())


def test_latent_codes_are_one_hot_after_z_and_read_back():
    g = Generator(5, 4, codes=3)
    latent = g.latent(6, torch.Generator().manual_seed(0), codes=torch.tensor([0, 1, 2, 2, 1, 0]))
    assert latent.shape == (6, 8) and g.latent_dim == 8
    assert torch.equal(latent[:, 5:], torch.eye(3)[[0, 1, 2, 2, 1, 0]])
    assert torch.equal(g.code_of(latent), torch.tensor([0, 1, 2, 2, 1, 0]))
    assert torch.equal(latent[:, :5], torch.randn(6, 5, generator=torch.Generator().manual_seed(0)))
    drawn = g.code_of(g.latent(3000, torch.Generator().manual_seed(1)))
    assert torch.bincount(drawn, minlength=3).min() > 900  # uniform over the 3 values
    plain = Generator(5, 4)  # without codes: the same random stream as torch.randn(n, z_dim)
    assert torch.equal(plain.latent(4, torch.Generator().manual_seed(2)),
                       torch.randn(4, 5, generator=torch.Generator().manual_seed(2)))


def test_info_loss_is_the_cross_entropy_of_the_latent_codes():
    trainer = _trainer("gan", codes=3)
    latent = trainer.generator.latent(2, codes=torch.tensor([2, 0]))
    logits = torch.tensor([[0.0, 1.0, 3.0], [2.0, 0.0, 0.0]])
    expected = -(math.log(math.exp(3) / (1 + math.e + math.exp(3))) + math.log(math.exp(2) / (math.exp(2) + 2))) / 2
    loss, accuracy = trainer.info_loss(logits, latent)
    assert loss.item() == pytest.approx(expected, rel=1e-6) and accuracy.item() == 1.0


def test_info_codes_are_learnt_by_the_code_head_and_the_generator():
    """With codes, Q learns to read the code back from the generator's images (chance: 1/4)."""
    trainer = _trainer("gan", codes=4, width=8, ema_decay=0.0)
    logged = [trainer.train_step(step) for step in range(60)]
    assert {"info_loss", "info_accuracy", "g_info_loss"} <= set(logged[0])
    late = torch.stack([m["info_accuracy"] for m in logged[-10:]]).mean()
    assert late > 0.9 and torch.stack([m["info_loss"] for m in logged[-10:]]).mean() < 0.5 * math.log(4)
    untrained = _trainer("gan", codes=4, width=8, ema_decay=0.0, info_weight=0.0)
    for step in range(60):
        untrained.train_step(step)  # without the term in the losses Q never learns: the codes stay unread
    assert torch.stack([untrained.train_step(step)["info_accuracy"] for step in range(60, 65)]).mean() < 0.6


def test_code_class_agreement_by_hand():
    codes = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    classes = torch.tensor([3, 3, 3, 5, 5, 5, 1, 3, 3, 7])  # code 0 -> 3 (3 of 4), 1 -> 5 (2 of 3), 2 -> 3 (2 of 3)
    assert code_class_agreement(codes, classes, 4) == {"code_purity": 0.7, "code_classes": 2}


def test_conditional_trainer_runs_and_samples_per_label():
    trainer = _trainer("wgan-gp", conditional=True)
    trainer.train_step(0)
    x = trainer.sample(torch.randn(10, 8), torch.arange(10))
    assert x.shape == (10, 1, 28, 28) and x.abs().max() <= 1


def test_fakes_of_the_generator_step_draw_labels_in_the_given_shares():
    trainer = _trainer("gan", conditional=True)
    assert trainer.draw_labels(20000).bincount(minlength=10).min() > 1800  # uniform without shares: 2,000 each
    shares = torch.tensor([0.7, 0.3] + [0.0] * 8)
    trainer.label_shares = shares
    counts = trainer.draw_labels(20000).bincount(minlength=10).double() / 20000
    assert counts[:2].tolist() == pytest.approx([0.7, 0.3], abs=0.015) and counts[2:].sum() == 0  # sd 0.0032


def test_networks_shapes_and_per_sample_critic_without_batch_norm():
    g, x = Generator(16, 8), torch.rand(6, 1, 28, 28) * 2 - 1
    assert g(torch.randn(6, 16)).shape == (6, 1, 28, 28)
    for norm in ("layer", "none"):
        d = Discriminator(8, norm)
        assert torch.allclose(d(x)[:1], d(x[:1]), atol=1e-6)  # a score depends on its own image only
    d = Discriminator(8, "batch")
    assert not torch.allclose(d(x)[:1], d(x[:1]), atol=1e-6)


@pytest.mark.parametrize("objective, recipe", [("gan", {}), ("wgan", {}), ("wgan-gp", {}),
                                               ("gan", {"ema_decay": 0.0, "spectral_norm": True}),
                                               ("gan", {"codes": 10}), ("wgan-gp", {"codes": 4})])
def test_state_dict_resumes_exactly(objective, recipe):
    reference = _trainer(objective, **recipe)
    for step in range(3):
        reference.train_step(step)
    state, rng = copy.deepcopy(reference.state_dict()), capture_rng()
    for step in range(3, 6):
        reference.train_step(step)

    resumed = _trainer(objective, seed=1, **recipe)  # other initial weights: everything must come from the state
    resumed.load_state_dict(state)
    restore_rng(rng)
    for step in range(3, 6):
        resumed.train_step(step)
    for a, b in zip(reference.state_dict()["generator"].values(), resumed.state_dict()["generator"].values()):
        assert torch.equal(a, b)
    for a, b in zip(reference.critic.parameters(), resumed.critic.parameters()):
        assert torch.equal(a, b)
    if reference.ema is not None:
        for a, b in zip(reference.ema.state_dict().values(), resumed.ema.state_dict().values()):
            assert torch.equal(a, b)


def test_soften_halves_both_learning_rates_and_survives_a_round_trip():
    trainer = _trainer("wgan-gp")
    assert trainer.soften(1) == "both learning rates scaled by 0.5"
    state = copy.deepcopy(trainer.state_dict())
    fresh = _trainer("wgan-gp")
    fresh.load_state_dict(state)
    assert fresh.lr_scale == 0.5
    assert fresh.g_optimizer.param_groups[0]["lr"] == pytest.approx(0.5 * WGANGP_BASE["train.lr_g"])
    assert fresh.d_optimizer.param_groups[0]["lr"] == pytest.approx(0.5 * WGANGP_BASE["train.lr_d"])


def test_evaluation_keeps_the_generator_with_the_lowest_fid():
    trainer = _trainer("gan", ema_decay=0.0)
    fids = {10: 5.0, 20: 3.0, 30: 4.0}
    trainer.scorer = lambda samples, labels, step: {"fid": fids[step]}
    for step in fids:
        trainer.train_step(step)
        result = trainer.evaluate(step)
        if step == 20:
            best_weights = copy.deepcopy(trainer.generator.state_dict())
    assert result == {"fid": 4.0, "best_fid": 3.0} and trainer.best["step"] == 20
    best = trainer.best_generator().state_dict()
    assert all(torch.equal(best[k], best_weights[k]) for k in best)


@pytest.mark.parametrize("sets, key", [
    ({**WGANGP_BASE, "model.d_norm": "batch"}, "model.d_norm"),
    ({"train.n_critic": 0}, "train.n_critic"),
    ({"train.clip": -0.01}, "train.clip"),
    ({"train.objective": "lsgan"}, "train.objective"),
    ({**WGAN_BASE, "model.d_spectral_norm": True}, "model.d_spectral_norm"),
    ({**WGANGP_BASE, "train.gan_loss": "hinge"}, "train.gan_loss"),
    ({"train.ema_decay": 1.0}, "train.ema_decay"),
    ({"model.output": "sigmoid"}, "model.output"),
    ({"data.train_limit": 10, "train.batch_size": 64}, "data.train_limit"),
    ({"model.info_codes": 10, "model.conditional": True}, "model.info_codes"),
    ({"model.clusters": 20, "model.conditional": True}, "model.clusters"),
    ({"model.clusters": 20, "model.info_codes": 10}, "model.clusters"),
    ({"model.clusters": -1}, "model.clusters"),
])
def test_bad_config_values_name_the_key(sets, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        override(GanConfig(), sets)


def test_wasserstein_fid_correlation_pairs_each_evaluation_with_the_last_logged_estimate():
    train = [{"step": s, "split": "train", "wasserstein": w} for s, w in [(10, 9.0), (20, 5.0), (30, 4.0), (40, 1.0)]]
    evals = [{"step": s, "split": "eval", "fid": f} for s, f in [(20, 50.0), (25, 40.0), (40, 10.0)]]
    # pairs (5, 50), (5, 40), (1, 10): the estimate falls as FID falls, with one tie
    assert wasserstein_fid_correlation(train + evals) == pytest.approx(0.866, abs=1e-3)
    assert math.isnan(wasserstein_fid_correlation(train + evals[:2]))  # fewer than three evaluations
