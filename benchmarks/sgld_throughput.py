"""SGLD throughput: genlab's sampler against a naive loop, and the speed levers one by one.

    python benchmarks/sgld_throughput.py [--device cpu] [--batch 64] [--steps 20] [--repeats 3]
                                         [--nets cifar32 cifar64 cifar128 mnist] [--levers ...]
                                         [--training-width 64] [--training-steps N] [--training-batch N]

For each energy network it times `steps` Langevin steps at the given batch size and reports images x
steps per second (best of `repeats`, after a warm-up chain). "naive" is the loop most code writes:
parameters requiring grad, x.requires_grad_(), torch.autograd.grad(E(x).sum(), x), new noise tensors.
"genlab" is `genlab.sampling.langevin` (frozen parameters, in-place noise, no host sync) in float32; the
EBM trainers' defaults keep channels-last weights (`train.channels_last`) and let `sampler.precision=auto`
measure which precision and layout run fastest (genlab.sampling.precision); the script reports the
variant that choice corresponds to and its ratio over the naive loop. The levers
(channels_last, bf16 autocast, torch.compile of the energy, thread count) are applied on top of genlab's
sampler and each is timed on and off (channels_last and bf16 also together), with the largest difference
from the plain sampler's samples for the same seed. Also times one full CD training iteration, float32
eager against the kept levers (`--training-width 128 --training-steps 60 --training-batch 128`: the
full preset's). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from genlab.nets.energy import ResNetEnergy
from genlab.sampling import SamplerConfig, langevin, precision, run_chain
from genlab.train.ebm import EBMTrainConfig, EBMTrainer

NETS = {"cifar32": dict(in_channels=3, width=32, blocks=(3, 3, 3)),
        "cifar64": dict(in_channels=3, width=64, blocks=(3, 3, 3)),
        "cifar128": dict(in_channels=3, width=128, blocks=(3, 3, 3)),
        "mnist": dict(in_channels=1, width=16, blocks=(1, 1), num_outputs=10)}
STEP, NOISE = 10.0, 0.005


def naive_langevin(energy, x, steps):
    for _ in range(steps):
        x = x.detach().requires_grad_()
        grad = torch.autograd.grad(energy(x).sum(), x)[0]
        x = (x - STEP * grad + NOISE * torch.randn_like(x)).clamp(-1, 1)
    return x.detach()


def timed(fn, repeats: int, device: torch.device) -> tuple[float, torch.Tensor]:
    fn()  # warm-up (and compilation)
    best, out = float("inf"), None
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, out


def auto_variant(name: str, args, device: torch.device) -> str:
    """The variant genlab's EBM trainers run by default here: channels-last weights (train.channels_last),
    then what sampler.precision=auto measures fastest for this network and batch."""
    spec = NETS[name]
    shape = (spec["in_channels"], 28, 28) if name == "mnist" else (spec["in_channels"], 32, 32)
    model = ResNetEnergy(**spec).to(device).to(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (args.batch,), device=device) if name == "mnist" else None
    x0 = torch.rand(args.batch, *shape, device=device) * 2 - 1
    run_chain(model, x0, SamplerConfig(steps=args.steps, step_size=STEP, noise=NOISE), labels=labels, steps=1,
              freeze=model)
    chosen = precision.Candidate.from_name(precision.precision_summary(model)["chosen"])
    return "genlab" + ("+channels_last" if chosen.channels_last else "") + ("+bf16" if chosen.dtype else "")


def bench_net(name: str, args, device: torch.device) -> list[dict]:
    spec = NETS[name]
    shape = (spec["in_channels"], 28, 28) if name == "mnist" else (spec["in_channels"], 32, 32)
    torch.manual_seed(0)
    model = ResNetEnergy(**spec).to(device)
    labels = torch.randint(0, 10, (args.batch,), device=device) if name == "mnist" else None
    energy = (lambda x: model(x, labels)) if labels is not None else model
    x0 = torch.rand(args.batch, *shape, device=device) * 2 - 1
    rows = []

    def record(variant, fn, reference=None):
        torch.manual_seed(1)
        seconds, out = timed(lambda: (torch.manual_seed(1), fn())[1], args.repeats, device)
        diff = float((out.float() - reference.float()).abs().max()) if reference is not None else 0.0
        # The difference relative to how far the chains moved: a random network's gradients are small, so
        # an absolute difference alone would look tiny whatever the precision.
        moved = float((reference.float() - x0).abs().mean()) if reference is not None else 1.0
        rows.append({"net": name, "variant": variant, "seconds": seconds,
                     "images_steps_per_s": args.batch * args.steps / seconds, "max_abs_diff_vs_genlab": diff,
                     "mean_abs_diff_vs_genlab_over_mean_move": float((out.float() - reference.float()).abs().mean())
                     / moved if reference is not None else 0.0})
        print(f"{name:9s} {variant:24s} {rows[-1]['images_steps_per_s']:9.1f} img*steps/s   "
              f"({seconds:.3f} s)  max |diff| {diff:.2e}  mean |diff| / mean move "
              f"{rows[-1]['mean_abs_diff_vs_genlab_over_mean_move']:.2e}", flush=True)
        return out

    record("naive", lambda: naive_langevin(energy, x0, args.steps))
    plain = record("genlab", lambda: langevin(energy, x0, args.steps, STEP, NOISE, freeze=model,
                                              record_energy=False).x)
    if "channels_last" in args.levers and device.type != "mps":
        model.to(memory_format=torch.channels_last)
        x_cl = x0.contiguous(memory_format=torch.channels_last)
        record("genlab+channels_last", lambda: langevin(energy, x_cl, args.steps, STEP, NOISE, freeze=model,
                                                        record_energy=False).x, plain)
        model.to(memory_format=torch.contiguous_format)
    if "bf16" in args.levers:
        record("genlab+bf16", lambda: langevin(energy, x0, args.steps, STEP, NOISE, freeze=model, record_energy=False,
                                               autocast=torch.bfloat16).x, plain)
    if "compile" in args.levers:
        compiled = torch.compile(energy)
        record("genlab+compile", lambda: langevin(compiled, x0, args.steps, STEP, NOISE, freeze=model,
                                                  record_energy=False).x, plain)
    if {"channels_last", "bf16"} <= set(args.levers) and device.type != "mps":
        model.to(memory_format=torch.channels_last)
        x_cl = x0.contiguous(memory_format=torch.channels_last)
        record("genlab+channels_last+bf16", lambda: langevin(energy, x_cl, args.steps, STEP, NOISE, freeze=model,
                                                             record_energy=False, autocast=torch.bfloat16).x, plain)
        model.to(memory_format=torch.contiguous_format)
    if "threads" in args.levers and device.type == "cpu":
        default = torch.get_num_threads()
        torch.set_num_threads(1)
        record("genlab, 1 thread", lambda: langevin(energy, x0, args.steps, STEP, NOISE, freeze=model,
                                                    record_energy=False).x, plain)
        torch.set_num_threads(default)
    return rows


def bench_training(args, device: torch.device) -> list[dict]:
    """One full CD iteration (SGLD chain + optimiser step) of the CIFAR ResNet energy at the training width,
    steps and batch given (the full preset: width 128, 60 steps, batch 128): float32 eager against the kept
    levers: the sampler's default precision, then `train.channels_last`, then `train.compile` (and on a GPU
    the compiled passes as CUDA graphs, compile mode reduce-overhead, which the trainer does not offer)."""
    from genlab.data.batches import Batches
    from genlab.data.datasets import ImageSet

    batch = args.training_batch or args.batch
    data = ImageSet("random", "train", torch.randint(0, 256, (batch * 4, 3, 32, 32), dtype=torch.uint8),
                    torch.zeros(batch * 4, dtype=torch.long), ("x",))
    variants = [("fp32 eager", "fp32", False, None), ("precision auto", "auto", False, None),
                ("precision auto + channels_last", "auto", True, None)]
    if "compile" in args.levers:
        variants.append(("precision auto + channels_last + compile", "auto", True, "default"))
    if "compile" in args.levers and device.type == "cuda":  # reduce-overhead: the compiled passes as CUDA graphs
        variants.append(("precision auto + channels_last + compile + CUDA graphs", "auto", True, "reduce-overhead"))
    rows, base = [], None
    for variant, sampler_precision, channels_last, compile_mode in variants:
        torch.manual_seed(0)
        model = ResNetEnergy(3, args.training_width, (3, 3, 3))
        train_cfg = EBMTrainConfig(batch_size=batch, channels_last=channels_last, compile=compile_mode == "default")
        trainer = EBMTrainer(model, Batches(data, batch, 0, device), train_cfg,
                             SamplerConfig(steps=args.training_steps, buffer_size=1000, precision=sampler_precision),
                             (3, 32, 32), device, conditional=False)
        if compile_mode == "reduce-overhead":
            trainer.energy = torch.compile(trainer.model, mode=compile_mode)
        step = iter(range(10**9))
        try:
            seconds, _ = timed(lambda: trainer.train_step(next(step))["loss"].item(), args.repeats, device)
        except Exception as error:  # a lever that fails here is reported, not fatal
            print(f"CD iteration, {variant}: failed ({type(error).__name__}: {error})", flush=True)
            continue
        base = base or seconds
        rows.append({"net": f"cifar{args.training_width}", "variant": f"cd_iteration: {variant}", "seconds": seconds,
                     "steps": args.training_steps, "batch": batch, "speedup_over_fp32_eager": base / seconds})
        print(f"CD iteration (cifar{args.training_width}, {args.training_steps} SGLD steps, batch {batch}), "
              f"{variant}: {seconds:.3f} s ({base / seconds:.2f}x fp32 eager)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--training-width", type=int, default=64, help="width of the timed CD iteration's energy")
    parser.add_argument("--training-steps", type=int, default=None, help="its SGLD steps (default: --steps)")
    parser.add_argument("--training-batch", type=int, default=None, help="its batch (default: --batch)")
    parser.add_argument("--levers", nargs="*", default=["channels_last", "bf16", "compile", "threads"])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sgld_throughput.json"))
    args = parser.parse_args()
    args.training_steps = args.training_steps or args.steps
    device = torch.device(args.device)
    rows = [row for name in args.nets for row in bench_net(name, args, device)]
    speedups, defaults = {}, {}
    for name in args.nets:
        defaults[name] = default = auto_variant(name, args, device)
        speed = {r["variant"]: r["images_steps_per_s"] for r in rows if r["net"] == name}
        speedups[name] = speed[default] / speed["naive"]
        print(f"{name}: genlab's default sampler here ({default}) is {speedups[name]:.2f}x the naive loop")
    rows += bench_training(args, device)
    machine = {"platform": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
               "threads": torch.get_num_threads(), "device": str(device),
               "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "config": vars(args), "default_variant": defaults,
                               "default_speedup_over_naive": speedups, "results": rows}, indent=2) + "\n")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
