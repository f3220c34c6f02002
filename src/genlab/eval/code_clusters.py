"""Clustering images by their discrete codes: representations, embeddings, KMeans over K, pseudo-labels.

An image's codes are a grid (H, W) of indices into a codebook (K_codes, D). Three fixed-length
representations of them:

- ``quantized``: the codebook vectors of the grid, flattened (H * W * D numbers): where each code sits,
  and which codes are alike (near codebook vectors).
- ``onehot``: one indicator per position and code (H * W * K_codes numbers, kept sparse): where each code
  sits, every two different codes equally far apart.
- ``histogram``: the share of the grid taken by each code (K_codes numbers): which codes, not where.

KMeans on such vectors directly (``embedding="none"``) finds little more than KMeans on pixels: Euclidean
distance in a space of hundreds of dimensions is a poor guide to which digit an image shows. Four
embeddings before KMeans (or a Gaussian mixture, reported beside it):

- ``pca``: the leading principal components (linear; removes noise dimensions, keeps the geometry).
- ``spectral``: Laplacian eigenmaps of the k-nearest-neighbour graph (Belkin & Niyogi 2003): images are
  close when a chain of near neighbours joins them, which follows the curved class manifolds that straight
  Euclidean distance cuts across. With each point's eigenmap scaled to unit length, KMeans on it is the
  spectral clustering of Ng, Jordan & Weiss (2001); the scaling matters (on MNIST codes, 0.81 vs 0.67
  Hungarian accuracy in a trial on 10,000 images). The graph is built on a PCA projection (neighbours are
  found faster there, and little is lost).
- ``umap``: UMAP (McInnes et al. 2018, https://arxiv.org/abs/1802.03426, through umap-learn) of the same
  PCA projection: a fuzzy k-nearest-neighbour graph laid out in a few dimensions so that its neighbourhoods
  survive. N2D (McConville et al. 2019, https://arxiv.org/abs/1908.05968) clusters an autoencoder's
  embedding this way, with ``min_dist=0`` (tight clumps) and as many dimensions as clusters, then a
  Gaussian mixture.
- ``scan``: the cluster probabilities of a SCAN head (Van Gansbeke et al. 2020; ``neighbour_heads``) trained
  on the same PCA projection so that each image and its nearest neighbours fall in one cluster; of several
  heads trained side by side, the one with the lowest loss is kept. The heads are trained on every neighbour
  pair, where the spectral and UMAP layouts keep the graph in a few coordinates (on Fashion-MNIST codes
  0.72, against 0.67 for the pixels through the same step; benchmarks/README.md).

Measured with the quick preset's VQ-VAE on all 60,000 training images, K=10, Hungarian accuracy over 3
seeds (benchmarks/dvae_clustering.py, before UMAP): MNIST plain KMeans on codes 0.54, on pixels 0.57,
spectral on codes 0.90, spectral on pixels 0.90; Fashion-MNIST 0.53, 0.47, 0.67, 0.68. The embedding, not
the codes, made the difference. On 20,000 MNIST images (one seed, 4 epochs; benchmarks/README.md) UMAP
then KMeans gives codes 0.80, pixels 0.80, a continuous autoencoder of equal size 0.79 (its Gaussian
mixture 0.92); of the code representations, quantized 0.80, onehot 0.39, histogram 0.27: which codes sit
where matters, and so does which codes are alike. The Gaussian mixture on a UMAP layout varies by about 0.1
between seeds, so compare settings over several.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import eigsh
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.decomposition import TruncatedSVD
from sklearn.manifold import TSNE
from sklearn.mixture import GaussianMixture
from sklearn.metrics import silhouette_samples
from sklearn.neighbors import kneighbors_graph
from threadpoolctl import threadpool_limits

from genlab.eval.clustering import clustering_report, hungarian_mapping, majority_mapping, sampled_silhouette
from genlab.eval.neighbour_heads import neighbour_heads

Representation = Literal["quantized", "onehot", "histogram"]
Embedding = Literal["none", "pca", "spectral", "umap", "scan"]
Features = np.ndarray | sparse.csr_matrix


def code_representation(indices: np.ndarray, codebook: np.ndarray, kind: Representation) -> Features:
    """A fixed-length float32 vector per image from its code grid ``indices`` (N, H, W); ``onehot`` as a
    sparse matrix (one nonzero per position)."""
    n = len(indices)
    if kind == "quantized":
        return codebook.astype(np.float32)[indices].reshape(n, -1)
    if kind == "onehot":
        flat = indices.reshape(n, -1)
        columns = (np.arange(flat.shape[1]) * len(codebook))[None, :] + flat
        return sparse.csr_matrix((np.ones(flat.size, dtype=np.float32), columns.ravel(),
                                  np.arange(0, flat.size + 1, flat.shape[1])), shape=(n, flat.shape[1] * len(codebook)))
    if kind == "histogram":
        flat = indices.reshape(n, -1)
        counts = np.zeros((n, len(codebook)), dtype=np.float32)
        np.add.at(counts, (np.repeat(np.arange(n), flat.shape[1]), flat.ravel()), 1.0)
        return counts / flat.shape[1]
    raise ValueError(f"unknown code representation {kind!r}")


def pixel_representation(images: np.ndarray) -> np.ndarray:
    """Raw pixels in [0, 1], flattened: the baseline representation."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


