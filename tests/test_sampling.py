"""Langevin sampler on energies with known distributions, schedules, replay buffer."""

import math

import pytest
import torch

from genlab.sampling import (ChainStarts, CosineDecay, GeometricDecay, ReplayBuffer, SamplerConfig, balanced_labels, buffer_starts,
                             fresh_chains, langevin, make_schedule, proximal_langevin, run_chain)

MEAN = torch.tensor([1.0, -0.5])
COV = torch.tensor([[1.0, 0.6], [0.6, 0.8]])
PRECISION = torch.linalg.inv(COV)


def gaussian_energy(x):
    d = x - MEAN
    return 0.5 * ((d @ PRECISION) * d).sum(1)


def _moments(x):
    return x.mean(0), torch.cov(x.T)


@pytest.mark.parametrize("form", ["coupled", "decoupled"])
def test_gaussian_moments(form):
    torch.manual_seed(0)
    x0 = torch.randn(4000, 2) * 3
    if form == "coupled":
        chain = langevin(gaussian_energy, x0, 400, step_size=0.2, form="coupled", clamp=None)
    else:  # noise^2 = 2 * step gives the same stationary law as the coupled form with eps^2 = 2 * step
        chain = langevin(gaussian_energy, x0, 400, step_size=0.02, noise_scale=math.sqrt(0.04), clamp=None)
    mean, cov = _moments(chain.x)
    assert torch.allclose(mean, MEAN, atol=0.06)
    assert torch.allclose(cov, COV, atol=0.08)


def test_decoupled_noise_sets_the_temperature():
    """Less noise than the coupled form samples a colder distribution: covariance scales with noise^2 / (2 step)."""
    torch.manual_seed(1)
    chain = langevin(gaussian_energy, torch.randn(4000, 2), 400, step_size=0.02, noise_scale=0.1, clamp=None)
    temperature = 0.1 ** 2 / (2 * 0.02)
    _, cov = _moments(chain.x)
    assert torch.allclose(cov, temperature * COV, atol=0.04)


def mixture_energy(x):
    """Two isotropic Gaussians (sd 0.5) at (+-1.5, 0), equal weights."""
    centres = torch.tensor([[-1.5, 0.0], [1.5, 0.0]])
    sq = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
    return -torch.logsumexp(-sq / (2 * 0.25), dim=1)


def test_gaussian_mixture_modes_and_moments():
    torch.manual_seed(2)
    x0 = torch.rand(4000, 2) * 6 - 3
    chain = langevin(mixture_energy, x0, 300, step_size=0.1, form="coupled", clamp=None)
    right = (chain.x[:, 0] > 0).float().mean()
    assert abs(float(right) - 0.5) < 0.05
    mean, cov = _moments(chain.x)
    assert torch.allclose(mean, torch.zeros(2), atol=0.1)
    assert cov[0, 0] == pytest.approx(1.5 ** 2 + 0.25, abs=0.15) and cov[1, 1] == pytest.approx(0.25, abs=0.05)


def test_energy_trace_falls_and_parameters_are_restored():
    net = torch.nn.Linear(2, 1)

    def energy(x):
        assert not net.weight.requires_grad  # frozen while sampling
        return gaussian_energy(x) + 0 * net(x)[:, 0]

    chain = langevin(energy, torch.randn(256, 2) * 4, 50, 0.05, 0.0, clamp=None, freeze=net)
    assert chain.energy_trace.shape == (50,) and chain.energy_trace[-1] < chain.energy_trace[0] / 5
    assert net.weight.requires_grad


def test_clamp_and_grad_clip():
    chain = langevin(lambda x: -(x * 100).sum((1, 2, 3)), torch.zeros(8, 1, 4, 4), 3, 1.0, 0.0, grad_clip=0.01)
    assert torch.allclose(chain.x, torch.full_like(chain.x, 0.03))
    chain = langevin(lambda x: -(x * 100).sum((1, 2, 3)), torch.zeros(8, 1, 4, 4), 3, 1.0, 0.0)
    assert chain.x.max() == 1.0  # clamped to the data range


def test_bf16_autocast_keeps_the_chain_float32_and_the_law():
    torch.manual_seed(0)
    x0 = torch.randn(4000, 2) * 3
    chain = langevin(gaussian_energy, x0, 400, step_size=0.02, noise_scale=math.sqrt(0.04), clamp=None,
                     autocast=torch.bfloat16)
    assert chain.x.dtype == torch.float32 and chain.energy_trace.dtype == torch.float32
    mean, cov = _moments(chain.x[-4000:])
    assert torch.allclose(mean, MEAN, atol=0.1) and torch.allclose(cov, COV, atol=0.12)


