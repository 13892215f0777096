"""Frechet distance between Gaussians fitted to feature sets (FID when the features are
Inception-v3 pool features), in float64 with NumPy only.

    FD = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr(sqrt(S1 S2))

`frechet_distance` computes tr(sqrt(S1 S2)) from symmetric eigendecompositions (see
docs/metrics.md); `frechet_distance_sqrtm_reference` reproduces the usual SciPy `sqrtm`
formula of pytorch-fid, for comparison.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

from gan_diffusion.metrics._checks import (FewSamplesWarning, MetricInputError, MetricWarning,
                                           as_features, same_dim)
from gan_diffusion.metrics.score import Score
from gan_diffusion.weightfile import read_npz, write_npz

STATS_FORMAT = "gan_diffusion.FeatureStats/2"      # mu, sigma + JSON metadata (weightfile)
STATS_FORMAT_V1 = "gan_diffusion.FeatureStats/1"   # every field an array; still read
_FIELDS_V1 = ("format", "n", "extractor", "preprocessing", "source")
# Eigenvalues below -_NEG_TOL * (largest eigenvalue) mean "not a covariance" (an error);
# smaller negative ones are round-off and are set to 0.
_NEG_TOL = 1e-6


def feature_statistics(features, *, name: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a feature set, in float64.

    Warns (FewSamplesWarning) when n_samples <= n_features: the covariance then has rank at
    most n-1 < d, i.e. it is singular and the Frechet distance is strongly biased.

    Args:
        features: array (N, D), N >= 2, finite.
        name: how errors and warnings refer to the array.

    Returns:
        (mu, sigma): mu (D,), sigma (D, D), the unbiased covariance (np.cov, rowvar=False).

    Example:
        >>> mu, sigma = feature_statistics(np.random.default_rng(0).normal(size=(500, 8)))
        >>> mu.shape, sigma.shape
        ((8,), (8, 8))
    """
    return _fit_gaussian(as_features(features, name, min_rows=2), name, stacklevel=3)


