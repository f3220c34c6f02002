"""`dvae-<dataset>`: a discrete VAE, clustering of its codes into pseudo-labels, and classifiers trained on
pseudo-labels vs true labels.

A run has these phases, each resumable on its own:

1. the discrete VAE (``model.quantizer`` vq or gumbel), trained by the shared loop into ``checkpoints/``;
2. the baseline: the same network without quantisation (a continuous autoencoder of equal size), trained
   for ``cluster.autoencoder_epochs`` in ``autoencoder/`` (skipped at 0);
3. the code study: codes of every training image, KMeans over a range of K on an embedding of them,
   silhouettes, a Gaussian mixture beside KMeans, pseudo-labels, the same pipeline on raw pixels and on the
   autoencoder's vectors, t-SNE. Deterministic given the trained models; its numbers,
   pseudo-labels and per-cluster label table (CSV) are written to ``study/`` once complete, and a resumed
   run reads them back instead of recomputing (so the later phases always see the labels they started with);
4. and 5. the same classifier trained on the true labels and on the pseudo-labels, each a shared-loop
   phase with its own folder (``classifier_true_labels/``, ``classifier_pseudo_labels/``: its own
   ``checkpoints/`` and ``metrics.jsonl``), both tested on the true test labels. A finished phase resumes
   at its last step, so it only reloads its weights.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from genlab.config import ConfigError, param, section
from genlab.data.augment import AUGMENTATIONS
from genlab.data.batches import to_float
from genlab.data.datasets import ImageSet
from genlab.data.registry import check_name, get_spec
from genlab.eval.classification import evaluate_classifier
from genlab.eval.code_clusters import (EmbeddingSpec, code_representation, embed, gaussian_mixture, kmeans,
                                       kmeans_sweep, pixel_representation, pseudo_labels, silhouette_values, tsne)
from genlab.eval.clustering import clustering_report, hungarian_mapping, majority_mapping
from genlab.experiments.base import Experiment, RunContext
from genlab.io import read_json, write_atomic, write_json
from genlab.nets.classifiers import build_classifier
from genlab.nets.modes import evaluating
from genlab.nets.vq import DiscreteVAE, VectorQuantizerEMA, code_counts
from genlab.report import cluster_figures as cf
from genlab.report.figures import confusion_figure, curves_figure
from genlab.train.checkpoint import CheckpointStore
from genlab.train.classifier import ClassifierModelConfig, ClassifierTrainConfig, ClassifierTrainer
from genlab.train.dvae import (DVAEModelConfig, DVAETrainConfig, DVAETrainer, dvae_from_config, encode_dataset,
                               encode_latents, reconstruction_report)
from genlab.train.guard import DivergenceGuard, GuardConfig
from genlab.train.loop import LogConfig, run_loop
from genlab.train.run_dir import RunDir


@dataclass
class DVAEDataConfig:
    dataset: str = param("mnist", "labelled images whose side is a multiple of 4: mnist, fashion_mnist, or "
                                     "folder:PATH / npz:PATH")
    train_limit: int = param(0, "use only the first N training images for everything (0: all)", ge=0)
    eval_limit: int = param(0, "use only the first N test images (0: all)", ge=0)

    def check(self) -> None:
        check_name(self.dataset, "data.dataset", ("mnist", "fashion_mnist"))


@dataclass
class ClusterConfig:
    representation: Literal["quantized", "onehot", "histogram"] = param(
        "quantized", "an image's codes as a vector: quantized = its grid of codebook vectors, flattened; "
        "onehot = one indicator per grid position and code; histogram = the share of its grid taken by each code")
    embedding: Literal["none", "pca", "spectral", "umap", "scan"] = param(
        "spectral", "what KMeans clusters: the representation itself (none), its principal components (pca), a "
        "spectral embedding of its k-nearest-neighbour graph (spectral), its UMAP layout (umap, as in N2D) or "
        "the cluster probabilities of SCAN heads trained so that neighbours agree (scan); plain KMeans is always "
        "reported too. Grid codes clustered alike through spectral and umap; the global codes of the quick MNIST "
        "preset cluster best through umap (10 dimensions, 20 neighbours)")
    embed_dim: int = param(16, "dimensions of the pca, spectral or umap embedding (spectral on MNIST codes: 0.90 "
                           "with 16 against 0.84 with 10; N2D gives umap as many as clusters); scan: the "
                           "clusters of each head", ge=1)
    pca_dim: int = param(50, "principal components the neighbour graph (and t-SNE) is built on", ge=2)
    neighbors: int = param(10, "k of the k-nearest-neighbour graph (spectral, umap; N2D uses 20 for MNIST)", ge=2)
    min_dist: float = param(0.0, "umap: smallest distance between laid-out points (0 packs clusters tightly)", ge=0)
    scan_heads: int = param(EmbeddingSpec.heads, "scan: heads trained side by side, of which the one with the lowest loss is "
                            "kept (one head's clustering depends on its start; on Fashion-MNIST codes 30 "
                            "clustered better than 10, and 60 no better than 30)", ge=1)
    scan_epochs: int = param(EmbeddingSpec.epochs, "scan: passes of the heads' training over the training images (on "
                             "Fashion-MNIST codes 10 clustered as well as 30, in a third of the time)", ge=1)
    scan_entropy_weight: float = param(EmbeddingSpec.entropy_weight, "scan: weight of the entropy of the clusters' average use, which "
                                       "keeps every cluster in use (SCAN's 5)", ge=0)
    scan_hidden: int = param(EmbeddingSpec.hidden, "scan: hidden units of each head (on Fashion-MNIST codes 64 "
                             "clustered as well as 256, in under half the time)", ge=1)
    autoencoder_epochs: float = param(2.0, "epochs of the continuous autoencoder baseline (the same network "
                                      "without quantisation) clustered by the same pipeline; 0 skips it", ge=0)
    k: int = param(10, "clusters of the pseudo-labels (the chosen K)", ge=2)
    k_min: int = param(5, "smallest K of the sweep", ge=2)
    k_max: int = param(20, "largest K of the sweep", ge=2)
    gmm_n_init: int = param(1, "restarts of the Gaussian mixture reported beside KMeans at K = cluster.k", ge=1)
    n_init: int = param(10, "KMeans restarts per K on the embedding (the best by inertia is kept; cheap in a "
                        "few dimensions, and 4 restarts left MNIST at 0.75 where 10 reached 0.84)", ge=1)
    plain_n_init: int = param(1, "KMeans restarts of the plain baselines on the raw representations (hundreds of "
                              "dimensions, so slow; 1 is scikit-learn's default for k-means++)", ge=1)
    mapping: Literal["hungarian", "majority"] = param(
        "hungarian", "how clusters become classes for the pseudo-label classifier: hungarian = one class per "
        "cluster (images of unmatched clusters are left out), majority = each cluster's most frequent class")
    silhouette_sample: int = param(5000, "points the silhouettes are computed on (quadratic cost)", ge=10)
    tsne_points: int = param(2000, "points of the t-SNE maps", ge=10)
    threads: int = param(1, "CPU threads of scikit-learn and scipy in the study (0: their default). One avoids "
                         "OpenMP threads spin-waiting on a busy machine: t-SNE of 200 points took 80 s with two "
                         "threads and 3 s with one on the shared 2-core machine", ge=0)

    def embedding_spec(self, method: str | None = None) -> EmbeddingSpec:
        """The embedding these settings describe (or the same settings with another ``method``)."""
        return EmbeddingSpec(method or self.embedding, self.embed_dim, self.pca_dim, self.neighbors, self.min_dist,
                             self.scan_heads, self.scan_epochs, self.scan_entropy_weight,
                             self.scan_hidden)

    def check(self) -> None:
        if not self.k_min <= self.k <= self.k_max:
            raise ConfigError(f"cluster.k ({self.k}) must lie in the sweep cluster.k_min..cluster.k_max "
                              f"({self.k_min}..{self.k_max})", hint="widen the sweep or choose k inside it")


@dataclass
class DVAEConfig:
    seed: int = param(0, "seeds weights, batch order, quantiser restarts, KMeans, t-SNE and the classifiers")
    data: DVAEDataConfig = section(DVAEDataConfig)
    model: DVAEModelConfig = section(DVAEModelConfig)
    train: DVAETrainConfig = section(DVAETrainConfig)
    cluster: ClusterConfig = section(ClusterConfig)
    classifier_model: ClassifierModelConfig = section(ClassifierModelConfig, "the classifier of both labellings")
    classifier: ClassifierTrainConfig = section(ClassifierTrainConfig, "its training (same for both labellings)")
    log: LogConfig = section(LogConfig)
    guard: GuardConfig = section(GuardConfig)


def run_dvae(ctx: RunContext) -> dict[str, Any]:
    cfg: DVAEConfig = ctx.config
    spec = get_spec(cfg.data.dataset)
    ctx.classes = spec.classes
    train_set = ctx.load_data(cfg.data.dataset, "train", cfg.data.train_limit)
    test_set = ctx.load_data(cfg.data.dataset, "test", cfg.data.eval_limit)
    if cfg.cluster.k_max >= len(train_set):
        raise ConfigError(f"cluster.k_max ({cfg.cluster.k_max}) must be below the {len(train_set)} training images",
                          hint="lower cluster.k_max or raise data.train_limit")
    timings: dict[str, float] = {}

    torch.manual_seed(cfg.seed)
    model = dvae_from_config(cfg.model, spec.image_shape[0], spec.image_shape[-1])
    batches = ctx.batches(train_set, cfg.train.batch_size, cfg.seed)
    total = math.ceil(cfg.train.epochs * batches.steps_per_epoch)
    trainer = DVAETrainer(model, batches, test_set, cfg.train, total, ctx.device)
    ctx.train(trainer, total, DivergenceGuard(cfg.guard, finite=("loss",)), desc=f"dvae-{cfg.model.quantizer}")
    timings["dvae"] = ctx.loop_facts["wall_time_s"]

    metrics = {"quantizer": cfg.model.quantizer, "train_images": len(train_set), "test_images": len(test_set),
               "dvae_steps": total, **_reconstruction(ctx, model, test_set)}

    started = time.perf_counter()
    study = _load_study(ctx.run)
    if study is None:
        autoencoder = None
        if cfg.cluster.autoencoder_epochs > 0:
            autoencoder, timings["autoencoder"] = _autoencoder_phase(ctx, train_set, test_set)
            started = time.perf_counter()
        with threadpool_limits(cfg.cluster.threads or None):
            study = _code_study(ctx, model, autoencoder, train_set, test_set)
    metrics.update(study["metrics"])
    timings["study"] = time.perf_counter() - started

    comparison, seconds = _compare_classifiers(ctx, train_set, test_set, study["pseudo_labels"])
    metrics.update(comparison)
    timings.update(seconds)
    ctx.loop_facts["wall_time_s"] = sum(timings.values())
    ctx.notes.append("seconds per phase: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    return metrics


def _compare_classifiers(ctx: RunContext, train_set: ImageSet, test_set: ImageSet,
                         pseudo: np.ndarray) -> tuple[dict[str, Any], dict[str, float]]:
    """The same classifier trained on the true labels and on the pseudo-labels (images whose cluster has no
    class are left out), both tested on the true test labels; their confusion matrices."""
    labelled = np.flatnonzero(pseudo >= 0)
    pseudo_set = dataclasses.replace(train_set.subset(labelled), labels=torch.from_numpy(pseudo[labelled]))
    metrics = {"pseudo_label_images": len(labelled),
               "pseudo_label_accuracy": float((pseudo[labelled] == train_set.labels.numpy()[labelled]).mean())}
    seconds = {}
    for name, data in (("true", train_set), ("pseudo", pseudo_set)):
        report, seconds[f"classifier_{name}"] = _classifier_phase(ctx, f"classifier_{name}_labels", data, test_set)
        metrics[f"{name}_label_classifier_accuracy"] = report["accuracy"]
        metrics[f"{name}_label_classifier_confusion"] = report["confusion"]
        metrics[f"{name}_label_classifier_per_class_accuracy"] = report["per_class_accuracy"]
        ctx.save_figure(confusion_figure(report["confusion"], train_set.classes,
                                         f"trained on {name} labels: test accuracy {report['accuracy']:.4f}"),
                        f"confusion_{name}_labels")
    return metrics, seconds


def _reconstruction(ctx: RunContext, model: DiscreteVAE, test_set: ImageSet) -> dict[str, Any]:
    """Test-set reconstruction and codebook use; a grid of originals over their reconstructions."""
    report = {f"test_{k}": v for k, v in reconstruction_report(model, test_set, ctx.device).items()}
    with torch.no_grad(), evaluating(model):
        x = to_float(test_set.images[:20].to(ctx.device))
        recon, _ = model(x)
    ctx.save_grid(torch.cat([x[:10], recon[:10], x[10:20], recon[10:20]]), "reconstructions", nrow=10)
    counts = code_counts(encode_dataset(model, test_set, ctx.device), model.quantizer.num_codes)
    ctx.save_figure(cf.codebook_usage_figure(counts.tolist(), report["test_perplexity"], "test codes"),
                    "codebook_usage")
    if isinstance(model.quantizer, VectorQuantizerEMA):
        report["restarted_codes"] = int(model.quantizer.restarts)
    return report


def _autoencoder_phase(ctx: RunContext, train_set: ImageSet, test_set: ImageSet) -> tuple[DiscreteVAE, float]:
    """The continuous autoencoder baseline: the discrete VAE's network and training without the quantiser,
    for ``cluster.autoencoder_epochs``, in its own phase folder."""
    cfg: DVAEConfig = ctx.config
    spec = get_spec(cfg.data.dataset)
    torch.manual_seed(cfg.seed)
    model = dvae_from_config(cfg.model, spec.image_shape[0], spec.image_shape[-1], quantizer="none")
    batches = ctx.batches(train_set, cfg.train.batch_size, cfg.seed)
    total = math.ceil(cfg.cluster.autoencoder_epochs * batches.steps_per_epoch)
    # a plain autoencoder: no codes to hold, no contrastive views
    plain = dataclasses.replace(cfg.train, invariance_weight=0.0, contrastive_weight=0.0, contrastive_head=0)
    trainer = DVAETrainer(model, batches, test_set, plain, total, ctx.device)
    return model, _phase(ctx, "autoencoder", trainer, total)


def _phase(ctx: RunContext, name: str, trainer: Any, total: int) -> float:
    """Run a trainer through the shared loop in its own phase folder (resuming there); its wall time."""
    cfg: DVAEConfig = ctx.config
    phase = RunDir(ctx.run.path / name)
    phase.checkpoints.mkdir(parents=True, exist_ok=True)
    meta = {"experiment": ctx.experiment.name, "config_hash": ctx.config_hash, "phase": name}
    facts = run_loop(phase, trainer, cfg.log.schedule(total), DivergenceGuard(cfg.guard, finite=("loss",)),
                     CheckpointStore(phase.checkpoints, keep=cfg.log.keep_checkpoints), meta, ctx.device,
                     progress=ctx.progress, desc=name)
    return facts["wall_time_s"]


def _study_path(run: RunDir):
    return run.path / "study"


def _load_study(run: RunDir) -> dict[str, Any] | None:
    folder = _study_path(run)
    if not (folder / "study.json").exists():
        return None
    return {"metrics": read_json(folder / "study.json"),
            "pseudo_labels": np.load(folder / "pseudo_labels.npy")}


def _prefixed(prefix: str, report: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}_{k}": report[k] for k in ("hungarian_accuracy", "majority_accuracy", "nmi", "ari", "purity")}


def _code_study(ctx: RunContext, model: DiscreteVAE, autoencoder: DiscreteVAE | None, train_set: ImageSet,
                test_set: ImageSet) -> dict[str, Any]:
    """Cluster the training images by their codes, and by the same pipeline on pixels and on the continuous
    autoencoder's vectors (the baselines); KMeans the headline, a Gaussian mixture beside it; figures;
    cached in study/."""
    cfg, seed = ctx.config.cluster, ctx.config.seed
    codes = encode_dataset(model, train_set, ctx.device).numpy()
    codebook = model.quantizer.codebook.detach().cpu().numpy()
    labels = train_set.labels.numpy()
    classes = train_set.classes
    spec = cfg.embedding_spec()
    features = code_representation(codes, codebook, cfg.representation)
    points = embed(features, spec, seed)
    ks = list(range(cfg.k_min, cfg.k_max + 1))
    sweep = kmeans_sweep(points, labels, ks, seed, cfg.silhouette_sample, cfg.n_init)
    clusters = sweep.clusters[cfg.k]
    chosen = clustering_report(labels, clusters)
    hungarian = hungarian_mapping(labels, clusters)
    majority = majority_mapping(labels, clusters)

    pixels = pixel_representation(train_set.images.numpy())
    baselines = {
        "codes_plain": clustering_report(labels, kmeans(features, cfg.k, seed, cfg.plain_n_init)),
        "pixels_plain": clustering_report(labels, kmeans(pixels, cfg.k, seed, cfg.plain_n_init)),
    }
    embedded = {"cluster": points}
    if cfg.embedding != "none":
        embedded["pixels_embedded"] = embed(pixels, spec, seed)
    if autoencoder is not None:
        latents = encode_latents(autoencoder, train_set, ctx.device).flatten(1).numpy()
        embedded["ae_embedded"] = embed(latents, spec, seed)
        baselines["autoencoder"] = {f"autoencoder_test_{k}": v for k, v in
                                    reconstruction_report(autoencoder, test_set, ctx.device).items()
                                    if k in ("recon_mse", "psnr")}
    for name, where in embedded.items():
        if name != "cluster":
            baselines[name] = clustering_report(labels, kmeans(where, cfg.k, seed, cfg.n_init))
        baselines[f"{name}_gmm"] = clustering_report(labels, gaussian_mixture(where, cfg.k, seed, cfg.gmm_n_init))
    autoencoder_report = baselines.pop("autoencoder", {})
    metrics = {"cluster_representation": cfg.representation, "cluster_embedding": cfg.embedding, "cluster_k": cfg.k,
               **_prefixed("cluster", chosen),
               **{k: v for name, report in baselines.items() for k, v in _prefixed(name, report).items()},
               **autoencoder_report,
               "cluster_silhouette": sweep.silhouette[ks.index(cfg.k)], "best_silhouette_k": sweep.best_k,
               "sweep_k": ks, "sweep_silhouette": sweep.silhouette,
               "sweep_hungarian_accuracy": sweep.hungarian_accuracy,
               "sweep_majority_accuracy": sweep.majority_accuracy, "sweep_nmi": sweep.nmi,
               "cluster_label_distribution": chosen["label_distribution"],
               "cluster_to_class": {"hungarian": [hungarian[k] for k in range(cfg.k)],
                                    "majority": [majority[k] for k in range(cfg.k)]}}

    name = f"{train_set.name} {cfg.representation} codes, {cfg.embedding}"
    ctx.save_figure(cf.silhouette_vs_k_figure(ks, sweep.silhouette, sweep.hungarian_accuracy,
                                              sweep.majority_accuracy, cfg.k, name), "silhouette_vs_k")
    values, sampled = silhouette_values(points, clusters, cfg.silhouette_sample, seed)
    ctx.save_figure(cf.silhouette_plot_figure(values, sampled, f"silhouettes, K={cfg.k}"), "silhouette_plot")
    ctx.save_figure(cf.label_distribution_figure(chosen["label_distribution"], classes,
                                                 metrics["cluster_to_class"]["hungarian"],
                                                 f"true labels per cluster (K={cfg.k})"), "cluster_labels")
    pick = np.random.default_rng(seed).permutation(len(labels))[:cfg.tsne_points]
    ctx.save_figure(cf.tsne_figure(tsne(features[pick], seed, cfg.pca_dim), labels[pick], clusters[pick], classes,
                                   f"t-SNE of the codes ({cfg.representation})"), "tsne")
    ctx.save_figure(cf.accuracy_comparison_figure(_comparison_rows(metrics, cfg.embedding),
                                                  f"{train_set.name}, K={cfg.k}"), "clustering_accuracy")

    study = {"metrics": metrics, "pseudo_labels": pseudo_labels(labels, clusters, cfg.mapping)}
    folder = _study_path(ctx.run)
    folder.mkdir(exist_ok=True)
    np.save(folder / "pseudo_labels.npy", study["pseudo_labels"])
    write_atomic(folder / "cluster_labels.csv", _label_table(chosen["label_distribution"], classes,
                                                             metrics["cluster_to_class"]))
    write_json(folder / "study.json", metrics)  # last: its presence marks the study complete
    return study


def _comparison_rows(metrics: dict[str, Any], embedding: str) -> list[tuple[str, float]]:
    """(what was clustered, Hungarian accuracy) of every clustering the study measured, for the bar chart."""
    names = {"cluster": f"codes, {embedding} + KMeans", "cluster_gmm": f"codes, {embedding} + GMM",
             "ae_embedded": f"autoencoder, {embedding} + KMeans", "ae_embedded_gmm": f"autoencoder, {embedding} + GMM",
             "pixels_embedded": f"pixels, {embedding} + KMeans", "pixels_embedded_gmm": f"pixels, {embedding} + GMM",
             "codes_plain": "codes, plain KMeans", "pixels_plain": "pixels, plain KMeans"}
    return [(text, metrics[f"{prefix}_hungarian_accuracy"]) for prefix, text in names.items()
            if f"{prefix}_hungarian_accuracy" in metrics]


def _label_table(table: list[list[int]], classes: tuple[str, ...], mapping: dict[str, list[int]]) -> str:
    """The per-cluster distribution of true labels as CSV: one row per cluster, its classes by both mappings."""
    name = lambda c: classes[c] if c >= 0 else "-"  # noqa: E731
    rows = [",".join(["cluster", "hungarian_class", "majority_class", "images", *classes])]
    for k, counts in enumerate(table):
        rows.append(",".join([str(k), name(mapping["hungarian"][k]), name(mapping["majority"][k]), str(sum(counts)),
                              *map(str, counts)]))
    return "\n".join(rows) + "\n"


def _classifier_phase(ctx: RunContext, name: str, train_set: ImageSet, test_set: ImageSet) -> tuple[dict, float]:
    """Train the configured classifier on ``train_set`` in its own phase folder; its report on ``test_set``."""
    cfg: DVAEConfig = ctx.config
    torch.manual_seed(cfg.seed)
    model = build_classifier(cfg.classifier_model.arch, train_set.shape[0], len(train_set.classes),
                             cfg.classifier_model.width, cfg.classifier_model.norm)
    batches = ctx.batches(train_set, cfg.classifier.batch_size, cfg.seed)
    total = math.ceil(cfg.classifier.epochs * batches.steps_per_epoch)
    trainer = ClassifierTrainer(model, batches, test_set, cfg.classifier, AUGMENTATIONS[cfg.classifier.augment],
                                total, ctx.device)
    seconds = _phase(ctx, name, trainer, total)
    curves = curves_figure(RunDir(ctx.run.path / name).read_metrics(), ["loss", "acc"])
    if curves is not None:
        ctx.save_figure(curves, f"curves_{name}")
    return evaluate_classifier(model, test_set, ctx.device, cfg.classifier.channels_last), seconds


_SMOKE = {"data.train_limit": 600, "data.eval_limit": 200, "train.epochs": 2, "train.batch_size": 50,
          "model.width": 16, "model.code_dim": 8, "model.num_codes": 32, "model.tokens": 8, "cluster.k_max": 12,
          "cluster.silhouette_sample": 300, "cluster.tsne_points": 200, "cluster.n_init": 2,
          "cluster.autoencoder_epochs": 1,
          "classifier_model.width": 8, "classifier.epochs": 1, "classifier.batch_size": 50,
          "log.every": 4, "log.checkpoint_every": 8, "log.eval_every": 12}


def _dvae(dataset: str, summary: str, quick: dict[str, Any], full: dict[str, Any]) -> Experiment:
    return Experiment(f"dvae-{dataset}", "dvae", summary, DVAEConfig, run_dvae,
                      presets={"smoke": _SMOKE, "quick": quick, "full": full}, base={"data.dataset": dataset})


_QUICK = {"train.epochs": 2, "model.width": 32, "classifier_model.width": 16, "classifier.epochs": 2,
          "log.every": 50, "log.checkpoint_every": 250, "log.eval_every": 500}
_FULL = {"train.epochs": 30, "model.width": 128, "model.code_dim": 64, "model.num_codes": 512,
         "classifier_model.width": 32, "classifier.epochs": 15, "cluster.n_init": 20, "cluster.plain_n_init": 4,
         "cluster.tsne_points": 5000, "cluster.silhouette_sample": 10000,
         "log.every": 50, "log.checkpoint_every": 1000, "log.eval_every": 2000}
# Global codes: 32 tokens of 2 dimensions from 64 codes (a grid's codes kept the pixels' neighbourhoods and
# clustered like pixels). MNIST: through N2D's manifold step (UMAP, 10 dimensions, 20 neighbours); the
# autoencoder baseline trains as long. Fashion-MNIST: the same codes gained nothing there, so they also learn
# SimCLR's contrastive loss between two views (crops, flips, grey levels), and SCAN's step, heads trained so
# that each image and its 50 nearest neighbours share a cluster, does the clustering; within the 15-minute
# budget its autoencoder baseline keeps its 2 epochs (benchmarks/README.md, "Global codes" and the
# Fashion-MNIST sections after it).
_TOKENS = {"model.tokens": 32, "model.code_dim": 2, "model.num_codes": 64, "cluster.embed_dim": 10}
_MNIST_TOKENS = {**_TOKENS, "cluster.embedding": "umap", "cluster.neighbors": 20}
_FASHION_TOKENS = {**_TOKENS, "train.contrastive_weight": 0.1, "train.contrastive_head": 128,
                   "train.contrastive_augment": "crop_flip_intensity", "cluster.embedding": "scan",
                   "cluster.neighbors": 50}
DVAE_EXPERIMENTS = (
    _dvae("mnist", "VQ-VAE (or Gumbel dVAE) on MNIST; clustering its codes into pseudo-labels",
          {**_QUICK, **_MNIST_TOKENS, "train.epochs": 6, "cluster.autoencoder_epochs": 6},
          {**_FULL, **_MNIST_TOKENS, "cluster.autoencoder_epochs": 30}),
    _dvae("fashion_mnist", "VQ-VAE (or Gumbel dVAE) on Fashion-MNIST; clustering its codes into pseudo-labels",
          {**_QUICK, **_FASHION_TOKENS, "train.epochs": 12},
          {**_FULL, **_FASHION_TOKENS, "cluster.autoencoder_epochs": 30}),
)
