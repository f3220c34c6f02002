"""The project's targets in one table, and the one verdict the report and the benchmarks give against them.

Each target says what is measured, the summary metrics it is read from (declared in ``genlab.eval.schema``;
none for a wall time), how it is compared, the threshold and its unit, and the study it belongs to. A value
measured from several runs (a mean over seeds, a difference between two models) is computed where it is
reported; the comparison and the threshold live here only.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable, Literal

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, ">": operator.gt, "<=": operator.le,
                                                           "<": operator.lt}


@dataclass(frozen=True)
class Target:
    study: str
    measure: str  # what is measured, in words
    keys: tuple[str, ...]  # the summary metrics it is computed from (empty: the run's wall time)
    comparison: Literal[">=", ">", "<=", "<"]
    threshold: float
    unit: str

    def met_by(self, value: float) -> bool:
        return _COMPARISONS[self.comparison](value, self.threshold)


def verdict(*checks: tuple[Target, float]) -> str:
    """'met' when every measured value of ``checks`` ((target, value) pairs) meets its target, else 'not met'."""
    return "met" if all(target.met_by(value) for target, value in checks) else "not met"


CLASSIFIER_ACCURACY = {  # the judges: a dataset's samples are judged by a classifier that meets its bar
    dataset: Target("classifiers", f"classifier-{dataset} test accuracy", ("test_accuracy",), ">=", bar, "fraction")
    for dataset, bar in (("mnist", 0.99), ("hoda", 0.99), ("fashion_mnist", 0.90), ("cifar10", 0.75))
}
JEM_START_ACCURACY = {  # what JEM asks of the classifier it starts from (seed 1, the judge being seed 0)
    dataset: Target("classifiers", f"test accuracy of the {dataset} classifier JEM starts from", ("test_accuracy",),
                    ">=", bar, "fraction")
    for dataset, bar in (("mnist", 0.85), ("cifar10", 0.70))
}

EBM_FID_REDUCTION = Target("ebm", "ebm-cifar10: how much lower buffer-decay's domain FID is than noise starts' at the "
                           "same budget, (FID noise - FID buffer-decay) / FID noise", ("fid",), ">=", 0.30, "fraction")
EBM_CIFAR_LONG_FID = Target("ebm", "ebm-cifar10-gaussian, long preset: domain FID of the final samples, mean over "
                            "seeds", ("fid",), "<=", 60, "FID")
EBM_CIFAR_LONG_MINUTES = Target("ebm", "ebm-cifar10-gaussian: minutes of a long run on the project's 2-core CPU", (),
                                "<=", 120, "min")
EBM_COND_ACCURACY = Target("ebm", "ebm-mnist-cond: share of label-fixed samples the MNIST judge gives their digit",
                           ("class_accuracy",), ">=", 0.90, "fraction")
EBM_COND_WORST_DIGIT = Target("ebm", "ebm-mnist-cond: that share for the worst digit", ("min_class_accuracy",), ">=",
                              0.75, "fraction")
EBM_COND_MINUTES = Target("ebm", "ebm-mnist-cond: minutes of training (quick preset)", (), "<=", 20, "min")

JEM_CALIBRATION = Target("jem", "jem-mnist, jempp-mnist: test ECE minus that of the classifier the run started from",
                         ("ece", "classifier_ece"), "<=", 0.01, "fraction")
JEMPP_ACCURACY = Target("jem", "jempp-mnist test accuracy", ("test_accuracy",), ">=", 0.99, "fraction")
JEMPP_CONDITIONAL = Target("jem", "jempp-mnist: share of class-conditional samples judged to be their class",
                           ("conditional_accuracy",), ">=", 0.90, "fraction")
JEMPP_MINUTES = Target("jem", "jempp-mnist: minutes of training (quick preset)", (), "<=", 30, "min")
JEMPP_FID_OVER_JEM = Target("jem", "JEM++'s domain FID minus JEM's (JEM's quality or better)", ("fid",), "<=", 0,
                            "score")
JEMPP_STEP_SHARE = Target("jem", "JEM++'s full-network SGLD steps per iteration as a share of JEM's",
                          ("sgld_steps_per_iteration",), "<=", 0.5, "fraction")
JEMPP_DIVERGENCES_OVER_JEM = Target("jem", "JEM++'s divergence events minus JEM's, summed over seeds",
                                    ("divergence_events",), "<=", 0, "count")

DVAE_CODES_OVER_PIXELS = Target("dvae", "Hungarian accuracy of clustering the codes minus that of raw-pixel KMeans",
                                ("cluster_hungarian_accuracy", "pixels_plain_hungarian_accuracy"), ">", 0, "fraction")
DVAE_CODES_OVER_EMBEDDED_PIXELS = Target(
    "dvae", "Hungarian accuracy of clustering the codes minus that of raw pixels through the identical pipeline "
    "(embedding, then KMeans)", ("cluster_hungarian_accuracy", "pixels_embedded_hungarian_accuracy"), ">=", 0.05,
    "fraction")
DVAE_CODES_USED = Target("dvae", "share of the codebook the test images use", ("test_codes_used_fraction",), ">=",
                         0.10, "fraction")
DVAE_MINUTES = Target("dvae", "minutes per dvae run (quick preset)", (), "<=", 15, "min")
DVAE_CLUSTERING = {  # N2D (McConville et al. 2019) reports about 0.98 on MNIST and 0.672 on Fashion-MNIST
    dataset: Target("dvae", f"dvae-{dataset}: Hungarian accuracy of clustering the codes (KMeans, K = 10)",
                    ("cluster_hungarian_accuracy",), ">=", bar, "fraction")
    for dataset, bar in (("mnist", 0.97), ("fashion_mnist", 0.70))
}
DVAE_MNIST_PSEUDO_LABEL_GAP = Target("dvae", "dvae-mnist: test accuracy of the classifier on true labels minus that "
                                     "of the same classifier on pseudo-labels",
                                     ("true_label_classifier_accuracy", "pseudo_label_classifier_accuracy"), "<=",
                                     0.03, "fraction")
DVAE_MNIST_PSNR = Target("dvae", "dvae-mnist: PSNR of the test reconstructions", ("test_psnr",), ">=", 20, "dB")

GAN_CONFIDENT_SHARE = Target("gan", "the best model's share of test samples the Hoda judge is over 90% sure of",
                             ("test_confident_share",), ">=", 0.90, "fraction")
GAN_CLASS_COVERAGE = Target("gan", "the best model's class coverage of its test samples", ("test_class_coverage",),
                            ">=", 0.95, "fraction")

GAN_UNCONDITIONAL_CONFIDENT_SHARE = Target(
    "gan", "the best unconditional model's share of test samples the Hoda judge is over 90% sure of (quick preset)",
    ("test_confident_share",), ">=", 0.85, "fraction")
GAN_UNCONDITIONAL_CLASS_COVERAGE = Target("gan", "the best unconditional model's class coverage of its test samples",
                                          ("test_class_coverage",), ">=", 0.95, "fraction")
WGANGP_CONFIDENT_SHARE = Target("gan", "WGAN-GP's share of test samples the Hoda judge is over 90% sure of (quick "
                                "preset)", ("test_confident_share",), ">=", 0.80, "fraction")

PIPELINE_HOURS = Target("pipeline", "hours of the quick pipeline, one seed, on the project's 2-core CPU", (), "<", 3,
                        "h")

TARGETS: tuple[Target, ...] = (
    *CLASSIFIER_ACCURACY.values(), *JEM_START_ACCURACY.values(), EBM_FID_REDUCTION, EBM_CIFAR_LONG_FID,
    EBM_CIFAR_LONG_MINUTES, EBM_COND_ACCURACY,
    EBM_COND_WORST_DIGIT, EBM_COND_MINUTES, JEM_CALIBRATION, JEMPP_ACCURACY, JEMPP_CONDITIONAL, JEMPP_MINUTES,
    JEMPP_FID_OVER_JEM, JEMPP_STEP_SHARE, JEMPP_DIVERGENCES_OVER_JEM, DVAE_CODES_OVER_PIXELS,
    DVAE_CODES_OVER_EMBEDDED_PIXELS, DVAE_CODES_USED, DVAE_MINUTES, *DVAE_CLUSTERING.values(),
    DVAE_MNIST_PSEUDO_LABEL_GAP, DVAE_MNIST_PSNR, GAN_CONFIDENT_SHARE, GAN_CLASS_COVERAGE,
    GAN_UNCONDITIONAL_CONFIDENT_SHARE, GAN_UNCONDITIONAL_CLASS_COVERAGE, WGANGP_CONFIDENT_SHARE, PIPELINE_HOURS,
)

# Convergence speed is timed to one FID level every model of a study can be held to: a multiple of the best FID
# any of them reached (EBM: the FID evaluated in training; GAN: each model's best validation FID).
CONVERGENCE_LEVEL = {"ebm": 1.5, "gan": 2.0}
