"""Schedulers, framework-free (NumPy), diffusers style: networks, schedulers and pipelines apart.

    schedules.py   linear and cosine beta schedules and every coefficient derived from them
    base.py        what the schedulers share: timestep spacing, x_0 prediction, StepOutput
    ddpm.py        DDPMScheduler (set_timesteps / step)
    ddim.py        DDIMScheduler (set_timesteps / step)
    loop.py        make_scheduler (by sampler name, "ddim" / "ddpm") and the `denoise` loop
    guidance.py    classifier-free guidance (combining the noise predictions), training-time
                   label dropout

The U-Net is described in gan_diffusion/models/unet.py and built by each backend.
"""
from gan_diffusion.schedulers.base import SPACINGS, SchedulerBase, StepOutput, inference_timesteps
from gan_diffusion.schedulers.ddim import DDIMScheduler
from gan_diffusion.schedulers.ddpm import VARIANCE_TYPES, DDPMScheduler
from gan_diffusion.schedulers.guidance import drop_labels, guided_noise, guided_predictor
from gan_diffusion.schedulers.loop import SAMPLERS, denoise, make_scheduler
from gan_diffusion.schedulers.schedules import (SCHEDULES, NoiseSchedule, cosine_betas, linear_betas,
                                                make_schedule)

__all__ = ["NoiseSchedule", "linear_betas", "cosine_betas", "make_schedule", "SCHEDULES",
           "SchedulerBase", "DDPMScheduler", "DDIMScheduler", "StepOutput", "SPACINGS",
           "VARIANCE_TYPES", "SAMPLERS", "denoise", "inference_timesteps", "make_scheduler",
           "guided_noise", "guided_predictor", "drop_labels"]
