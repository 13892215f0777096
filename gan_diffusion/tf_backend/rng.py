"""TensorFlow's own random number generator behind a NumPy-Generator-like interface.
Mirrors gan_diffusion/torch_backend/rng.py.

Used by `--native-rng` runs (gan_diffusion/native_rng.py): initial weights and training
noise drawn by the framework instead of the shared NumPy streams.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

NAME = "tf.random.Generator (Philox, from_seed)"


def _shape(size) -> tuple[int, ...]:
    """NumPy's `size` argument (int, tuple or ()) as a tuple."""
    return tuple(int(s) for s in np.atleast_1d(size))


class NativeRNG:
    """A seeded `tf.random.Generator`; draws come back as float32 NumPy arrays.

    Example:
        >>> NativeRNG(0).normal(0.0, 0.02, (3, 3)).dtype
        dtype('float32')
    """

    def __init__(self, seed: int):
        self.generator = tf.random.Generator.from_seed(int(seed))

    def normal(self, loc: float = 0.0, scale: float = 1.0, size=()) -> np.ndarray:
        """N(loc, scale^2) of shape `size`."""
        x = self.generator.normal(_shape(size))
        return (x * scale + loc).numpy().astype(np.float32)

    def uniform(self, low: float = 0.0, high: float = 1.0, size=()) -> np.ndarray:
        """U[low, high) of shape `size`."""
        x = self.generator.uniform(_shape(size))
        return (low + (high - low) * x).numpy().astype(np.float32)
