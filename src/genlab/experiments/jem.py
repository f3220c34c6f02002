"""JEM / JEM++ experiments: `jem-<dataset>`, `jempp-<dataset>` and ablations of JEM++'s three changes.

Each starts from a pretrained classifier from the classifier cache with seed 1 (`genlab run
classifier-mnist --preset quick --seed 1`, with `--set model.norm=none` for JEM), so that the judge
(seed 0) never scores samples of its own weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F

from genlab.config import ConfigError, param, section, to_dict
from genlab.data.datasets import ImageSet
from genlab.data.registry import check_name, get_spec
from genlab.eval.calibration import expected_calibration_error, reliability_bins
from genlab.eval.classification import predict_logits
from genlab.eval.judge import Embedding, Judge
from genlab.eval.ood import auroc, max_softmax, negative_energy
from genlab.eval.samples_io import save_sample_set, save_samples
from genlab.eval.cas import classification_accuracy_score
from genlab.eval.score import build_reference, reference_embedding, score_embeddings, score_images
from genlab.experiments.base import Experiment, RunContext, fitted_starts, trained_state
from genlab.judges import load_classifier
from genlab.nets.classifiers import build_classifier
from genlab.report.figures import curves_figure, memorisation_figure, reliability_figure
from genlab.sampling import SamplerConfig, buffer_starts, fit_starts, sampler_section
from genlab.sampling.precision import precision_summary
from genlab.train.guard import DivergenceGuard, GuardConfig
from genlab.train.jem import JEM_SAMPLER, JEMTrainConfig, JEMTrainer
from genlab.train.loop import LogConfig, divergence_events

_SCORES = ("fid", "kid", "kid_std", "is", "precision", "recall", "class_coverage", "confident_share", "density",
           "coverage", "intra_fid", "intra_coverage", "per_class_fid", "per_class_coverage", "randnet_fid",
           "randnet_precision", "randnet_recall", "memorised_share", "memorised_share_features",
           "train_distance_ratio", "train_distance_ratio_features", "memorisation_train_images")


@dataclass
class JEMDataConfig:
    dataset: str = param("mnist", "training data: mnist, fashion_mnist, cifar10, or labelled folder:PATH / npz:PATH")
    ood_dataset: Literal["mnist", "fashion_mnist", "cifar10", "hoda"] = param(
        "fashion_mnist", "out-of-distribution test set (resized/recoloured to the training images' shape)")
    train_limit: int = param(0, "use only the first N training images (0: all)", ge=0)
    test_limit: int = param(0, "use only the first N test images (0: all)", ge=0)

    def check(self) -> None:
        check_name(self.dataset, "data.dataset", ("mnist", "fashion_mnist", "cifar10"))


@dataclass
class JEMModelConfig:
    arch: Literal["cnn", "resnet9"] = param("cnn", "classifier architecture (must match a cached classifier)")
    width: int = param(16, "classifier width", ge=1)
    norm: Literal["batch", "none"] = param("batch", "batch norm (JEM++) or none (JEM)")
    pretrained_seed: int = param(1, "seed of the cached classifier to start from (the judge is seed 0)")


@dataclass
class JEMEvalConfig:
    reference_images: int = param(10000, "test images the samples are compared with (at most)", ge=2)
    samples: int = param(500, "buffer samples scored at each evaluation", ge=2)
    test_images: int = param(2000, "test images for the accuracy at each evaluation", ge=1)
    final_samples: int = param(1000, "unconditional samples (from the buffer) scored at the end", ge=10)
    per_class: int = param(50, "class-conditional samples per class at the end", ge=1)
    cond_steps: int = param(60, "sampler steps of the class-conditional chains at the end", ge=1)
    cas_epochs: int = param(2, "epochs of the Classification Accuracy Score classifiers, trained on the "
                               "class-conditional samples (0: no CAS)", ge=0)


@dataclass
class JEMConfig:
    seed: int = param(0, "seeds data order, chains and the buffer")
    data: JEMDataConfig = section(JEMDataConfig)
    model: JEMModelConfig = section(JEMModelConfig)
    sampler: SamplerConfig = sampler_section(**JEM_SAMPLER)
    train: JEMTrainConfig = section(JEMTrainConfig)
    eval: JEMEvalConfig = section(JEMEvalConfig)
    log: LogConfig = section(LogConfig)
    guard: GuardConfig = section(GuardConfig)

    def check(self) -> None:
        if self.data.ood_dataset == self.data.dataset:
            raise ConfigError("data.ood_dataset must differ from data.dataset",
                              hint="e.g. --set data.ood_dataset=fashion_mnist")
        if self.sampler.init != "buffer":
            raise ConfigError("JEM samples from a replay buffer (its entries are the run's unconditional samples)",
                              hint="--set sampler.init=buffer")
        if self.sampler.buffer_size < self.train.batch_size:
            raise ConfigError("sampler.buffer_size is smaller than a batch", hint="raise sampler.buffer_size")


def as_shape(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """uint8 images converted to another dataset's (C, H, W): centre padding or cropping, grey <-> RGB."""
    c, h, w = shape
    if images.shape[1] != c:
        images = images.expand(-1, 3, -1, -1) if c == 3 else images.float().mean(1, keepdim=True).round().byte()
    dh, dw = h - images.shape[2], w - images.shape[3]
    if dh or dw:
        images = F.pad(images, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
    return images.contiguous()


class Evaluator:
    def __init__(self, ctx: RunContext, judge: Judge, real: Embedding, test: ImageSet, cfg: JEMEvalConfig):
        self.ctx, self.judge, self.real, self.cfg = ctx, judge, real, cfg
        self.test = test.subset(torch.arange(min(cfg.test_images, len(test))))

    def __call__(self, trainer: JEMTrainer, step: int) -> dict[str, Any]:
        logits = predict_logits(trainer.model, self.test.images, trainer.device)
        trainer.model.train()
        x, _ = trainer.starts.buffer.current(self.cfg.samples)
        scores = score_embeddings(self.real, self.judge.embed(x))
        self.ctx.save_grid(x[:100], f"samples_step{step:07d}", nrow=10, step=step)
        return {"test_acc": float((logits.argmax(1) == self.test.labels).float().mean()),
                **{k: scores[k] for k in ("fid", "kid", "is")}}


def _classifier_numbers(model: torch.nn.Module, test: ImageSet, ood: torch.Tensor, device) -> dict[str, Any]:
    logits = predict_logits(model, test.images, device)
    ood_logits = predict_logits(model, ood, device)
    probs = torch.softmax(logits.double(), 1)
    return {"test_accuracy": float((logits.argmax(1) == test.labels).float().mean()),
            "ece": expected_calibration_error(probs, test.labels),
            "reliability": reliability_bins(probs, test.labels),
            "ood_auroc_energy": auroc(negative_energy(logits), negative_energy(ood_logits)),
            "ood_auroc_max_softmax": auroc(max_softmax(logits), max_softmax(ood_logits))}


def run_jem(ctx: RunContext) -> dict[str, Any]:
    cfg: JEMConfig = ctx.config
    spec = get_spec(cfg.data.dataset)
    ctx.classes = spec.classes
    judge = Judge.load(cfg.data.dataset, ctx.device)
    arch = {"arch": cfg.model.arch, "width": cfg.model.width, "norm": cfg.model.norm}
    model, start = load_classifier(cfg.data.dataset, device=ctx.device, seed=cfg.model.pretrained_seed, arch=arch)
    ctx.notes.append(f"starts from classifier {start['config_hash']} (seed {start.get('seed')}, test accuracy "
                     f"{start['test_accuracy']:.2%}); {judge.description}")
    real, n_real, note = reference_embedding(judge, cfg.data.dataset, "test", ctx.data_dir,
                                               cfg.eval.reference_images)
    train = ctx.load_data(cfg.data.dataset, "train", cfg.data.train_limit)
    test = ctx.load_data(cfg.data.dataset, "test", cfg.data.test_limit)
    ood_set = ctx.load_data(cfg.data.ood_dataset, "test", len(test))
    ood = as_shape(ood_set.images, spec.image_shape)
    baseline = _classifier_numbers(model, test, ood, ctx.device)

    gaussians = fit_starts(cfg.sampler.start, train.images, train.labels, len(spec.classes),
                           cfg.sampler.start_clusters, cfg.seed, ctx.device)
    trainer = JEMTrainer(model, ctx.batches(train, cfg.train.batch_size, cfg.seed), cfg.train, cfg.sampler,
                         gaussians, spec.image_shape, ctx.device, Evaluator(ctx, judge, real, test, cfg.eval))
    ctx.train(trainer, cfg.train.iterations, DivergenceGuard(cfg.guard, finite=("loss",),
                                                             bounded=("energy_pos", "energy_neg")))
    ctx.sampler_precision = precision_summary(trainer.model)

    final = _classifier_numbers(trainer.model, test, ood, ctx.device)
    ctx.save_figure(reliability_figure(final["reliability"], f"test ECE {final['ece']:.4f}"), "reliability")
    uncond, _ = trainer.starts.buffer.current(cfg.eval.final_samples)
    save_samples(ctx.run.samples / "final.npz", uncond)
    ctx.save_grid(uncond[:100], "final", nrow=10)
    per_class = torch.arange(len(spec.classes), device=ctx.device).repeat_interleave(cfg.eval.per_class)
    cond_x, cond_y = trainer.fresh_samples(per_class, cfg.eval.per_class, cfg.eval.cond_steps)
    save_samples(ctx.run.samples / "conditional.npz", cond_x, cond_y)
    ctx.save_grid(torch.cat([cond_x[cond_y == c][:10] for c in range(len(spec.classes))]), "conditional", nrow=10)
    reference = build_reference(judge, cfg.data.dataset, "test", ctx.data_dir, cfg.eval.reference_images,
                                train_images=train.images)
    uncond_scores = score_images(uncond, judge, reference)
    ctx.save_figure(memorisation_figure(uncond, reference.neighbours.pixels, uncond_scores["memorisation_pairs"],
                                        reference.neighbours.threshold_pixels,
                                        f"{ctx.experiment.name}: buffer samples"),
                    "memorisation")
    cond_scores = score_embeddings(reference.embedding, judge.embed(cond_x), cond_y, reference.labels)
    cas = {}
    if cfg.eval.cas_epochs:
        cas = classification_accuracy_score(cond_x, cond_y, train.images, train.labels, test.images, test.labels,
                                            len(spec.classes), cfg.eval.cas_epochs, cfg.seed, ctx.device)
    fig = curves_figure(ctx.run.read_metrics(), ["loss", "ce", "gen", "acc", "test_acc", "fid"])
    if fig is not None:
        ctx.save_figure(fig, "curves")

    records = [r for r in ctx.run.read_metrics() if r.get("split") == "train" and r.get("step_s")]
    step_s = sum(r["step_s"] for r in records) / max(1, len(records))
    full_steps = cfg.sampler.steps
    return {"test_accuracy": final["test_accuracy"], "ece": final["ece"],
            "ood_auroc_energy": final["ood_auroc_energy"], "ood_auroc_max_softmax": final["ood_auroc_max_softmax"],
            **{k: uncond_scores[k] for k in _SCORES},
            "conditional_accuracy": cond_scores["class_accuracy"],
            "conditional_fid": cond_scores["fid"],
            "conditional_intra_fid": cond_scores["intra_fid"],
            "conditional_intra_coverage": cond_scores["intra_coverage"],
            **cas,
            "per_class_accuracy": cond_scores["per_class_accuracy"],
            "min_class_accuracy": min(cond_scores["per_class_accuracy"]),
            "classifier_test_accuracy": baseline["test_accuracy"], "classifier_ece": baseline["ece"],
            "classifier_ood_auroc_max_softmax": baseline["ood_auroc_max_softmax"],
            "sgld_steps_per_iteration": full_steps,
            "first_layer_steps_per_iteration": full_steps * cfg.sampler.inner_steps if cfg.sampler.kind == "pyld" else 0,
            "seconds_per_1000_iterations": 1000 * step_s, "iterations": cfg.train.iterations,
            "divergence_events": divergence_events(ctx.run.read_metrics()),
            "ood_dataset": cfg.data.ood_dataset, "reference_images": n_real}


def sample_run(run_dir: str | Path, n: int = 100, label: int | None = None, steps: int | None = None,
               init: Literal["noise", "buffer"] = "buffer", device: torch.device | str = "cpu") -> Path:
    """Samples of a trained JEM/JEM++ run with its own sampler settings.

    Without a label: the checkpoint's replay buffer run on for ``steps`` more sampler steps (default: the
    steps of one training iteration), or with ``init="noise"`` fresh chains from the run's starts (uniform
    noise for JEM, the class Gaussians, refitted on the training data, for JEM++). With a label: fresh
    chains on E(x, y) with y held fixed, as the run's class-conditional grid (default eval.cond_steps).
    """
    run, cfg, state = trained_state(run_dir, JEMConfig, device)
    spec = get_spec(cfg.data.dataset)
    classes = len(spec.classes)
    if label is not None and not 0 <= label < classes:
        raise ConfigError(f"--label must be in 0..{classes - 1}; got {label}")
    model = build_classifier(cfg.model.arch, spec.image_shape[0], classes, cfg.model.width, cfg.model.norm)
    model.load_state_dict(state["trainer"]["model"])
    # the buffer is filled from them before the checkpoint's replaces it
    gaussians = fitted_starts(cfg.sampler.start, cfg.data.dataset, cfg.data.train_limit, device,
                              cfg.sampler.start_clusters, cfg.seed)
    trainer = JEMTrainer(model, None, cfg.train, cfg.sampler, gaussians, spec.image_shape, torch.device(device))
    labels = None if label is None else torch.full((n,), label, device=device)
    if label is None and init == "buffer":
        x0 = buffer_starts(state["trainer"]["buffer"], n, None, device)
        steps = cfg.sampler.steps if steps is None else steps
    else:
        x0 = trainer.starts.fresh(n, labels)
        steps = cfg.eval.cond_steps if steps is None else steps
    images = trainer.sample(x0, labels, steps).x if steps else x0
    tag = ("buffer" if label is None and init == "buffer" else "fresh") + (f"_label{label}" if label is not None else "")
    return save_sample_set(run.samples, tag, images, labels, {"n": n, "label": label, "init": init, "steps": steps,
                                                              "sampler": to_dict(cfg.sampler)})


# JEM (Grathwohl et al. 2019, the JEM code's defaults): uniform-noise starts, 20 SGLD steps of size 1 with
# noise 0.01, a 10,000-image buffer with 5% re-initialisation, Adam 1e-4, data noise 0.03, no batch norm.
_JEM = {"model.norm": "none", "sampler.kind": "sgld", "sampler.start": "uniform", "sampler.steps": 20,
        "sampler.step_size": 1.0, "sampler.noise": 0.01}
# JEM++ (Yang & Ji 2021, the JEM++ code): class-conditional Gaussian starts, PYLD with M outer steps of
# size 1 and N inner steps of 0.01 with the per-pixel bound 1, no added noise, batch norm kept.
# genlab deviates in the batch-norm policy: frozen at the pretrained classifier's statistics, eval mode
# throughout (train.bn_policy=frozen; the JEM++ code keeps train mode; see train/jem.py).
_JEMPP = {"model.norm": "batch", "sampler.kind": "pyld", "sampler.start": "gaussian", "sampler.steps": 5,
          "sampler.inner_steps": 3, "sampler.step_size": 1.0, "sampler.inner_step": 0.01, "sampler.bound": 1.0,
          "sampler.noise": 0.0}
_SMOKE = {"eval.reference_images": 500, "train.iterations": 12, "train.batch_size": 16, "train.warmup": 4,
          "data.train_limit": 1000,
          "data.test_limit": 200, "sampler.buffer_size": 128, "sampler.steps": 3, "eval.samples": 64,
          "eval.test_images": 100, "eval.final_samples": 64, "eval.per_class": 4, "eval.cond_steps": 3,
          "eval.cas_epochs": 1,
          "log.every": 4, "log.checkpoint_every": 8, "log.eval_every": 8, "model.width": 8}
# MNIST quick (JEM and JEM++ alike): the generative term weighted 0.015, not the papers' 1, whose gradient
# swamps the cross-entropy's on a pretrained classifier, and the learning rate cosine-decayed over 2,000
# iterations; how these were chosen: benchmarks/history.md#jem-and-jem-on-mnist.
_MNIST_QUICK = {"train.iterations": 2000, "train.gen_weight": 0.015, "train.lr_decay": "cosine", "log.every": 50,
                "log.checkpoint_every": 500, "log.eval_every": 500}
_CIFAR = {"data.dataset": "cifar10", "data.ood_dataset": "mnist", "model.arch": "resnet9"}
# CIFAR-10 quick: the MNIST weighting (0.015, cosine decay) for 300 iterations from a 5-epoch classifier; at
# weight 1 the data energies ran away (benchmarks/history.md#jem-and-jem-on-cifar-10).
_CIFAR_QUICK = {"train.iterations": 300, "train.batch_size": 32, "train.gen_weight": 0.015, "train.lr_decay": "cosine",
                "log.every": 10, "log.checkpoint_every": 100,
                "log.eval_every": 100, "eval.cond_steps": 20, "eval.per_class": 20, "sampler.buffer_size": 5000}
# Paper scale: a Wide-ResNet-28-10 in the papers; genlab's full preset keeps its ResNet-9 at width 64.
_CIFAR_FULL = {"model.width": 64, "train.iterations": 100000, "train.batch_size": 64, "train.warmup": 1000,
               "log.every": 100, "log.checkpoint_every": 2000, "log.eval_every": 5000, "eval.samples": 5000,
               "eval.final_samples": 10000}


def _experiment(name: str, summary: str, method: dict[str, Any], dataset: dict[str, Any], quick: dict[str, Any],
                full: dict[str, Any]) -> Experiment:
    return Experiment(name, "jem", summary, JEMConfig, run_jem,
                      presets={"smoke": _SMOKE, "quick": quick, "full": full}, base={**dataset, **method},
                      sample=sample_run)


_ABLATIONS = {
    "noinit": ("JEM++ without the Gaussian initialisation (uniform-noise starts)", {"sampler.start": "uniform"}),
    "nopyld": ("JEM++ without proximal SGLD (plain SGLD, same outer steps)", {"sampler.kind": "sgld",
                                                                              "sampler.noise": 0.01}),
    "nobn": ("JEM++ without batch norm (classifier built without it)", {"model.norm": "none"}),
}

JEM_EXPERIMENTS = (
    _experiment("jem-mnist", "JEM on MNIST (SGLD, noise starts, no batch norm)", _JEM, {}, _MNIST_QUICK,
                {"train.iterations": 20000, "model.width": 32}),
    _experiment("jempp-mnist", "JEM++ on MNIST (PYLD, Gaussian starts, batch norm)", _JEMPP, {}, _MNIST_QUICK,
                {"train.iterations": 20000, "model.width": 32}),
    _experiment("jem-cifar10", "JEM on CIFAR-10 (ResNet-9)", _JEM, _CIFAR, _CIFAR_QUICK, _CIFAR_FULL),
    _experiment("jempp-cifar10", "JEM++ on CIFAR-10 (ResNet-9)", _JEMPP, _CIFAR, _CIFAR_QUICK, _CIFAR_FULL),
) + tuple(
    _experiment(f"jempp-mnist-{name}", summary, {**_JEMPP, **change}, {}, _MNIST_QUICK,
                {"train.iterations": 20000, "model.width": 32})
    for name, (summary, change) in _ABLATIONS.items()
)
