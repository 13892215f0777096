"""Sanity checks any FID must pass, on real data (NumPy + SciPy; the extractor is lazy).

1. Real images against other real images of the same distribution score low.
2. The score rises monotonically with the strength of added Gaussian noise, and of blur.
3. A sample with one class removed scores worse than a sample of the full set (same size).

`fid_sanity` computes all the figures; tests/metrics/test_fid_sanity.py asserts the properties and
benchmarks/fid_sanity.py prints them (docs/metrics.md quotes them).
"""
from __future__ import annotations

from typing import Any

import numpy as np


def add_noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """uint8 images + Gaussian noise of std `sigma` (in 0-255 pixel units), rounded, clipped."""
    rng = np.random.default_rng([seed, 0x0153])
    noisy = images.astype(np.float64) + rng.normal(0.0, sigma, images.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of std `sigma` pixels over H and W of uint8 NHWC images (SciPy, 'reflect'
    borders), rounded back to uint8."""
    from scipy.ndimage import gaussian_filter

    out = gaussian_filter(images.astype(np.float64), sigma=(0, sigma, sigma, 0), mode="reflect")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def fid_sanity(reference: np.ndarray, test: np.ndarray, test_labels: np.ndarray, n: int,
               extractor: str, backend: str | None = None,
               noise_sigmas=(8.0, 16.0, 32.0, 64.0), blur_sigmas=(0.5, 1.0, 1.5, 2.0),
               drop_class: int | None = None, seed: int = 0) -> dict[str, Any]:
    """FIDs of perturbed and class-dropped test samples against a real reference sample.

    Args:
        reference: uint8 NHWC real images (e.g. a training subset) for the reference statistics.
        test: uint8 NHWC real images of the same distribution (e.g. the test split), with
            labels `test_labels`.
        n: test sample size (every compared sample has exactly n images, so the n-bias of FID
            is the same for all figures).
        extractor, backend: as metrics.fid.
        noise_sigmas, blur_sigmas: strengths, increasing.
        drop_class: the class removed for figure 3 (default: the most frequent in `test`).
        seed: which n test images are drawn, and the noise.

    Returns:
        {"real": FID of n clean test images, "noise": [(sigma, FID), ...],
         "blur": [(sigma, FID), ...], "full": FID of n test images drawn like the class-dropped
         ones, "dropped": FID of n test images without `drop_class`, "drop_class": c,
         "n_reference", "n", "extractor", "name"}.
    """
    from gan_diffusion.metrics.api import compute_metrics, extract
    from gan_diffusion.metrics.frechet import FeatureStats

    f_ref, _, ext_id, entry, be = extract(reference, extractor, backend, progress=False)
    ref = FeatureStats.from_features(f_ref, ext_id, entry.preprocessing, source="reference")
    rng = np.random.default_rng([seed, 0x5A7])
    sample = test[rng.choice(len(test), n, replace=False)]

    def score(images: np.ndarray) -> float:
        return compute_metrics(ref, images, extractor=entry, backend=be)["fid"].value

    if drop_class is None:
        drop_class = int(np.bincount(test_labels).argmax())
    keep = np.flatnonzero(test_labels != drop_class)
    full_idx = rng.choice(len(test), n, replace=False)
    drop_idx = rng.choice(keep, n, replace=False)
    return {
        "name": entry.score_name("fid"), "extractor": ext_id, "backend": be,
        "n_reference": len(reference), "n": n,
        "real": score(sample),
        "noise": [(float(s), score(add_noise(sample, s, seed))) for s in noise_sigmas],
        "blur": [(float(s), score(blur(sample, s))) for s in blur_sigmas],
        "full": score(test[full_idx]),
        "dropped": score(test[drop_idx]),
        "drop_class": drop_class,
    }
