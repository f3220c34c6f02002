import numpy as np

from genlab.data.splits import HODA_FRACTIONS, stratified_split


def _labels():
    rng = np.random.default_rng(0)
    return rng.choice(10, size=5000, p=np.linspace(1, 2, 10) / np.linspace(1, 2, 10).sum())


def test_split_is_disjoint_complete_and_stratified():
    labels = _labels()
    parts = stratified_split(labels, HODA_FRACTIONS, seed=0)
    joined = np.concatenate(list(parts.values()))
    assert len(joined) == len(labels) and len(np.unique(joined)) == len(labels)
    for name, frac in HODA_FRACTIONS.items():
        counts = np.bincount(labels[parts[name]], minlength=10)
        expected = frac * np.bincount(labels, minlength=10)
        assert np.all(np.abs(counts - expected) <= 1), name


def test_split_is_deterministic_per_seed():
    labels = _labels()
    a, b, c = (stratified_split(labels, HODA_FRACTIONS, seed=s) for s in (3, 3, 4))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])
