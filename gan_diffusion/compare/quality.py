"""Sample quality for the comparison tables: FID and KID of generated against real images.

`score_samples` is the one place the harness computes quality. The extractor is named in
every Score and every table header:

- "auto" (the default), "inception", "lenet-mnist", "cnn-cifar10": the shared metrics API
  (`gan_diffusion.metrics.compute_metrics`, docs/metrics.md), with `backend` choosing the
  framework that extracts the features. `resolve_extractor` turns "auto" into the concrete
  name before any run starts: Inception when its weights are on disk, else the shipped
  offline network for the image shape (28x28x1 -> lenet-mnist, 32x32x3 -> cnn-cifar10, any
  other HxWx3 -> cnn-cifar10-resized32: the CIFAR-10 CNN on images resized to 32x32, any
  other HxWx1 -> lenet-mnist-resized28), whose scores are named "FID-LeNet(MNIST)",
  "FID-CNN(CIFAR-10)@32px", "FID-LeNet(MNIST)@28px" etc., never plain "FID".
- "pixels-pca64" (explicit only): a STAND-IN, not
  Inception FID. Images are flattened to [0, 1] pixels and projected on the 64 leading principal
  components of the real reference images; FID and KID are then computed on those 64-d
  features with the project's NumPy metrics (fid_from_features, kid_from_features). It is
  offline, fast and sensitive to blurry or wrong-shaped samples, but its values are not
  comparable with published FIDs.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from gan_diffusion.errors import ConfigError

DEFAULT_EXTRACTOR = "auto"          # the shared metrics API's own default
STAND_INS = {"pixels-pca64": 64}      # stand-in extractor id -> number of principal components


def resolve_extractor(extractor: str | None, image_shape: tuple[int, ...]) -> str:
    """The concrete extractor name for images of `image_shape`.

    Args:
        extractor: "auto" / None, a stand-in name (STAND_INS) or a registry name of
            gan_diffusion.metrics.extractors.EXTRACTORS.
        image_shape: (H, W, C) of the images to score.

    Returns:
        The name (never "auto"): what every run of a comparison is scored with.

    Raises:
        ConfigError: "auto" found neither the Inception weights nor an offline network for
            this shape, or a named network does not take this shape.
        UnknownNameError: an unknown name (the message lists the valid ones).

    Example:
        >>> resolve_extractor("auto", (28, 28, 1))     # without the Inception weights
        'lenet-mnist'
    """
    from gan_diffusion.metrics.extractors import auto_extractor, check_shape, get_extractor_entry

    extractor = extractor or DEFAULT_EXTRACTOR
    if extractor in STAND_INS:
        return extractor
    entry = auto_extractor(tuple(image_shape)) if extractor == "auto" else get_extractor_entry(extractor)
    check_shape(entry, tuple(image_shape), "the comparison's images")
    return entry.name


def score_label(extractor: str, metric: str) -> str:
    """Column / axis label of `metric` ("fid", "kid") under `extractor`: "FID" for Inception,
    "FID-LeNet(MNIST)" for a shipped network, "FID [pixels-pca64]" for a stand-in."""
    if extractor in STAND_INS:
        return f"{metric.upper()} [{extractor}]"
    from gan_diffusion.metrics.extractors import get_extractor_entry

    return get_extractor_entry(extractor).score_name(metric)


def extractor_note(extractor: str) -> str:
    """One sentence for tables and reports saying what the quality features are."""
    if extractor in STAND_INS:
        return (f"Quality features: {extractor}, a stand-in (FID/KID on the {STAND_INS[extractor]} "
                "leading principal components of the real images' pixels), NOT Inception FID; its "
                "values rank models of one report but are not comparable with published FIDs.")
    from gan_diffusion.metrics.extractors import get_extractor_entry

    entry = get_extractor_entry(extractor)
    if entry.name == "inception":
        return "Quality features: the FID Inception-v3 (pool3, 2048-d), the standard FID."
    return (f"Quality features: {entry.description} (scores named {entry.score_name('fid')}, "
            f"{entry.score_name('kid')}; not comparable across datasets either).")


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
        extractor: feature extractor name (default DEFAULT_EXTRACTOR, "auto"); stand-ins are
            listed in STAND_INS, anything else goes to gan_diffusion.metrics.compute_metrics.
        backend: framework extracting the features (real extractors only).
        seed: seed of KID's subset sampling.
        kid_subsets: KID subsets of min(1000, n) images each.

    Returns:
        {"fid": Score.to_dict(), "kid": Score.to_dict()}: value, std, n_real, n_fake, extractor.

    Example:
        >>> s = score_samples(fake_uint8, real_uint8)
        >>> s["fid"]["value"], s["fid"]["extractor"]
        (0.85, 'lenet-mnist@...')
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
        from gan_diffusion.metrics import compute_metrics

        # one feature extraction per image set for both scores
        scores = compute_metrics(real, fake, fid=True, kid=True, extractor=extractor,
                                 backend=backend, progress=False, kid_subsets=kid_subsets,
                                 kid_subset_size=min(1000, len(real), len(fake)), kid_seed=seed)
        fid, kid = scores["fid"], scores["kid"]
    return {"fid": fid.to_dict(), "kid": kid.to_dict()}
