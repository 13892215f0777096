"""PyTorch's own random number generator behind a NumPy-Generator-like interface.
Mirrors gan_diffusion/tf_backend/rng.py.

Used by `--native-rng` runs (gan_diffusion/native_rng.py): initial weights and training
noise drawn by the framework instead of the shared NumPy streams.
"""
from __future__ import annotations

import numpy as np
import torch

NAME = "torch.Generator (CPU, MT19937, manual_seed)"


def _shape(size) -> tuple[int, ...]:
    """NumPy's `size` argument (int, tuple or ()) as a tuple."""
    return tuple(int(s) for s in np.atleast_1d(size))


class NativeRNG:
    """A seeded `torch.Generator`; draws come back as float32 NumPy arrays.

    Example:
        >>> NativeRNG(0).normal(0.0, 0.02, (3, 3)).dtype
        dtype('float32')
    """

    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(int(seed))

    def normal(self, loc: float = 0.0, scale: float = 1.0, size=()) -> np.ndarray:
        """N(loc, scale^2) of shape `size`."""
        x = torch.randn(_shape(size), generator=self.generator)
        return (x * scale + loc).numpy().astype(np.float32)

    def uniform(self, low: float = 0.0, high: float = 1.0, size=()) -> np.ndarray:
        """U[low, high) of shape `size`."""
        x = torch.rand(_shape(size), generator=self.generator)
        return (low + (high - low) * x).numpy().astype(np.float32)
