"""EBM experiments: `ebm-cifar10-{noise,buffer,buffer-decay,gaussian}` (unconditional) and `ebm-mnist-cond`.

The assignment's three CIFAR-10 variants share one budget (iterations x SGLD steps per iteration) and
differ only in how chains start (uniform noise each time vs a replay buffer) and in the step-size schedule
(constant vs decaying). The fourth, `gaussian`, is the recipe for sample quality: short chains from
Gaussians fitted to k-means clusters within each class, more iterations. Sample quality is judged in the feature space of genlab's CIFAR-10 / MNIST
classifier (domain FID/KID/IS), not Inception.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch

from genlab.config import param, section
from genlab.data.batches import to_float
from genlab.data.registry import check_name, get_spec
from genlab.errors import ConfigError
from genlab.eval.judge import Embedding, Judge
from genlab.eval.samples_io import save_sample_set, save_samples
from genlab.eval.cas import classification_accuracy_score
from genlab.eval.score import Reference, build_reference, reference_embedding, score_embeddings, score_images
from genlab.experiments.base import Experiment, RunContext, fitted_starts, trained_state
from genlab.experiments.ebm_analysis import chain_statistics, feature_diversity
from genlab.nets.energy import ResNetEnergy
from genlab.report.figures import curves_figure, grids_figure, memorisation_figure, sampling_figure, spread_picks
from genlab.sampling import SamplerConfig, fit_starts, buffer_starts, run_chain, sampler_section, uniform_noise
from genlab.sampling.precision import precision_summary
from genlab.train.ebm import EBMTrainConfig, EBMTrainer, EnergyNetConfig
from genlab.train.guard import DivergenceGuard, GuardConfig
from genlab.train.loop import LogConfig


@dataclass
class EBMDataConfig:
    dataset: str = param("cifar10", "training data: cifar10, mnist, fashion_mnist, or folder:PATH / npz:PATH")
    conditional: bool = param(False, "class-conditional energy E(x, y) (one output per class)")
    train_limit: int = param(0, "use only the first N training images (0: all)", ge=0)

    def check(self) -> None:
        check_name(self.dataset, "data.dataset", ("cifar10", "mnist", "fashion_mnist"))


@dataclass
class EBMEvalConfig:
    reference_images: int = param(10000, "test images the samples are compared with (at most)", ge=2)
    samples: int = param(500, "samples scored at each evaluation (log.eval_every)", ge=2)
    final_samples: int = param(1000, "samples drawn and scored at the end", ge=10)
    final_init: Literal["training", "noise"] = param(
        "training", "final samples: as in training (the buffer, or chains from noise), or fresh chains from "
                    "noise run for eval.final_steps (for a conditional model: 1/10 of them per label)")
    final_steps: int = param(0, "SGLD steps of fresh final chains (0: sampler.steps)", ge=0)
    cas_epochs: int = param(2, "conditional models: epochs of the Classification Accuracy Score classifiers, "
                               "trained on the final samples (0: no CAS)", ge=0)


@dataclass
class EBMConfig:
    seed: int = param(0, "seeds weights, data order, chains and the buffer")
    data: EBMDataConfig = section(EBMDataConfig)
    model: EnergyNetConfig = section(EnergyNetConfig)
    sampler: SamplerConfig = sampler_section()
    train: EBMTrainConfig = section(EBMTrainConfig)
    eval: EBMEvalConfig = section(EBMEvalConfig)
    log: LogConfig = section(LogConfig)
    guard: GuardConfig = section(GuardConfig)

    def check(self) -> None:
        if self.sampler.kind != "sgld":
            raise ConfigError("sampler.kind must be sgld for an energy network (proximal SGLD reuses the first "
                              "layer of JEM's classifiers)", hint="--set sampler.kind=sgld")
        if self.sampler.init == "buffer" and self.sampler.buffer_size < self.train.batch_size:
            raise ConfigError(f"sampler.buffer_size ({self.sampler.buffer_size}) is smaller than a batch "
                              f"({self.train.batch_size})", hint="raise sampler.buffer_size")


def build_model(cfg: EBMConfig) -> ResNetEnergy:
    spec = get_spec(cfg.data.dataset)
    return ResNetEnergy(spec.image_shape[0], cfg.model.width, cfg.model.blocks,
                        len(spec.classes) if cfg.data.conditional else 1, cfg.model.spectral_norm,
                        cfg.model.stem_stride, cfg.model.stem_downsample, cfg.model.pool_edges)


def _grid(ctx: RunContext, x: torch.Tensor, labels: torch.Tensor | None, name: str, step: int | None = None) -> None:
    """A sample grid; for a conditional model one row per class."""
    if labels is None:
        ctx.save_grid(x[:100], name, nrow=10, step=step)
        return
    rows = [x[labels == c][:10] for c in range(10)]
    rows = [torch.cat([r, torch.zeros(10 - len(r), *x.shape[1:], device=x.device) - 1]) for r in rows]
    ctx.save_grid(torch.cat(rows), name, nrow=10, step=step)


class Evaluator:
    """Scores the model's current samples against the test split and records a chain's energy trace."""

    def __init__(self, ctx: RunContext, judge: Judge, real: Embedding, samples: int):
        self.ctx, self.judge, self.real, self.samples = ctx, judge, real, samples

    def __call__(self, trainer: EBMTrainer, step: int) -> dict[str, Any]:
        x, labels = trainer.current_samples(self.samples)
        scores = score_embeddings(self.real, self.judge.embed(x), labels)
        _grid(self.ctx, x, labels, f"samples_step{step:07d}", step)
        trace = trainer.negatives(trainer.cfg.batch_size)[0].energy_trace
        keep = ("fid", "kid", "is", "precision", "recall", "class_coverage", "confident_share", "class_accuracy",
                "per_class_accuracy")
        return {**{k: scores[k] for k in keep if k in scores}, "chain_energy_trace": trace.tolist()}


def run_ebm(ctx: RunContext) -> dict[str, Any]:
    cfg: EBMConfig = ctx.config
    spec = get_spec(cfg.data.dataset)
    ctx.classes = spec.classes
    judge = Judge.load(cfg.data.dataset, ctx.device)
    real, n_real, note = reference_embedding(judge, cfg.data.dataset, "test", ctx.data_dir,
                                               cfg.eval.reference_images)
    if note and note not in ctx.notes:
        ctx.notes.append(note)
    ctx.notes.append(judge.description)
    train = ctx.load_data(cfg.data.dataset, "train", cfg.data.train_limit)
    model = build_model(cfg)
    gaussians = fit_starts(cfg.sampler.start, train.images, train.labels, len(spec.classes),
                           cfg.sampler.start_clusters, cfg.seed, ctx.device)
    trainer = EBMTrainer(model, ctx.batches(train, cfg.train.batch_size, cfg.seed), cfg.train, cfg.sampler,
                         spec.image_shape, ctx.device, cfg.data.conditional,
                         evaluator=Evaluator(ctx, judge, real, cfg.eval.samples), gaussians=gaussians)
    guard = DivergenceGuard(cfg.guard, finite=("loss",), bounded=("energy_pos", "energy_neg"),
                            vanishing=("grad_norm",))
    ctx.train(trainer, cfg.train.iterations, guard)
    ctx.sampler_precision = precision_summary(model)

    if cfg.eval.final_init == "noise":
        x, labels = trainer.fresh_samples(cfg.eval.final_samples, cfg.eval.final_steps or cfg.sampler.steps)
    else:
        x, labels = trainer.current_samples(cfg.eval.final_samples)
    save_samples(ctx.run.samples / "final.npz", x, labels)
    _grid(ctx, x, labels, "final")
    fake = judge.embed(x)
    reference = build_reference(judge, cfg.data.dataset, "test", ctx.data_dir, cfg.eval.reference_images,
                                train_images=train.images)
    scores = score_images(x, judge, reference, labels)
    ctx.save_figure(memorisation_figure(x, reference.neighbours.pixels, scores["memorisation_pairs"],
                                        reference.neighbours.threshold_pixels, f"{ctx.experiment.name}: final samples"),
                    "memorisation")
    records = ctx.run.read_metrics()
    fig = curves_figure(records, ["loss", "energy_pos", "energy_neg", "gap", "grad_norm", "fid"])
    if fig is not None:
        ctx.save_figure(fig, "curves")
    _evaluation_figures(ctx, records)
    metrics = {**{k: v for k, v in scores.items() if not isinstance(v, list)},
               "diversity": feature_diversity(fake.features, real.features),
               "samples": len(x), "reference_images": n_real, "iterations": cfg.train.iterations,
               "sgld_steps_per_iteration": cfg.sampler.steps,
               "parameters": sum(p.numel() for p in model.parameters()), **chain_statistics(records)}
    metrics.update({k: scores[k] for k in ("per_class_fid", "per_class_coverage")})
    if gaussians is not None:
        metrics.update(start_scores(trainer, len(x), labels, judge, reference, cfg.seed))
    metrics["fid_curve"] = [[r["step"], r["wall_s"], r["fid"]] for r in records
                            if r.get("split") == "eval" and "fid" in r]
    if labels is not None:
        metrics["per_class_accuracy"] = scores["per_class_accuracy"]
        metrics["min_class_accuracy"] = min(scores["per_class_accuracy"])
        test = ctx.load_data(cfg.data.dataset, "test", cfg.eval.reference_images)
        metrics["per_class_energy_data"] = energy_per_class(model, to_float(test.images), test.labels)
        metrics["per_class_energy_samples"] = energy_per_class(model, x, labels)
        if cfg.eval.cas_epochs:
            metrics.update(classification_accuracy_score(x, labels, train.images, train.labels, test.images,
                                                         test.labels, len(spec.classes), cfg.eval.cas_epochs,
                                                         cfg.seed, ctx.device))
    return metrics


def start_scores(trainer: EBMTrainer, n: int, labels: torch.Tensor | None, judge: Judge, reference: Reference,
                 seed: int) -> dict[str, float]:
    """What ``n`` fresh chain starts score on their own, before any Langevin step (``start_fid``, ...): for
    informative starts (Gaussians fitted to the training images) the bar the energy's chains must clear, since
    the draws alone are already closer to the data than noise. Drawn from their own seed, so the run's random
    stream is unchanged."""
    devices = [trainer.device] if trainer.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        x0 = trainer.starts.fresh(n, labels)
    scores = score_images(x0, judge, reference, labels)
    return {f"start_{k}": scores[k] for k in ("fid", "randnet_fid", "precision", "recall", "coverage")}


@torch.no_grad()
def energy_per_class(model: ResNetEnergy, images: torch.Tensor, labels: torch.Tensor,
                     batch_size: int = 500) -> list[float]:
    """Mean E(x, y) of the images of each label y. A label whose samples sit far above its data is one
    whose contrastive-divergence gap ran away: its chains no longer reach the data's well, so each update
    pushes the two further apart (a sampling failure, not a lack of training)."""
    device = next(model.parameters()).device
    energy = torch.cat([model(images[i:i + batch_size].to(device), labels[i:i + batch_size].to(device)).float()
                        for i in range(0, len(images), batch_size)]).cpu()
    labels = labels.cpu()
    return [energy[labels == c].mean().item() if (labels == c).any() else float("nan")
            for c in range(model.num_outputs)]


def _evaluation_figures(ctx: RunContext, records: list[dict[str, Any]]) -> None:
    """Sample grids over training (up to five evaluations and the final samples), FID against training time
    and the energy along the chains at each evaluation."""
    picks = spread_picks(sorted(ctx.run.samples.glob("samples_step*.png")), 5)
    titles = [f"step {int(p.stem.removeprefix('samples_step'))}" for p in picks] + ["final"]
    ctx.save_figure(grids_figure([*picks, ctx.run.samples / "final.png"], titles), "grids_over_training")
    fig = sampling_figure(records)
    if fig is not None:
        ctx.save_figure(fig, "sampling")


def sample_run(run_dir: str | Path, n: int = 100, label: int | None = None, steps: int | None = None,
               init: Literal["noise", "buffer"] = "buffer", device: torch.device | str = "cpu") -> Path:
    """Draw samples from a trained EBM run with the sampling settings stored in its checkpoint: chains from
    its replay buffer (each from an entry of its own label), or with ``init="noise"`` fresh chains from the
    run's own starts (``sampler.start``: uniform noise, or the Gaussians refitted on the training data;
    a model trained from Gaussian starts has never seen chains from uniform noise)."""
    run, cfg, state = trained_state(run_dir, EBMConfig, device)
    model = build_model(cfg).to(device)
    model.load_state_dict(state["trainer"]["model"])
    model.eval()
    settings = state["trainer"]["sampling"]
    sampler = cfg.sampler.with_settings(settings)
    if label is not None and not cfg.data.conditional:
        raise ConfigError(f"{run.path} is an unconditional model; --label needs a conditional one (ebm-mnist-cond)")
    if label is not None and not 0 <= label < model.num_outputs:
        raise ConfigError(f"--label must be in 0..{model.num_outputs - 1}; got {label}")
    labels = None
    if cfg.data.conditional:
        labels = (torch.full((n,), label, device=device) if label is not None
                  else torch.arange(n, device=device) % model.num_outputs)
    fresh = partial(_run_starts, cfg, n, labels, device)
    buffer = state["trainer"].get("buffer")
    x0 = buffer_starts(buffer, n, labels, device, fresh) if init == "buffer" and buffer is not None else fresh()
    result = run_chain(model, x0, sampler, labels=labels, steps=steps, freeze=model)
    tag = init + (f"_label{label}" if label is not None else "")
    return save_sample_set(run.samples, tag, result.x, labels, {"n": n, "label": label, "init": init,
                                                                "steps": steps or sampler.steps, "sampling": settings})


def _run_starts(cfg: EBMConfig, n: int, labels: torch.Tensor | None, device) -> torch.Tensor:
    """``n`` starts of fresh chains as the run drew them in training (``sampler.start``)."""
    spec = get_spec(cfg.data.dataset)
    if cfg.sampler.start == "uniform":
        return uniform_noise(n, spec.image_shape, device)
    starts = fitted_starts(cfg.sampler.start, cfg.data.dataset, cfg.data.train_limit, device,
                           cfg.sampler.start_clusters, cfg.seed)
    return starts.sample(n, labels)[0]


_SMOKE = {"eval.reference_images": 500, "model.width": 8, "model.blocks": "1,1", "sampler.steps": 5,
          "sampler.buffer_size": 256,
          "train.iterations": 12, "train.batch_size": 16, "data.train_limit": 512, "eval.samples": 64,
          "eval.final_samples": 64, "eval.cas_epochs": 1,
          "log.every": 4, "log.checkpoint_every": 8, "log.eval_every": 8}

# Paper scale (IGEBM's released code for CIFAR-10): 60 SGLD steps of size 10 with noise 0.005, width 128.
# genlab's images are in [-1, 1] rather than [0, 1]; the energy scale adapts, the step settings carry over.
# For a GPU: a compiled energy makes an iteration 1.4x faster on an H100 on top of the bf16 sampler and
# channels-last weights (benchmarks/README.md).
_CIFAR_FULL = {"model.width": 128, "sampler.steps": 60, "sampler.step_size": 10.0, "sampler.noise": 0.005,
               "train.compile": True,
               "train.iterations": 100000, "train.batch_size": 128, "eval.samples": 5000,
               "eval.final_samples": 10000, "log.every": 100, "log.checkpoint_every": 2000,
               "log.eval_every": 5000}
# CIFAR-10 on 2 CPU cores: IGEBM's CD loss at width 16 with the conditional MNIST recipe below (alpha 0.1,
# lr 1e-3 cosine-decayed, spectral norm, a stride-2 stem: a third of a full-resolution stem's cost per
# iteration), 1,200 iterations; how it was chosen: benchmarks/history.md#energy-based-models-on-cifar-10.
_CIFAR_QUICK = {"model.width": 16, "model.stem_stride": 2, "model.spectral_norm": True, "sampler.steps": 20,
                "train.lr": 1e-3, "train.lr_decay": "cosine", "train.alpha": 0.1, "train.iterations": 1200,
                "train.batch_size": 32, "sampler.buffer_size": 5000, "eval.samples": 500, "eval.final_samples": 1000,
                "log.every": 20, "log.checkpoint_every": 300, "log.eval_every": 300}
# Conditional MNIST on 2 CPU cores: IGEBM's CD loss plus p(y|x)'s cross-entropy; a stride-2 stem that pools
# (no checkerboard in the Langevin drift), three one-block stages, overlapping pools (every pixel read), fresh
# chains from per-class Gaussians (JEM++'s start), spectral norm, alpha 0.03, lr 1e-3 cosine-decayed over
# 2,000 iterations; how each setting was chosen: benchmarks/history.md#conditional-mnist-ebm.
_MNIST_COND_QUICK = {"model.width": 16, "model.blocks": "1,1,1", "model.stem_stride": 2, "model.spectral_norm": True,
                     "model.stem_downsample": "pool", "model.pool_edges": "overlap", "sampler.steps": 20,
                     "sampler.start": "gaussian",
                     "train.lr": 1e-3, "train.lr_decay": "cosine", "train.alpha": 0.03, "train.iterations": 2000,
                     "sampler.buffer_size": 10000,
                     "eval.samples": 500, "eval.final_samples": 1000, "log.every": 25,
                     "log.checkpoint_every": 250, "log.eval_every": 250}
# Per variant: its summary, its settings, what its quick preset changes in _CIFAR_QUICK, and its long preset
# (between quick and full: at most 2 hours on 2 CPU cores) where it has one.
_VARIANTS = {
    "noise": ("chains start from uniform noise every iteration (short-run), constant step",
              {"sampler.init": "noise", "sampler.schedule": "constant"}, {}, None),
    "buffer": ("chains start from a replay buffer (95%) or noise (5%), constant step",
               {"sampler.init": "buffer", "sampler.schedule": "constant"}, {}, None),
    "buffer-decay": ("replay buffer and a step size decaying from 10 to 1 along each chain",
                     {"sampler.init": "buffer", "sampler.schedule": "decay", "sampler.step_size_end": 1.0}, {}, None),
    # Short-run chains from an informative start (JEM++'s Gaussians; Nijkamp et al. 2019's short-run chains):
    # 50 k-means Gaussians fitted within each class's training images. Their draws alone score domain FID 59
    # (one Gaussian a class: 76; no image memorised), so the run scores them too (start_fid). Five steps a chain
    # make an iteration half as costly: 3,600 iterations take 11-13 minutes on one thread, within the quick
    # budget. Without spectral norm the energy grows ten times larger and its chains draw shapes in those five
    # steps. The stem pools instead of striding, as the conditional MNIST preset's does (no checkerboard drift).
    # Starts this near the data leave the energy nearly flat (|E| about 0.005) and prone to sudden spikes: at
    # lr 1e-3 one seed in three went flat, so the learning rate is 3e-4 and a divergence rolls back (lr halved)
    # instead of stopping. The smoke preset keeps one Gaussian a class: its 512 images are too few for 50 a class.
    # How it was chosen: benchmarks/README.md#the-gaussian-start-presets-starts-from-clusters-within-each-class.
    "gaussian": ("short-run chains of 5 steps from 50 k-means Gaussians within each class's training images (the "
                 "energy stays unconditional), a pooling stem, no spectral norm",
                 {"sampler.init": "noise", "sampler.start": "gaussian", "sampler.schedule": "constant",
                  "model.stem_downsample": "pool"},
                 {"model.spectral_norm": False, "sampler.steps": 5, "sampler.start": "class_clusters",
                  "sampler.start_clusters": 50, "train.iterations": 3600, "train.lr": 3e-4,
                  "guard.policy": "rollback", "log.checkpoint_every": 900, "log.eval_every": 900},
                # The long preset trains three times as long: the same domain FID as quick's (56.6 +- 2.7 against
                # 55.5 +- 1.5) and a lower label-free FID (0.032 against 0.054).
                # benchmarks/README.md#the-gaussian-start-presets-starts-from-clusters-within-each-class
                {"train.iterations": 10800, "log.eval_every": 1800}),
}


def _cifar_presets(quick: dict[str, Any], long: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    presets = {"smoke": _SMOKE, "quick": {**_CIFAR_QUICK, **quick}}
    if long:
        presets["long"] = {**presets["quick"], **long}
    return {**presets, "full": _CIFAR_FULL}


EBM_EXPERIMENTS = tuple(
    Experiment(f"ebm-cifar10-{name}", "ebm", f"ResNet energy on CIFAR-10: {summary}", EBMConfig, run_ebm,
               presets=_cifar_presets(quick, long), base={"data.dataset": "cifar10", **variant}, sample=sample_run)
    for name, (summary, variant, quick, long) in _VARIANTS.items()
) + (
    Experiment("ebm-mnist-cond", "ebm", "class-conditional ResNet energy E(x, y) on MNIST, label-fixed sampling",
               EBMConfig, run_ebm,
               presets={"smoke": {**_SMOKE, "sampler.start": "gaussian"},
                        "quick": _MNIST_COND_QUICK,
                        "full": {"model.width": 64, "model.blocks": "2,2,2", "sampler.steps": 60,
                                 "train.iterations": 30000, "train.batch_size": 128, "eval.samples": 5000,
                                 "eval.final_samples": 10000, "log.every": 100, "log.checkpoint_every": 2000,
                                 "log.eval_every": 2500}},
               base={"data.dataset": "mnist", "data.conditional": True, "train.class_weight": 1.0},
               sample=sample_run),
)
