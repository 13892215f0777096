"""Euler's method on the probability-flow ODE in sigma space (Karras et al. 2022, algorithm 2),
diffusers' EulerDiscreteScheduler for Stable Diffusion, in NumPy against `NoiseSchedule`.

Euler works on x_sigma = x_t / sqrt(abar_t) = x_0 + sigma eps, sigma_t = sqrt((1 - abar_t) / abar_t):

    sigmas      sigma at the visited timesteps (linear interpolation between integer t), then 0
    x_T         noise * init_noise_sigma   (init_noise_sigma = max sigma for "linspace" and
                "trailing" spacing, sqrt(max sigma^2 + 1) for "leading", as diffusers has it)
    network     m = net(x / sqrt(sigma^2 + 1), t)                     (scale_model_input)
    step        sigma^ = sigma (1 + gamma),  x <- x + sqrt(sigma^^2 - sigma^2) s_noise z  if gamma > 0
                x_0^ = x - sigma^ m (epsilon), m (sample),
                       m (-sigma / sqrt(sigma^2 + 1)) + x / (sigma^2 + 1) (v_prediction)
                x_{next} = x + (x - x_0^) / sigma^ * (sigma_next - sigma^)
    gamma       min(s_churn / n, sqrt(2) - 1) if s_tmin <= sigma <= s_tmax else 0   (0 by default:
                deterministic; with s_churn > 0 the noise z is the caller's variance_noise)
    add_noise   x_0 + sigma_t noise                                  (image-to-image)

Timesteps are floats (diffusers computes "linspace" in float32: 999.0, 978.6122..., stored here
as float64 of those float32 values); "leading" and "trailing" give whole numbers. A timestep is
looked up by value, so `step` needs no step counter (diffusers' step_index / begin_index).
"""
from __future__ import annotations

import numpy as np

from gan_diffusion.errors import ConfigError
from gan_diffusion.schedulers.base import SchedulerBase, StepOutput, inference_timesteps
from gan_diffusion.schedulers.schedules import NoiseSchedule

FINAL_SIGMAS = ("zero", "sigma_min")


