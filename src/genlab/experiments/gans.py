"""`gan-hoda`, `wgan-hoda`, `wgangp-hoda`: a GAN, a WGAN (weight clipping) and a WGAN-GP on Hoda digits.

All three train on Hoda's train split (85%). At each evaluation the samples of a fixed noise batch are
scored against the validation split (10%) in the feature space of genlab's Hoda classifier (domain FID,
IS, class coverage, confident share; not Inception) and their first 100 saved as a grid; the generator
with the lowest validation FID is kept. At the end that generator's samples (fresh noise) are scored once
against the test split (5%) and saved to ``samples/final.npz`` (`genlab eval run RUN_DIR` re-scores them).

All three are unconditional as the presets stand: no label reaches training. Each draws from a mixture
prior found without labels (``model.clusters=K``, 50 in the presets; 0: a plain generator from noise alone;
self-conditioned GAN, see genlab.train.gan): the training images are split into K clusters by KMeans on
their first 50 principal components (kept in ``clusters.pt`` so a resumed run trains on the same ones), and
every sample draws its cluster with that cluster's share of the training set. The summary says how well
the clusters follow the digits (``train_cluster_purity``, read with the labels after the fact).

``--set model.conditional=true --set model.clusters=0`` gives each model its class-conditional variant
(labels, beyond the assignment): the generator and the critic see the label, samples are drawn for labels
0..9 in turn (column c of each grid is class c), and the judge's agreement with the intended label is
reported as class accuracy.

``--set model.info_codes=10 --set model.clusters=0`` gives a plain unconditional model an InfoGAN
categorical code (see genlab.train.gan): evaluation and final samples draw the code values in turn (column
c of each grid is code c), and the summary says how the judge's classes fall into the codes
(``test_code_purity``: the share of samples in their code's most frequent class; ``test_code_classes``: how
many distinct classes the codes' most frequent classes are).

Hoda's images are binary, so the presets set ``model.output=binary``: the generator's tanh output is
thresholded at 0 for every sample that is evaluated, kept or saved (``model.output=tanh`` keeps it raw).
Both readings are scored at each evaluation and at the end: the headline one (``fid``, ``test_fid``, ...)
is that of ``model.output``, the other carries a prefix (``raw_``/``binary_`` in training,
``test_raw_``/``test_binary_`` in the summary). Training always uses the tanh output.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from genlab.config import param, section
from genlab.data.registry import check_name, get_spec
from genlab.data.datasets import ImageSet
from genlab.errors import ConfigError, RunError
from genlab.eval.judge import Embedding, Judge
from genlab.eval.quality import class_accuracy, class_coverage, confident_share, fid, inception_score
from genlab.eval.samples_io import save_sample_set, save_samples
from genlab.eval.cas import classification_accuracy_score
from genlab.eval.clustering import purity
from genlab.eval.code_clusters import EmbeddingSpec, embed, kmeans, pixel_representation
from genlab.eval.score import build_reference, reference_embedding, score_embeddings, score_images
from genlab.experiments.base import Experiment, RunContext, trained_state
from genlab.io import load_torch, save_torch
from genlab.nets.gan import Discriminator, Generator, init_dcgan
from genlab.report.figures import curves_figure, grids_figure, memorisation_figure, spread_picks
from genlab.report.gan_figures import (class_histogram_figure, critic_weights_figure, layer_gradients_figure,
                                       wasserstein_fid_figure)
from genlab.train.gan import GanModelConfig, GanTrainConfig, GanTrainer, binarise
from genlab.train.guard import DivergenceGuard, GuardConfig
from genlab.train.loop import LogConfig

GRID = 100  # fixed-noise samples shown in each grid (10 x 10)
GRID_PANELS = 6  # grids shown side by side in figures/grids_over_training.png


@dataclass
class GanDataConfig:
    dataset: str = param("hoda", "training data of 28x28 images: hoda (Persian digits, binary), or "
                                   "folder:PATH?size=28 / npz:PATH?size=28")
    split_seed: int = param(0, "seed of Hoda's 85/10/5 split (fixed so every model is judged on the same images)")
    train_limit: int = param(0, "use only the first N training images (0: all)", ge=0)

    def check(self) -> None:
        check_name(self.dataset, "data.dataset", ("hoda",))


@dataclass
class GanEvalConfig:
    samples: int = param(2000, "fixed-noise samples scored against the validation split at each evaluation",
                         ge=GRID)
    final_samples: int = param(5000, "samples of the best generator scored once against the test split", ge=GRID)
    reference_limit: int = param(10000, "reference images of the val/test split (its first N)", ge=10)
    cas_epochs: int = param(2, "conditional models: epochs of the Classification Accuracy Score classifiers, "
                               "trained on the final samples (0: no CAS)", ge=0)


@dataclass
class GanConfig:
    seed: int = param(0, "seeds weights, data order, noise and the fixed evaluation noise")
    data: GanDataConfig = section(GanDataConfig)
    model: GanModelConfig = section(GanModelConfig)
    train: GanTrainConfig = section(GanTrainConfig)
    eval: GanEvalConfig = section(GanEvalConfig)
    log: LogConfig = section(LogConfig)
    guard: GuardConfig = section(GuardConfig)

    def check(self) -> None:
        if self.train.objective == "wgan-gp" and self.model.d_norm == "batch":
            raise ConfigError("model.d_norm=batch cannot be used with train.objective=wgan-gp: the gradient "
                              "penalty is taken per sample and batch norm makes each score depend on the batch",
                              hint="set model.d_norm=layer or model.d_norm=none")
        if self.train.objective == "wgan" and self.model.d_spectral_norm:
            raise ConfigError("model.d_spectral_norm=true cannot be used with train.objective=wgan: weight clipping "
                              "is the WGAN's way of keeping its critic Lipschitz, the point of the comparison",
                              hint="use wgan-gp or gan for a spectrally normalised critic")
        if self.train.objective != "gan" and self.train.gan_loss != "nonsaturating":
            raise ConfigError(f"train.gan_loss={self.train.gan_loss} applies to train.objective=gan only, not "
                              f"{self.train.objective}", hint="leave train.gan_loss at nonsaturating")
        if self.model.clusters and (self.model.conditional or self.model.info_codes):
            raise ConfigError("model.clusters applies to unconditional models without InfoGAN codes: it gives the "
                              "generator a mixture prior of its own, found without labels",
                              hint="set model.clusters=0, or model.conditional=false and model.info_codes=0")
        if self.model.info_codes and self.model.conditional:
            raise ConfigError("model.info_codes applies to unconditional models: with model.conditional=true the "
                              "label already tells the generator which kind of image to draw",
                              hint="set model.info_codes=0 or model.conditional=false")
        if self.data.train_limit and self.data.train_limit < self.train.batch_size:
            raise ConfigError(f"data.train_limit ({self.data.train_limit}) is smaller than one batch "
                              f"(train.batch_size={self.train.batch_size})", hint="raise data.train_limit or set 0")


def build_networks(cfg: GanConfig) -> tuple[Generator, Discriminator]:
    spec = get_spec(cfg.data.dataset)
    classes = len(spec.classes) if cfg.model.conditional else cfg.model.clusters
    generator = Generator(cfg.model.z_dim, cfg.model.g_width, spec.image_shape[0], classes, cfg.model.info_codes)
    critic = Discriminator(cfg.model.d_width, cfg.model.d_norm, spec.image_shape[0], classes,
                           cfg.model.d_spectral_norm, cfg.model.info_codes)
    init_dcgan(generator)
    init_dcgan(critic)
    return generator, critic


def readings(samples: torch.Tensor, output: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The headline samples of ``model.output``, the other reading, and that other reading's name."""
    binary = binarise(samples)
    return (binary, samples, "raw") if output == "binary" else (samples, binary, "binary")


