"""Framework-free NumPy references of StyleGAN2's special operations (NHWC, float64),
written plainly (loops, no FFT) for the tests of both backends.
"""
from __future__ import annotations

import numpy as np

from gan_diffusion.models.stylegan2 import FIR, MBSTD_GROUP


def fir_filter(gain: float = 1.0) -> np.ndarray:
    """The normalized 2D [1, 3, 3, 1] filter (4, 4), sum = gain."""
    f = np.asarray(FIR, np.float64)
    f = np.outer(f, f)
    return f / f.sum() * gain


def upfirdn2d(x: np.ndarray, f: np.ndarray, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Upsample by zero insertion, pad (before, after) both axes, convolve (true
    convolution) with the 2D FIR `f` per channel, keep every `down`-th pixel.
    x: (N, H, W, C) -> (N, (H*up + p0 + p1 - fh + 1) // down ...)."""
    n, h, w, c = x.shape
    u = np.zeros((n, h * up, w * up, c))
    u[:, ::up, ::up] = x
    p = np.pad(u, ((0, 0), pad, pad, (0, 0)))
    fh, fw = f.shape
    oh, ow = p.shape[1] - fh + 1, p.shape[2] - fw + 1
    out = np.zeros((n, oh, ow, c))
    ff = f[::-1, ::-1]
    for i in range(fh):
        for j in range(fw):
            out += ff[i, j] * p[:, i:i + oh, j:j + ow]
    return out[:, ::down, ::down]


def upsample2d(x: np.ndarray) -> np.ndarray:
    """x2 upsampling with the FIR filter (gain 4): (N, H, W, C) -> (N, 2H, 2W, C)."""
    return upfirdn2d(x, fir_filter(4.0), up=2, pad=(2, 1))


def downsample2d(x: np.ndarray) -> np.ndarray:
    """x2 downsampling with the FIR filter: (N, H, W, C) -> (N, H/2, W/2, C)."""
    return upfirdn2d(x, fir_filter(), down=2, pad=(1, 1))


def conv2d_same(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Stride-1 'same' cross-correlation, x (N, H, W, I), w (k, k, I, O) odd k."""
    k = w.shape[0]
    p = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
    h, wd = x.shape[1:3]
    out = np.zeros((x.shape[0], h, wd, w.shape[3]))
    for i in range(k):
        for j in range(k):
            out += p[:, i:i + h, j:j + wd] @ w[i, j]
    return out


def modulate(w: np.ndarray, styles: np.ndarray) -> np.ndarray:
    """Per-sample weights w[n] = w * s[n, in]: (k, k, I, O), (N, I) -> (N, k, k, I, O)."""
    return w[None] * styles[:, None, None, :, None]


def demodulate(wn: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """w[n] / sqrt(sum over k, k, I of w[n]^2 + eps), per sample and output channel."""
    return wn / np.sqrt((wn ** 2).sum(axis=(1, 2, 3), keepdims=True) + eps)


def modulated_conv(x: np.ndarray, w: np.ndarray, styles: np.ndarray, demod: bool = True
                   ) -> np.ndarray:
    """Modulated conv with explicit per-sample weights (the fused form):
    x (N, H, W, I), w (k, k, I, O) already scaled, styles (N, I) -> (N, H, W, O)."""
    wn = modulate(w, styles)
    if demod:
        wn = demodulate(wn)
    return np.concatenate([conv2d_same(x[i:i + 1], wn[i]) for i in range(len(x))])


def minibatch_stddev(x: np.ndarray, group: int = MBSTD_GROUP) -> np.ndarray:
    """Append one channel: per group of samples (n, n + M, n + 2M, ..., M = N / G), the mean
    over H, W, C of the standard deviation across the group. (N, H, W, C) -> (..., C + 1)."""
    n = len(x)
    g = max(d for d in range(1, min(group, n) + 1) if n % d == 0)
    m = n // g
    out = np.zeros((n,))
    for j in range(m):
        members = x[j::m]                                   # (G, H, W, C)
        out[j::m] = np.sqrt(members.var(axis=0) + 1e-8).mean()
    return np.concatenate([x, np.broadcast_to(out[:, None, None, None], x.shape[:3] + (1,))], -1)
