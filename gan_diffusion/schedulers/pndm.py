"""PNDM (Liu et al. 2022, pseudo numerical methods) as diffusers' PNDMScheduler, in NumPy.
With skip_prk_steps=True (Stable Diffusion v1's default scheduler) it is PLMS: a linear
multistep (Adams-Bashforth) combination of the last eps predictions, fed to the DDIM-like
transfer of Liu et al. eq. 9:

    x_{t'} = sqrt(abar_{t'} / abar_t) x_t - (abar_{t'} - abar_t) e
             / (abar_t sqrt(1 - abar_{t'}) + sqrt(abar_t (1 - abar_t) abar_{t'}))
    (= sqrt(abar_{t'}) x_0^ + sqrt(1 - abar_{t'}) e, deterministic DDIM with eps e)

    e = eps_1                                   first step (then the step is redone:)
        (eps_1 + eps_2) / 2 from x at step 1    second step (a Heun step over the same interval)
        (3 eps_n - eps_{n-1}) / 2, (23, -16, 5) / 12, then (55, -59, 37, -9) / 24

t' = t - T // n as diffusers has it (the next visited timestep for "leading" spacing, SD's).
Because of the redone second step, n steps visit n + 1 timesteps: (981, 961, 961, 941, ..., 1)
for n = 50 and SD's steps_offset = 1. The full PNDM (skip_prk_steps=False) starts with three
fourth-order Runge-Kutta steps (4 network calls each, 12 entries in `timesteps`) instead.

The scheduler is stateful as diffusers' is: the history of eps predictions resets in
`set_timesteps`, and `step` must be called once per entry of `timesteps`, in order.
"""
from __future__ import annotations

import numpy as np

from gan_diffusion.errors import ConfigError
from gan_diffusion.schedulers.base import SchedulerBase, StepOutput, inference_timesteps
from gan_diffusion.schedulers.schedules import NoiseSchedule

PNDM_ORDER = 4   # Runge-Kutta order of the PRK warm-up steps


