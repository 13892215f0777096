"""Inception Score (Salimans et al. 2016) from class probabilities, NumPy only.

    IS = exp( E_x[ KL(p(y|x) || p(y)) ] ),   p(y) = mean over the split of p(y|x)

computed on `splits` consecutive chunks of the samples (as the original code and
torch-fidelity do); the mean and std over chunks are reported. IS lies in [1, K].
"""
from __future__ import annotations

import numpy as np
from scipy.special import xlogy

from gan_diffusion.metrics._checks import MetricInputError
from gan_diffusion.metrics.score import Score

_SUM_TOL = 1e-3


def check_probabilities(probs, name: str = "probs") -> np.ndarray:
    """Return `probs` as float64 (N, K) after checking that rows are probability vectors.

    Raises MetricInputError if not 2-D, not finite, negative, or a row sum is off 1 by more
    than 1e-3 (logits instead of probabilities, most often).
    """
    p = np.asarray(probs)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 2:
        raise MetricInputError(
            f"{name} must be class probabilities (n_samples, n_classes >= 2), got shape "
            f"{p.shape}")
    p = p.astype(np.float64, copy=False)
    hint = ("; if these are logits, apply a softmax first: "
            "scipy.special.softmax(logits, axis=1)")
    if not np.isfinite(p).all():
        raise MetricInputError(f"{name} contains NaN or inf{hint}")
    if (p < 0).any():
        raise MetricInputError(f"{name} has negative entries (min {p.min():.3g}){hint}")
    err = np.abs(p.sum(axis=1) - 1.0)                       # (N,)
    if (err > _SUM_TOL).any():
        i = int(err.argmax())
        raise MetricInputError(
            f"{name} rows must sum to 1 (within {_SUM_TOL}); row {i} sums to "
            f"{p[i].sum():.6g}{hint}")
    return p


def inception_score(probs, splits: int = 10) -> tuple[float, float]:
    """Inception Score: mean and std over `splits` chunks of exp(mean KL(p(y|x) || p(y))).

    Chunk i is rows [i*N//splits, (i+1)*N//splits), as in the original implementation.

    Args:
        probs: (N, K) class probabilities p(y|x) (softmax outputs), N >= splits.
        splits: number of chunks (default 10).

    Returns:
        (mean, std) over chunks; std is the population std (ddof=0).

    Example:
        >>> mean, std = inception_score(np.eye(10)[np.arange(1000) % 10])  # confident, balanced
        >>> round(mean, 6), std
        (10.0, 0.0)
    """
    p = check_probabilities(probs)                          # (N, K)
    n = p.shape[0]
    if splits < 1 or n < splits:
        raise MetricInputError(f"inception_score needs 1 <= splits <= n_samples, got splits="
                               f"{splits} for {n} samples; pass fewer splits")
    scores = np.empty(splits)                               # (splits,)
    for i in range(splits):
        part = p[i * n // splits:(i + 1) * n // splits]     # (n_i, K)
        py = part.mean(axis=0, keepdims=True)               # (1, K)
        kl = (xlogy(part, part) - xlogy(part, py)).sum(axis=1)  # (n_i,), 0 log 0 = 0
        scores[i] = np.exp(kl.mean())
    return float(scores.mean()), float(scores.std())


def is_from_probs(probs, splits: int = 10, extractor: str = "") -> Score:
    """Inception Score as a Score (n_real=None, n_fake=N).

    Example:
        >>> is_from_probs(softmax_outputs, extractor="inception-v3-logits").value
    """
    p = check_probabilities(probs)
    mean, std = inception_score(p, splits)
    return Score("is", mean, std, None, p.shape[0], extractor, {"splits": splits})
