"""Classifier-free guidance (Ho & Salimans 2021), framework-free.

One network is trained both conditionally and unconditionally: during training each label
is replaced by the extra "null" class (index num_classes) with probability p = 0.1. At
sampling the two noise predictions are mixed with a guidance weight w:

    eps = eps_uncond + w (eps_cond - eps_uncond)

This is the convention of diffusers' `guidance_scale` and of Imagen: w = 0 is the
unconditional model, w = 1 the plain conditional model (no guidance), w > 1 strengthens the
condition. Ho & Salimans write the same mix as (1 + w') eps_cond - w' eps_uncond, so their
w' = w - 1 (their w' = 0 is our w = 1).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

# predict(x_t, t, labels) -> eps (all NumPy); labels (N,) int64
LabelPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def guided_noise(eps_cond: np.ndarray, eps_uncond: np.ndarray, w: float) -> np.ndarray:
    """eps_uncond + w (eps_cond - eps_uncond): w = 0 unconditional, w = 1 conditional.

    Example:
        >>> guided_noise(np.ones(2), np.zeros(2), 3.0).tolist()
        [3.0, 3.0]
    """
    return eps_uncond + w * (eps_cond - eps_uncond)


def drop_labels(labels: np.ndarray, drop: np.ndarray, null_label: int) -> np.ndarray:
    """Training-time label dropout: labels where `drop` is True become the null class.

    Args:
        labels: class labels (N,).
        drop: bool mask (N,), e.g. u < p for uniform draws u from a NumPy noise stream
            (p = 0.1 in Ho & Salimans), so every backend drops the same labels.
        null_label: the null class index (num_classes).

    Example:
        >>> drop_labels(np.array([3, 4]), np.array([False, True]), 10).tolist()
        [3, 10]
    """
    return np.where(np.asarray(drop, bool), null_label, np.asarray(labels)).astype(np.int64)


def guided_predictor(predict: LabelPredict, labels: np.ndarray, null_label: int, w: float
                     ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The network call of a guided sampler: predict(x, t) -> guided eps.

    w = 1 and w = 0 need one network call (conditional / null labels); any other w runs the
    conditional and unconditional halves as one batch of 2N and mixes them.
    """
    labels = np.asarray(labels, np.int64)
    null = np.full_like(labels, null_label)

    def call(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        if w == 1:
            return predict(x, t, labels)
        if w == 0:
            return predict(x, t, null)
        both = predict(np.concatenate([x, x]), np.concatenate([t, t]), np.concatenate([labels, null]))
        eps_cond, eps_uncond = np.split(both, 2)
        return guided_noise(eps_cond, eps_uncond, w).astype(x.dtype, copy=False)

    return call
