"""A held-out validation split of the training set.

The validation images are never trained on. They are what calibration (temperature, thresholds)
and the choice of LogitNorm's tau look at, so the test set stays untouched until the report.
"""

from __future__ import annotations

import numpy as np

DEFAULT_VAL_SIZE = 5000


def train_val_split(
    n: int,
    val_size: int = DEFAULT_VAL_SIZE,
    seed: int = 0,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices `0..n-1` into sorted, disjoint `(train_idx, val_idx)` int64 arrays.

    Deterministic for a given `(n, val_size, seed, labels)`. With `labels`, the split is
    stratified: each class gives a share of `val_size` proportional to its size (rounded with
    largest remainders, so the total is exact), keeping the validation class balance equal to the
    training set's.
    """
    if not 0 < val_size < n:
        raise ValueError(f"val_size must be in 1..{n - 1}, got {val_size}")
    if labels is not None and len(labels) != n:
        raise ValueError(f"got {len(labels)} labels for n={n}")
    rng = np.random.default_rng(seed)
    if labels is None:
        val_idx = rng.permutation(n)[:val_size]
    else:
        val_idx = _stratified_pick(np.asarray(labels), val_size, rng)
    mask = np.zeros(n, dtype=bool)
    mask[val_idx] = True
    return np.flatnonzero(~mask).astype(np.int64), np.flatnonzero(mask).astype(np.int64)


def _stratified_pick(labels: np.ndarray, val_size: int, rng: np.random.Generator) -> np.ndarray:
    """`val_size` indices drawn per class in proportion to the class counts."""
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * val_size / len(labels)
    quota = np.floor(exact).astype(int)
    # Hand the remaining few slots to the classes with the largest rounding remainders.
    remaining = val_size - quota.sum()
    quota[np.argsort(-(exact - quota), kind="stable")[:remaining]] += 1
    picks = [
        rng.permutation(np.flatnonzero(labels == c))[:k]
        for c, k in zip(classes, quota, strict=True)
    ]
    return np.concatenate(picks)
