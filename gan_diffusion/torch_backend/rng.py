"""PyTorch's own random number generator: `NativeRNG` for `--native-rng` runs (initial
weights and training noise drawn by the framework instead of the shared NumPy streams;
gan_diffusion/compare/native.py), and `perturb` for the parity tests
(gan_diffusion.parity.perturb_native). Mirrors gan_diffusion/tf_backend/rng.py.
"""
from __future__ import annotations

from typing import Any

import torch

from gan_diffusion.compare.native import FrameworkRNG

NAME = "torch.Generator (CPU, MT19937, manual_seed)"


class NativeRNG(FrameworkRNG):
    """A seeded `torch.Generator`; draws come back as float32 NumPy arrays.

    Example:
        >>> NativeRNG(0).normal(0.0, 0.02, (3, 3)).dtype
        dtype('float32')
    """

    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(int(seed))

    def normal_tensor(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator)

    def uniform_tensor(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator)


@torch.no_grad()
def perturb(model: Any, seed: int, scale: float = 0.05) -> None:
    """Add scale * N(0, 1) from a `NativeRNG(seed)` to every weight of `model` (in its native
    layout), and set BatchNorm running variances to U[0.5, 1.5)."""
    for t, value in NativeRNG(seed).perturbations(model, scale):
        t.copy_(value)
