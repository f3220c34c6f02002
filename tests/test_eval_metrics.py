import itertools
import math

import numpy as np
import pytest
import torch

from genlab.eval.calibration import expected_calibration_error
from genlab.eval.clustering import clustering_report, hungarian_mapping, mapped_accuracy, sampled_silhouette
from genlab.eval.ood import auroc
from genlab.eval.quality import (class_accuracy, class_coverage, confident_share, fid, frechet_distance,
                                 inception_score, kid, precision_recall)


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_with_full_covariances():
    """For commuting covariances A = Q diag(a) Q^T, B = Q diag(b) Q^T the trace term is sum sqrt(a b)."""
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    a, b = rng.uniform(0.2, 3, 6), rng.uniform(0.2, 3, 6)
    mu = rng.normal(size=6)
    expected = mu @ mu + a.sum() + b.sum() - 2 * np.sqrt(a * b).sum()
    got = frechet_distance(mu, q @ np.diag(a) @ q.T, np.zeros(6), q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-8)


def test_fid_agrees_with_torchmetrics_on_the_same_feature_extractor():
    torchmetrics_fid = pytest.importorskip("torchmetrics.image.fid")
    torch.manual_seed(0)
    extractor = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 16))
    real = torch.rand(600, 3, 8, 8)
    fake = (torch.rand(600, 3, 8, 8) * 0.8 + 0.1) ** 1.5
    metric = torchmetrics_fid.FrechetInceptionDistance(feature=extractor, normalize=True, input_img_size=(3, 8, 8))
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.no_grad():
        ours = fid(extractor(real), extractor(fake))
    assert ours == pytest.approx(float(metric.compute()), rel=1e-3)


def test_kid_is_unbiased_for_one_distribution_and_positive_for_two():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2000, 8, generator=g), torch.randn(2000, 8, generator=g)
    same, same_std = kid(a, b, subset_size=500, subsets=50)
    assert abs(same) < 3 * same_std / math.sqrt(50) + 1e-4
    shifted, _ = kid(a, b + 0.5, subset_size=500, subsets=50)
    assert shifted > 20 * max(abs(same), 1e-4)


def test_inception_score_bounds():
    one_hot = torch.eye(10).repeat(50, 1)
    assert inception_score(one_hot)[0] == pytest.approx(10.0, rel=1e-6)
    assert inception_score(torch.full((500, 10), 0.1))[0] == pytest.approx(1.0)
    assert inception_score(torch.eye(10)[torch.zeros(500, dtype=torch.long)])[0] == pytest.approx(1.0)


def test_precision_recall_of_identical_and_disjoint_sets():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 4, generator=g)
    assert precision_recall(x, x.clone()) == (1.0, 1.0)
    assert precision_recall(x, x + 100.0) == (0.0, 0.0)
    half = torch.cat([x[:150], x[:150] + 100.0])  # half the samples on the data, half far away
    precision, _ = precision_recall(x, half)
    assert precision == pytest.approx(0.5)


def test_class_metrics():
    uniform = torch.eye(10).repeat(10, 1)
    collapsed = torch.eye(10)[torch.full((100,), 3)]
    assert class_coverage(uniform) == pytest.approx(1.0) and class_coverage(collapsed) == 0.0
    soft = torch.full((4, 10), 0.1)
    assert confident_share(torch.cat([uniform[:4], soft])) == 0.5
    acc, per_class = class_accuracy(uniform, torch.arange(10).repeat(10))
    assert acc == 1.0 and per_class == [1.0] * 10


def test_ece_of_calibrated_and_overconfident_predictions():
    g = torch.Generator().manual_seed(0)
    n = 20000
    confidence = torch.rand(n, generator=g) * 0.5 + 0.5
    correct = torch.rand(n, generator=g) < confidence  # right exactly as often as claimed
    labels = torch.where(correct, 0, 1)
    probs = torch.stack([confidence, 1 - confidence], 1)
    assert expected_calibration_error(probs, labels) < 0.01
    over = torch.tensor([[0.9, 0.1]]).repeat(1000, 1)
    labels = (torch.arange(1000) >= 600).long()  # 60% right at 90% confidence
    assert expected_calibration_error(over, labels) == pytest.approx(0.3)


def test_auroc_matches_the_rank_statistic():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1, 1, 200), rng.normal(0, 1, 300)
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert auroc(pos, neg) == pytest.approx(pairs)


def test_hungarian_recovers_a_permuted_labelling():
    labels = np.repeat(np.arange(4), 25)
    clusters = np.array([2, 0, 3, 1])[labels]
    report = clustering_report(labels, clusters)
    assert report["hungarian_accuracy"] == 1.0 and report["nmi"] == pytest.approx(1.0)
    assert report["ari"] == pytest.approx(1.0) and report["purity"] == 1.0


def test_hungarian_is_the_best_permutation_and_majority_may_reuse_classes():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 300)
    clusters = np.where(rng.random(300) < 0.7, labels, rng.integers(0, 3, 300))
    best = max(mapped_accuracy(labels, clusters, dict(enumerate(p))) for p in itertools.permutations(range(3)))
    assert mapped_accuracy(labels, clusters, hungarian_mapping(labels, clusters)) == pytest.approx(best)
    # two clusters of one class: majority vote maps both to it, the one-to-one matching cannot
    labels2, clusters2 = np.array([0, 0, 0, 0, 1, 1]), np.array([0, 0, 1, 1, 2, 2])
    report = clustering_report(labels2, clusters2)
    assert report["majority_accuracy"] == 1.0 and report["hungarian_accuracy"] == pytest.approx(4 / 6)
    assert report["label_distribution"] == [[2, 0], [2, 0], [0, 2]]


def test_sampled_silhouette_separates_blobs():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(0, 0.1, (200, 2)), rng.normal(5, 0.1, (200, 2))])
    clusters = np.repeat([0, 1], 200)
    assert sampled_silhouette(points, clusters, sample_size=100) > 0.9
    assert sampled_silhouette(points, rng.integers(0, 2, 400), sample_size=100) < 0.1
