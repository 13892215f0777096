"""What the schedulers share: the timesteps they visit, abar lookups, the x_0 / eps prediction
of each `prediction_type`, the forward process (`add_noise`) and the step output (diffusers'
`set_timesteps` / `step` API).

A scheduler never calls the network and never draws random numbers: `step(model_output, t,
x_t, variance_noise)` takes the network's output and the caller's variance noise (from a NumPy
stream), so both backends add the same noise.

Timesteps for n steps out of T (diffusers' `timestep_spacing`, Lin et al. 2023, table 2):

    leading   (0, r, 2r, ...) + offset reversed, r = T // n     (diffusers' default)
    trailing  round(T, T - r, ...) - 1, r = T / n                (starts at T - 1)
    linspace  round(linspace(0, T - 1, n)) reversed

With abar = alphas_cumprod, t' the next visited timestep and abar_{t'} after the last step
= 1 if set_alpha_to_one else abar_0 (diffusers' `final_alpha_cumprod`), the model output m is
read as (`prediction_type`, abar = abar_t):

    epsilon       eps = m,                               x_0^ = (x_t - sqrt(1 - abar) eps) / sqrt(abar)
    v_prediction  eps = sqrt(abar) m + sqrt(1 - abar) x_t, x_0^ = sqrt(abar) x_t - sqrt(1 - abar) m
    sample        x_0^ = m,                              eps = (x_t - sqrt(abar) x_0^) / sqrt(1 - abar)

x_0^ is then clipped to [-clip_range, clip_range] if clip_sample.

The loop that drives any scheduler (diffusers' pipelines):

    scheduler.set_timesteps(steps)
    x = noise * scheduler.init_noise_sigma                 # img2img: scheduler.add_noise(x0, noise, t_0)
    for t in scheduler.timesteps:                          # img2img: strength_timesteps(scheduler, s)
        m = network(scheduler.scale_model_input(x, t), t)
        x = scheduler.step(m, t, x, variance_noise=z if scheduler.needs_noise(t) else None).prev_sample
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from gan_diffusion.errors import ConfigError
from gan_diffusion.schedulers.schedules import NoiseSchedule

SPACINGS = ("leading", "trailing", "linspace")
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")

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


def strength_timesteps(scheduler: SchedulerBase, strength: float) -> np.ndarray:
    """The timesteps image-to-image visits (diffusers' StableDiffusionImg2ImgPipeline.get_timesteps).

    With n = scheduler.num_inference_steps (set_timesteps first): init = min(int(n * strength), n),
    t_start = n - init, and the loop runs scheduler.timesteps[t_start * scheduler.order:]; the
    init latents are noised to the first of them (`add_noise(x0, noise, ts[0])`). For PNDM
    (PLMS), whose n steps visit n + 1 timesteps, that starts one timestep above DDIM's.
    Empty when int(n * strength) == 0. Validating strength is the caller's job.

    Example:
        >>> s = DDIMScheduler(make_schedule("scaled_linear"), steps_offset=1); s.set_timesteps(10)
        >>> strength_timesteps(s, 0.5).tolist()
        [401, 301, 201, 101, 1]
    """
    n = scheduler.num_inference_steps
    init = min(int(n * strength), n)
    t_start = max(n - init, 0)
    return scheduler.timesteps[t_start * scheduler.order:]


@dataclasses.dataclass
class StepOutput:
    """x_{t'} (prev_sample) and the clipped prediction of x_0 it was built from."""

    prev_sample: np.ndarray
    pred_original_sample: np.ndarray


class SchedulerBase:
    """What the schedulers share: timesteps, abar lookups, the x_0 / eps prediction, add_noise.

    Args:
        schedule: the noise schedule the model was trained with.
        clip_sample, clip_range: clip x_0^ to [-clip_range, clip_range].
        timestep_spacing, steps_offset: how `set_timesteps` picks timesteps (see the module).
        set_alpha_to_one: abar_{t'} after the last step is 1 (True) or abar_0 (False, SD's
            configs); diffusers' DDIM defaults to True, its PNDM to False, its DDPM always uses 1.
        prediction_type: what the network predicts: "epsilon", "v_prediction" or "sample".

    Attributes:
        order: network calls per step (diffusers' `order`; 1 for every scheduler here).
        init_noise_sigma: the standard deviation of the starting noise x_T (1 here).
    """

    order = 1

    def __init__(self, schedule: NoiseSchedule, clip_sample: bool = True, clip_range: float = 1.0,
                 timestep_spacing: str = "leading", steps_offset: int = 0, *,
                 set_alpha_to_one: bool = True, prediction_type: str = "epsilon"):
        if prediction_type not in PREDICTION_TYPES:
            raise ConfigError(f"unknown prediction_type {prediction_type!r}; choose one of "
                              f"{', '.join(PREDICTION_TYPES)}")
        self.schedule = schedule
        self.clip_sample, self.clip_range = bool(clip_sample), float(clip_range)
        self.timestep_spacing, self.steps_offset = timestep_spacing, int(steps_offset)
        self.set_alpha_to_one, self.prediction_type = bool(set_alpha_to_one), prediction_type
        self.set_timesteps(schedule.num_timesteps)

    def set_timesteps(self, steps: int) -> np.ndarray:
        """Choose `steps` timesteps out of T (see `inference_timesteps`); returns them."""
        self.timesteps = inference_timesteps(self.schedule.num_timesteps, steps,
                                             self.timestep_spacing, self.steps_offset)
        self._next = {int(t): int(n) for t, n in zip(self.timesteps, np.append(self.timesteps[1:], -1))}
        self._num_inference_steps = int(steps)
        return self.timesteps

    @property
    def num_inference_steps(self) -> int:
        """The `steps` of the last set_timesteps (PNDM visits one timestep more)."""
        return self._num_inference_steps

    @property
    def init_noise_sigma(self) -> float:
        """The standard deviation of x_T: txt2img starts from noise * init_noise_sigma."""
        return 1.0

    @property
    def final_alpha_cumprod(self) -> float:
        """abar_{t'} after the last step: 1 if set_alpha_to_one else abar_0."""
        return 1.0 if self.set_alpha_to_one else float(self.schedule.alphas_cumprod[0])

    def previous_timestep(self, t: int) -> int:
        """The next timestep visited after t (-1 after the last one)."""
        try:
            return self._next[int(t)]
        except KeyError:
            raise ValueError(f"timestep {t} is not one of this scheduler's timesteps "
                             f"({self.timesteps[:3].tolist()}...); call set_timesteps first") from None

    def alphas(self, t: int) -> tuple[float, float]:
        """(abar_t, abar_{t'}) as Python floats, abar_{t'} = final_alpha_cumprod after the last step."""
        prev = self.previous_timestep(t)
        abar = self.schedule.alphas_cumprod
        return float(abar[int(t)]), (float(abar[prev]) if prev >= 0 else self.final_alpha_cumprod)

    def _x0_eps(self, model_output: np.ndarray, a_t: float, sample: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        """(x_0^ unclipped, eps) from the model output at abar_t = a_t (see the module)."""
        if self.prediction_type == "epsilon":
            eps = model_output
            return (sample - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5, eps
        if self.prediction_type == "v_prediction":
            return (a_t ** 0.5 * sample - (1 - a_t) ** 0.5 * model_output,
                    a_t ** 0.5 * model_output + (1 - a_t) ** 0.5 * sample)
        x0 = model_output
        return x0, (sample - a_t ** 0.5 * x0) / (1 - a_t) ** 0.5

    def _clip(self, x0: np.ndarray) -> np.ndarray:
        return np.clip(x0, -self.clip_range, self.clip_range) if self.clip_sample else x0

    def predict_x0(self, model_output: np.ndarray, t: int, sample: np.ndarray) -> np.ndarray:
        """x_0^ from the model output (per prediction_type), clipped if clip_sample."""
        a_t, _ = self.alphas(t)
        return self._clip(self._x0_eps(model_output, a_t, sample)[0])

    def predict_eps(self, model_output: np.ndarray, t: int, sample: np.ndarray) -> np.ndarray:
        """The predicted noise eps from the model output (per prediction_type; never clipped)."""
        a_t, _ = self.alphas(t)
        return self._x0_eps(model_output, a_t, sample)[1]

    def scale_model_input(self, sample: np.ndarray, t) -> np.ndarray:
        """What the network is given at t: the sample itself (Euler divides by sqrt(sigma^2 + 1))."""
        return sample

    def add_noise(self, original: np.ndarray, noise: np.ndarray, t) -> np.ndarray:
        """The forward process: sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise (diffusers' add_noise).

        Args:
            original: x_0 (N, ...), e.g. the scaled VAE latents of img2img.
            noise: standard normal, the shape of original.
            t: one timestep or one per sample (N,).

        Returns:
            x_t in original's dtype.
        """
        return self.schedule.q_sample(original, t, noise)

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
