"""The code-clustering study: representations, embeddings, the K sweep, pseudo-labels, config rules."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.datasets import make_blobs

from genlab.errors import ConfigError
from genlab.eval.clustering import clustering_report
from genlab.eval.code_clusters import (EmbeddingSpec, code_representation, embed, gaussian_mixture, kmeans,
                                       kmeans_sweep, laplacian_eigenmap, pixel_representation, pseudo_labels,
                                       silhouette_values)
from genlab.eval.neighbour_heads import lowest_loss_head, neighbour_consistency_loss, neighbour_heads
from genlab.experiments.registry import get_experiment


def test_quantized_representation_is_each_images_code_vectors_flattened():
    codebook = np.arange(6, dtype=np.float32).reshape(3, 2)  # code c = (2c, 2c + 1)
    indices = np.array([[[0, 2], [1, 1]], [[2, 2], [0, 0]]])
    features = code_representation(indices, codebook, "quantized")
    assert features.shape == (2, 8)
    assert features[0].tolist() == [0, 1, 4, 5, 2, 3, 2, 3]


def test_histogram_representation_is_each_images_share_of_every_code():
    indices = np.array([[[0, 2], [2, 2]], [[1, 1], [1, 1]]])
    features = code_representation(indices, np.zeros((4, 5)), "histogram")
    assert features.tolist() == [[0.25, 0.0, 0.75, 0.0], [0.0, 1.0, 0.0, 0.0]]


def test_onehot_representation_marks_each_positions_code():
    indices = np.array([[[0, 2], [1, 1]]])  # 4 positions, 3 codes: 12 indicators
    features = code_representation(indices, np.zeros((3, 5)), "onehot")
    assert sparse.issparse(features) and features.shape == (1, 12)
    assert features.toarray()[0].tolist() == [1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0]


def test_pixel_representation_is_in_the_unit_interval():
    images = np.array([[[[0, 255], [51, 102]]]], dtype=np.uint8)
    assert pixel_representation(images) == pytest.approx(np.array([[0.0, 1.0, 0.2, 0.4]]))


def test_hungarian_pseudo_labels_recover_a_permuted_labelling_exactly():
    labels = np.repeat(np.arange(5), 20)
    clusters = np.array([3, 0, 4, 1, 2])[labels]  # the clusters are the classes under other names
    assert (pseudo_labels(labels, clusters, "hungarian") == labels).all()
    assert clustering_report(labels, clusters)["hungarian_accuracy"] == 1.0


def test_hungarian_leaves_surplus_clusters_unlabelled_and_majority_shares_classes():
    labels = np.array([0, 0, 0, 1, 1, 1, 0, 1, 1])
    clusters = np.array([2, 2, 2, 1, 1, 1, 0, 0, 0])  # three clusters, two classes; cluster 0 is mixed
    assert pseudo_labels(labels, clusters, "hungarian").tolist() == [0, 0, 0, 1, 1, 1, -1, -1, -1]
    assert pseudo_labels(labels, clusters, "majority").tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1]


def _chained_cliques(sizes: list[int]) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Fully connected groups of the given sizes, each joined to the next by one edge."""
    groups = np.repeat(np.arange(len(sizes)), sizes)
    adjacency = (groups[:, None] == groups[None, :]).astype(float)
    starts = np.cumsum([0, *sizes])
    for i in range(len(sizes) - 1):
        adjacency[starts[i], starts[i + 1]] = adjacency[starts[i + 1], starts[i]] = 1.0
    np.fill_diagonal(adjacency, 0.0)
    return sparse.csr_matrix(adjacency), groups


def test_laplacian_eigenmap_puts_each_weakly_joined_group_at_its_own_point():
    affinity, groups = _chained_cliques([30, 20, 40, 25])
    points = laplacian_eigenmap(affinity, dim=3, seed=0)
    assert points.shape == (115, 3) and np.allclose(np.linalg.norm(points, axis=1), 1.0)
    centres = np.stack([points[groups == g].mean(0) for g in range(4)])
    spread = max(np.linalg.norm(points[groups == g] - centres[g], axis=1).max() for g in range(4))
    gaps = min(np.linalg.norm(centres[a] - centres[b]) for a in range(4) for b in range(a + 1, 4))
    assert spread < 0.1 < 0.5 < gaps
    assert clustering_report(groups, kmeans(points, 4, seed=0))["hungarian_accuracy"] == 1.0


