"""DDIM (Song et al. 2021) as a scheduler, in NumPy against `NoiseSchedule`.

    x_{t'} = sqrt(abar_{t'}) x_0^ + sqrt(1 - abar_{t'} - sigma^2) eps + sigma z
    sigma = eta sqrt((1 - abar_{t'}) / (1 - abar_t)) sqrt(1 - abar_t / abar_{t'})
    (Song et al. 2021, eq. 12 and 16; eta = 0 is deterministic, eta = 1 is DDPM's variance)

eps and x_0^ come from the model output per `prediction_type` (base.py). Matches diffusers'
DDIMScheduler (tests/backends/test_diffusion_core.py, tests/sd/test_sd_schedulers.py) except one
deliberate difference: diffusers' DDIM takes t' = t - T // n whatever the spacing, which for
"linspace" (and "trailing" when n does not divide T) is not the next visited timestep; we
always step to the next visited timestep (as diffusers' DDPMScheduler and keras-cv's Stable
Diffusion loop do). For "leading" (SD's configs) the two are the same.
"""
from __future__ import annotations

import numpy as np

from gan_diffusion.errors import ConfigError
from gan_diffusion.schedulers.base import SchedulerBase, StepOutput
from gan_diffusion.schedulers.schedules import NoiseSchedule


class DDIMScheduler(SchedulerBase):
    """DDIM (Song et al. 2021): any eta >= 0 and any number of steps.

    Args:
        schedule: the noise schedule the model was trained with.
        eta: 0 for the deterministic sampler, 1 for DDPM-like noise.
        use_clipped_model_output: recompute eps from the clipped x_0^ (diffusers' option).
        clip_sample, clip_range, timestep_spacing, steps_offset: as for DDPMScheduler.
        set_alpha_to_one: abar after the last step is 1 (True, diffusers' DDIM default) or
            abar_0 (False, as in SD's scheduler configs).
        prediction_type: "epsilon", "v_prediction" (SD 2.x 768 px) or "sample".

    Example:
        >>> s = DDIMScheduler(make_schedule("linear"))
        >>> s.set_timesteps(50)
        >>> out = s.step(eps, int(s.timesteps[0]), x)
    """

    def __init__(self, schedule: NoiseSchedule, eta: float = 0.0, use_clipped_model_output: bool = False,
                 clip_sample: bool = True, clip_range: float = 1.0,
                 timestep_spacing: str = "leading", steps_offset: int = 0, *,
                 set_alpha_to_one: bool = True, prediction_type: str = "epsilon"):
        if not eta >= 0:
            raise ConfigError(f"DDIM eta must be >= 0, got {eta!r}")
        self.eta, self.use_clipped_model_output = float(eta), bool(use_clipped_model_output)
        super().__init__(schedule, clip_sample, clip_range, timestep_spacing, steps_offset,
                         set_alpha_to_one=set_alpha_to_one, prediction_type=prediction_type)

    def sigma(self, t: int) -> float:
        """eta * sqrt((1 - abar_{t'}) / (1 - abar_t) * (1 - abar_t / abar_{t'}))."""
        a_t, a_prev = self.alphas(t)
        return self.eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) ** 0.5

    def needs_noise(self, t: int) -> bool:
        return self.eta > 0

    def step(self, model_output: np.ndarray, t: int, sample: np.ndarray,
             variance_noise: np.ndarray | None = None) -> StepOutput:
        """One DDIM step from x_t to x_{t'} (arguments as DDPMScheduler.step; noise iff eta > 0)."""
        a_t, a_prev = self.alphas(t)
        x0, eps = self._x0_eps(model_output, a_t, sample)
        x0 = self._clip(x0)
        if self.use_clipped_model_output:
            eps = (sample - a_t ** 0.5 * x0) / (1 - a_t) ** 0.5
        sigma = self.sigma(t)
        prev = a_prev ** 0.5 * x0 + (1 - a_prev - sigma ** 2) ** 0.5 * eps
        if self.needs_noise(t):
            prev = prev + sigma * self._noise(variance_noise, sample)
        return StepOutput(prev.astype(sample.dtype, copy=False), x0)