def _fit_gaussian(x: np.ndarray, name: str, stacklevel: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of checked features x (N, D); warns when N <= D."""
    n, d = x.shape
    if n <= d:
        warnings.warn(
            f"{name}: {n} samples for {d} features; the covariance has rank <= {n - 1} < {d} "
            f"(singular), so the Frechet distance is strongly biased. Use more than {d} "
            f"samples (FID on Inception features conventionally uses 10k-50k).",
            FewSamplesWarning, stacklevel=stacklevel)
    mu = x.mean(axis=0)                                # (D,)
    sigma = np.atleast_2d(np.cov(x, rowvar=False))     # (D, D)
    return mu, sigma


@dataclass(eq=False)
class FeatureStats:
    """Gaussian statistics of one feature set, with what they were computed from.

    Attributes:
        mu: mean, float64 (D,).
        sigma: covariance, float64 (D, D).
        n: number of samples behind the statistics.
        extractor: id of the feature extractor (statistics from different extractors or
            preprocessing must not be compared).
        preprocessing: free-form description of resizing/normalisation before extraction.
        source: what the features were computed from (e.g. "mnist train split, 60000 images
            from /data/mnist"); informational, not compared.

    Example:
        >>> st = FeatureStats.from_features(feats, extractor="inception-v3-pool3")
        >>> st.save("real_stats.npz"); st2 = FeatureStats.load("real_stats.npz")
    """

    mu: np.ndarray
    sigma: np.ndarray
    n: int
    extractor: str = ""
    preprocessing: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        self.mu, self.sigma = _check_pair(self.mu, self.sigma, "mu", "sigma")
        self.n = int(self.n)

    @property
    def dim(self) -> int:
        return int(self.mu.shape[0])

    @classmethod
    def from_features(cls, features, extractor: str = "", preprocessing: str = "",
                      name: str = "features", source: str = "") -> FeatureStats:
        """Fit mean and covariance to `features` (N, D); warns when N <= D."""
        x = as_features(features, name, min_rows=2)       # (N, D)
        mu, sigma = _fit_gaussian(x, name, stacklevel=3)
        return cls(mu, sigma, x.shape[0], extractor, preprocessing, source)

    def save(self, path: str | os.PathLike) -> None:
        """Write to `path` as .npz atomically (weightfile.write_npz): mu (D,) and sigma (D, D)
        float64, n and the strings in the JSON metadata; no pickled objects."""
        meta = {"format": STATS_FORMAT, "n": self.n, "extractor": self.extractor,
                "preprocessing": self.preprocessing, "source": self.source}
        write_npz(path, {"mu": self.mu, "sigma": self.sigma}, meta)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStats:
        """Read statistics written by `save` (np.load with allow_pickle=False); files of the
        earlier layout (format .../1: every field an array) are read too."""
        arrays, meta = read_npz(path, what="FeatureStats file", error=MetricInputError,
                                require_meta=False, fix="write it with FeatureStats.save")
        if not meta:  # format /1: the fields as 0-d arrays beside mu and sigma
            meta = {k: arrays.pop(k)[()].item() for k in _FIELDS_V1 if k in arrays}
        if meta.get("format") not in (STATS_FORMAT, STATS_FORMAT_V1):
            raise MetricInputError(
                f"{path} is not a FeatureStats file (format {meta.get('format')!r}, expected "
                f"{STATS_FORMAT!r}); write it with FeatureStats.save")
        try:
            return cls(arrays["mu"], arrays["sigma"], int(meta["n"]), str(meta["extractor"]),
                       str(meta["preprocessing"]), str(meta.get("source", "")))
        except (KeyError, ValueError, TypeError) as e:   # fields missing or of the wrong kind
            raise MetricInputError(f"cannot read FeatureStats from {path}: {e!r}") from e


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), float64, >= 0.

    tr(sqrt(S1 S2)) is computed as tr(sqrt(S1^(1/2) S2 S1^(1/2))): the matrix inside is
    symmetric positive semi-definite with the same eigenvalues as S1 S2, so two symmetric
    eigendecompositions (np.linalg.eigh/eigvalsh) replace scipy.linalg.sqrtm. Eigenvalues at
    round-off level (negative, or below D * eps * largest) are set to 0, which keeps
    singular (n <= D) statistics exact; the result is real and clipped at 0, and exactly 0
    for identical statistics.

    Args:
        mu1, mu2: means (D,).
        sigma1, sigma2: symmetric positive semi-definite covariances (D, D).

    Returns:
        The squared Frechet distance as a Python float.

    Example:
        >>> frechet_distance(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))  # 2 + 2*(2-1)^2
        4.0
    """
    mu1, sigma1 = _check_pair(mu1, sigma1, "mu1", "sigma1")
    mu2, sigma2 = _check_pair(mu2, sigma2, "mu2", "sigma2")
    _check_same_dim(mu1, mu2)
    if np.array_equal(mu1, mu2) and np.array_equal(sigma1, sigma2):
        return 0.0  # d(P, P) = 0 exactly; the eigendecompositions would leave ~1e-10 of round-off
    diff = mu1 - mu2                                               # (D,)
    w1, v1 = np.linalg.eigh(sigma1)                                # (D,), (D, D)
    _check_psd(w1, "sigma1")
    b = v1 * np.sqrt(_drop_roundoff(w1))                           # (D, D): S1 = B B^T
    # B^T S2 B is orthogonally similar to S1^(1/2) S2 S1^(1/2) (S1^(1/2) = B V1^T).
    m = b.T @ sigma2 @ b                                           # (D, D)
    m = 0.5 * (m + m.T)
    w = np.linalg.eigvalsh(m)                                      # (D,)
    _check_psd(w, "sigma2")
    tr_covmean = float(np.sqrt(_drop_roundoff(w)).sum())
    fd = float(diff @ diff) + float(np.trace(sigma1)) + float(np.trace(sigma2)) - 2 * tr_covmean
    return max(fd, 0.0)


def frechet_distance_sqrtm_reference(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """The Frechet distance as pytorch-fid computes it, for comparison only.

    A reproduction of the formula in `pytorch_fid.fid_score.calculate_frechet_distance`
    (pytorch-fid itself cannot be installed here: it imports torchvision): the matrix square
    root of the non-symmetric product S1 S2 by scipy.linalg.sqrtm; if it is not finite, retry
    with eps*I added to both covariances; drop the imaginary part (an error if the diagonal's
    imaginary part exceeds 1e-3). Unlike `frechet_distance` it can return small negative
    values, and it is several times slower at D=2048.

    Args:
        mu1, mu2: means (D,).
        sigma1, sigma2: covariances (D, D).
        eps: diagonal offset for the retry.

    Returns:
        The squared Frechet distance as a Python float.

    Example:
        >>> frechet_distance_sqrtm_reference(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))
        4.0
    """
    from scipy import linalg  # heavy import, only needed here

    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise MetricInputError(
            f"mismatched statistics: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs "
            f"{sigma2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)                        # (D, D), maybe complex
    if not np.isfinite(covmean).all():
        warnings.warn(f"singular product of covariances; adding {eps} to their diagonals",
                      MetricWarning, stacklevel=2)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_stats(real: FeatureStats, fake: FeatureStats) -> Score:
    """Frechet distance between two FeatureStats, as a Score.

    Raises MetricInputError if their extractor or preprocessing ids differ (when both set).

    Example:
        >>> fid_from_stats(FeatureStats.load("real.npz"), FeatureStats.from_features(fake))
    """
    for attr in ("extractor", "preprocessing"):
        a, b = getattr(real, attr), getattr(fake, attr)
        if a and b and a != b:
            raise MetricInputError(
                f"real statistics use {attr} {a!r} but fake ones use {b!r}; compute both "
                f"with the same {attr}, distances across them are meaningless")
    value = frechet_distance(real.mu, real.sigma, fake.mu, fake.sigma)
    return Score("fid", value, None, real.n, fake.n, real.extractor or fake.extractor,
                 {"dim": real.dim, "preprocessing": real.preprocessing or fake.preprocessing})


def fid_from_features(real_feats, fake_feats, extractor: str = "",
                      preprocessing: str = "") -> Score:
    """Frechet distance between Gaussians fitted to two feature sets, as a Score.

    Args:
        real_feats: (N_real, D) features of real images.
        fake_feats: (N_fake, D) features of generated images, same extractor.
        extractor: id of the feature extractor, recorded in the Score.
        preprocessing: description of the preprocessing, recorded in params.

    Returns:
        Score(name="fid", value, std=None, n_real, n_fake, extractor).

    Example:
        >>> fid_from_features(real, fake, extractor="inception-v3-pool3").value
    """
    real = as_features(real_feats, "real_feats", min_rows=2)
    fake = as_features(fake_feats, "fake_feats", min_rows=2)
    same_dim(real, fake, ("real_feats", "fake_feats"))
    return fid_from_stats(
        FeatureStats.from_features(real, extractor, preprocessing, name="real_feats"),
        FeatureStats.from_features(fake, extractor, preprocessing, name="fake_feats"))


def _check_pair(mu, sigma, mu_name: str, sigma_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate a mean (D,) and covariance (D, D); return float64 copies, sigma symmetrised."""
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1:
        raise MetricInputError(f"{mu_name} must be a vector (D,), got shape {mu.shape}")
    d = mu.shape[0]
    if sigma.shape != (d, d):
        raise MetricInputError(
            f"{sigma_name} must be ({d}, {d}) to match {mu_name} {mu.shape}, got {sigma.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise MetricInputError(f"{mu_name}/{sigma_name} contain NaN or inf; recompute the "
                               f"statistics from finite features")
    scale = max(float(np.abs(sigma).max()), np.finfo(np.float64).tiny)
    if float(np.abs(sigma - sigma.T).max()) > 1e-8 * scale:
        raise MetricInputError(f"{sigma_name} is not symmetric, so it is not a covariance; "
                               f"compute it with np.cov(features, rowvar=False)")
    return mu, 0.5 * (sigma + sigma.T)


def _check_same_dim(mu1: np.ndarray, mu2: np.ndarray) -> None:
    if mu1.shape != mu2.shape:
        raise MetricInputError(
            f"statistics of different dimension: {mu1.shape[0]} vs {mu2.shape[0]} features; "
            f"both must come from the same feature extractor")


def _drop_roundoff(w: np.ndarray) -> np.ndarray:
    """Eigenvalues w (D,) with those at round-off level (< D * eps * max, or negative) set to 0.

    Singular covariances (n <= D) have D - n + 1 zero eigenvalues that eigh returns as
    +-1e-16-ish noise; sqrt would turn each into ~1e-8 and bias tr(sqrt(.)) upwards.
    """
    tol = w.shape[0] * np.finfo(np.float64).eps * max(float(w.max()), 0.0)
    return np.where(w > tol, w, 0.0)


def _check_psd(w: np.ndarray, name: str) -> None:
    """Raise if eigenvalues `w` (D,) are negative beyond round-off."""
    top = max(float(w.max()), 0.0)
    if float(w.min()) < -_NEG_TOL * top - np.finfo(np.float64).tiny:
        raise MetricInputError(
            f"{name} is not positive semi-definite (eigenvalue {w.min():.3g}, largest "
            f"{top:.3g}), so it is not a covariance; compute it with np.cov(features, "
            f"rowvar=False)")