class PNDMScheduler(SchedulerBase):
    """PNDM / PLMS (Liu et al. 2022), diffusers semantics.

    Args:
        schedule: the noise schedule the model was trained with.
        skip_prk_steps: True for PLMS (SD's configs); False (diffusers' default) for the full
            PNDM with its Runge-Kutta warm-up.
        timestep_spacing, steps_offset: how `set_timesteps` picks timesteps.
        set_alpha_to_one: abar after the last step is 1 or abar_0 (False: diffusers' default).
        prediction_type: "epsilon" or "v_prediction".

    Example:
        >>> s = PNDMScheduler(make_schedule("scaled_linear"), True, steps_offset=1)
        >>> s.set_timesteps(50)                   # resets the history
        >>> for t in s.timesteps:
        ...     x = s.step(net(x, t), t, x).prev_sample
    """

    def __init__(self, schedule: NoiseSchedule, skip_prk_steps: bool = False,
                 timestep_spacing: str = "leading", steps_offset: int = 0, *,
                 set_alpha_to_one: bool = False, prediction_type: str = "epsilon"):
        if prediction_type not in ("epsilon", "v_prediction"):
            raise ConfigError(f"PNDMScheduler supports prediction_type 'epsilon' or 'v_prediction', "
                              f"got {prediction_type!r} (use DDIM or Euler for 'sample')")
        self.skip_prk_steps = bool(skip_prk_steps)
        super().__init__(schedule, False, 1.0, timestep_spacing, steps_offset,
                         set_alpha_to_one=set_alpha_to_one, prediction_type=prediction_type)

    def set_timesteps(self, steps: int) -> np.ndarray:
        """Choose the timesteps of `steps` steps (int64; n + 1 of them with skip_prk_steps) and
        reset the eps history; returns them."""
        T = self.schedule.num_timesteps
        base = inference_timesteps(T, steps, self.timestep_spacing, self.steps_offset)[::-1]  # ascending
        if self.skip_prk_steps:
            self.prk_timesteps = np.array([], np.int64)
            plms = np.concatenate([base[:-1], base[-2:-1], base[-1:]])[::-1]
        else:
            prk = base[-PNDM_ORDER:].repeat(2) + np.tile([0, T // steps // 2], PNDM_ORDER)
            self.prk_timesteps = prk[:-1].repeat(2)[1:-1][::-1].astype(np.int64)
            plms = base[:-3][::-1]
        self.timesteps = np.ascontiguousarray(np.concatenate([self.prk_timesteps, plms]), dtype=np.int64)
        self._num_inference_steps = int(steps)
        self.ets: list[np.ndarray] = []      # the eps predictions of the past steps
        self.counter = 0                     # steps taken since set_timesteps
        self.cur_model_output = 0.0          # PRK: the running Runge-Kutta sum
        self.cur_sample: np.ndarray | None = None
        return self.timesteps

    def needs_noise(self, t: int) -> bool:
        return False

    def previous_timestep(self, t: int) -> int:
        """t - T // n, the timestep a PLMS step at t goes to (-1 or below: past the end)."""
        return int(t) - self.schedule.num_timesteps // self.num_inference_steps

    def alphas(self, t: int) -> tuple[float, float]:
        """(abar_t, abar_{t - T // n}), final_alpha_cumprod past the end."""
        prev = self.previous_timestep(t)
        abar = self.schedule.alphas_cumprod
        return float(abar[int(t)]), (float(abar[prev]) if prev >= 0 else self.final_alpha_cumprod)

    def step(self, model_output: np.ndarray, t: int, sample: np.ndarray,
             variance_noise: np.ndarray | None = None) -> StepOutput:
        """One PRK or PLMS step (by the step counter, as diffusers does).

        Args:
            model_output: the network's output at (sample, t) (eps or v).
            t: the current entry of `self.timesteps`.
            sample: x_t (N, H, W, C) (any shape; NumPy, any float dtype, kept).
            variance_noise: unused (PNDM adds no noise).

        Returns:
            StepOutput(prev_sample, pred_original_sample = x_0^ of the combined eps).
        """
        model_output = np.asarray(model_output)
        if self.counter < len(self.prk_timesteps) and not self.skip_prk_steps:
            return self._step_prk(model_output, int(t), sample)
        return self._step_plms(model_output, int(t), sample)

    def _step_prk(self, model_output: np.ndarray, t: int, sample: np.ndarray) -> StepOutput:
        half = self.schedule.num_timesteps // self.num_inference_steps // 2
        prev_t = t - (0 if self.counter % 2 else half)
        t = int(self.prk_timesteps[self.counter // 4 * 4])
        stage = self.counter % 4
        if stage == 0:
            self.cur_model_output = self.cur_model_output + model_output / 6
            self.ets.append(model_output)
            self.cur_sample = sample
        elif stage in (1, 2):
            self.cur_model_output = self.cur_model_output + model_output / 3
        else:
            model_output = self.cur_model_output + model_output / 6
            self.cur_model_output = 0.0
        cur = self.cur_sample if self.cur_sample is not None else sample
        self.counter += 1
        return self._prev_sample(cur, t, prev_t, model_output)

    def _step_plms(self, model_output: np.ndarray, t: int, sample: np.ndarray) -> StepOutput:
        if not self.skip_prk_steps and len(self.ets) < 3:
            raise ValueError("PNDMScheduler runs PLMS steps only after its 12 Runge-Kutta ones: "
                             "call set_timesteps, then step once per entry of timesteps, in order")
        r = self.schedule.num_timesteps // self.num_inference_steps
        prev_t = t - r
        if self.counter != 1:
            self.ets = self.ets[-3:] + [model_output]
        else:                        # the second step redoes the first interval
            prev_t, t = t, t + r
        e = self.ets
        if len(e) == 1 and self.counter == 0:
            self.cur_sample = sample
        elif len(e) == 1 and self.counter == 1:
            model_output = (model_output + e[-1]) / 2
            sample, self.cur_sample = self.cur_sample, None
        elif len(e) == 2:
            model_output = (3 * e[-1] - e[-2]) / 2
        elif len(e) == 3:
            model_output = (23 * e[-1] - 16 * e[-2] + 5 * e[-3]) / 12
        else:
            model_output = (55 * e[-1] - 59 * e[-2] + 37 * e[-3] - 9 * e[-4]) / 24
        self.counter += 1
        return self._prev_sample(sample, t, prev_t, model_output)

    def _prev_sample(self, sample: np.ndarray, t: int, prev_t: int, model_output: np.ndarray) -> StepOutput:
        """Liu et al. eq. 9 from (x_t, t) to prev_t with the combined output."""
        abar = self.schedule.alphas_cumprod
        a_t = float(abar[t])
        a_prev = float(abar[prev_t]) if prev_t >= 0 else self.final_alpha_cumprod
        x0, eps = self._x0_eps(model_output, a_t, sample)
        denom = a_t * (1 - a_prev) ** 0.5 + (a_t * (1 - a_t) * a_prev) ** 0.5
        prev = (a_prev / a_t) ** 0.5 * sample - (a_prev - a_t) * eps / denom
        return StepOutput(prev.astype(sample.dtype, copy=False), x0)