class EulerDiscreteScheduler(SchedulerBase):
    """Euler (Karras et al. 2022) in diffusers' form: linear sigma interpolation, no Karras sigmas.

    Args:
        schedule: the noise schedule the model was trained with.
        timestep_spacing: "linspace" (diffusers' default for Euler), "leading" or "trailing".
        steps_offset: added to "leading" timesteps.
        prediction_type: "epsilon", "v_prediction" or "sample".
        final_sigmas_type: the sigma after the last step: "zero" or "sigma_min" (sigma_0).
        s_churn, s_tmin, s_tmax, s_noise: Karras et al.'s stochasticity (diffusers' step
            arguments, here fixed per scheduler so `needs_noise` can tell the loop).

    Example:
        >>> s = EulerDiscreteScheduler(make_schedule("scaled_linear")); s.set_timesteps(25)
        >>> x = noise * s.init_noise_sigma
        >>> t = s.timesteps[0]
        >>> x = s.step(net(s.scale_model_input(x, t), t), t, x).prev_sample
    """

    def __init__(self, schedule: NoiseSchedule, timestep_spacing: str = "linspace", steps_offset: int = 0,
                 *, prediction_type: str = "epsilon", final_sigmas_type: str = "zero",
                 s_churn: float = 0.0, s_tmin: float = 0.0, s_tmax: float = float("inf"),
                 s_noise: float = 1.0):
        if final_sigmas_type not in FINAL_SIGMAS:
            raise ConfigError(f"unknown final_sigmas_type {final_sigmas_type!r}; choose one of "
                              f"{', '.join(FINAL_SIGMAS)}")
        if not s_churn >= 0:
            raise ConfigError(f"Euler s_churn must be >= 0, got {s_churn!r}")
        self.final_sigmas_type = final_sigmas_type
        self.s_churn, self.s_tmin, self.s_tmax, self.s_noise = (float(s_churn), float(s_tmin),
                                                                float(s_tmax), float(s_noise))
        abar = schedule.alphas_cumprod
        self.train_sigmas = np.sqrt((1 - abar) / abar)          # (T,) sigma at every integer t
        super().__init__(schedule, False, 1.0, timestep_spacing, steps_offset,
                         set_alpha_to_one=True, prediction_type=prediction_type)

    def set_timesteps(self, steps: int) -> np.ndarray:
        """Choose `steps` timesteps (float64, descending) and their sigmas; returns the timesteps."""
        T = self.schedule.num_timesteps
        ts = inference_timesteps(T, steps, self.timestep_spacing, self.steps_offset)  # validates
        if self.timestep_spacing == "linspace":    # unrounded, in float32 as diffusers has it
            ts = np.linspace(0, T - 1, steps, dtype=np.float32)[::-1]
        self.timesteps = np.ascontiguousarray(ts, dtype=np.float64)
        last = 0.0 if self.final_sigmas_type == "zero" else float(self.train_sigmas[0])
        # (steps + 1,) sigma at each visited timestep, then the final one
        self.sigmas = np.append(np.interp(self.timesteps, np.arange(T), self.train_sigmas), last)
        self._index = {float(t): i for i, t in enumerate(self.timesteps)}
        self._num_inference_steps = int(steps)
        return self.timesteps

    @property
    def init_noise_sigma(self) -> float:
        """max sigma for "linspace" / "trailing", sqrt(max sigma^2 + 1) for "leading" (diffusers)."""
        top = float(self.sigmas.max())
        return top if self.timestep_spacing in ("linspace", "trailing") else (top ** 2 + 1) ** 0.5

    def index(self, t: float) -> int:
        """The position of timestep t in self.timesteps."""
        try:
            return self._index[float(t)]
        except KeyError:
            raise ValueError(f"timestep {t} is not one of this scheduler's timesteps "
                             f"({self.timesteps[:3].tolist()}...); call set_timesteps first") from None

    def sigma(self, t: float) -> float:
        """sigma at the visited timestep t."""
        return float(self.sigmas[self.index(t)])

    def previous_timestep(self, t: float) -> float:
        """The next timestep visited after t (-1 after the last one)."""
        i = self.index(t) + 1
        return float(self.timesteps[i]) if i < len(self.timesteps) else -1.0

    def alphas(self, t: float) -> tuple[float, float]:
        raise TypeError("EulerDiscreteScheduler works in sigma space: use sigma(t), not alphas(t)")

    def scale_model_input(self, sample: np.ndarray, t: float) -> np.ndarray:
        """x / sqrt(sigma_t^2 + 1): the network sees a unit-variance x_t, as in training."""
        return (sample / (self.sigma(t) ** 2 + 1) ** 0.5).astype(sample.dtype, copy=False)

    def add_noise(self, original: np.ndarray, noise: np.ndarray, t) -> np.ndarray:
        """x_0 + sigma_t noise, t one visited timestep or one per sample (N,)."""
        original = np.asarray(original)
        sig = np.array([self.sigma(v) for v in np.atleast_1d(t)]).reshape((-1,) + (1,) * (original.ndim - 1))
        return (original + sig * noise).astype(original.dtype, copy=False)

    def _gamma(self, sigma: float) -> float:
        n = len(self.sigmas) - 1
        return min(self.s_churn / n, 2 ** 0.5 - 1) if self.s_tmin <= sigma <= self.s_tmax else 0.0

    def needs_noise(self, t: float) -> bool:
        return self._gamma(self.sigma(t)) > 0

    def _x0(self, model_output: np.ndarray, sigma: float, sigma_hat: float, sample: np.ndarray) -> np.ndarray:
        if self.prediction_type == "epsilon":
            return sample - sigma_hat * model_output
        if self.prediction_type == "v_prediction":
            return model_output * (-sigma / (sigma ** 2 + 1) ** 0.5) + sample / (sigma ** 2 + 1)
        return model_output

    def predict_x0(self, model_output: np.ndarray, t: float, sample: np.ndarray) -> np.ndarray:
        """x_0^ from the model output at t (without churn)."""
        sigma = self.sigma(t)
        return self._x0(model_output, sigma, sigma, sample)

    def predict_eps(self, model_output: np.ndarray, t: float, sample: np.ndarray) -> np.ndarray:
        """The noise eps = (x - x_0^) / sigma the model output implies at t."""
        return (sample - self.predict_x0(model_output, t, sample)) / self.sigma(t)

    def step(self, model_output: np.ndarray, t: float, sample: np.ndarray,
             variance_noise: np.ndarray | None = None) -> StepOutput:
        """One Euler step from sigma_t to the next sigma.

        Args:
            model_output: the network's output at scale_model_input(sample, t).
            t: current timestep (one of `self.timesteps`).
            sample: x at sigma_t (N, H, W, C) (any shape; NumPy, any float dtype, kept).
            variance_noise: z ~ N(0, I), required iff needs_noise(t) (s_churn > 0).

        Returns:
            StepOutput(prev_sample=x at the next sigma, pred_original_sample=x_0^).
        """
        i, dtype = self.index(t), sample.dtype
        sigma = float(self.sigmas[i])
        gamma = self._gamma(sigma)
        sigma_hat = sigma * (gamma + 1)
        if gamma > 0:
            z = self._noise(variance_noise, sample)
            sample = sample + z * self.s_noise * (sigma_hat ** 2 - sigma ** 2) ** 0.5
        x0 = self._x0(model_output, sigma, sigma_hat, sample)
        derivative = (sample - x0) / sigma_hat
        prev = sample + derivative * (float(self.sigmas[i + 1]) - sigma_hat)
        return StepOutput(prev.astype(dtype, copy=False), x0)
