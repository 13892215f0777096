"""Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs"), NumPy only.

KID is the unbiased estimate of the squared maximum mean discrepancy (MMD^2) between real
and generated features under the cubic polynomial kernel

    k(x, y) = (x . y / D + 1)^3,

averaged over random subsets (defaults as torch-fidelity: 100 subsets of 1000 samples).
Unlike FID it is unbiased in the number of samples, so it is ~0 (possibly slightly
negative) for two samples of the same distribution.
"""
from __future__ import annotations

import warnings

import numpy as np

from gan_diffusion.metrics._checks import (FewSamplesWarning, MetricInputError, as_features,
                                           same_dim)
from gan_diffusion.metrics.score import Score


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3,
                      gamma: float | None = None, coef0: float = 1.0) -> np.ndarray:
    """Kernel matrix (x_i . y_j * gamma + coef0) ** degree, gamma defaulting to 1/D.

    Args:
        x: (N, D) float64. y: (M, D) float64.

    Returns:
        (N, M) float64.
    """
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * gamma + coef0) ** degree


def mmd2_unbiased(x, y, degree: int = 3, gamma: float | None = None,
                  coef0: float = 1.0) -> float:
    """Unbiased MMD^2 estimate between samples x and y (Gretton et al. 2012, eq. 3).

        MMD^2_u = sum_{i!=j} k(x_i,x_j) / (m(m-1)) + sum_{i!=j} k(y_i,y_j) / (n(n-1))
                  - 2 sum_{i,j} k(x_i,y_j) / (mn)

    Args:
        x: (m, D) features, m >= 2.
        y: (n, D) features, n >= 2.
        degree, gamma, coef0: polynomial kernel parameters (gamma None means 1/D).

    Returns:
        The estimate as a float (can be slightly negative when the distributions match).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> mmd2_unbiased(rng.normal(size=(200, 4)), rng.normal(size=(200, 4)) + 1) > 0
        True
    """
    x = as_features(x, "x", min_rows=2)
    y = as_features(y, "y", min_rows=2)
    same_dim(x, y, ("x", "y"))
    return _mmd2(x, y, degree, gamma, coef0)


def _mmd2(x: np.ndarray, y: np.ndarray, degree: int, gamma: float | None,
          coef0: float) -> float:
    """Unbiased MMD^2 of checked float64 arrays x (m, D), y (n, D)."""
    m, n = x.shape[0], y.shape[0]
    k_xx = polynomial_kernel(x, x, degree, gamma, coef0)   # (m, m)
    k_yy = polynomial_kernel(y, y, degree, gamma, coef0)   # (n, n)
    k_xy = polynomial_kernel(x, y, degree, gamma, coef0)   # (m, n)
    term_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    term_yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(term_xx + term_yy - 2.0 * k_xy.mean())


def kernel_inception_distance(real_feats, fake_feats, n_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0, degree: int = 3,
                              gamma: float | None = None,
                              coef0: float = 1.0) -> tuple[float, float]:
    """KID: mean and std of the unbiased MMD^2 over random subsets.

    Each of `n_subsets` rounds draws `subset_size` real and `subset_size` fake rows without
    replacement (numpy Generator seeded with `seed`). A subset size above
    min(n_real, n_fake) is clipped to it with a FewSamplesWarning.

    Args:
        real_feats: (N_real, D) features. fake_feats: (N_fake, D), same extractor.
        n_subsets: number of subsets (torch-fidelity default 100).
        subset_size: samples per subset and side (torch-fidelity default 1000).
        seed: seed of the subset sampling.
        degree, gamma, coef0: polynomial kernel (x.y * gamma + coef0)^degree, gamma=1/D.

    Returns:
        (mean, std) over subsets; std is the population std (ddof=0) as in torch-fidelity.

    Example:
        >>> mean, std = kernel_inception_distance(real, fake, n_subsets=10, subset_size=500)
    """
    real = as_features(real_feats, "real_feats", min_rows=2)   # (N_real, D)
    fake = as_features(fake_feats, "fake_feats", min_rows=2)   # (N_fake, D)
    same_dim(real, fake, ("real_feats", "fake_feats"))
    if n_subsets < 1 or subset_size < 2:
        raise MetricInputError(f"KID needs n_subsets >= 1 and subset_size >= 2, got "
                               f"{n_subsets} and {subset_size}")
    size = min(subset_size, real.shape[0], fake.shape[0])
    if size < subset_size:
        warnings.warn(
            f"KID subset_size {subset_size} is larger than the sample sets (n_real="
            f"{real.shape[0]}, n_fake={fake.shape[0]}); using subsets of {size}. Pass more "
            f"samples or a smaller subset_size to silence this.",
            FewSamplesWarning, stacklevel=2)
    rng = np.random.default_rng(seed)
    mmds = np.empty(n_subsets)                                    # (n_subsets,)
    for i in range(n_subsets):
        r = real[rng.choice(real.shape[0], size, replace=False)]  # (size, D)
        f = fake[rng.choice(fake.shape[0], size, replace=False)]  # (size, D)
        mmds[i] = _mmd2(r, f, degree, gamma, coef0)
    return float(mmds.mean()), float(mmds.std())


def kid_from_features(real_feats, fake_feats, extractor: str = "", n_subsets: int = 100,
                      subset_size: int = 1000, seed: int = 0) -> Score:
    """KID between two feature sets as a Score (value = mean MMD^2, std over subsets).

    Example:
        >>> kid_from_features(real, fake, extractor="inception-v3-pool3").value
    """
    real = as_features(real_feats, "real_feats", min_rows=2)
    fake = as_features(fake_feats, "fake_feats", min_rows=2)
    used = min(subset_size, real.shape[0], fake.shape[0])
    mean, std = kernel_inception_distance(real, fake, n_subsets, subset_size, seed)
    return Score("kid", mean, std, real.shape[0], fake.shape[0], extractor,
                 {"n_subsets": n_subsets, "subset_size": used, "seed": seed, "degree": 3})
