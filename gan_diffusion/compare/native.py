"""`--native-rng`: each framework's own random number generator for initial weights and
training noise, instead of the shared NumPy draws of controlled mode.

What changes in a native run (everything else is as in controlled mode):

- initial weights: the same distributions as the model's NumPy init (the `native_init` of
  gan_diffusion/compare/models.py), drawn by the framework's generator (`torch.Generator`
  / `tf.random.Generator`, gan_diffusion/<backend>_backend/rng.py) seeded with the config
  seed; so TF and torch start from different weights.
- training noise: the model draws it through its `noise` attribute (TrainerBase.noise, the
  shared `gan_diffusion.noise` module by default); `apply_native_rng` sets that one
  instance's `noise` to a `NativeNoise`, which answers each stream ("latent", "interp",
  "reparam", "timestep", "diffusion", ...) from one framework generator, seeded from
  (seed, stream) and drawn sequentially, the way a framework program draws noise, instead of
  as a pure function of the global step. No module is patched: other models in the same
  process keep the shared draws.

Unchanged: the data order (the NumPy epoch permutation, gan_diffusion/data), and the
evaluation noise: the latents of `sample(seed=...)` (`noise.latent`) and the streams in
EVAL_STREAMS (diffusion sampling's x_T and step noise, the VAE's evaluation eps), so quality
is measured on the same noise in both modes. A resumed native run does not continue its noise
sequence (the generator state is not checkpointed); `compare` restarts interrupted runs
from scratch, so its runs are never resumed.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator
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


class FrameworkRNG:
    """NumPy-Generator-like `normal(loc, scale, size)` / `uniform(low, high, size)` over a
    framework generator, drawn as float32 and returned as NumPy float32 arrays. A backend's
    rng.py subclasses it and supplies only the framework calls `normal_tensor(shape)` (standard
    normal) and `uniform_tensor(shape)` (U[0, 1)), framework tensors of `shape` (a tuple)."""

    def normal_tensor(self, shape: tuple[int, ...]) -> Any:
        raise NotImplementedError

    def uniform_tensor(self, shape: tuple[int, ...]) -> Any:
        raise NotImplementedError

    def normal(self, loc: float = 0.0, scale: float = 1.0, size: Any = ()) -> np.ndarray:
        """N(loc, scale^2) of shape `size` (int, tuple or ())."""
        return (self.normal_tensor(_shape(size)) * scale + loc).numpy().astype(np.float32)

    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = ()) -> np.ndarray:
        """U[low, high) of shape `size` (int, tuple or ())."""
        return (low + (high - low) * self.uniform_tensor(_shape(size))).numpy().astype(np.float32)

    def perturbations(self, model: Any, scale: float) -> Iterator[tuple[Any, Any]]:
        """(tensor, new value) for every weight of a backend model, in its native layout:
        weight + scale * N(0, 1), and BatchNorm running variances U[0.5, 1.5). The backend's
        `perturb` (parity tests) assigns each value before the next is drawn."""
        for tensors in model._tensors.values():  # the backend's own tensors (TrainerBase hook)
            for name, (t, _) in tensors.items():
                if name.endswith("moving_variance"):
                    yield t, 0.5 + self.uniform_tensor(tuple(t.shape))
                else:
                    yield t, t + scale * self.normal_tensor(tuple(t.shape))


def _shape(size: Any) -> tuple[int, ...]:
    """NumPy's `size` argument (int, tuple or ()) as a tuple."""
    return tuple(int(s) for s in np.atleast_1d(size))


class NativeNoise:
    """A model's `noise` under --native-rng, in place of the `gan_diffusion.noise` module.

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

    Only this model instance changes (`model.noise`); nothing module-wide is patched.

    Args:
        model: a freshly built model (epoch 0).
        backend: its `Backend` (gan_diffusion.get_backend(...)).

    Returns:
        What was done, for the run record: {"init": ..., "noise": ..., "native_streams": [...],
        "unchanged": ...}.
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
    model.noise = NativeNoise(rng_mod.NativeRNG)
    return {"init": init, "noise": rng_mod.NAME,  # for this model instance only
            "native_streams": sorted(set(shared_noise.STREAMS) - set(EVAL_STREAMS)),  # those it draws
            "unchanged": ("data order (NumPy permutation), evaluation noise (noise.latent, "
                          f"streams {', '.join(EVAL_STREAMS)})")}
