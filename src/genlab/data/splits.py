"""Seeded, stratified splits of a labelled pool."""

from __future__ import annotations

import numpy as np

HODA_FRACTIONS = {"train": 0.85, "val": 0.10, "test": 0.05}


def stratified_split(labels: np.ndarray, fractions: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Split indices per class in the given fractions; every split keeps the class proportions.

    Each class's indices are shuffled with ``seed``; all splits but the first get ``round(f * n)`` of
    them and the first takes the rest. Indices come back sorted.
    """
    if abs(sum(fractions.values()) - 1.0) > 1e-9:
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    names = list(fractions)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        start = 0
        for name in names[1:]:
            take = int(round(fractions[name] * len(members)))
            parts[name].append(members[start:start + take])
            start += take
        parts[names[0]].append(members[start:])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}
