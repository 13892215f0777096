"""TensorFlow's own random number generator: `NativeRNG` for `--native-rng` runs (initial
weights and training noise drawn by the framework instead of the shared NumPy streams;
gan_diffusion/compare/native.py), and `perturb` for the parity tests
(gan_diffusion.parity.perturb_native). Mirrors gan_diffusion/torch_backend/rng.py.
"""
from __future__ import annotations

from typing import Any

import tensorflow as tf

from gan_diffusion.compare.native import FrameworkRNG

NAME = "tf.random.Generator (Philox, from_seed)"


class NativeRNG(FrameworkRNG):
    """A seeded `tf.random.Generator`; draws come back as float32 NumPy arrays.

    Example:
        >>> NativeRNG(0).normal(0.0, 0.02, (3, 3)).dtype
        dtype('float32')
    """

    def __init__(self, seed: int):
        self.generator = tf.random.Generator.from_seed(int(seed))

    def normal_tensor(self, shape: tuple[int, ...]) -> tf.Tensor:
        return self.generator.normal(shape)

    def uniform_tensor(self, shape: tuple[int, ...]) -> tf.Tensor:
        return self.generator.uniform(shape)


def perturb(model: Any, seed: int, scale: float = 0.05) -> None:
    """Add scale * N(0, 1) from a `NativeRNG(seed)` to every weight of `model` (in its native
    layout), and set BatchNorm running variances to U[0.5, 1.5)."""
    for v, value in NativeRNG(seed).perturbations(model, scale):
        v.assign(value)
