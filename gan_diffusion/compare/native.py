"""`--native-rng`: each framework's own random number generator for initial weights and
training noise, instead of the shared NumPy draws of controlled mode.

What changes in a native run (everything else is as in controlled mode):

- initial weights: the same distributions as the model's NumPy init (the `native_init` of
  gan_diffusion/compare/models.py), drawn by the framework's generator (`torch.Generator`
  / `tf.random.Generator`, gan_diffusion/<backend>_backend/rng.py) seeded with the config
  seed; so TF and torch start from different weights.
- training noise: every `noise.normal` / `noise.uniform` / `noise.integers` call made by the
  modules of the model's class hierarchy is answered by one framework generator per stream
  ("latent", "interp", "reparam", "timestep", "diffusion", ...), seeded from (seed, stream)
  and drawn sequentially, the way a framework program draws noise, instead of as a pure
  function of the global step.

Unchanged: the data order (the NumPy epoch permutation, gan_diffusion/data), and the
evaluation noise: the latents of `sample(seed=...)` (`noise.latent`) and the streams in
EVAL_STREAMS (diffusion sampling's x_T and step noise, the VAE's evaluation eps), so quality
is measured on the same noise in both modes. A resumed native run does not continue its noise
sequence (the generator state is not checkpointed); `compare` restarts interrupted runs
from scratch, so its runs are never resumed.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any

import numpy as np

from gan_diffusion import noise as shared_noise


def stream_seed(seed: int, stream: str) -> int:
    """A 31-bit seed for one stream's framework generator, from (seed, stream)."""
    if stream not in shared_noise.STREAMS:
        raise ValueError(f"unknown noise stream {stream!r}; valid: {sorted(shared_noise.STREAMS)}")
    return int(np.random.SeedSequence([int(seed), shared_noise.STREAMS[stream], 0x6E41]
                                      ).generate_state(1)[0] >> 1)


EVAL_STREAMS = ("sample", "reparam_eval")  # evaluation noise: always the shared NumPy draws


class NativeNoise:
    """Takes the place of the `gan_diffusion.noise` module inside a model's modules.

    `normal`/`uniform`/`integers` draw from a framework generator per stream (the `seed`
    argument picks the generators; `step` is ignored: draws are sequential), except for the
    EVAL_STREAMS. Everything else, `latent` (evaluation sampling) included, is the shared
    NumPy module's.
    """

    def __init__(self, rng_cls: Any):
        self._rng_cls = rng_cls
        self._rngs: dict[tuple[int, str], Any] = {}

    def _rng(self, seed: int, stream: str) -> Any:
        key = (int(seed), stream)
        if key not in self._rngs:
            self._rngs[key] = self._rng_cls(stream_seed(seed, stream))
        return self._rngs[key]

    def normal(self, seed: int, stream: str, step: int, shape: tuple[int, ...]) -> np.ndarray:
        if stream in EVAL_STREAMS:
            return shared_noise.normal(seed, stream, step, shape)
        return self._rng(seed, stream).normal(0.0, 1.0, shape)

    def uniform(self, seed: int, stream: str, step: int, shape: tuple[int, ...]) -> np.ndarray:
        if stream in EVAL_STREAMS:
            return shared_noise.uniform(seed, stream, step, shape)
        return self._rng(seed, stream).uniform(0.0, 1.0, shape)

    def integers(self, seed: int, stream: str, step: int, high: int,
                 shape: int | tuple[int, ...]) -> np.ndarray:
        if stream in EVAL_STREAMS:
            return shared_noise.integers(seed, stream, step, high, shape)
        u = np.asarray(self._rng(seed, stream).uniform(0.0, 1.0, shape), np.float64)
        return np.minimum(np.floor(u * high), high - 1).astype(np.int64)

    def __getattr__(self, name: str) -> Any:
        return getattr(shared_noise, name)


def apply_native_rng(model: Any, backend: Any) -> dict[str, Any]:
    """Re-draw `model`'s initial weights and route its training noise through the framework.

    Args:
        model: a freshly built model (epoch 0).
        backend: its `Backend` (gan_diffusion.get_backend(...)).

    Returns:
        What was done, for the run record: {"init": ..., "noise": ..., "patched_modules": [...]}.
    """
    from gan_diffusion.compare.models import traits

    rng_mod = importlib.import_module(f"{backend.package.__name__}.rng")  # NativeRNG, NAME
    entry = traits(model.config.model)
    if entry.native_init is not None:
        model.set_weights(entry.native_init(model.config, rng_mod.NativeRNG(model.config.seed)))
        init = rng_mod.NAME
    else:
        init = ("numpy (no native_init for this model in gan_diffusion/compare/models.py; "
                "shared NumPy initial weights kept)")
    fake_module = NativeNoise(rng_mod.NativeRNG)
    patched = []
    for cls in type(model).__mro__:
        module = sys.modules.get(cls.__module__)
        if module is not None and getattr(module, "noise", None) is shared_noise:
            module.noise = fake_module
            patched.append(module.__name__)
    return {"init": init, "noise": rng_mod.NAME if patched else "numpy (no module draws noise)",
            "patched_modules": patched,
            "unchanged": "data order (NumPy permutation), evaluation latents (noise.latent)"}
