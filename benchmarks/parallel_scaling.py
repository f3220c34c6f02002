"""Steps per second of quick-preset work on THREADS threads: is one two-thread run or two one-thread runs faster?

    python benchmarks/parallel_scaling.py 2                    # one run, two threads
    python benchmarks/parallel_scaling.py 1 & python benchmarks/parallel_scaling.py 1; wait   # two runs at once

Compare the sum of the two one-thread rates with the two-thread rate: that is what `genlab run pipeline
--jobs 2` trades. Each workload is one step of a quick preset's network, timed for 6 seconds; prints JSON.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Callable

import torch
import torch.nn.functional as F

from genlab.experiments.ebm import build_model
from genlab.experiments.registry import get_experiment
from genlab.nets.classifiers import build_classifier
from genlab.nets.gan import Discriminator, Generator


def sgld_step() -> Callable[[], None]:
    """One input-gradient pass of the conditional MNIST energy (the sampler's unit of work)."""
    cfg = get_experiment("ebm-mnist-cond").config("quick", {}, 0)
    model = build_model(cfg).to(memory_format=torch.channels_last).requires_grad_(False)
    x = torch.rand(cfg.train.batch_size, 1, 28, 28)
    y = torch.randint(0, 10, (cfg.train.batch_size,))

    def step() -> None:
        xi = x.clone().requires_grad_()
        with torch.autocast("cpu", torch.bfloat16):
            energy = model(xi, y).sum()
        torch.autograd.grad(energy, xi)
    return step


def gan_step() -> Callable[[], None]:
    """One critic and one generator update of the Hoda GAN."""
    cfg = get_experiment("gan-hoda").config("quick", {}, 0)
    generator = Generator(cfg.model.z_dim, cfg.model.g_width, 1, 0)
    critic = Discriminator(cfg.model.d_width, cfg.model.d_norm, 1, 0)
    opt_g, opt_d = torch.optim.Adam(generator.parameters()), torch.optim.Adam(critic.parameters())
    real = torch.rand(cfg.train.batch_size, 1, 28, 28)

    def step() -> None:
        z = torch.randn(len(real), cfg.model.z_dim)
        loss = critic(generator(z).detach()).mean() - critic(real).mean()
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        loss = -critic(generator(z)).mean()
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
    return step


def classifier_step(experiment: str, channels: int, size: int) -> Callable[[], None]:
    """One training step of a judge classifier."""
    cfg = get_experiment(experiment).config("quick", {}, 0)
    model = build_classifier(cfg.model.arch, channels, 10, cfg.model.width)
    opt = torch.optim.Adam(model.parameters())
    x, y = torch.rand(cfg.train.batch_size, channels, size, size), torch.randint(0, 10, (cfg.train.batch_size,))

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def rate(step: Callable[[], None], seconds: float = 6.0) -> float:
    for _ in range(3):
        step()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]))
    torch.manual_seed(0)
    workloads = {"ebm-cond-sgld": sgld_step, "gan": gan_step,
                 "clf-mnist": lambda: classifier_step("classifier-mnist", 1, 28),
                 "clf-cifar": lambda: classifier_step("classifier-cifar10", 3, 32)}
    rates = {name: round(rate(make()), 2) for name, make in workloads.items()}
    print(json.dumps({"threads": torch.get_num_threads(), "steps_per_s": rates}))


if __name__ == "__main__":
    main()
