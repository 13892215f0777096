"""What every diffusion model shares, framework-free: sampling, guidance, figures and the
training inputs drawn from NumPy streams. Backends subclass `DiffusionModelBase` and add the
network call (`predict_noise`) and the training step.

Noise streams (gan_diffusion/noise.py), all pure functions of (seed, stream, step):

    training, step k:  t ~ U{0..T-1} from "timestep";  eps ~ N(0, I) (NHWC) from "diffusion";
                       label dropout u ~ U[0, 1) from "label" (u < p -> null class);
                       drawn through `self.noise` (TrainerBase.noise: --native-rng swaps it)
    sampling, seed s:  x_T from ("sample", step 0); the variance noise of sampler step i from
                       ("sample", step i + 1)

The sampler arithmetic runs in NumPy on the arrays the backend's network call returns, so
it is written once; the host round trip this costs per step is measured in
benchmarks/diffusion_sampling.py (well under 1 % of a step on CPU; docs/diffusion.md).
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

from gan_diffusion import noise
from gan_diffusion.errors import ConfigError
from gan_diffusion.families.base import TrainerBase
from gan_diffusion.models.unet import timestep_features
from gan_diffusion.schedulers import (NoiseSchedule, StepOutput, denoise, drop_labels, guided_predictor,
                                      make_schedule, make_scheduler)


class DiffusionModelBase(TrainerBase):
    """Sampling API and training inputs of a DDPM, on top of TrainerBase.

    A backend subclass supplies, besides TrainerBase's hooks:
        predict_noise(x, t, labels=None, ema=True) -> eps   (NumPy NHWC in, NumPy NHWC out)
    """

    def predict_noise(self, x: np.ndarray, t: np.ndarray, labels: np.ndarray | None = None,
                      ema: bool = True) -> np.ndarray:
        raise NotImplementedError

    @functools.cached_property
    def schedule(self) -> NoiseSchedule:
        """The config's noise schedule (float64 NumPy coefficients)."""
        c = self.config
        return make_schedule(c.schedule, c.timesteps, c.beta_start, c.beta_end)

    # -- training inputs, from NumPy streams (the same in both backends) -----------------
    def training_inputs(self, n: int, step: int, labels: Any = None, z: np.ndarray | None = None,
                        t: np.ndarray | None = None, drop: np.ndarray | None = None) -> dict[str, Any]:
        """Timesteps, noise, labels and coefficients of training step `step` for n images.

        Args:
            n: batch size.
            step: global step (selects the noise streams' draws).
            labels: class labels (N,) of a conditional model (None otherwise).
            z, t, drop: override the drawn noise eps (N, H, W, C), timesteps (N,) and the
                label-dropout mask (N,) bool (parity tests feed them).

        Returns:
            {"t": int64 (N,), "z": NHWC noise of sample_shape, "features": (N, ch) sinusoidal features,
             "a": sqrt(abar_t), "b": sqrt(1 - abar_t) each (N, 1, 1, 1), "labels": int64
             (N,) with dropped labels set to the null class, or None}
        """
        c = self.config
        if t is None:
            t = self.noise.integers(c.seed, "timestep", step, c.timesteps, n)
        t = np.asarray(t, np.int64)
        if t.shape != (n,) or t.min() < 0 or t.max() >= c.timesteps:
            raise ValueError(f"t must be {n} timesteps in [0, {c.timesteps}), got {t.shape}")
        if z is None:
            z = self.noise.normal(c.seed, "diffusion", step, (n, *self.sample_shape))
        z = np.asarray(z, c.dtype)
        if z.shape != (n, *self.sample_shape):
            raise ValueError(f"z (the noise) must have shape {(n, *self.sample_shape)} (NHWC), got {z.shape}")
        y = None
        if self.num_classes:
            y = self.check_labels(labels, n) if labels is not None else None
            if y is None:
                raise ValueError(f"this conditional {c.model} needs a label per image")
            if drop is None:
                drop = self.noise.uniform(c.seed, "label", step, (n,)) < c.label_dropout
            y = drop_labels(y, drop, c.null_label)
        a, b = self.schedule.forward_coefficients(t, 4)
        return {"t": t, "z": z, "features": timestep_features(t, c.base_channels, c.dtype),
                "a": a.astype(c.dtype), "b": b.astype(c.dtype), "labels": y}

    def ema_decay_at(self, k: int) -> float:
        """Decay of the k-th EMA update (k = 0, 1, ...): min(ema_decay, (1 + k) / (10 + k))
        with warmup, else ema_decay. Update: ema += (1 - decay) (w - ema)."""
        d = self.config.ema_decay
        return min(d, (1 + k) / (10 + k)) if self.config.ema_warmup else d

    # -- sampling -----------------------------------------------------------------------
    def noise_predictor(self, labels: np.ndarray | None, guidance: float | None, ema: bool = True):
        """predict(x, t) -> eps of the (EMA) U-Net, guided for a conditional model."""
        if labels is None:
            return lambda x, t: self.predict_noise(x, t, None, ema)
        w = self.config.guidance if guidance is None else float(guidance)
        return guided_predictor(lambda x, t, y: self.predict_noise(x, t, y, ema), labels,
                                self.config.null_label, w)

    def make_scheduler(self, sampler: str | None = None, steps: int | None = None,
                       eta: float | None = None):
        """The DDIM or DDPM scheduler on this model's schedule and settings (steps default: the
        config's sample_steps for DDIM, all T for DDPM; eta default: the config's eta for DDIM,
        0 for DDPM)."""
        c = self.config
        name = c.sampler if sampler is None else sampler
        if steps is None:
            steps = c.sample_steps if name == "ddim" else c.timesteps
        if eta is None:
            eta = c.eta if name == "ddim" else 0.0
        return make_scheduler(name, self.schedule, steps, eta, c.variance_type, c.clip_sample,
                              c.timestep_spacing)

    def denoise(self, x_T: np.ndarray, labels: np.ndarray | None = None, seed: int = 0,
                steps: int | None = None, sampler: str | None = None, guidance: float | None = None,
                eta: float | None = None, progress: bool | None = None, ema: bool = True, callback=None,
                batch_size: int | None = None) -> np.ndarray:
        """Run the sampler from x_T (N, H, W, C) to x_0 (float, about [-1, 1]).

        The variance noise of sampler step i is ("sample", seed, i + 1) drawn for the whole
        batch; with batch_size < N each chunk takes its rows of it, so the result does not
        depend on batch_size. `callback(i, t, step_output)` sees each chunk's steps.
        """
        s = self.make_scheduler(sampler, steps, eta)
        n = len(x_T)
        size = batch_size or n
        parts = []
        for start in range(0, n, size):
            rows = slice(start, start + size)

            def noise_fn(i: int, shape: tuple[int, ...], rows: slice = rows) -> np.ndarray:
                return noise.normal(seed, "sample", i + 1, x_T.shape)[rows].astype(x_T.dtype)

            predict = self.noise_predictor(None if labels is None else labels[rows], guidance, ema)
            parts.append(denoise(predict, s, x_T[rows], noise_fn, progress, callback))
        return np.concatenate(parts)

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of what is diffused: the images (latent diffusion: its latents)."""
        return tuple(self.config.image_shape)

    def initial_noise(self, n: int, seed: int) -> np.ndarray:
        """x_T for `sample(n, seed)`: N(0, I), (n, H, W, C) of sample_shape, from ("sample", seed, 0)."""
        return noise.normal(seed, "sample", 0, (n, *self.sample_shape)).astype(self.config.dtype)

    def sample(self, n: int, seed: int = 0, labels: Any = None, steps: int | None = None,
               sampler: str | None = None, guidance: float | None = None, eta: float | None = None,
               progress: bool | None = None, ema: bool = True, batch_size: int = 256,
               **kwargs: Any) -> np.ndarray:
        """Generate n images by reverse diffusion from seeded noise.

        Args:
            n: number of images.
            seed: the same seed gives the same x_T and step noise in every backend.
            labels: conditional models: one class for all or one per image (default 0..K-1 in turn).
            steps: sampler steps (default: config.sample_steps for DDIM, T for DDPM).
            sampler: "ddim" or "ddpm" (default: config.sampler).
            guidance: classifier-free guidance weight w (eps_u + w (eps_c - eps_u); 1 = none;
                default config.guidance); conditional models only.
            eta: DDIM noise (0 = deterministic, 1 = DDPM's; default config.eta for DDIM).
            progress: tqdm bar over the steps (None: only on a terminal).
            ema: sample with the EMA weights (default) or the raw trained weights.
            batch_size: images per network call (the result does not depend on it).

        Returns:
            uint8 (n, H, W, C).

        Example:
            >>> images = model.sample(16, seed=0, steps=50, sampler="ddim")
            >>> sevens = model.sample(8, labels=7, guidance=3.0)     # conditional model
        """
        if kwargs:
            raise ConfigError(f"{self.config.model}.sample got unknown arguments {sorted(kwargs)}; "
                              "it takes steps, sampler, guidance, eta, labels, ema, progress")
        if n <= 0:
            raise ConfigError(f"sample needs n >= 1, got {n}")
        if guidance is not None and not self.num_classes:
            raise ConfigError("guidance needs a class-conditional model (num_classes > 0; "
                              "train with --conditional)")
        y = self.check_labels(labels, n)
        x0 = self.denoise(self.initial_noise(n, seed), y, seed, steps, sampler, guidance, eta,
                          progress, ema, batch_size=batch_size)
        return self._to_uint8(x0)

    @staticmethod
    def _to_uint8(x: np.ndarray) -> np.ndarray:
        from gan_diffusion.data import from_model_range

        return from_model_range(x)

    def class_grid(self, per_class: int = 10, seed: int = 0, **kwargs: Any) -> np.ndarray:
        """Images for a per-class grid: row c holds `per_class` images of class c; column j
        starts from the same x_T in every row. kwargs: steps, sampler, guidance, eta.

        Returns:
            uint8 (num_classes * per_class, H, W, C), class-major; tile with nrow=per_class.
        """
        k = self.num_classes
        if not k:
            raise ConfigError(f"this {self.config.model} model is unconditional: no class grid")
        x_T = np.tile(self.initial_noise(per_class, seed), (k, 1, 1, 1))
        y = np.repeat(np.arange(k, dtype=np.int64), per_class)
        return self._to_uint8(self.denoise(x_T, y, seed, **kwargs))

    # -- figures ------------------------------------------------------------------------
    def trajectory(self, n: int = 8, seed: int = 0, frames: int = 10, labels: Any = None,
                   **kwargs: Any) -> np.ndarray:
        """The denoising trajectory from x_T to x_0 of `sample(n, seed, ...)`.

        Returns:
            uint8 (n * frames, H, W, C), image-major: row i shows image i at `frames` evenly
            spaced sampler steps, x_T first and x_0 last (tile with nrow=frames).
        """
        y = self.check_labels(labels, n)
        x_T = self.initial_noise(n, seed)
        s = self.make_scheduler(kwargs.get("sampler"), kwargs.get("steps"), kwargs.get("eta"))
        keep = set(np.linspace(0, s.num_inference_steps - 1, frames - 1).round().astype(int).tolist())
        shots = [x_T]

        def record(i: int, t: int, out: StepOutput) -> None:
            if i in keep:
                shots.append(out.prev_sample)

        self.denoise(x_T, y, seed, callback=record, **kwargs)
        return self._to_uint8(np.stack(shots, axis=1).reshape(-1, *x_T.shape[1:]))

    def forward_strip(self, images: np.ndarray, timesteps: Any = (0, 50, 100, 200, 300, 500, 700, 999),
                      seed: int = 0) -> np.ndarray:
        """The forward (noising) process q(x_t | x_0) of `images` at several t.

        Args:
            images: uint8 NHWC images (x_0).
            timesteps: the t shown, left to right.
            seed: the noise eps, one draw per image shared by all t (("sample", seed, 0)).

        Returns:
            uint8 (n * len(timesteps), H, W, C), image-major (tile with nrow=len(timesteps)).
        """
        from gan_diffusion.data import as_model_batch

        x0 = as_model_batch(images, self.config.image_shape).astype(np.float64)
        eps = noise.normal(seed, "sample", 0, x0.shape)
        ts = np.asarray(timesteps, np.int64)
        rows = [self.schedule.q_sample(x0, np.full(len(x0), t), eps) for t in ts]
        return self._to_uint8(np.stack(rows, axis=1).reshape(-1, *x0.shape[1:]))
