"""Why a trained conditional EBM misses a digit: energies per label, and samples from other starts.

    python benchmarks/ebm_cond_diagnosis.py RUN_DIR [RUN_DIR ...] [--steps 20 60 200] [--guidance 0 1 3]

For each run (an `ebm-mnist-cond` run directory with a checkpoint) it prints how strongly the energy reads
the image's border pixels (mean |dE/dx| on the 4 outermost rows or columns of each side, relative to the
whole image's, over test digits: a side it barely reads is one where chains can grow artifacts), and per
label y:
- the mean energy E(x, y) of test digits of class y and of the replay buffer's chains held at label y
  (a label whose chains sit far above its data is one whose CD gap ran away: the sampler no longer
  reaches the data's well, so every update pushes the two further apart);
- the share of each that the energy itself ranks first at y (argmin_k E(x, k) = y);
- the judged class accuracy of label-fixed samples after T more steps of the run's own sampler from
  three kinds of starts: the buffer, uniform noise, and Gaussians fitted per class to training digits
  (JEM++'s informative starts), optionally with classifier guidance: sampling p(x|y) p(y|x)^w, whose
  energy is (1 + w) E(x, y) - w E(x) with E(x) = -logsumexp_k -E(x, k).

Writes benchmarks/results/ebm_cond_diagnosis.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from genlab.data.datasets import load
from genlab.eval.judge import Judge
from genlab.experiments.base import machine_info, trained_state
from genlab.experiments.ebm import EBMConfig, build_model
from genlab.sampling import ClassGaussians, buffer_starts, run_chain, uniform_noise

CLASSES = 10


def guided(model: torch.nn.Module, w: float):
    """The energy of p(x|y) p(y|x)^w for a model that gives every label's energy in one pass."""
    def energy(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        every = model.energies(x)
        return (1 + w) * every.gather(1, y.view(-1, 1))[:, 0] + w * torch.logsumexp(-every, 1)
    return energy


@torch.no_grad()
def energies_by_label(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict[str, list]:
    every = torch.cat([model.energies(images[i:i + 500]) for i in range(0, len(images), 500)])
    own = every.gather(1, labels.view(-1, 1))[:, 0]
    first = every.argmin(1) == labels
    return {"energy": [own[labels == c].mean().item() for c in range(CLASSES)],
            "ranked_first": [first[labels == c].float().mean().item() for c in range(CLASSES)]}


def edge_attention(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Mean |dE(x, y)/dx| over the image's 4 outermost rows or columns on each side, relative to the whole
    image's: where the energy can tell (and the sampler move) border pixels."""
    x = images.clone().requires_grad_(True)
    grad = torch.autograd.grad(model(x, labels).sum(), x)[0].abs().mean((0, 1))
    sides = {"top": grad[:4], "bottom": grad[-4:], "left": grad[:, :4], "right": grad[:, -4:]}
    return {side: (values.mean() / grad.mean()).item() for side, values in sides.items()}


def per_class_accuracy(judge: Judge, x: torch.Tensor, labels: torch.Tensor) -> list[float]:
    predicted = judge.embed(x).probs.argmax(1)
    return [(predicted[labels == c] == c).double().mean().item() for c in range(CLASSES)]


def diagnose(run_dir: str, args, judge: Judge, test, gaussians: ClassGaussians) -> dict:
    run, cfg, state = trained_state(run_dir, EBMConfig, "cpu")
    if not cfg.data.conditional or cfg.data.dataset != "mnist":
        raise SystemExit(f"{run_dir} is not a conditional MNIST EBM run")
    model = build_model(cfg)
    model.load_state_dict(state["trainer"]["model"])
    model.eval()
    buffer, sampler = state["trainer"]["buffer"], cfg.sampler.with_settings(state["trainer"]["sampling"])
    labels = torch.arange(args.n) % CLASSES
    starts = {"buffer": buffer_starts(buffer, args.n, labels, "cpu", lambda: uniform_noise(args.n, (1, 28, 28), "cpu")),
              "noise": uniform_noise(args.n, (1, 28, 28), "cpu"),
              "class gaussians": gaussians.sample(args.n, labels)[0]}
    samples = []
    for start, x0 in starts.items():
        for w in args.guidance:
            for steps in args.steps:
                x = run_chain(guided(model, w), x0, sampler, labels=labels, steps=steps, freeze=model).x
                accuracy = per_class_accuracy(judge, x, labels)
                samples.append({"start": start, "guidance": w, "steps": steps, "per_class_accuracy": accuracy})
                print(f"  {start:>15} w={w:g} {steps:>4} steps: accuracy {sum(accuracy) / CLASSES:.3f}, "
                      f"per digit {' '.join(f'{a:.2f}' for a in accuracy)}", flush=True)
    test_images = test.images.float() / 127.5 - 1
    return {"run_dir": str(run_dir), "seed": cfg.seed,
            "edge_attention": edge_attention(model, test_images[:1000], test.labels[:1000]),
            "test_digits": energies_by_label(model, test_images, test.labels),
            "buffer_chains": energies_by_label(model, buffer["images"], buffer["labels"]), "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--n", type=int, default=500, help="samples per start (a tenth per digit)")
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 60, 200])
    parser.add_argument("--guidance", type=float, nargs="+", default=[0.0])
    parser.add_argument("--out", default="benchmarks/results/ebm_cond_diagnosis.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    judge = Judge.load("mnist")
    test = load("mnist", "test")
    train = load("mnist", "train")
    gaussians = ClassGaussians(train.images.float() / 127.5 - 1, train.labels, CLASSES)
    results = []
    for run_dir in args.runs:
        print(run_dir, flush=True)
        result = diagnose(run_dir, args, judge, test, gaussians)
        print("  label | E(test digits) | E(buffer chains) | ranked first: test, chains")
        print("  |dE/dx| on the 4 border pixels, relative to the image's: "
              + ", ".join(f"{side} {value:.2f}" for side, value in result["edge_attention"].items()))
        data, chains = result["test_digits"], result["buffer_chains"]
        for c in range(CLASSES):
            print(f"  {c} | {data['energy'][c]:.2f} | {chains['energy'][c]:.2f} | "
                  f"{data['ranked_first'][c]:.2f}, {chains['ranked_first'][c]:.2f}")
        results.append(result)
    Path(args.out).write_text(json.dumps({"machine": machine_info(torch.device("cpu")), "runs": results}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
