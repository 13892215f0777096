"""DDPM ancestral sampling (Ho et al. 2020) as a scheduler, in NumPy against `NoiseSchedule`.

    x_{t'} = c0 x_0^ + c1 x_t + sigma z,   z ~ N(0, I) for t > 0
    c0 = sqrt(abar_{t'}) beta'_t / (1 - abar_t),  c1 = sqrt(alpha'_t) (1 - abar_{t'}) / (1 - abar_t)
    alpha'_t = abar_t / abar_{t'},  beta'_t = 1 - alpha'_t
    sigma^2 = beta'_t (1 - abar_{t'}) / (1 - abar_t)   ("fixed_small", the posterior variance)
            = beta'_t                                  ("fixed_large")

With all T steps, t' = t - 1 and c0, c1, sigma^2 are the schedule's posterior_mean_coef1,
posterior_mean_coef2 and posterior_variance (Ho et al. 2020, eq. 7). x_0^ comes from the
model output per `prediction_type` (base.py). Matches diffusers' DDPMScheduler
(tests/backends/test_diffusion_core.py, tests/sd/test_sd_schedulers.py).
"""
from __future__ import annotations

import numpy as np

from gan_diffusion.errors import ConfigError
from gan_diffusion.schedulers.base import SchedulerBase, StepOutput
from gan_diffusion.schedulers.schedules import NoiseSchedule

VARIANCE_TYPES = ("fixed_small", "fixed_large")


class DDPMScheduler(SchedulerBase):
    """Ancestral sampling of Ho et al. (2020), any number of steps (strided as in diffusers).

    Args:
        schedule: the noise schedule the model was trained with.
        variance_type: "fixed_small" (posterior variance beta~_t) or "fixed_large" (beta_t).
        clip_sample, clip_range: clip x_0^ to [-clip_range, clip_range].
        timestep_spacing, steps_offset: how `set_timesteps` picks timesteps.
        set_alpha_to_one: abar after the last step is 1 (True; diffusers' DDPM has no such
            option and always uses 1) or abar_0.
        prediction_type: "epsilon", "v_prediction" or "sample".

    Example:
        >>> s = DDPMScheduler(make_schedule("linear"))          # all 1000 steps
        >>> out = s.step(eps, 999, x, variance_noise=z)       # out.prev_sample is x_998
    """

    def __init__(self, schedule: NoiseSchedule, variance_type: str = "fixed_small",
                 clip_sample: bool = True, clip_range: float = 1.0,
                 timestep_spacing: str = "leading", steps_offset: int = 0, *,
                 set_alpha_to_one: bool = True, prediction_type: str = "epsilon"):
        if variance_type not in VARIANCE_TYPES:
            raise ConfigError(f"unknown variance_type {variance_type!r}; choose one of "
                              f"{', '.join(VARIANCE_TYPES)}")
        self.variance_type = variance_type
        super().__init__(schedule, clip_sample, clip_range, timestep_spacing, steps_offset,
                         set_alpha_to_one=set_alpha_to_one, prediction_type=prediction_type)

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
            model_output: the network's output (eps, v or x_0 per prediction_type), the shape
                of `sample`.
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