def test_channels_last_start_gets_the_same_noise_per_pixel():
    net = torch.nn.Conv2d(3, 1, 3, padding=1)
    energy = lambda x: net(x).pow(2).sum((1, 2, 3))  # noqa: E731
    x0 = torch.rand(4, 3, 8, 8) * 2 - 1
    runs = []
    for start in (x0, x0.contiguous(memory_format=torch.channels_last)):
        torch.manual_seed(3)
        runs.append(langevin(energy, start, 5, 0.1, 0.05, freeze=net).x)
    assert torch.allclose(runs[0], runs[1], atol=1e-6)


def test_geometric_decay_endpoints():
    schedule = make_schedule("decay", 10.0, 0.1)
    assert isinstance(schedule, GeometricDecay)
    assert schedule(0, 20) == pytest.approx(10.0) and schedule(19, 20) == pytest.approx(0.1)
    assert schedule(10, 21) == pytest.approx(1.0)  # geometric midpoint
    assert make_schedule("constant", 3.0)(7, 20) == 3.0


def test_cosine_decay_by_hand():
    """start 10, end 1 over T = 5: 1 + 9 (1 + cos(pi t / 4)) / 2 = 10, 8.682, 5.5, 2.318, 1."""
    schedule = make_schedule("cosine", 10.0, 1.0)
    assert isinstance(schedule, CosineDecay)
    assert [schedule(t, 5) for t in range(5)] == pytest.approx([10.0, 1 + 9 * (1 + 0.5 ** 0.5) / 2, 5.5,
                                                                1 + 9 * (1 - 0.5 ** 0.5) / 2, 1.0])
    assert schedule(0, 1) == 10.0  # a one-step chain takes the start value
    assert make_schedule("decay", 10.0, 1.0)(1, 5) < schedule(1, 5)  # the geometric fall comes earlier


def test_decoupled_noise_follows_the_step_only_when_asked():
    """A flat energy (no drift) from zero: the end point is the sum of the noise, so its variance is the sum of
    sigma_t^2: constant noise 0.1 over 3 steps gives 0.03; noise following a decay 1, 0.5, 0.25 of the
    step gives 0.01 (1 + 0.25 + 0.0625)."""
    flat = lambda x: (0 * x).sum(1)  # noqa: E731
    x0 = torch.zeros(40000, 1)
    base = SamplerConfig(steps=3, step_size=1.0, step_size_end=0.25, schedule="decay", noise=0.1, precision="fp32")
    kept = run_chain(flat, x0, base).x
    followed = run_chain(flat, x0, SamplerConfig(**{**base.__dict__, "noise_follows_step": True})).x
    assert kept.var().item() == pytest.approx(0.03, rel=0.05)
    assert followed.var().item() == pytest.approx(0.01 * 1.3125, rel=0.05)


def test_buffer_reinitialises_five_percent():
    torch.manual_seed(0)
    buffer = ReplayBuffer(1000, (1, 2, 2), reinit_prob=0.05, init=lambda n, labels: torch.full((n, 1, 2, 2), -7.0))
    buffer.images.fill_(3.0)
    x, _, _ = buffer.sample(20000)
    fresh = (x[:, 0, 0, 0] == -7.0).float().mean()
    assert abs(float(fresh) - 0.05) < 0.006


@pytest.mark.parametrize("policy", ["fifo", "reservoir", "inplace"])
def test_buffer_policies_write_samples_back(policy):
    torch.manual_seed(0)
    buffer = ReplayBuffer(100, (1,), policy=policy, num_classes=10)
    for round_ in range(1, 6):
        x, labels, index = buffer.sample(40)
        buffer.push(torch.full((40, 1), float(round_)), labels, index)
    values = buffer.images[:, 0]
    if policy == "fifo":  # 200 pushes into 100 slots: the newest 100 (rounds 3.5 to 5) remain
        assert (values >= 3).all() and int((values == 5).sum()) == 40
    elif policy == "inplace":
        assert int((values >= 1).sum()) > 80  # most slots were drawn at least once
    else:  # reservoir keeps a uniform sample of all 300 seen (100 noise + 200 pushed)
        assert 40 < int((values >= 1).sum()) < 90
    assert buffer.labels.min() >= 0 and buffer.labels.max() < 10


def test_conditional_buffer_starts_fresh_chains_for_their_own_labels():
    """The initial fill and every re-initialisation hand ``init`` the labels the fresh entries get."""
    torch.manual_seed(0)
    buffer = ReplayBuffer(200, (1,), reinit_prob=0.5, num_classes=10, init=lambda n, labels: labels.float()[:, None])
    assert torch.equal(buffer.images[:, 0], buffer.labels.float())
    buffer.images.fill_(-1.0)
    x, labels, _ = buffer.sample(1000)
    fresh = x[:, 0] >= 0
    assert 400 < int(fresh.sum()) < 600
    assert torch.equal(x[fresh, 0], labels[fresh].float())


