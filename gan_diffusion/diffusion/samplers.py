"""DDPM ancestral sampling and DDIM, written once in NumPy against `NoiseSchedule`.

The API follows diffusers' schedulers: `set_timesteps(steps)` picks the timesteps to visit,
`step(eps, t, x_t, variance_noise)` returns x_{t'} for the next timestep t' < t (and the
predicted x_0). The network is not called here: `denoise` takes any `predict(x, t)` that
returns the predicted noise as a NumPy array, so one loop serves the TF U-Net, the torch
U-Net and a diffusers UNet2DModel alike. Random numbers are never drawn here either: the
caller passes the variance noise (from a NumPy stream), so both backends add the same noise.

With abar = alphas_cumprod, t' the next timestep (abar_{t'} = 1 when t is the last one) and
eps the predicted noise:

    x_0^ = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t),   clipped to [-1, 1] if clip_sample

    DDPM  x_{t'} = c0 x_0^ + c1 x_t + sigma z,   z ~ N(0, I) for t > 0
          c0 = sqrt(abar_{t'}) beta'_t / (1 - abar_t),  c1 = sqrt(alpha'_t) (1 - abar_{t'}) / (1 - abar_t)
          alpha'_t = abar_t / abar_{t'},  beta'_t = 1 - alpha'_t
          sigma^2 = beta'_t (1 - abar_{t'}) / (1 - abar_t)   ("fixed_small", the posterior variance)
                  = beta'_t                                  ("fixed_large")
          With all T steps, t' = t - 1 and c0, c1, sigma^2 are the schedule's posterior_mean_coef1,
          posterior_mean_coef2 and posterior_variance (Ho et al. 2020, eq. 7).

    DDIM  x_{t'} = sqrt(abar_{t'}) x_0^ + sqrt(1 - abar_{t'} - sigma^2) eps + sigma z
          sigma = eta sqrt((1 - abar_{t'}) / (1 - abar_t)) sqrt(1 - abar_t / abar_{t'})
          (Song et al. 2021, eq. 12 and 16; eta = 0 is deterministic, eta = 1 is DDPM's variance)

Timesteps for n steps out of T (diffusers' `timestep_spacing`, Lin et al. 2023, table 2):

    leading   (0, r, 2r, ...) + offset reversed, r = T // n     (diffusers' default)
    trailing  round(T, T - r, ...) - 1, r = T / n                (starts at T - 1)
    linspace  round(linspace(0, T - 1, n)) reversed

Both samplers match diffusers' DDPMScheduler / DDIMScheduler (tests/test_diffusion_core.py),
except one deliberate difference: diffusers' DDIM takes t' = t - T // n whatever the
spacing, which for "linspace" is not the next visited timestep; we always step to the next
visited timestep (as diffusers' DDPMScheduler does).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from gan_diffusion.diffusion.schedules import NoiseSchedule
from gan_diffusion.errors import ConfigError

SPACINGS = ("leading", "trailing", "linspace")
VARIANCE_TYPES = ("fixed_small", "fixed_large")
SAMPLERS = ("ddim", "ddpm")

# predict(x_t (N, H, W, C), t (N,) int64) -> predicted noise, NumPy (N, H, W, C)
Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]
# noise_fn(step index, shape) -> standard normal NumPy array of that shape
NoiseFn = Callable[[int, tuple[int, ...]], np.ndarray]


def inference_timesteps(num_train_timesteps: int, steps: int, spacing: str = "leading",
                        offset: int = 0) -> np.ndarray:
    """The timesteps a sampler visits, descending (int64, shape (steps,)).

    Example:
        >>> inference_timesteps(1000, 4).tolist(), inference_timesteps(1000, 4, "trailing").tolist()
        ([750, 500, 250, 0], [999, 749, 499, 249])
    """
    T = num_train_timesteps
    if not isinstance(steps, (int, np.integer)) or not 1 <= steps <= T:
        raise ConfigError(f"steps must be an integer in [1, {T}] (the schedule's timesteps), "
                          f"got {steps!r}")
    if spacing == "leading":
        ts = (np.arange(steps) * (T // steps)).round()[::-1].astype(np.int64) + offset
    elif spacing == "trailing":
        ts = np.round(np.arange(T, 0, -T / steps)).astype(np.int64) - 1
    elif spacing == "linspace":
        ts = np.linspace(0, T - 1, steps).round()[::-1].astype(np.int64)
    else:
        raise ConfigError(f"unknown timestep_spacing {spacing!r}; choose one of {', '.join(SPACINGS)}")
    return np.ascontiguousarray(ts)


@dataclasses.dataclass
class StepOutput:
    """x_{t'} (prev_sample) and the clipped prediction of x_0 it was built from."""

    prev_sample: np.ndarray
    pred_original_sample: np.ndarray


class _Sampler:
    """What DDPM and DDIM share: the timesteps, abar lookups and the x_0 prediction."""

    def __init__(self, schedule: NoiseSchedule, clip_sample: bool = True, clip_range: float = 1.0,
                 timestep_spacing: str = "leading", steps_offset: int = 0):
        self.schedule = schedule
        self.clip_sample, self.clip_range = bool(clip_sample), float(clip_range)
        self.timestep_spacing, self.steps_offset = timestep_spacing, int(steps_offset)
        self.set_timesteps(schedule.num_timesteps)

    def set_timesteps(self, steps: int) -> np.ndarray:
        """Choose `steps` timesteps out of T (see `inference_timesteps`); returns them."""
        self.timesteps = inference_timesteps(self.schedule.num_timesteps, steps,
                                             self.timestep_spacing, self.steps_offset)
        self._next = {int(t): int(n) for t, n in zip(self.timesteps, np.append(self.timesteps[1:], -1))}
        return self.timesteps

    @property
    def num_inference_steps(self) -> int:
        return len(self.timesteps)

    def previous_timestep(self, t: int) -> int:
        """The next timestep visited after t (-1 after the last one)."""
        try:
            return self._next[int(t)]
        except KeyError:
            raise ValueError(f"timestep {t} is not one of this sampler's timesteps "
                             f"({self.timesteps[:3].tolist()}...); call set_timesteps first") from None

    def alphas(self, t: int) -> tuple[float, float]:
        """(abar_t, abar_{t'}) as Python floats, abar_{t'} = 1 after the last step."""
        prev = self.previous_timestep(t)
        abar = self.schedule.alphas_cumprod
        return float(abar[int(t)]), (float(abar[prev]) if prev >= 0 else 1.0)

    def predict_x0(self, eps: np.ndarray, t: int, sample: np.ndarray) -> np.ndarray:
        """x_0^ = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), clipped if clip_sample."""
        a_t, _ = self.alphas(t)
        x0 = (sample - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
        return np.clip(x0, -self.clip_range, self.clip_range) if self.clip_sample else x0

    def needs_noise(self, t: int) -> bool:
        """Whether `step` at t adds noise (and so needs `variance_noise`)."""
        raise NotImplementedError

    def _noise(self, variance_noise: np.ndarray | None, like: np.ndarray) -> np.ndarray:
        if variance_noise is None:
            raise ValueError(f"{type(self).__name__}.step adds noise here: pass variance_noise "
                             "(a standard normal array from a NumPy stream, so every backend adds "
                             "the same noise)")
        noise = np.asarray(variance_noise)
        if noise.shape != like.shape:
            raise ValueError(f"variance_noise has shape {noise.shape}, expected {like.shape}")
        return noise


class DDPMSampler(_Sampler):
    """Ancestral sampling of Ho et al. (2020), any number of steps (strided as in diffusers).

    Args:
        schedule: the noise schedule the model was trained with.
        variance_type: "fixed_small" (posterior variance beta~_t) or "fixed_large" (beta_t).
        clip_sample, clip_range: clip x_0^ to [-clip_range, clip_range].
        timestep_spacing, steps_offset: how `set_timesteps` picks timesteps.

    Example:
        >>> s = DDPMSampler(make_schedule("linear"))          # all 1000 steps
        >>> out = s.step(eps, 999, x, variance_noise=z)       # out.prev_sample is x_998
    """

    def __init__(self, schedule: NoiseSchedule, variance_type: str = "fixed_small",
                 clip_sample: bool = True, clip_range: float = 1.0,
                 timestep_spacing: str = "leading", steps_offset: int = 0):
        if variance_type not in VARIANCE_TYPES:
            raise ConfigError(f"unknown variance_type {variance_type!r}; choose one of "
                              f"{', '.join(VARIANCE_TYPES)}")
        self.variance_type = variance_type
        super().__init__(schedule, clip_sample, clip_range, timestep_spacing, steps_offset)

    def coefficients(self, t: int) -> tuple[float, float, float]:
        """(c0, c1, sigma^2): x_{t'} = c0 x_0^ + c1 x_t + sigma z."""
        a_t, a_prev = self.alphas(t)
        alpha, beta = a_t / a_prev, 1 - a_t / a_prev
        c0 = a_prev ** 0.5 * beta / (1 - a_t)
        c1 = alpha ** 0.5 * (1 - a_prev) / (1 - a_t)
        var = max((1 - a_prev) / (1 - a_t) * beta, 1e-20) if self.variance_type == "fixed_small" else beta
        return c0, c1, var

    def needs_noise(self, t: int) -> bool:
        return int(t) > 0

    def step(self, model_output: np.ndarray, t: int, sample: np.ndarray,
             variance_noise: np.ndarray | None = None) -> StepOutput:
        """One ancestral step from x_t to x_{t'}.

        Args:
            model_output: predicted noise eps, the shape of `sample`.
            t: current timestep (one of `self.timesteps`).
            sample: x_t (N, H, W, C) (any shape; NumPy, any float dtype, kept).
            variance_noise: z ~ N(0, I), required when t > 0.

        Returns:
            StepOutput(prev_sample=x_{t'}, pred_original_sample=x_0^).
        """
        x0 = self.predict_x0(model_output, t, sample)
        c0, c1, var = self.coefficients(t)
        prev = c0 * x0 + c1 * sample
        if self.needs_noise(t):
            prev = prev + var ** 0.5 * self._noise(variance_noise, sample)
        return StepOutput(prev.astype(sample.dtype, copy=False), x0)


class DDIMSampler(_Sampler):
    """DDIM (Song et al. 2021): any eta >= 0 and any number of steps.

    Args:
        schedule: the noise schedule the model was trained with.
        eta: 0 for the deterministic sampler, 1 for DDPM-like noise.
        use_clipped_model_output: recompute eps from the clipped x_0^ (diffusers' option).
        clip_sample, clip_range, timestep_spacing, steps_offset: as for DDPMSampler.

    Example:
        >>> s = DDIMSampler(make_schedule("linear"))
        >>> s.set_timesteps(50)
        >>> out = s.step(eps, int(s.timesteps[0]), x)
    """

    def __init__(self, schedule: NoiseSchedule, eta: float = 0.0, use_clipped_model_output: bool = False,
                 clip_sample: bool = True, clip_range: float = 1.0,
                 timestep_spacing: str = "leading", steps_offset: int = 0):
        if not eta >= 0:
            raise ConfigError(f"DDIM eta must be >= 0, got {eta!r}")
        self.eta, self.use_clipped_model_output = float(eta), bool(use_clipped_model_output)
        super().__init__(schedule, clip_sample, clip_range, timestep_spacing, steps_offset)

    def sigma(self, t: int) -> float:
        """eta * sqrt((1 - abar_{t'}) / (1 - abar_t) * (1 - abar_t / abar_{t'}))."""
        a_t, a_prev = self.alphas(t)
        return self.eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) ** 0.5

    def needs_noise(self, t: int) -> bool:
        return self.eta > 0

    def step(self, model_output: np.ndarray, t: int, sample: np.ndarray,
             variance_noise: np.ndarray | None = None) -> StepOutput:
        """One DDIM step from x_t to x_{t'} (arguments as DDPMSampler.step; noise iff eta > 0)."""
        a_t, a_prev = self.alphas(t)
        x0 = self.predict_x0(model_output, t, sample)
        eps = model_output
        if self.use_clipped_model_output:
            eps = (sample - a_t ** 0.5 * x0) / (1 - a_t) ** 0.5
        sigma = self.sigma(t)
        prev = a_prev ** 0.5 * x0 + (1 - a_prev - sigma ** 2) ** 0.5 * eps
        if self.needs_noise(t):
            prev = prev + sigma * self._noise(variance_noise, sample)
        return StepOutput(prev.astype(sample.dtype, copy=False), x0)


def make_sampler(name: str, schedule: NoiseSchedule, steps: int | None = None, eta: float = 0.0,
                 variance_type: str = "fixed_small", clip_sample: bool = True,
                 timestep_spacing: str = "leading") -> DDPMSampler | DDIMSampler:
    """A "ddim" or "ddpm" sampler with its timesteps set (steps default: 50 for DDIM, T for DDPM).

    Example:
        >>> make_sampler("ddim", make_schedule("cosine"), steps=50).timesteps[:3].tolist()
        [980, 960, 940]
    """
    if name == "ddim":
        sampler = DDIMSampler(schedule, eta, clip_sample=clip_sample, timestep_spacing=timestep_spacing)
        sampler.set_timesteps(50 if steps is None else steps)
    elif name == "ddpm":
        if eta:
            raise ConfigError("eta applies to the DDIM sampler only (DDPM's noise is fixed by "
                              "variance_type)")
        sampler = DDPMSampler(schedule, variance_type, clip_sample=clip_sample,
                              timestep_spacing=timestep_spacing)
        sampler.set_timesteps(schedule.num_timesteps if steps is None else steps)
    else:
        raise ConfigError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return sampler


def denoise(predict: Predict, sampler: DDPMSampler | DDIMSampler, x: np.ndarray,
            noise_fn: NoiseFn | None = None, progress: bool | None = None,
            callback: Callable[[int, int, StepOutput], None] | None = None) -> np.ndarray:
    """Run a sampler from x_T to x_0.

    Args:
        predict: the network call, predict(x_t, t) -> eps (NumPy, the shape of x_t); t is an
            int64 array (N,) holding the current timestep.
        sampler: a DDPMSampler or DDIMSampler with its timesteps set.
        x: x_T (N, H, W, C), NumPy float.
        noise_fn: noise_fn(i, shape) gives the variance noise of step i (0-based); asked only
            at steps that add noise, so a counter-based stream gives the same draws whatever
            the sampler.
        progress: tqdm progress bar (None: only on a terminal).
        callback: called as callback(i, t, step_output) after every step (trajectories).

    Returns:
        x_0, the same shape and dtype as x.

    Example:
        >>> x0 = denoise(model.predict_noise, make_sampler("ddim", schedule, 50), x_T)
    """
    from tqdm.auto import tqdm

    n = x.shape[0]
    bar = tqdm(sampler.timesteps, desc=f"{type(sampler).__name__[:4].lower()} sampling",
               leave=False, disable=None if progress is None else not progress)
    for i, t in enumerate(bar):
        t = int(t)
        eps = predict(x, np.full(n, t, np.int64))
        noise = None
        if sampler.needs_noise(t):
            if noise_fn is None:
                raise ValueError("this sampler adds noise: pass noise_fn")
            noise = noise_fn(i, x.shape)
        out = sampler.step(eps, t, x, variance_noise=noise)
        x = out.prev_sample
        if callback is not None:
            callback(i, t, out)
    return x