@dataclass(frozen=True)
class EmbeddingSpec:
    method: Embedding = "spectral"
    dim: int = 10  # output dimensions (pca, spectral)
    pca_dim: int = 50  # the spectral graph is built on this many principal components
    neighbors: int = 10  # k of the k-nearest-neighbour graph (spectral, umap)
    min_dist: float = 0.0  # umap: how tightly points may pack in the layout
    heads: int = 30  # scan: heads trained side by side (the lowest-loss one's probabilities are the embedding)
    epochs: int = 10  # scan: passes over the points
    entropy_weight: float = 5.0  # scan: weight of the term that keeps every cluster in use
    hidden: int = 64  # scan: hidden units of each head


def embed(features: Features, spec: EmbeddingSpec, seed: int) -> Features:
    """The representation KMeans clusters: ``features`` as they are, or a PCA, spectral, UMAP or SCAN embedding
    (the cluster probabilities of a head trained so that neighbours agree; ``spec.dim`` clusters a head)."""
    if spec.method == "none":
        return features
    if spec.method == "pca":
        return _pca(features, spec.dim, seed)
    if spec.method == "spectral":
        reduced = _pca(features, spec.pca_dim, seed)
        graph = kneighbors_graph(reduced, spec.neighbors, include_self=False, n_jobs=1)
        return laplacian_eigenmap(0.5 * (graph + graph.T), spec.dim, seed)  # i~j if either is a neighbour of the other
    if spec.method == "umap":
        return umap_embedding(_pca(features, spec.pca_dim, seed), spec.dim, spec.neighbors, spec.min_dist, seed)
    if spec.method == "scan":
        return neighbour_heads(_pca(features, spec.pca_dim, seed), spec.dim, spec.neighbors, spec.heads,
                               spec.epochs, seed, spec.entropy_weight, spec.hidden)
    raise ValueError(f"unknown embedding {spec.method!r}")