def test_conditional_buffer_keeps_labels():
    torch.manual_seed(0)
    buffer = ReplayBuffer(50, (1,), reinit_prob=0.0, num_classes=10, policy="inplace")
    x, labels, index = buffer.sample(50)
    buffer.push(labels.float()[:, None], labels, index)
    assert torch.equal(buffer.images[index, 0], buffer.labels[index].float())


def test_saved_buffer_starts_each_chain_from_its_own_label_and_falls_back_only_when_needed():
    """Buffer entries hold their label as pixel value: every chain of a held label starts from one of its
    own entries; labels the buffer lacks take the fallback's starts, which is not called when none is missing."""
    torch.manual_seed(0)
    buffer = {"images": torch.arange(4).float().repeat(5)[:, None], "labels": torch.arange(4).repeat(5)}
    calls = []

    def fallback():
        calls.append(1)
        return torch.full((40, 1), -1.0)

    held = torch.arange(40) % 4
    assert torch.equal(buffer_starts(buffer, 40, held, "cpu", fallback)[:, 0], held.float()) and not calls
    labels = torch.arange(40) % 6
    starts = buffer_starts(buffer, 40, labels, "cpu", fallback)[:, 0]
    assert len(calls) == 1
    assert torch.equal(starts[labels < 4], labels[labels < 4].float()) and (starts[labels >= 4] == -1).all()


def test_proximal_langevin_clips_the_outer_gradient_and_adds_noise_once_per_outer_step():
    """E(x) = 100 * sum(x): the gradient is 100 everywhere; clipped to 0.5 with step 1 and no inner steps,
    every outer step moves each pixel by exactly -0.5."""
    first = torch.nn.Identity()
    energy = lambda x: 100 * first(x).flatten(1).sum(1)  # noqa: E731
    x0 = torch.full((3, 1, 2, 2), 0.9)
    chain = proximal_langevin(energy, first, x0, outer_steps=2, inner_steps=0, step_size=1.0, inner_step=0.01,
                              bound=1.0, grad_clip=0.5)
    assert torch.allclose(chain.x, torch.full_like(x0, -0.1))
    torch.manual_seed(0)
    noisy = proximal_langevin(lambda x: 0 * first(x).flatten(1).sum(1), first, torch.zeros(2000, 1, 1, 1),
                              outer_steps=4, inner_steps=3, step_size=1.0, inner_step=0.01, bound=1.0, noise=0.1)
    assert noisy.x.std().item() == pytest.approx(0.1 * 4 ** 0.5, rel=0.05)  # four draws of N(0, 0.01)


def test_replay_buffer_current_is_the_newest_entries_of_a_ring():
    buffer = ReplayBuffer(10, (1,), policy="fifo")
    buffer.push(torch.arange(14).float()[:, None])  # the ring now holds 4..13, 13 newest
    images, labels = buffer.current(3)
    assert images[:, 0].tolist() == [13.0, 12.0, 11.0] and labels is None
    assert len(buffer.current(50)[0]) == 10


def test_chain_starts_without_a_buffer_are_fresh_with_uniform_labels():
    torch.manual_seed(0)
    starts = ChainStarts(SamplerConfig(init="noise"), (1, 2, 2), torch.device("cpu"), num_classes=4)
    x0, labels, index = starts.draw(4000)
    assert starts.buffer is None and index is None
    assert x0.min() >= -1 and x0.max() <= 1 and abs(x0.mean().item()) < 0.02
    assert torch.bincount(labels, minlength=4).min() > 900
    starts.keep(x0, labels, index)  # no buffer: nothing to write back, no error


def test_fresh_chains_hold_each_label_fixed_in_batches():
    """An energy whose well for label y sits at pixel value y / 4: chains end near their own label's value."""
    seen = []

    def energy(x, y):
        seen.append(len(x))
        return ((x.flatten(1) - y[:, None].float() / 4) ** 2).sum(1)

    labels = balanced_labels(10, 3, "cpu")
    cfg = SamplerConfig(steps=60, step_size=0.2, noise=0.0)
    x, out = fresh_chains(energy, lambda n, y: torch.zeros(n, 1, 1, 1), 10, 4, cfg, labels=labels)
    assert out.tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0] and seen[::60] == [4, 4, 2]  # one call per step
    assert torch.allclose(x[:, 0, 0, 0], labels.float() / 4, atol=1e-3)


def test_family_defaults_survive_a_partial_config():
    """A section built with a family's own defaults keeps them when a stored config lacks a field."""
    from genlab.experiments.jem import JEMConfig
    from genlab.config import from_dict

    cfg = from_dict(JEMConfig, {"sampler": {"steps": 7}})
    assert (cfg.sampler.steps, cfg.sampler.step_size, cfg.sampler.buffer_policy) == (7, 1.0, "inplace")
    assert SamplerConfig().with_settings({"steps": 3, "unknown_old_key": 1}).steps == 3
