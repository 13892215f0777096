"""What the DDPM and DDIM schedulers share: the timesteps they visit, abar lookups, the x_0
prediction and the step output (diffusers' `set_timesteps` / `step` API).

A scheduler never calls the network and never draws random numbers: `step(eps, t, x_t,
variance_noise)` takes the predicted noise and the caller's variance noise (from a NumPy
stream), so both backends add the same noise.

Timesteps for n steps out of T (diffusers' `timestep_spacing`, Lin et al. 2023, table 2):

    leading   (0, r, 2r, ...) + offset reversed, r = T // n     (diffusers' default)
    trailing  round(T, T - r, ...) - 1, r = T / n                (starts at T - 1)
    linspace  round(linspace(0, T - 1, n)) reversed

With abar = alphas_cumprod and t' the next visited timestep (abar_{t'} = 1 after the last):

    x_0^ = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t),   clipped to [-1, 1] if clip_sample
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from gan_diffusion.errors import ConfigError
from gan_diffusion.schedulers.schedules import NoiseSchedule

SPACINGS = ("leading", "trailing", "linspace")

# predict(x_t (N, H, W, C), t (N,) int64) -> predicted noise, NumPy (N, H, W, C)
Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]
# noise_fn(step index, shape) -> standard normal NumPy array of that shape
NoiseFn = Callable[[int, tuple[int, ...]], np.ndarray]


def inference_timesteps(num_train_timesteps: int, steps: int, spacing: str = "leading",
                        offset: int = 0) -> np.ndarray:
    """The timesteps a scheduler visits, descending (int64, shape (steps,)).

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


class SchedulerBase:
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
            raise ValueError(f"timestep {t} is not one of this scheduler's timesteps "
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
