"""Clustering against true labels: matched accuracy, NMI, ARI, purity, silhouette, label distributions."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score


def contingency(labels: np.ndarray, clusters: np.ndarray, n_classes: int | None = None,
                n_clusters: int | None = None) -> np.ndarray:
    """Counts (clusters x classes): row k is cluster k's distribution of true labels."""
    n_classes = n_classes or int(labels.max()) + 1
    n_clusters = n_clusters or int(clusters.max()) + 1
    table = np.zeros((n_clusters, n_classes), dtype=np.int64)
    np.add.at(table, (clusters, labels), 1)
    return table


def hungarian_mapping(labels: np.ndarray, clusters: np.ndarray) -> dict[int, int]:
    """The one-to-one cluster -> class assignment with the most agreements (clusters left over map to -1)."""
    table = contingency(labels, clusters)
    rows, cols = linear_sum_assignment(-table)
    mapping = {k: -1 for k in range(table.shape[0])}
    mapping.update({int(r): int(c) for r, c in zip(rows, cols)})
    return mapping


def majority_mapping(labels: np.ndarray, clusters: np.ndarray) -> dict[int, int]:
    """Each cluster -> its most frequent true class (several clusters may share a class)."""
    table = contingency(labels, clusters)
    return {k: int(table[k].argmax()) if table[k].sum() else -1 for k in range(table.shape[0])}


def mapped_accuracy(labels: np.ndarray, clusters: np.ndarray, mapping: dict[int, int]) -> float:
    predicted = np.array([mapping.get(int(c), -1) for c in range(int(clusters.max()) + 1)])[clusters]
    return float((predicted == labels).mean())


def purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    return float(contingency(labels, clusters).max(1).sum() / len(labels))


def clustering_report(labels: np.ndarray, clusters: np.ndarray) -> dict:
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    return {"hungarian_accuracy": mapped_accuracy(labels, clusters, hungarian_mapping(labels, clusters)),
            "majority_accuracy": mapped_accuracy(labels, clusters, majority_mapping(labels, clusters)),
            "nmi": float(normalized_mutual_info_score(labels, clusters)),
            "ari": float(adjusted_rand_score(labels, clusters)),
            "purity": purity(labels, clusters),
            "label_distribution": contingency(labels, clusters).tolist()}


def sampled_silhouette(features: np.ndarray, clusters: np.ndarray, sample_size: int = 5000, seed: int = 0) -> float:
    """Silhouette score on a random subset (the full score is quadratic in the number of points)."""
    if len(np.unique(clusters)) < 2:
        raise ValueError("the silhouette needs at least 2 clusters")
    size = min(sample_size, len(features))
    return float(silhouette_score(features, clusters, sample_size=size, random_state=seed))
