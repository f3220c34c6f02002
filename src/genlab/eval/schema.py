"""The metrics schema: every key an experiment writes into the ``"metrics"`` of its ``summary.json``, with its
meaning, its unit and the experiment families (``Experiment.family``) that write it.

Summaries are written by experiments and read back by the report and the benchmarks, by name. Declaring
each key here once lets both sides be checked: the runner warns (``UndeclaredMetricWarning``, an error under
the test suite) when an experiment writes a key the schema does not declare for its family, and the tests
check that every key the report asks for is declared and written by a family.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping

FAMILIES = ("classifier", "ebm", "jem", "dvae", "gan")


@dataclass(frozen=True)
class Metric:
    name: str
    meaning: str
    unit: str  # "fraction" (0 to 1), "count", "s", "dB", "score" (dimensionless), "energy", "text"; a list: per what
    families: tuple[str, ...]  # the experiment families whose runs write it (some only in some configs)


class UndeclaredMetricWarning(UserWarning):
    """An experiment wrote a summary metric that the schema does not declare for its family. The run's
    results are kept; the schema (or the experiment) needs mending."""


# The sample-quality scores of eval.score.score_images: in the feature space of the dataset's judge, apart from
# the label-free randnet_* twins and the pixel-space memorisation numbers.
_SAMPLE_SCORES = {
    "fid": ("Frechet distance between the judge features of the samples and of the reference images (lower: "
            "closer to the data)", "score"),
    "kid": ("kernel inception distance in the judge's feature space (mean over subsets; lower: closer)", "score"),
    "kid_std": ("standard deviation of the KID over its subsets", "score"),
    "is": ("inception score with the judge's class probabilities (higher: confident and varied)", "score"),
    "is_std": ("standard deviation of the inception score over its splits", "score"),
    "precision": ("share of samples inside the manifold of the reference features (realism)", "fraction"),
    "recall": ("share of reference images inside the manifold of the sample features (variety)", "fraction"),
    "class_coverage": ("normalised entropy of the judge's class histogram of the samples (1: every class "
                       "equally often)", "fraction"),
    "confident_share": ("share of samples the judge gives one class with probability above 0.9", "fraction"),
    "class_accuracy": ("share of label-fixed samples the judge gives their intended label", "fraction"),
    "density": ("density (Naeem et al. 2020, k = 5): real points' k-NN balls holding a sample, per sample, over k "
                "(about 1: distributed as the data; above 1: crowding where the data is densest)", "score"),
    "coverage": ("coverage (Naeem et al. 2020, k = 5): share of reference images whose k-NN ball holds a sample",
                 "fraction"),
    "intra_fid": ("mean over classes of the FID of each class's samples against that class's reference images "
                  "(classes: the intended and true labels, or for unconditional samples the judge's labels of both)",
                  "score"),
    "intra_coverage": ("mean over classes of the coverage of each class's reference images by that class's "
                       "samples (0 for a class with no samples)", "fraction"),
    "randnet_fid": ("FID in the label-free features of a fixed-seed random convolutional network (eval.randnet)",
                    "score"),
    "randnet_precision": ("precision (k = 3) in the random network's features", "fraction"),
    "randnet_recall": ("recall (k = 3) in the random network's features", "fraction"),
    "memorised_share": ("share of samples nearer (pixels) to a training image than 99% of real test images are "
                        "(about 0.01 for new images, 1 for copies)", "fraction"),
    "memorised_share_features": ("the same rule in the judge's feature space", "fraction"),
    "train_distance_ratio": ("median pixel distance of the samples to their nearest training image over that of "
                             "real test images (about 1: as novel as real data; near 0: copies)", "score"),
    "train_distance_ratio_features": ("the same ratio in the judge's feature space", "score"),
    "memorisation_train_images": ("training images searched for nearest neighbours (a fixed subset of at most "
                                  "10,000)", "count"),
}
_PER_CLASS_SCORES = {
    "per_class_fid": "intra-class FID of each class (NaN: fewer than two samples)",
    "per_class_coverage": "coverage of each class's reference images by that class's samples",
}
_CAS_SCORES = {  # eval.cas: classifiers trained on class-conditional samples, tested on real test images
    "cas": ("Classification Accuracy Score: test accuracy of a fresh classifier trained on the class-conditional "
            "samples only", "fraction"),
    "cas_real": ("test accuracy of the same classifier trained on as many real training images", "fraction"),
    "cas_images": ("samples (and real images) the CAS classifiers train on", "count"),
    "cas_epochs": ("epochs of the CAS classifiers", "count"),
}
_CLUSTER_SCORES = {  # eval.clustering.clustering_report, K clusters of the training images against their labels
    "hungarian_accuracy": "accuracy after matching clusters to classes one-to-one (Hungarian)",
    "majority_accuracy": "accuracy after giving each cluster its most frequent class",
    "nmi": "normalised mutual information of clusters and labels",
    "ari": "adjusted Rand index of clusters and labels",
    "purity": "share of images in their cluster's most frequent class",
}
_CLUSTERINGS = {  # the dvae code study's clusterings, as the prefix of their keys
    "cluster": "the codes, embedded (cluster.embedding) then KMeans with K = cluster.k",
    "cluster_gmm": "the codes, embedded, then a Gaussian mixture with K = cluster.k components",
    "codes_plain": "plain KMeans on the code representation (baseline)",
    "pixels_plain": "plain KMeans on raw pixels (baseline)",
    "pixels_embedded": "raw pixels, the same embedding then KMeans (baseline; absent with cluster.embedding=none)",
    "pixels_embedded_gmm": "raw pixels, the same embedding then the Gaussian mixture (baseline)",
    "ae_embedded": "the continuous autoencoder's vectors (the same network without quantisation), the same "
                   "embedding then KMeans (baseline; absent with cluster.autoencoder_epochs=0)",
    "ae_embedded_gmm": "the continuous autoencoder's vectors, the same embedding then the Gaussian mixture (baseline)",
}


def _declarations() -> list[Metric]:
    m = Metric
    return [
        # Classifiers (and what JEM keeps of its classifier)
        m("test_accuracy", "accuracy of the trained classifier on the test split", "fraction", ("classifier", "jem")),
        m("test_loss", "mean cross-entropy on the test split", "score", ("classifier",)),
        m("val_accuracy", "accuracy on the validation split (datasets that have one: Hoda)", "fraction",
          ("classifier",)),
        m("steps", "optimiser steps of training", "count", ("classifier",)),
        m("confusion", "confusion matrix on the test split (rows: true labels)", "count per true and predicted label",
          ("classifier",)),
        m("per_class_accuracy", "classifier runs: test accuracy per class; ebm and jem runs: share of the "
          "label-fixed samples of each label the judge gives that label", "fraction per class",
          ("classifier", "ebm", "jem")),
        m("min_class_accuracy", "the lowest per_class_accuracy of the label-fixed samples", "fraction", ("ebm", "jem")),
        m("train_images", "training images used", "count", ("classifier", "dvae", "gan")),
        m("test_images", "test images evaluated on", "count", ("classifier", "dvae")),
        m("parameters", "trainable parameters of the network", "count", ("classifier", "ebm")),
        # EBM and JEM: sample quality, training and stability
        *(m(key, f"final samples: {meaning}", unit, ("ebm", "jem")) for key, (meaning, unit) in _SAMPLE_SCORES.items()
          if key not in ("is_std", "class_accuracy")),
        m("is_std", f"final samples: {_SAMPLE_SCORES['is_std'][0]}", "score", ("ebm",)),
        *(m(f"start_{key}", f"as many fresh chain starts, before any step (Gaussian starts only): "
            f"{_SAMPLE_SCORES[key][0]}", _SAMPLE_SCORES[key][1], ("ebm",))
          for key in ("fid", "randnet_fid", "precision", "recall", "coverage")),
        m("class_accuracy", f"final samples of a conditional model: {_SAMPLE_SCORES['class_accuracy'][0]}",
          "fraction", ("ebm",)),
        *(m(key, f"final samples: {meaning}", "fraction per class" if key == "per_class_coverage"
            else "score per class", ("ebm", "jem")) for key, meaning in _PER_CLASS_SCORES.items()),
        *(m(key, f"{meaning} (conditional models)", unit, ("ebm", "jem", "gan")) for key, (meaning, unit)
          in _CAS_SCORES.items()),
        m("conditional_intra_fid", f"class-conditional samples: {_SAMPLE_SCORES['intra_fid'][0]}", "score", ("jem",)),
        m("conditional_intra_coverage", f"class-conditional samples: {_SAMPLE_SCORES['intra_coverage'][0]}",
          "fraction", ("jem",)),
        m("diversity", "mean pairwise judge-feature distance of the samples over that of real images (1: as varied "
          "as the data, near 0: collapsed)", "score", ("ebm",)),
        m("samples", "final samples scored", "count", ("ebm",)),
        m("reference_images", "test images the samples are compared with", "count", ("ebm", "jem")),
        m("iterations", "training iterations of the config", "count", ("ebm", "jem")),
        m("sgld_steps_per_iteration", "full-network sampler steps per training iteration", "count", ("ebm", "jem")),
        m("grad_norm_spikes", "log intervals whose gradient norm exceeded 10x the run's median", "count", ("ebm",)),
        m("max_abs_energy", "largest |energy| of data or samples logged in training", "energy", ("ebm",)),
        m("divergence_events", "rollbacks and divergences the divergence guard recorded", "count", ("ebm", "jem")),
        m("fid_curve", "FID of the samples at each evaluation during training", "[step, wall s, FID] per evaluation",
          ("ebm",)),
        m("per_class_energy_data", "mean E(x, y) of the test images of each label (conditional models)",
          "energy per class", ("ebm",)),
        m("per_class_energy_samples", "mean E(x, y) of the final samples of each label (conditional models)",
          "energy per class", ("ebm",)),
        # The sampling study of a trained CIFAR-10 energy (experiments.sampling_study); its "fid" is the best cell's
        m("sampling_best", "the sampler setting with the lowest mean of its ranks by domain FID and by label-free FID "
          "among the grid's cells (eval.quality.best_first)", "text", ("ebm",)),
        m("sampling_best_randnet_fid", "label-free FID (eval.randnet) of the best setting's samples", "score",
          ("ebm",)),
        m("sampling_best_sets", "the --set overrides that train ebm-cifar10-buffer with the best setting", "text",
          ("ebm",)),
        m("sampling_best_energy_gap", "mean energy of the best setting's samples minus that of the test images",
          "energy", ("ebm",)),
        m("sampling_best_seconds_per_sample", "sampler time per sample of the best setting", "s", ("ebm",)),
        m("sampling_energy_data", "mean energy of the test images under the sampled energy", "energy", ("ebm",)),
        m("sampling_cells", "every cell of the grid: form, eps (coupled) or step (decoupled), T, schedule, start, "
          "domain FID, mean energy of the samples, seconds per sample, label-free FID (absent in summaries written "
          "before it was recorded)", "one list per cell", ("ebm",)),
        m("sampling_samples_per_cell", "chains run and scored per cell of the grid", "count", ("ebm",)),
        m("sampling_steps", "sampler steps of the whole grid, counted per chain", "count", ("ebm",)),
        # JEM
        m("ece", "expected calibration error on the test split", "fraction", ("jem",)),
        m("ood_auroc_energy", "AUROC of telling test images from the OOD set by -E(x) (logsumexp of the logits)",
          "fraction", ("jem",)),
        m("ood_auroc_max_softmax", "AUROC of telling test images from the OOD set by the largest softmax probability",
          "fraction", ("jem",)),
        m("ood_dataset", "the out-of-distribution test set", "text", ("jem",)),
        m("conditional_accuracy", "share of the class-conditional samples the judge gives their label", "fraction",
          ("jem",)),
        m("conditional_fid", "domain FID of the class-conditional samples", "score", ("jem",)),
        m("classifier_test_accuracy", "test accuracy of the classifier the run started from", "fraction", ("jem",)),
        m("classifier_ece", "expected calibration error of the classifier the run started from", "fraction", ("jem",)),
        m("classifier_ood_auroc_max_softmax", "max-softmax OOD AUROC of the classifier the run started from",
          "fraction", ("jem",)),
        m("first_layer_steps_per_iteration", "inner first-layer steps of proximal SGLD per iteration (0: plain SGLD)",
          "count", ("jem",)),
        m("seconds_per_1000_iterations", "mean training time of 1,000 iterations", "s", ("jem",)),
        # Discrete VAE and the clustering of its codes
        m("quantizer", "the discrete bottleneck (vq or gumbel)", "text", ("dvae",)),
        m("dvae_steps", "training steps of the discrete VAE", "count", ("dvae",)),
        m("test_recon_mse", "mean squared reconstruction error per pixel on the test split (images in [-1, 1])",
          "score", ("dvae",)),
        m("test_psnr", "peak signal-to-noise ratio of the test reconstructions", "dB", ("dvae",)),
        m("test_perplexity", "perplexity of the test images' code histogram (effective codes in use)", "codes",
          ("dvae",)),
        m("test_codes_used", "codes used at least once by the test images", "count", ("dvae",)),
        m("test_codes_used_fraction", "share of the codebook used at least once by the test images", "fraction",
          ("dvae",)),
        m("restarted_codes", "dead codes restarted during training (VQ-EMA only)", "count", ("dvae",)),
        m("autoencoder_test_recon_mse", "test reconstruction MSE of the continuous autoencoder baseline (images in "
          "[-1, 1])", "score", ("dvae",)),
        m("autoencoder_test_psnr", "test reconstruction PSNR of the continuous autoencoder baseline", "dB", ("dvae",)),
        m("cluster_representation", "what an image's codes became before clustering (quantized, onehot or histogram)",
          "text", ("dvae",)),
        m("cluster_embedding", "the embedding KMeans clustered (none, pca, spectral or umap)", "text", ("dvae",)),
        m("cluster_k", "clusters of the pseudo-labels", "count", ("dvae",)),
        *(m(f"{prefix}_{score}", f"{what}: {meaning}", "fraction" if score != "ari" else "score", ("dvae",))
          for prefix, what in _CLUSTERINGS.items() for score, meaning in _CLUSTER_SCORES.items()),
        m("cluster_silhouette", "silhouette of the chosen clustering (K = cluster_k)", "score", ("dvae",)),
        m("best_silhouette_k", "the K of the sweep with the highest silhouette", "count", ("dvae",)),
        m("sweep_k", "the K values of the sweep", "count per K", ("dvae",)),
        m("sweep_silhouette", "silhouette at each K of the sweep", "score per K", ("dvae",)),
        m("sweep_hungarian_accuracy", "Hungarian accuracy at each K of the sweep", "fraction per K", ("dvae",)),
        m("sweep_majority_accuracy", "majority accuracy at each K of the sweep", "fraction per K", ("dvae",)),
        m("sweep_nmi", "NMI at each K of the sweep", "score per K", ("dvae",)),
        m("cluster_label_distribution", "true labels of the images of each cluster", "count per cluster and label",
          ("dvae",)),
        m("cluster_to_class", "the class each cluster stands for, by the hungarian and the majority mapping (-1: "
          "none)", "class per cluster", ("dvae",)),
        m("pseudo_label_images", "training images whose cluster maps to a class", "count", ("dvae",)),
        m("pseudo_label_accuracy", "share of those images whose pseudo-label is their true label", "fraction",
          ("dvae",)),
        *(m(f"{labels}_label_classifier_{what}", f"the classifier trained on {labels} labels, on the true test "
            f"labels: {meaning}", unit, ("dvae",))
          for labels in ("true", "pseudo")
          for what, meaning, unit in (("accuracy", "accuracy", "fraction"),
                                      ("per_class_accuracy", "accuracy per class", "fraction per class"),
                                      ("confusion", "confusion matrix (rows: true labels)",
                                       "count per true and predicted label"))),
        # GANs: the best generator's samples against the test split, and training
        *(m(f"test_{key}", f"the best generator's samples against the test split: {meaning}", unit, ("gan",))
          for key, (meaning, unit) in _SAMPLE_SCORES.items()),
        *(m(f"test_{key}", f"the best generator's samples against the test split: {meaning}",
            "fraction per class" if key == "per_class_coverage" else "score per class", ("gan",))
          for key, meaning in _PER_CLASS_SCORES.items()),
        *(m(f"test_{reading}_{key}", f"the best generator's test samples read {how}: {meaning}", unit, ("gan",))
          for reading, how in (("raw", "as the tanh output (model.output=binary's other reading)"),
                               ("binary", "thresholded at 0 (model.output=tanh's other reading)"))
          for key, (meaning, unit) in _SAMPLE_SCORES.items()),
        m("test_per_class_accuracy", "conditional models: share of the test samples of each label the judge gives "
          "that label", "fraction per class", ("gan",)),
        m("test_samples", "samples of the best generator scored against the test split", "count", ("gan",)),
        m("test_class_histogram", "share of the test samples the judge puts in each class", "fraction per class",
          ("gan",)),
        m("test_code_purity", "InfoGAN codes: share of the test samples in the judge's most frequent class of their "
          "code (1: each code draws one class)", "fraction", ("gan",)),
        m("test_code_classes", "InfoGAN codes: how many distinct classes the codes' most frequent classes are",
          "count", ("gan",)),
        m("train_cluster_purity", "model.clusters: share of the training images in the most frequent class of their "
          "cluster (read with the labels after training; the clusters are found without them)", "fraction", ("gan",)),
        m("train_cluster_shares", "model.clusters: each cluster's share of the training images (the mixture weights "
          "the samples draw their cluster with)", "fraction per cluster", ("gan",)),
        m("best_val_fid", "lowest validation FID over training (the generator kept)", "score", ("gan",)),
        m("best_step", "step of the generator with the lowest validation FID", "count", ("gan",)),
        m("last_val_fid", "validation FID at the last evaluation", "score", ("gan",)),
        m("val_fid_curve", "validation FID at each evaluation", "[step, wall s, FID] per evaluation", ("gan",)),
        m("val_reference_images", "validation images the evaluations compare with", "count", ("gan",)),
        m("generator_parameters", "trainable parameters of the generator", "count", ("gan",)),
        m("critic_parameters", "trainable parameters of the critic (discriminator)", "count", ("gan",)),
        m("critic_weight_std", "standard deviation of the critic's parameters at the end", "score", ("gan",)),
        m("wasserstein_fid_spearman", "WGANs: Spearman correlation over evaluations of the critic's Wasserstein "
          "estimate and the validation FID", "score", ("gan",)),
        m("last_wasserstein", "WGANs: the critic's Wasserstein estimate at the last log step", "score", ("gan",)),
        m("last_clipped_fraction", "WGAN: share of critic weights at the clipping bound at the last log step",
          "fraction", ("gan",)),
    ]


METRICS: dict[str, Metric] = {metric.name: metric for metric in _declarations()}


def declared(key: str) -> Metric:
    """The declaration of a summary metric; a KeyError naming the key if the schema lacks it."""
    try:
        return METRICS[key]
    except KeyError:
        raise KeyError(f"summary metric '{key}' is not declared in genlab.eval.schema") from None


def undeclared(metrics: Mapping[str, Any], family: str) -> list[str]:
    """The keys of a run's metrics that the schema does not declare as written by ``family``."""
    return sorted(k for k in metrics if k not in METRICS or family not in METRICS[k].families)


def warn_undeclared(metrics: Mapping[str, Any], family: str, experiment: str) -> None:
    """Warn (UndeclaredMetricWarning) about the keys of a run's metrics the schema lacks for its family."""
    keys = undeclared(metrics, family)
    if keys:
        warnings.warn(f"experiment '{experiment}' (family '{family}') wrote summary metrics that genlab.eval.schema "
                      f"does not declare for its family: {', '.join(keys)}", UndeclaredMetricWarning, stacklevel=2)