class ValidationScorer:
    """Domain metrics of samples against the validation split's embedding, for the headline reading of
    ``output`` and (prefixed) for the other; saves a grid of the first 100 headline samples. The judge's
    agreement with the samples' labels is scored when those are classes (``labels_are_classes``), not
    clusters."""

    def __init__(self, ctx: RunContext, judge: Judge, real: Embedding, output: str = "tanh",
                 labels_are_classes: bool = True):
        self.ctx, self.judge, self.real, self.output = ctx, judge, real, output
        self.labels_are_classes = labels_are_classes

    def scores(self, samples: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        fake = self.judge.embed(samples)
        scores = {"fid": fid(self.real.features, fake.features), "is": inception_score(fake.probs)[0],
                  "class_coverage": class_coverage(fake.probs), "confident_share": confident_share(fake.probs)}
        if labels is not None and self.labels_are_classes:
            scores["class_accuracy"] = class_accuracy(fake.probs, labels.cpu())[0]
        return scores

    def __call__(self, samples: torch.Tensor, labels: torch.Tensor | None, step: int) -> dict[str, float]:
        headline, other, name = readings(samples, self.output)
        self.ctx.save_grid(headline[:GRID], f"grid_step{step:07d}", nrow=10, step=step)
        return {**self.scores(headline, labels),
                **{f"{name}_{k}": v for k, v in self.scores(other, labels).items()}}


def code_latent(generator: Generator, n: int, noise: torch.Generator) -> torch.Tensor:
    """n latent vectors whose codes (if any) take each value in turn: column c of a 10-wide grid is code c."""
    return generator.latent(n, noise, torch.arange(n) % generator.codes if generator.codes else None)


def code_class_agreement(codes: torch.Tensor, classes: torch.Tensor, num_codes: int) -> dict[str, float]:
    """How the judge's classes fall into the InfoGAN codes: the share of samples in their code's most frequent
    class (purity, 1: each code draws one class) and how many distinct classes those most frequent ones are."""
    majority, in_majority = [], 0
    for code in range(num_codes):
        counts = torch.bincount(classes[codes == code])
        if counts.numel():
            majority.append(int(counts.argmax()))
            in_majority += int(counts.max())
    return {"code_purity": in_majority / len(codes), "code_classes": len(set(majority))}


def training_clusters(ctx: RunContext, train: ImageSet, k: int, seed: int) -> torch.Tensor:
    """The cluster index of every training image: KMeans on the images' first 50 principal components, no
    label used. Computed once per run and kept in ``clusters.pt``, so a resumed run trains on the same ones."""
    path = ctx.run.path / "clusters.pt"
    if path.exists():
        clusters = load_torch(path)["clusters"].long()
        if len(clusters) != len(train):
            raise RunError(f"{path} holds clusters of {len(clusters):,} images, not of the {len(train):,} training "
                           "images of this run", hint="delete it and run `genlab resume RUN_DIR` to cluster again")
        return clusters
    if k > len(train):
        raise ConfigError(f"model.clusters={k} is more than the {len(train):,} training images",
                          hint="lower model.clusters")
    points = embed(pixel_representation(train.images.numpy()), EmbeddingSpec("pca", dim=50), seed)
    clusters = torch.from_numpy(kmeans(points, k, seed)).long()
    save_torch({"clusters": clusters.to(torch.int32)}, path)
    return clusters


def cluster_shares(clusters: torch.Tensor, k: int) -> torch.Tensor:
    """Each cluster's share of the training images: the mixture weights samples draw their cluster with."""
    return torch.bincount(clusters, minlength=k).double() / len(clusters)


def _guard(cfg: GanConfig) -> DivergenceGuard:
    if cfg.train.objective == "gan":
        return DivergenceGuard(cfg.guard, finite=("d_loss", "g_loss"))
    return DivergenceGuard(cfg.guard, finite=("d_loss", "g_loss"), bounded=("wasserstein",))


def wasserstein_fid_correlation(records: list[dict[str, Any]]) -> float:
    """Spearman correlation, over evaluations, of the validation FID and the Wasserstein estimate logged
    at the same step (or the last log step before it): near 1 when the estimate tracks sample quality."""
    train = [(r["step"], r["wasserstein"]) for r in records if r.get("split") == "train" and "wasserstein" in r]
    pairs = []
    for r in records:
        if r.get("split") == "eval" and "fid" in r:
            before = [w for s, w in train if s <= r["step"]]
            if before:
                pairs.append((before[-1], r["fid"]))
    if len(pairs) < 3:
        return float("nan")
    return float(spearmanr(*zip(*pairs)).statistic)


def _figures(ctx: RunContext, cfg: GanConfig, trainer: GanTrainer, records: list[dict[str, Any]],
             class_shares: list[float], critic_weights: np.ndarray) -> None:
    name = ctx.experiment.name
    keys = ["d_loss", "g_loss", "d_real", "d_fake", "wasserstein", "gp", "interp_grad_norm", "clipped_fraction",
            "d_grad_norm", "g_grad_norm", "fid", "class_coverage", "confident_share", "is", "raw_fid", "binary_fid",
            "live_fid", "raw_confident_share", "binary_confident_share", "live_confident_share", "info_loss",
            "info_accuracy"]
    curves = curves_figure(records, keys)
    if curves is not None:
        ctx.save_figure(curves, "curves")
    if cfg.train.objective != "gan":
        ctx.save_figure(wasserstein_fid_figure(records, f"{name}: does the critic's estimate track quality?"),
                        "wasserstein_vs_fid")
    layers = layer_gradients_figure(records, f"{name}: critic gradient norm per layer")
    if layers is not None:
        ctx.save_figure(layers, "critic_layer_gradients")
    ctx.save_figure(critic_weights_figure(critic_weights, cfg.train.clip if cfg.train.objective == "wgan" else None,
                                          f"{name}: critic parameters at the end"), "critic_weights")
    ctx.save_figure(class_histogram_figure(class_shares, ctx.classes, f"{name}: judge's classes of the test samples"),
                    "class_histogram")
    picks = spread_picks(sorted(ctx.run.samples.glob("grid_step*.png")), GRID_PANELS - 1)
    paths = [*picks, ctx.run.samples / "final.png"]
    titles = [f"step {int(p.stem.removeprefix('grid_step'))}" for p in picks] + \
             [f"best (step {trainer.best['step']})"]
    ctx.save_figure(grids_figure(paths, titles), "grids_over_training")


def run_gan(ctx: RunContext) -> dict[str, Any]:
    cfg: GanConfig = ctx.config
    spec = get_spec(cfg.data.dataset)
    ctx.classes = spec.classes
    judge = Judge.load(cfg.data.dataset, ctx.device)
    if judge.description not in ctx.notes:
        ctx.notes.append(judge.description)
    train = ctx.load_data(cfg.data.dataset, "train", cfg.data.train_limit, cfg.data.split_seed)
    val, n_val, _ = reference_embedding(judge, cfg.data.dataset, "val", ctx.data_dir, cfg.eval.reference_limit,
                                        cfg.data.split_seed)

    generator, critic = build_networks(cfg)
    noise = torch.Generator().manual_seed(cfg.seed)  # fixed evaluation noise, apart from the training noise
    eval_noise = code_latent(generator, cfg.eval.samples, noise)
    batches_of, shares, eval_clusters = train, None, None
    if cfg.model.clusters:
        clusters = training_clusters(ctx, train, cfg.model.clusters, cfg.seed)
        batches_of = replace(train, labels=clusters)
        shares = cluster_shares(clusters, cfg.model.clusters)
        eval_clusters = torch.multinomial(shares, cfg.eval.samples, replacement=True, generator=noise)
    trainer = GanTrainer(generator, critic, ctx.batches(batches_of, cfg.train.batch_size, cfg.seed), cfg.train,
                         eval_noise, ctx.device, label_shares=None if shares is None else shares.float(),
                         eval_labels=eval_clusters,
                         scorer=ValidationScorer(ctx, judge, val, cfg.model.output, cfg.model.conditional))
    ctx.train(trainer, cfg.train.steps, _guard(cfg), time_budget_s=cfg.train.time_budget_s)

    final_noise = code_latent(generator, cfg.eval.final_samples, noise).to(ctx.device)
    labels = (torch.arange(cfg.eval.final_samples, device=ctx.device) % len(spec.classes)
              if cfg.model.conditional else None)
    final_clusters = (torch.multinomial(shares, cfg.eval.final_samples, replacement=True, generator=noise)
                      .to(ctx.device) if shares is not None else None)
    samples, other, other_name = readings(
        trainer.sample(final_noise, labels if final_clusters is None else final_clusters, trainer.best_generator()),
        cfg.model.output)
    save_samples(ctx.run.samples / "final.npz", samples, labels)
    ctx.save_grid(samples[:GRID], "final", nrow=10)
    fake = judge.embed(samples)
    reference = build_reference(judge, cfg.data.dataset, "test", ctx.data_dir, cfg.eval.reference_limit,
                                cfg.data.split_seed, train.images)
    n_test = reference.count
    test = score_images(samples, judge, reference, labels)
    test_other = score_embeddings(reference.embedding, judge.embed(other), labels)
    ctx.save_figure(memorisation_figure(samples, reference.neighbours.pixels, test["memorisation_pairs"],
                                        reference.neighbours.threshold_pixels, f"{ctx.experiment.name}: final samples"),
                    "memorisation")
    ctx.notes.append(f"test numbers: the best generator (step {trainer.best['step']}, lowest val FID) against "
                     f"{cfg.data.dataset}/test, {n_test:,} images; val FID over training against {n_val:,} val images")
    class_shares = (torch.bincount(fake.probs.argmax(1), minlength=len(spec.classes)).double()
                    / len(samples)).tolist()
    critic_weights = torch.cat([p.detach().flatten().cpu() for p in critic.parameters()])

    records = ctx.run.read_metrics()
    evals = [r for r in records if r.get("split") == "eval" and "fid" in r]
    last_train = next((r for r in reversed(records) if r.get("split") == "train"), {})
    _figures(ctx, cfg, trainer, records, class_shares, critic_weights.numpy())
    metrics = {f"test_{k}": v for k, v in test.items()
               if (isinstance(v, (int, float)) or k in ("per_class_accuracy", "per_class_fid", "per_class_coverage"))
               and k != "samples"}
    metrics.update({f"test_{other_name}_{k}": v for k, v in test_other.items() if isinstance(v, (int, float))})
    metrics.update({"best_val_fid": trainer.best["fid"], "best_step": trainer.best["step"],
                    "last_val_fid": evals[-1]["fid"] if evals else float("nan"),
                    "test_samples": len(samples), "train_images": len(train), "val_reference_images": n_val,
                    "generator_parameters": sum(p.numel() for p in generator.parameters()),
                    "critic_parameters": sum(p.numel() for p in critic.parameters()),
                    "critic_weight_std": float(critic_weights.std())})
    if labels is not None and cfg.eval.cas_epochs:
        test_set = ctx.load_data(cfg.data.dataset, "test", cfg.eval.reference_limit, cfg.data.split_seed)
        metrics.update(classification_accuracy_score(samples, labels, train.images, train.labels, test_set.images,
                                                     test_set.labels, len(spec.classes), cfg.eval.cas_epochs,
                                                     cfg.seed, ctx.device))
    if cfg.train.objective != "gan":
        metrics["wasserstein_fid_spearman"] = wasserstein_fid_correlation(records)
        metrics["last_wasserstein"] = last_train.get("wasserstein", float("nan"))
    if cfg.train.objective == "wgan":
        metrics["last_clipped_fraction"] = last_train.get("clipped_fraction", float("nan"))
    if cfg.model.clusters:
        metrics.update({"train_cluster_purity": purity(train.labels.numpy(), clusters.numpy()),
                        "train_cluster_shares": shares.tolist()})
    if generator.codes:
        metrics.update({f"test_{k}": v for k, v in code_class_agreement(
            generator.code_of(final_noise).cpu(), fake.probs.argmax(1), generator.codes).items()})
    metrics["test_class_histogram"] = class_shares
    metrics["val_fid_curve"] = [[r["step"], r["wall_s"], r["fid"]] for r in evals]
    return metrics


def sample_run(run_dir: str | Path, n: int = 100, label: int | None = None, steps: int | None = None,
               init: str = "buffer", device: torch.device | str = "cpu") -> Path:
    """Samples of a GAN run's best generator (lowest validation FID so far) from fresh noise. A GAN has no
    chain: ``steps`` must be left unset, and ``init`` does not apply."""
    if steps is not None:
        raise ConfigError("--steps applies to Langevin samplers; a GAN draws each sample in one pass")
    run, cfg, state = trained_state(run_dir, GanConfig, device)
    classes = len(get_spec(cfg.data.dataset).classes)
    if label is not None and not cfg.model.conditional:
        raise ConfigError(f"{run.path} is an unconditional GAN; --label needs one trained with "
                          "--set model.conditional=true")
    if label is not None and not 0 <= label < classes:
        raise ConfigError(f"--label must be in 0..{classes - 1}; got {label}")
    generator, _ = build_networks(cfg)
    best, trainer = state["trainer"]["best"], state["trainer"]
    generator.load_state_dict(best["generator"] if best["generator"] is not None
                              else trainer.get("ema", trainer["generator"]))
    generator.to(device).eval()
    labels = None
    if cfg.model.conditional:
        labels = (torch.full((n,), label, device=device) if label is not None
                  else torch.arange(n, device=device) % classes)
    clusters = None
    if cfg.model.clusters:
        shares = cluster_shares(load_torch(run.path / "clusters.pt")["clusters"].long(), cfg.model.clusters)
        clusters = torch.multinomial(shares, n, replacement=True).to(device)
    with torch.no_grad():
        images = readings(generator(generator.latent(n, device=device), labels if clusters is None else clusters),
                          cfg.model.output)[0]
    tag = "best_generator" + (f"_label{label}" if label is not None else "")
    return save_sample_set(run.samples, tag, images, labels,
                           {"n": n, "label": label, "generator_step": best["step"], "generator_val_fid": best["fid"]})


# Presets. Each paper's recipe is kept where it is cheap (losses, optimiser, learning rates, betas,
# n_critic, c, lambda, batch 64); genlab deviates in the networks (narrower, for 28x28 on a CPU), in the
# number of steps, and in judging with a Hoda classifier rather than Inception.
_LOG = {"log.every": 25, "log.checkpoint_every": 250}
_SMOKE = {"data.train_limit": 512, "train.steps": 6, "train.batch_size": 16, "model.g_width": 8,
          "model.d_width": 8, "model.z_dim": 16, "eval.samples": GRID, "eval.final_samples": GRID,
          "eval.reference_limit": 300, "eval.cas_epochs": 1,
          "log.every": 2, "log.checkpoint_every": 4, "log.eval_every": 4}

# DCGAN (Radford et al. 2016, section 4): Adam lr 2e-4, beta1 0.5, N(0, 0.02) init, batch norm, LeakyReLU 0.2
# in D; the non-saturating loss of Goodfellow et al. 2014, section 3. Deviation: batch 64 (DCGAN: 128), as
# for the WGANs, so the three see the same data per critic update.
# All three sample alike, from a moving average of the generator's weights (Yazici et al. 2019, decay
# 0.999 after a warm-up) thresholded to binary images like Hoda's, so that their comparison isolates the
# objective; neither touches the critic (WGAN's weight clipping stays its own constraint). And all three
# draw from a mixture prior of 50 clusters of the training images found without labels (self-conditioned
# GAN, Liu et al. 2020): a plain unconditional generator blends strokes of several digits, one mixture
# component per cluster draws one kind of digit. Measured in benchmarks/README.md, GAN section.
_SAMPLING = {"train.ema_decay": 0.999, "model.output": "binary", "model.clusters": 50}
# The GAN keeps DCGAN's batch-norm discriminator: a spectrally normalised one without batch norm (Miyato et
# al. 2018, ``model.d_spectral_norm=true model.d_norm=none``) learnt more slowly at equal steps here.
GAN_BASE = {"train.objective": "gan", "train.optimizer": "adam", "train.lr_g": 2e-4, "train.lr_d": 2e-4,
            "train.beta1": 0.5, "train.beta2": 0.999, "train.n_critic": 1, "model.d_norm": "batch", **_SAMPLING}
# WGAN (Arjovsky et al. 2017, Algorithm 1): RMSprop lr 5e-5, c = 0.01, n_critic = 5, batch 64, a DCGAN critic
# with batch norm. Deviation: no burst of 100 critic updates in the first 25 and every 500th generator
# steps (the authors' code has it; Algorithm 1 does not).
WGAN_BASE = {"train.objective": "wgan", "train.optimizer": "rmsprop", "train.lr_g": 5e-5, "train.lr_d": 5e-5,
             "train.clip": 0.01, "train.n_critic": 5, "model.d_norm": "batch", **_SAMPLING}
# WGAN-GP (Gulrajani et al. 2017, Algorithm 1): lambda = 10, n_critic = 5, Adam betas (0, 0.9), batch 64; no
# batch norm in the critic (section 4 suggests layer norm). Deviations: layer norm is GroupNorm(1, C)
# (per-channel scale and shift); Adam lr 2e-4 (the paper's is 1e-4), as Miyato et al. 2018 train their
# n_critic = 5 critics: with the mixture prior it reached a confident share of 0.69 by step 750 where 1e-4 needed
# 1,500 (seed 0, benchmarks/README.md), which the quick preset's 2,000 steps need.
WGANGP_BASE = {"train.objective": "wgan-gp", "train.optimizer": "adam", "train.lr_g": 2e-4, "train.lr_d": 2e-4,
               "train.beta1": 0.0, "train.beta2": 0.9, "train.gp_weight": 10.0, "train.n_critic": 5,
               "model.d_norm": "layer", **_SAMPLING}

# Quick: about 10 minutes of training per model on an idle 2-core CPU (measured steps: GAN 0.054 s, WGAN
# 0.157 s, WGAN-GP 0.31 s), so the three quick runs also compare at a roughly equal wall-clock budget. Each
# evaluation scores four sets of 2,000 samples (the average and the generator itself, binary and raw).
# The class-conditional form (with labels, beyond the assignment): --set model.conditional=true --set
# model.clusters=0.
_QUICK_NETS = {"model.z_dim": 64, "model.g_width": 32, "model.d_width": 32, "eval.samples": 2000,
               "eval.final_samples": 5000}
# Full: the width of DCGAN-style MNIST models (64) and GPU-scale step counts; not run on this project's CPU.
_FULL_NETS = {"model.z_dim": 128, "model.g_width": 64, "model.d_width": 64, "eval.samples": 5000,
              "eval.final_samples": 10000, "log.every": 100, "log.checkpoint_every": 2000}

GAN_EXPERIMENTS = (
    Experiment("gan-hoda", "gan", "DCGAN-style GAN, non-saturating loss, on Hoda digits", GanConfig, run_gan,
               presets={"smoke": _SMOKE,
                        "quick": {**_QUICK_NETS, **_LOG, "train.steps": 10000, "log.eval_every": 500},
                        "full": {**_FULL_NETS, "train.steps": 50000, "log.eval_every": 2000}},
               base=GAN_BASE, sample=sample_run),
    Experiment("wgan-hoda", "gan", "WGAN with weight clipping (c = 0.01) on Hoda digits", GanConfig, run_gan,
               presets={"smoke": _SMOKE,
                        "quick": {**_QUICK_NETS, **_LOG, "train.steps": 4000, "log.eval_every": 250},
                        "full": {**_FULL_NETS, "train.steps": 100000, "log.eval_every": 4000}},
               base=WGAN_BASE, sample=sample_run),
    Experiment("wgangp-hoda", "gan", "WGAN-GP (lambda = 10, layer-norm critic) on Hoda digits", GanConfig, run_gan,
               presets={"smoke": _SMOKE,
                        "quick": {**_QUICK_NETS, **_LOG, "train.steps": 2000, "log.eval_every": 250},
                        "full": {**_FULL_NETS, "train.steps": 100000, "log.eval_every": 4000}},
               base=WGANGP_BASE, sample=sample_run),
)
