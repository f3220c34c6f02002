"""Steps per second of quick-preset work: is one two-thread run or two one-thread runs at once faster?

    python benchmarks/parallel_scaling.py          # on an idle machine; writes results/parallel_scaling.json

For each workload it times one process with 2 threads, then two processes with 1 thread each at the same
time (both start timing at one agreed moment), and compares the sum of the two rates with the first: that
is what `genlab run pipeline --jobs 2` trades. Each workload is one step of a quick preset's network.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from genlab.experiments.base import machine_info
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


def rate(step: Callable[[], None], start_at: float, seconds: float) -> float:
    """Steps per second over ``seconds``, timed from the wall-clock moment ``start_at``."""
    for _ in range(3):
        step()
    while time.time() < start_at:
        step()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        count += 1
    return count / (time.perf_counter() - start)


WORKLOADS = {"ebm-cond-sgld": sgld_step, "gan": gan_step,
             "clf-mnist": lambda: classifier_step("classifier-mnist", 1, 28),
             "clf-cifar": lambda: classifier_step("classifier-cifar10", 3, 32)}
LABELS = {"ebm-cond-sgld": "SGLD step of the conditional MNIST energy (bf16)",
          "gan": "GAN step (critic + generator, Hoda quick)", "clf-mnist": "MNIST classifier step",
          "clf-cifar": "CIFAR-10 classifier step (ResNet-9)"}


def child(workload: str, threads: int, start_at: float, seconds: float) -> None:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    print(rate(WORKLOADS[workload](), start_at, seconds))


def processes(workload: str, threads: int, count: int, seconds: float) -> list[float]:
    """The rates of ``count`` processes timing ``workload`` at once, each with ``threads`` threads."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start_at = time.time() + 15.0  # after every process has imported torch and built its network
    command = [sys.executable, __file__, "--child", workload, str(threads), str(start_at), str(seconds)]
    running = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(count)]
    return [float(p.communicate()[0].strip()) for p in running]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds per process")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "parallel_scaling.json"))
    parser.add_argument("--child", nargs=4, metavar=("WORKLOAD", "THREADS", "START_AT", "SECONDS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        workload, threads, start_at, seconds = args.child
        child(workload, int(threads), float(start_at), float(seconds))
        return
    rows = []
    print("| workload | one run, 2 threads | two runs at once, 1 thread each (sum) | ratio |\n| --- | --- | --- | --- |")
    for workload in WORKLOADS:
        alone = processes(workload, 2, 1, args.seconds)[0]
        pair = processes(workload, 1, 2, args.seconds)
        rows.append({"workload": workload, "two_threads": alone, "one_thread_each": pair,
                     "ratio": sum(pair) / alone})
        print(f"| {LABELS[workload]} | {alone:.2f} | {pair[0]:.2f} + {pair[1]:.2f} = {sum(pair):.2f} | "
              f"{sum(pair) / alone:.2f} |")
    Path(args.out).write_text(json.dumps({"unit": "steps per second", "seconds_timed": args.seconds,
                                          "machine": machine_info(torch.device("cpu")), "rows": rows}, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
