"""Improved precision and recall (Kynkaanniemi et al. 2019), NumPy only.

Each set's manifold is approximated by the union of balls around its samples, the radius
of a ball being the distance to the sample's k-th nearest neighbour in its own set.

    precision = fraction of fake samples inside the real manifold   (fidelity)
    recall    = fraction of real samples inside the fake manifold   (coverage)

Distances are computed in row blocks of the pairwise-distance matrix (float64), so memory
stays bounded by `max_block` entries whatever the set sizes.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from gan_diffusion.metrics._checks import MetricInputError, as_features, same_dim
from gan_diffusion.metrics.score import Score

_MAX_BLOCK = 1 << 22   # entries of one distance block: 32 MiB in float64


def _blocks(n_rows: int, n_cols: int, max_block: int) -> Iterator[slice]:
    step = max(1, max_block // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _sq_dists(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (len(a), len(b)) from a (n, D), b (m, D), b_sq (m,)."""
    d = (a * a).sum(axis=1)[:, None] - 2.0 * (a @ b.T) + b_sq[None, :]
    return np.maximum(d, 0.0)


def knn_radii(x: np.ndarray, k: int = 3, max_block: int = _MAX_BLOCK) -> np.ndarray:
    """Squared distance of each row of x (N, D) to its k-th nearest other row, shape (N,).

    The sample itself counts as its 0-th neighbour (as in the reference implementation), so
    exact duplicates are neighbours at distance 0.
    """
    x_sq = (x * x).sum(axis=1)                               # (N,)
    radii = np.empty(x.shape[0])                             # (N,)
    for rows in _blocks(x.shape[0], x.shape[0], max_block):
        d = _sq_dists(x[rows], x, x_sq)                      # (B, N)
        radii[rows] = np.partition(d, k, axis=1)[:, k]
    return radii


def coverage(points: np.ndarray, centers: np.ndarray, radii: np.ndarray,
             max_block: int = _MAX_BLOCK) -> float:
    """Fraction of points (P, D) within a ball (centers (C, D), squared radii (C,))."""
    c_sq = (centers * centers).sum(axis=1)                   # (C,)
    inside = np.zeros(points.shape[0], dtype=bool)           # (P,)
    for rows in _blocks(points.shape[0], centers.shape[0], max_block):
        d = _sq_dists(points[rows], centers, c_sq)           # (B, C)
        inside[rows] = (d <= radii[None, :]).any(axis=1)
    return float(inside.mean())


def precision_recall(real_feats, fake_feats, k: int = 3,
                     max_block: int = _MAX_BLOCK) -> tuple[float, float]:
    """Improved precision and recall between real and generated features.

    Args:
        real_feats: (N_real, D) features, N_real > k.
        fake_feats: (N_fake, D) features, N_fake > k, same extractor.
        k: neighbour whose distance sets each ball's radius (paper default 3).
        max_block: largest number of pairwise distances held in memory at once.

    Returns:
        (precision, recall), each in [0, 1].

    Example:
        >>> precision_recall(real, real)   # identical sets
        (1.0, 1.0)
    """
    real = as_features(real_feats, "real_feats")             # (N_real, D)
    fake = as_features(fake_feats, "fake_feats")             # (N_fake, D)
    same_dim(real, fake, ("real_feats", "fake_feats"))
    if k < 1 or min(real.shape[0], fake.shape[0]) <= k:
        raise MetricInputError(
            f"precision/recall with k={k} needs k >= 1 and more than k samples per set, got "
            f"n_real={real.shape[0]}, n_fake={fake.shape[0]}; pass more samples or a smaller k")
    precision = coverage(fake, real, knn_radii(real, k, max_block), max_block)
    recall = coverage(real, fake, knn_radii(fake, k, max_block), max_block)
    return precision, recall


def precision_recall_from_features(real_feats, fake_feats, extractor: str = "",
                                   k: int = 3) -> tuple[Score, Score]:
    """Improved precision and recall as two Scores ("precision", "recall").

    Example:
        >>> p, r = precision_recall_from_features(real, fake, extractor="vgg16-fc2")
    """
    real = as_features(real_feats, "real_feats")
    fake = as_features(fake_feats, "fake_feats")
    precision, recall = precision_recall(real, fake, k)
    n_r, n_f = real.shape[0], fake.shape[0]
    return (Score("precision", precision, None, n_r, n_f, extractor, {"k": k}),
            Score("recall", recall, None, n_r, n_f, extractor, {"k": k}))
