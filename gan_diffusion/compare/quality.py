"""Sample quality for the comparison tables: FID and KID of generated against real images.

`score_samples` is the one place the harness computes quality. The extractor is named in
every Score and every table header:

- "pixels-pca64" (the default until the shared FID API lands): a STAND-IN, not Inception
  FID. Images are flattened to [0, 1] pixels and projected on the 64 leading principal
  components of the real reference images; FID and KID are then computed on those 64-d
  features with the project's NumPy metrics (fid_from_features, kid_from_features). It is
  offline, fast and sensitive to blurry or wrong-shaped samples, but its values are not
  comparable with published FIDs.
- any other id ("auto", "inception-v3", ...) goes to `gan_diffusion.metrics.fid` / `kid`
  (the shared FID API), with `backend` choosing the framework that extracts the features.

Switching the default is one line: DEFAULT_EXTRACTOR below.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from gan_diffusion.errors import ConfigError

DEFAULT_EXTRACTOR = "pixels-pca64"   # <- "auto" once gan_diffusion.metrics.fid/kid are merged
STAND_INS = {"pixels-pca64": 64}      # stand-in extractor id -> number of principal components


def _check_images(images: Any, name: str) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim != 4 or x.dtype != np.uint8 or x.shape[-1] not in (1, 3):
        raise ConfigError(f"{name} must be uint8 NHWC images with 1 or 3 channels, got "
                          f"{x.dtype} {x.shape}")
    return x


def pca_features(real: np.ndarray, fake: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels in [0, 1] projected on the `dim` leading principal components of `real`.

    Returns:
        (real_features (N_real, dim), fake_features (N_fake, dim)), float64.
    """
    r = real.reshape(len(real), -1).astype(np.float64) / 255.0      # (N_real, H*W*C)
    f = fake.reshape(len(fake), -1).astype(np.float64) / 255.0      # (N_fake, H*W*C)
    if len(r) <= dim:
        raise ConfigError(f"the pixels-pca{dim} stand-in needs more than {dim} real images, got "
                          f"{len(r)}; raise --n-eval")
    mean = r.mean(axis=0)
    _, _, vt = np.linalg.svd(r - mean, full_matrices=False)         # vt (min(N, D), D)
    basis = vt[:dim].T                                              # (D, dim)
    return (r - mean) @ basis, (f - mean) @ basis


def score_samples(fake: np.ndarray, real: np.ndarray, extractor: str | None = None,
                  backend: str | None = None, seed: int = 0, kid_subsets: int = 50
                  ) -> dict[str, dict[str, Any]]:
    """FID and KID of generated images against real ones.

    Args:
        fake: generated images, uint8 NHWC.
        real: reference images, uint8 NHWC of the same H, W, C.
        extractor: feature extractor id (default DEFAULT_EXTRACTOR); stand-ins are listed
            in STAND_INS, anything else is passed to gan_diffusion.metrics.fid/kid.
        backend: framework extracting the features (real extractors only).
        seed: seed of KID's subset sampling.
        kid_subsets: KID subsets of min(1000, n) images each (stand-ins; the shared API
            uses its own defaults).

    Returns:
        {"fid": Score.to_dict(), "kid": Score.to_dict()}: value, std, n_real, n_fake, extractor.

    Example:
        >>> s = score_samples(fake_uint8, real_uint8)
        >>> s["fid"]["value"], s["fid"]["extractor"]
        (12.3, 'pixels-pca64')
    """
    fake, real = _check_images(fake, "fake"), _check_images(real, "real")
    if fake.shape[1:] != real.shape[1:]:
        raise ConfigError(f"fake images {fake.shape[1:]} and real images {real.shape[1:]} differ "
                          "in shape")
    extractor = extractor or DEFAULT_EXTRACTOR
    if extractor in STAND_INS:
        from gan_diffusion.metrics import fid_from_features, kid_from_features

        fr, ff = pca_features(real, fake, STAND_INS[extractor])
        how = f"pixels/255 projected on the {STAND_INS[extractor]} leading principal components of the real set"
        fid = fid_from_features(fr, ff, extractor=extractor, preprocessing=how)
        kid = kid_from_features(fr, ff, extractor=extractor, n_subsets=kid_subsets,
                                subset_size=min(1000, len(fr), len(ff)), seed=seed)
    else:
        from gan_diffusion import metrics

        if not hasattr(metrics, "fid") or not hasattr(metrics, "kid"):
            raise ConfigError(f"extractor {extractor!r} needs gan_diffusion.metrics.fid and .kid, "
                              "which this checkout does not have yet; use --extractor pixels-pca64")
        fid = metrics.fid(real, fake, extractor=extractor, backend=backend)
        kid = metrics.kid(real, fake, extractor=extractor, backend=backend)
    return {"fid": fid.to_dict(), "kid": kid.to_dict()}
