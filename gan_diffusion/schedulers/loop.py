"""Pick a scheduler by its sampler name ("ddim" / "ddpm", the user-facing `--sampler`) and
the `denoise` loop that runs it from x_T to x_0.

The network is not called by the schedulers: `denoise` takes any `predict(x, t)` that returns
the predicted noise as a NumPy array, so one loop serves the TF U-Net, the torch U-Net and a
diffusers UNet2DModel alike.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gan_diffusion.errors import ConfigError
from gan_diffusion.schedulers.base import NoiseFn, Predict, SchedulerBase, StepOutput
from gan_diffusion.schedulers.ddim import DDIMScheduler
from gan_diffusion.schedulers.ddpm import DDPMScheduler
from gan_diffusion.schedulers.schedules import NoiseSchedule

SAMPLERS = ("ddim", "ddpm")


def make_scheduler(name: str, schedule: NoiseSchedule, steps: int | None = None, eta: float = 0.0,
                 variance_type: str = "fixed_small", clip_sample: bool = True,
                 timestep_spacing: str = "leading") -> DDPMScheduler | DDIMScheduler:
    """The scheduler of the "ddim" or "ddpm" sampler, its timesteps set (steps default: 50 for
    DDIM, T for DDPM).

    Example:
        >>> make_scheduler("ddim", make_schedule("cosine"), steps=50).timesteps[:3].tolist()
        [980, 960, 940]
    """
    if name == "ddim":
        scheduler = DDIMScheduler(schedule, eta, clip_sample=clip_sample, timestep_spacing=timestep_spacing)
        scheduler.set_timesteps(50 if steps is None else steps)
    elif name == "ddpm":
        if eta:
            raise ConfigError("eta applies to the DDIM sampler only (DDPM's noise is fixed by "
                              "variance_type)")
        scheduler = DDPMScheduler(schedule, variance_type, clip_sample=clip_sample,
                              timestep_spacing=timestep_spacing)
        scheduler.set_timesteps(schedule.num_timesteps if steps is None else steps)
    else:
        raise ConfigError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    return scheduler


def denoise(predict: Predict, scheduler: SchedulerBase, x: np.ndarray,
            noise_fn: NoiseFn | None = None, progress: bool | None = None,
            callback: Callable[[int, int, StepOutput], None] | None = None) -> np.ndarray:
    """Run a scheduler from x_T to x_0.

    Args:
        predict: the network call, predict(x_t, t) -> model output (NumPy, the shape of x_t);
            t is an array (N,) holding the current timestep (int64; float64 for Euler), x_t is
            scheduler.scale_model_input(x, t) (x itself except for Euler).
        scheduler: any scheduler here with its timesteps freshly set (PNDM keeps a history).
        x: the start sample (N, H, W, C), NumPy float: x_T * scheduler.init_noise_sigma.
        noise_fn: noise_fn(i, shape) gives the variance noise of step i (0-based); asked only
            at steps that add noise, so a counter-based stream gives the same draws whatever
            the scheduler.
        progress: tqdm progress bar (None: only on a terminal).
        callback: called as callback(i, t, step_output) after every step (trajectories).

    Returns:
        x_0, the same shape and dtype as x.

    Example:
        >>> x0 = denoise(model.predict_noise, make_scheduler("ddim", schedule, 50), x_T)
    """
    from tqdm.auto import tqdm

    n = x.shape[0]
    bar = tqdm(scheduler.timesteps, desc=f"{type(scheduler).__name__[:4].lower()} sampling",
               leave=False, disable=None if progress is None else not progress)
    for i, t in enumerate(bar):
        t = t.item()                           # int, or float for Euler
        eps = predict(scheduler.scale_model_input(x, t), np.full(n, t, scheduler.timesteps.dtype))
        noise = None
        if scheduler.needs_noise(t):
            if noise_fn is None:
                raise ValueError("this scheduler adds noise: pass noise_fn")
            noise = noise_fn(i, x.shape)
        out = scheduler.step(eps, t, x, variance_noise=noise)
        x = out.prev_sample
        if callback is not None:
            callback(i, t, out)
    return x
