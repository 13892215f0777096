"""PSNR and SSIM between image batches (reconstruction quality of VAEs/autoencoders), NumPy.

Both match tf.image.psnr / tf.image.ssim (computed here in float64 instead of float32):

    PSNR = 10 log10(data_range^2 / MSE), MSE over H, W, C per image (inf if identical)
    SSIM (Wang et al. 2004) = mean over 'valid' positions and channels of
        (2 mu_x mu_y + C1)(2 cov_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(var_x + var_y + C2)),
    local moments from an 11x11 Gaussian window (sigma 1.5), C1 = (0.01 L)^2,
    C2 = (0.03 L)^2, L = data_range.
"""
from __future__ import annotations

import numpy as np

from gan_diffusion.metrics._checks import MetricInputError
from gan_diffusion.metrics.score import Score


def _as_image_pair(a, b, data_range: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    """Check two image batches; return float64 (N, H, W, C) arrays and the data range."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise MetricInputError(f"images must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim not in (3, 4):
        raise MetricInputError(
            f"images must be NHWC (N, H, W, C) or HWC (H, W, C), got shape {a.shape}; add a "
            f"channel axis to grayscale images with x[..., None]")
    for x in (a, b):
        if not (x.dtype == np.uint8 or np.issubdtype(x.dtype, np.floating)):
            raise MetricInputError(f"images must be uint8 or float, got {x.dtype}")
    if (a.dtype == np.uint8) != (b.dtype == np.uint8):
        raise MetricInputError(
            f"one image batch is {a.dtype} and the other {b.dtype}; convert both to the same "
            f"scale first (e.g. float images in [0, 1] as x.astype(np.float64) / 255)")
    if data_range is None:
        if a.dtype != np.uint8:
            raise MetricInputError(
                "data_range is required for float images: 1.0 for [0, 1], 2.0 for [-1, 1] "
                "(it is 255 by default only for uint8)")
        data_range = 255.0
    if not data_range > 0:
        raise MetricInputError(f"data_range must be positive, got {data_range}")
    a, b = a.astype(np.float64), b.astype(np.float64)
    if a.ndim == 3:
        a, b = a[None], b[None]                              # (1, H, W, C)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise MetricInputError("images contain NaN or inf")
    return a, b, float(data_range)


def psnr(a, b, data_range: float | None = None) -> np.ndarray:
    """Peak signal-to-noise ratio per image, in dB.

    Args:
        a, b: images (N, H, W, C) or (H, W, C), both uint8 or both float.
        data_range: max - min of the pixel scale (tf's max_val); default 255 for uint8,
            required for float.

    Returns:
        float64 (N,) (N=1 for HWC input); inf where the images are identical.

    Example:
        >>> psnr(x, x_reconstructed, data_range=1.0).mean()
    """
    a, b, dr = _as_image_pair(a, b, data_range)
    mse = ((a - b) ** 2).mean(axis=(1, 2, 3))                # (N,)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(dr ** 2 / mse)


def _gaussian_window(size: int, sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian (size,); its outer product is tf's 2-D SSIM kernel."""
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-0.5 * (coords / sigma) ** 2)
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of x (N, H, W, C) with g (k,) along H and W.

    Returns (N, H-k+1, W-k+1, C).
    """
    k = g.shape[0]
    x = np.lib.stride_tricks.sliding_window_view(x, k, axis=1) @ g   # (N, H', W, C)
    return np.lib.stride_tricks.sliding_window_view(x, k, axis=2) @ g  # (N, H', W', C)


def ssim(a, b, data_range: float | None = None, filter_size: int = 11,
         filter_sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> np.ndarray:
    """Structural similarity per image (Wang et al. 2004), as tf.image.ssim.

    Local statistics use a Gaussian window without padding ('valid'); the SSIM map is
    averaged over positions per channel, then over channels.

    Args:
        a, b: images (N, H, W, C) or (H, W, C), H and W >= filter_size, both uint8 or
            both float.
        data_range: max - min of the pixel scale (tf's max_val); default 255 for uint8,
            required for float.
        filter_size, filter_sigma: Gaussian window (11, 1.5).
        k1, k2: stabilising constants (0.01, 0.03).

    Returns:
        float64 (N,) in [-1, 1] (N=1 for HWC input); 1 for identical images.

    Example:
        >>> ssim(x_uint8, y_uint8).mean()
    """
    x, y, dr = _as_image_pair(a, b, data_range)             # (N, H, W, C) each
    if min(x.shape[1:3]) < filter_size:
        raise MetricInputError(
            f"SSIM needs images of at least {filter_size}x{filter_size} pixels, got "
            f"{x.shape[1]}x{x.shape[2]}; pass a smaller filter_size")
    g = _gaussian_window(filter_size, filter_sigma)
    c1, c2 = (k1 * dr) ** 2, (k2 * dr) ** 2
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)   # (N, H', W', C)
    num0, den0 = 2.0 * mu_x * mu_y, mu_x ** 2 + mu_y ** 2
    num1 = 2.0 * _filter_valid(x * y, g)                     # 2 E[xy]
    den1 = _filter_valid(x * x + y * y, g)                   # E[x^2] + E[y^2]
    luminance = (num0 + c1) / (den0 + c1)
    cs = (num1 - num0 + c2) / (den1 - den0 + c2)             # contrast-structure
    return (luminance * cs).mean(axis=(1, 2)).mean(axis=-1)  # (N, C) -> (N,)


def mean_psnr(a, b, data_range: float | None = None) -> Score:
    """Mean and std of per-image PSNR as a Score (n_real = n_fake = N, extractor "pixels").

    Example:
        >>> mean_psnr(originals, reconstructions).value
    """
    return _mean_score("psnr", psnr(a, b, data_range), data_range)


def mean_ssim(a, b, data_range: float | None = None) -> Score:
    """Mean and std of per-image SSIM as a Score (n_real = n_fake = N, extractor "pixels").

    Example:
        >>> mean_ssim(originals, reconstructions).value
    """
    return _mean_score("ssim", ssim(a, b, data_range), data_range)


def _mean_score(name: str, values: np.ndarray, data_range: float | None) -> Score:
    n = int(values.shape[0])
    std = float(values.std()) if np.isfinite(values).all() else float("nan")
    return Score(name, float(values.mean()), std, n, n, "pixels",
                 {"data_range": data_range if data_range is not None else 255.0})