def test_embeddings_keep_the_requested_dimensions():
    points = np.random.default_rng(0).normal(size=(80, 12))
    assert embed(points, EmbeddingSpec("pca", dim=3), seed=0).shape == (80, 3)
    assert embed(points, EmbeddingSpec("spectral", dim=4, pca_dim=6, neighbors=8), seed=0).shape == (80, 4)
    assert embed(points, EmbeddingSpec("none"), seed=0) is points


def test_sparse_features_are_reduced_by_truncated_svd():
    indices = np.random.default_rng(0).integers(0, 6, size=(50, 3, 3))
    features = code_representation(indices, np.zeros((6, 2)), "onehot")
    assert embed(features, EmbeddingSpec("pca", dim=5), seed=0).shape == (50, 5)


@pytest.mark.slow
def test_umap_embedding_separates_blobs_and_repeats_for_a_seed():
    points, blobs = make_blobs(300, n_features=20, centers=3, cluster_std=1.0, random_state=0)
    spec = EmbeddingSpec("umap", dim=2, pca_dim=10, neighbors=15)
    first, again = embed(points, spec, seed=0), embed(points, spec, seed=0)
    assert first.shape == (300, 2) and np.array_equal(first, again)
    assert clustering_report(blobs, kmeans(first, 3, seed=0))["hungarian_accuracy"] == 1.0


_UMAP_THEN_THREADS = """
import torch
from sklearn.datasets import make_blobs
from genlab.eval.code_clusters import EmbeddingSpec, embed
points, _ = make_blobs(100, n_features=8, centers=2, random_state=0)
embed(points, EmbeddingSpec("umap", dim=2, pca_dim=4, neighbors=10), seed=0)
print(torch.get_num_threads())
"""


@pytest.mark.slow
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="numba's thread count equals OpenMP's on one core")
def test_umap_leaves_the_processs_openmp_thread_count_as_it_was():
    # In a fresh process: numba changes the count only the first time it runs.
    out = subprocess.run([sys.executable, "-c", _UMAP_THEN_THREADS], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.stdout.split() == ["1"]


def test_gaussian_mixture_fits_a_wide_and_a_tight_cluster_where_kmeans_cuts_halfway():
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1], 300)
    points = np.where(groups[:, None] == 0, rng.normal(0, 3, (600, 2)), rng.normal(0, 0.3, (600, 2)) + [5, 0])
    assert clustering_report(groups, gaussian_mixture(points, 2, seed=0))["hungarian_accuracy"] >= 0.97
    assert clustering_report(groups, kmeans(points, 2, seed=0))["hungarian_accuracy"] < 0.9


def test_kmeans_sweep_finds_the_number_of_blobs_by_silhouette():
    points, blobs = make_blobs(400, centers=4, cluster_std=0.5, random_state=0)
    sweep = kmeans_sweep(points, blobs, [2, 3, 4, 5, 6], seed=0, silhouette_sample=300)
    assert sweep.best_k == 4 and len(sweep.silhouette) == 5
    assert sweep.hungarian_accuracy[sweep.ks.index(4)] == 1.0
    values, clusters = silhouette_values(points, sweep.clusters[4], sample=100, seed=0)
    assert values.shape == clusters.shape == (100,) and values.mean() > 0.5


def test_kmeans_is_deterministic_for_a_seed():
    points, _ = make_blobs(300, centers=5, random_state=1)
    assert (kmeans(points, 5, seed=3) == kmeans(points, 5, seed=3)).all()


