"""Informative chain starts: the class Gaussians' label-free twin, Gaussians of k-means clusters."""

import pytest
import torch

from genlab.data.batches import to_float
from genlab.errors import ConfigError
from genlab.sampling import ChainStarts, ClusterGaussians, SamplerConfig, fit_starts


def _two_groups(n_dark: int = 300, n_bright: int = 100) -> torch.Tensor:
    """uint8 (N, 1, 4, 4): a dark group whose pixels vary together, a bright one whose pixels vary alone."""
    g = torch.Generator().manual_seed(0)
    dark = 40 + 20 * torch.randn(n_dark, 1, 1, 1, generator=g) + torch.zeros(n_dark, 1, 4, 4)
    bright = 200 + 15 * torch.randn(n_bright, 1, 4, 4, generator=g)
    return torch.cat([dark, bright]).round().clamp(0, 255).to(torch.uint8)


def test_cluster_draws_have_each_clusters_share_mean_and_covariance():
    images = _two_groups()
    torch.manual_seed(1)
    starts = ClusterGaussians(images, clusters=2, seed=0, ridge_std=0.0)
    x, clusters = starts.sample(8000)
    bright = x.mean((1, 2, 3)) > 0
    assert torch.equal(bright, clusters == clusters[bright][0])  # each draw lies in its own cluster's group
    assert bright.float().mean().item() == pytest.approx(0.25, abs=0.02)  # drawn by cluster size, 100 of 400
    for group, draws in ((to_float(images[:300]), x[~bright]), (to_float(images[300:]), x[bright])):
        members, draws = group.flatten(1), draws.flatten(1)
        assert torch.allclose(draws.mean(0), members.mean(0), atol=0.01)
        true_cov = torch.cov(members.T, correction=0)
        assert torch.allclose(torch.cov(draws.T, correction=0), true_cov, atol=0.1 * true_cov.diagonal().max().item())
    dark_cov = torch.cov(x[~bright].flatten(1).T)
    assert dark_cov[0, 1] / dark_cov[0, 0] > 0.95  # the dark group's pixels still move together: full covariance


def test_conditional_chains_start_from_the_label_free_mixture():
    """A chain for class y starts from the whole mixture, whatever y: the starts know no classes."""
    starts = fit_starts("clusters", _two_groups(), torch.zeros(400).long(), 1, clusters=2, seed=0)
    chains = ChainStarts(SamplerConfig(start="clusters"), (1, 4, 4), torch.device("cpu"), num_classes=2,
                         gaussians=starts)
    torch.manual_seed(0)
    x = chains.fresh(4000, labels=torch.zeros(4000).long())
    assert (x.mean((1, 2, 3)) > 0).float().mean().item() == pytest.approx(0.25, abs=0.03)


def test_too_many_clusters_is_a_config_error():
    with pytest.raises(ConfigError, match="between 1 and 200") as caught:
        ClusterGaussians(_two_groups(), clusters=201)
    assert "sampler.start_clusters" in caught.value.hint


def test_fit_starts_names_each_start():
    images, labels = _two_groups(), torch.arange(400) // 300
    assert fit_starts("uniform", images, labels, 2, clusters=2, seed=0) is None
    class_starts = fit_starts("gaussian", images, labels, 2, clusters=2, seed=0)
    assert torch.allclose(class_starts.means[1], to_float(images[300:]).flatten(1).mean(0), atol=1e-6)


def test_class_clusters_never_mix_classes_and_follow_the_chains_labels():
    """Clusters found within each class: with two clusters per class, four components, none straddling a
    class; a chain of class y starts in one of y's clusters."""
    images = _two_groups(n_dark=200, n_bright=200)
    labels = torch.arange(400) // 200  # class 0 dark, class 1 bright
    starts = fit_starts("class_clusters", images, labels, 2, clusters=2, seed=0)
    assert len(starts.means) == 4
    assert starts.cluster_class.tolist() == [0, 0, 1, 1]
    assert (starts.means[:2].mean(1) < 0).all() and (starts.means[2:].mean(1) > 0).all()
    torch.manual_seed(0)
    wanted = torch.tensor([0, 1] * 500)
    x, clusters = starts.sample(1000, wanted)
    assert torch.equal(starts.cluster_class[clusters], wanted)
    assert torch.equal(x.mean((1, 2, 3)) > 0, wanted == 1)
    with pytest.raises(ConfigError, match="smallest class"):
        fit_starts("class_clusters", images, labels, 2, clusters=101, seed=0)


def test_clusters_are_found_on_one_thread_whatever_the_process_allows(monkeypatch):
    """k-means sums distances in chunks per thread, so with two threads a seed's clusters differ from one
    thread's (CIFAR-10, 50 a class): the fit runs on one thread, and a resumed or moved run starts its
    chains from the same Gaussians."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_info, threadpool_limits

    import genlab.sampling.initializers as initializers

    seen = []

    class Recording(KMeans):
        def fit_predict(self, x, *args, **kwargs):
            seen.append({pool["num_threads"] for pool in threadpool_info()})
            return super().fit_predict(x, *args, **kwargs)

    monkeypatch.setattr(initializers, "KMeans", Recording)
    with threadpool_limits(2):
        ClusterGaussians(_two_groups(), 2, seed=0, labels=torch.arange(400) % 2)
    assert seen == [{1}, {1}]  # one fit per class, each on one thread