def laplacian_eigenmap(affinity: sparse.spmatrix, dim: int, seed: int) -> np.ndarray:
    """Spectral embedding of a symmetric affinity graph, rows scaled to unit length (Ng, Jordan & Weiss 2001).

    The smallest eigenvectors of the normalised Laplacian I - S are the largest of S = D^-1/2 A D^-1/2;
    Lanczos (ARPACK) finds those from sparse products alone, which on 60,000 images takes seconds where
    scikit-learn's shift-invert solver needs minutes. The first (trivial) eigenvector is dropped and the
    rest are scaled by D^-1/2, as scikit-learn's ``spectral_embedding`` does.
    """
    degree = np.asarray(affinity.sum(1)).ravel()
    scale = 1.0 / np.sqrt(np.maximum(degree, 1e-12))
    normalised = sparse.diags(scale) @ affinity @ sparse.diags(scale)
    start = np.random.default_rng(seed).random(affinity.shape[0])
    values, vectors = eigsh(normalised, k=dim + 1, which="LA", tol=0, v0=start)
    vectors = vectors[:, np.argsort(values)[::-1][1:]] * scale[:, None]
    return (vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def umap_embedding(points: np.ndarray, dim: int, neighbors: int, min_dist: float, seed: int) -> np.ndarray:
    """UMAP of ``points`` into ``dim`` dimensions. A fixed ``random_state`` makes umap-learn run on one
    thread and give the same layout for a seed.

    numba's OpenMP layer sets the process's OpenMP thread count to its own (all cores) when it first runs,
    and torch and scikit-learn share that count: afterwards they would ignore OMP_NUM_THREADS and any
    threadpool limit. ``threadpool_limits(None)`` sets nothing and restores every pool's count on exit."""
    import umap  # imported here: numba compiles on first import, which costs seconds the other embeddings skip

    neighbors = min(neighbors, len(points) - 1)
    with threadpool_limits(None):
        return umap.UMAP(n_components=dim, n_neighbors=neighbors, min_dist=min_dist, random_state=seed,
                         n_jobs=1).fit_transform(points).astype(np.float32)


def _pca(features: Features, dim: int, seed: int) -> np.ndarray:
    """Leading principal components; of a sparse matrix, its truncated SVD (no centring, which would densify it)."""
    dim = min(dim, *features.shape)
    if sparse.issparse(features):
        dim = min(dim, features.shape[1] - 1)
        return TruncatedSVD(dim, random_state=seed).fit_transform(features).astype(np.float32)
    return PCA(dim, svd_solver="randomized", random_state=seed).fit_transform(features).astype(np.float32)


def kmeans(points: Features, k: int, seed: int, n_init: int = 4) -> np.ndarray:
    """Cluster index of each point (k-means++ starts, the best of ``n_init`` runs by inertia)."""
    return KMeans(k, n_init=n_init, random_state=seed).fit_predict(points)


def gaussian_mixture(points: np.ndarray, k: int, seed: int, n_init: int = 1) -> np.ndarray:
    """Most likely component of each point under a ``k``-component Gaussian mixture with full covariances
    (fitted by EM from k-means starts, the best of ``n_init`` by likelihood): clusters of any ellipsoidal
    shape, where KMeans assumes equal spheres."""
    return GaussianMixture(k, covariance_type="full", n_init=n_init, random_state=seed).fit_predict(points)


@dataclass
class KSweep:
    """KMeans for each K of a range on one embedding: clusters, silhouettes, agreement with the labels."""

    ks: list[int]
    clusters: dict[int, np.ndarray]
    silhouette: list[float]
    hungarian_accuracy: list[float]
    majority_accuracy: list[float]
    nmi: list[float]

    @property
    def best_k(self) -> int:
        """The K of the highest silhouette."""
        return self.ks[int(np.argmax(self.silhouette))]


def kmeans_sweep(points: np.ndarray, labels: np.ndarray, ks: list[int], seed: int, silhouette_sample: int,
                 n_init: int = 4) -> KSweep:
    """KMeans for every K in ``ks``; silhouettes on a random sample of ``silhouette_sample`` points."""
    clusters = {k: kmeans(points, k, seed, n_init) for k in ks}
    reports = {k: clustering_report(labels, clusters[k]) for k in ks}
    return KSweep(ks, clusters,
                  [sampled_silhouette(points, clusters[k], silhouette_sample, seed) for k in ks],
                  [reports[k]["hungarian_accuracy"] for k in ks], [reports[k]["majority_accuracy"] for k in ks],
                  [reports[k]["nmi"] for k in ks])


def silhouette_values(points: np.ndarray, clusters: np.ndarray, sample: int,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-point silhouettes of a random sample (quadratic cost): (values, their clusters)."""
    pick = np.random.default_rng(seed).permutation(len(points))[:sample]
    return silhouette_samples(points[pick], clusters[pick]), clusters[pick]


def pseudo_labels(labels: np.ndarray, clusters: np.ndarray, mapping: Literal["hungarian", "majority"]) -> np.ndarray:
    """Each image's cluster turned into a class. Hungarian: one class per cluster (unmatched clusters -> -1);
    majority: each cluster's most frequent true class (several clusters may share one).

    Both mappings read the true labels, as clustering benchmarks do: they name the clusters, nothing more.
    Without labels, a person would name each cluster from a few of its images."""
    chosen = hungarian_mapping(labels, clusters) if mapping == "hungarian" else majority_mapping(labels, clusters)
    table = np.array([chosen.get(c, -1) for c in range(int(clusters.max()) + 1)])
    return table[clusters]


def tsne(points: np.ndarray, seed: int, pca_dim: int = 50) -> np.ndarray:
    """A 2-D t-SNE map (after PCA to ``pca_dim``, the usual speed-up) of a few thousand points."""
    reduced = _pca(points, pca_dim, seed)
    return TSNE(2, init="pca", perplexity=30, random_state=seed, n_jobs=1).fit_transform(reduced)