@pytest.mark.parametrize("sets, key", [({"cluster.k": 25}, "cluster.k"), ({"cluster.k_min": 1}, "cluster.k_min"),
                                       ({"model.width": 31}, "model.width"), ({"train.tau_end": 2.0}, "train.tau_end"),
                                       ({"model.quantizer": "kmeans"}, "model.quantizer"),
                                       ({"model.downsamples": 5}, "model.downsamples"),
                                       ({"cluster.embedding": "tsne"}, "cluster.embedding")])
def test_bad_config_values_name_their_key(sets, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        get_experiment("dvae-mnist").config("quick", sets)


def test_the_cluster_settings_reach_the_embedding_they_describe():
    sets = {"cluster.embedding": "scan", "cluster.embed_dim": 7, "cluster.pca_dim": 20, "cluster.neighbors": 30,
            "cluster.min_dist": 0.2, "cluster.scan_heads": 4, "cluster.scan_epochs": 3,
            "cluster.scan_entropy_weight": 2.0, "cluster.scan_hidden": 16}
    spec = get_experiment("dvae-fashion_mnist").config("quick", sets).cluster.embedding_spec()
    assert spec == EmbeddingSpec("scan", dim=7, pca_dim=20, neighbors=30, min_dist=0.2, heads=4, epochs=3,
                                 entropy_weight=2.0, hidden=16)


def test_neighbour_consistency_loss_matches_a_hand_computed_value():
    # One head, two anchors: agreements 0.5*0.5 + 0.5*0.5 = 0.5 and 1*1 = 1; the anchors' mean use is
    # (0.75, 0.25), whose negative entropy is 0.75 ln 0.75 + 0.25 ln 0.25.
    anchor = torch.tensor([[[0.5, 0.5], [1.0, 0.0]]])
    neighbour = torch.tensor([[[0.5, 0.5], [1.0, 0.0]]])
    expected = -(np.log(0.5) + np.log(1.0)) / 2 + 2.0 * (0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    assert neighbour_consistency_loss(anchor, neighbour, entropy_weight=2.0).item() == pytest.approx(expected)


def test_neighbour_heads_put_each_blob_in_its_own_cluster():
    points, blobs = make_blobs(600, n_features=10, centers=4, cluster_std=1.0, random_state=0)
    probabilities = neighbour_heads(points, classes=4, neighbors=10, heads=3, epochs=20, seed=0,
                                    entropy_weight=5.0, hidden=64, batch_size=100)
    assert probabilities.shape == (600, 4)
    assert np.allclose(probabilities.sum(1), 1.0, atol=1e-5)
    assert clustering_report(blobs, probabilities.argmax(1))["hungarian_accuracy"] == 1.0


def test_the_head_kept_is_the_one_whose_clusters_cut_fewest_neighbour_pairs():
    # Four groups of five points, each point's neighbours the rest of its group. The first head merges
    # groups 0 and 1 and splits group 3 down the middle (cutting its pairs); the second follows the groups.
    groups = np.repeat(np.arange(4), 5)
    neighbours = torch.tensor([[j for j in np.flatnonzero(groups == g) if j != i] for i, g in enumerate(groups)])
    merged_and_split = np.array([0] * 10 + [2] * 5 + [1, 1, 3, 3, 3])
    confident = lambda clusters: torch.eye(4)[clusters] * 0.97 + 0.01  # noqa: E731
    probabilities = torch.stack([confident(merged_and_split), confident(groups)])
    assert lowest_loss_head(probabilities, neighbours, entropy_weight=5.0) == 1
    assert lowest_loss_head(probabilities.flip(0), neighbours, entropy_weight=5.0) == 0


def test_neighbour_heads_repeat_for_a_seed_and_leave_the_global_random_state_alone():
    points, _ = make_blobs(200, n_features=6, centers=3, random_state=0)
    torch.manual_seed(123)
    expected_draw = torch.rand(1)
    torch.manual_seed(123)
    heads = lambda seed: neighbour_heads(points, classes=3, neighbors=5, heads=2, epochs=2, seed=seed,  # noqa: E731
                                         entropy_weight=5.0, hidden=16)
    first = heads(4)
    assert torch.rand(1) == expected_draw
    assert np.array_equal(first, heads(4))
    assert not np.array_equal(first, heads(5))
