"""Counter-based noise streams in NumPy, fed to every backend.

A draw is a pure function of (seed, stream, step), so both frameworks see the same noise,
and a resumed run draws exactly what an uninterrupted run would have drawn.
"""
from __future__ import annotations

import numpy as np

STREAMS = {"latent": 1, "sample": 2, "label": 3, "interp": 4, "timestep": 5, "diffusion": 6,
           "latent_g": 7}
STREAMS.update({"reparam": 8, "reparam_eval": 9})  # VAE eps: training steps, evaluation batches
# Stable Diffusion (sd/pipeline.py): x_T / img2img noise, the VAE posterior draw, scheduler noise
STREAMS.update({"sd_latents": 10, "sd_encode": 11, "sd_step": 12})
# StyleGAN2 (models/stylegan2.py step_noise): mixing draws, second latents, layer noise, PL noise
STREAMS.update({"sg2_mix": 21, "sg2_latent2": 22, "sg2_noise": 23, "sg2_pl": 24})
assert len(set(STREAMS.values())) == len(STREAMS), "noise stream ids must be unique"


def rng_for(seed: int, stream: str, step: int = 0) -> np.random.Generator:
    """The NumPy generator of one stream at one step."""
    if stream not in STREAMS:
        raise ValueError(f"unknown noise stream {stream!r}; valid: {sorted(STREAMS)}")
    return np.random.default_rng([int(seed), STREAMS[stream], int(step)])


def normal(seed: int, stream: str, step: int, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal float32 noise of `shape` for (seed, stream, step).

    Example:
        >>> z = normal(0, "latent", step=12, shape=(128, 100))
    """
    return rng_for(seed, stream, step).standard_normal(shape, dtype=np.float32)


def latent(n: int, dim: int, seed: int) -> np.ndarray:
    """Latent vectors for sampling: (n, dim) float32, a function of `seed` alone."""
    return normal(seed, "sample", 0, (n, dim))


def uniform(seed: int, stream: str, step: int, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform [0, 1) float32 noise of `shape` for (seed, stream, step)."""
    return rng_for(seed, stream, step).random(shape, dtype=np.float32)


def integers(seed: int, stream: str, step: int, high: int, shape: int | tuple[int, ...]
             ) -> np.ndarray:
    """Integers uniform in [0, high), int64 of `shape`, for (seed, stream, step) (e.g. the
    diffusion timesteps of one training step)."""
    return rng_for(seed, stream, step).integers(0, high, shape)
