"""Input checks, error and warning types shared by the metric modules (NumPy only)."""
from __future__ import annotations

import numpy as np

from gan_diffusion.errors import GanDiffusionError


class MetricInputError(GanDiffusionError, ValueError):
    """An array given to a metric has the wrong shape, dtype or values."""


class MetricWarning(UserWarning):
    """Base class of the metrics' warnings."""


class FewSamplesWarning(MetricWarning):
    """Too few samples for a reliable statistic (e.g. a singular covariance, a clipped KID
    subset). The number is still computed, but it is biased or noisy."""


def as_features(x, name: str = "features", min_rows: int = 1) -> np.ndarray:
    """Return `x` as a finite float64 array (N, D), N >= `min_rows`, or raise MetricInputError."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise MetricInputError(
            f"{name} must be a 2-D array (n_samples, n_features), got shape {x.shape}; "
            f"flatten per-sample features with x.reshape(len(x), -1)")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise MetricInputError(f"{name} must be a real numeric array, got dtype {x.dtype}")
    x = x.astype(np.float64, copy=False)
    if x.shape[0] < min_rows or x.shape[1] < 1:
        raise MetricInputError(
            f"{name} needs at least {min_rows} samples and 1 feature, got shape {x.shape}")
    if not np.isfinite(x).all():
        bad = int(np.count_nonzero(~np.isfinite(x).all(axis=1)))
        raise MetricInputError(
            f"{name} contains NaN or inf in {bad} of {x.shape[0]} rows; drop or fix those "
            f"samples (a diverged model often produces them)")
    return x


def same_dim(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    """Raise MetricInputError unless two feature arrays (N, D) share D."""
    if a.shape[1] != b.shape[1]:
        raise MetricInputError(
            f"{names[0]} has {a.shape[1]} features per sample but {names[1]} has "
            f"{b.shape[1]}; both sets must come from the same feature extractor")
