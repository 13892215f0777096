"""Schedulers, framework-free (NumPy), diffusers style: networks, schedulers and pipelines apart.

    schedules.py   linear, cosine and scaled_linear (SD) beta schedules and every coefficient
                   derived from them
    base.py        what the schedulers share: timestep spacing, x_0 / eps prediction per
                   prediction_type, add_noise, scale_model_input, StepOutput, strength_timesteps
    ddpm.py        DDPMScheduler (set_timesteps / step)
    ddim.py        DDIMScheduler (set_timesteps / step)
    pndm.py        PNDMScheduler (PLMS with skip_prk_steps=True: SD v1's default)
    euler.py       EulerDiscreteScheduler (sigma space: init_noise_sigma, scale_model_input)
    factory.py     scheduler_from_config: ours from a diffusers scheduler_config.json dict
    loop.py        make_scheduler (by sampler name, "ddim" / "ddpm") and the `denoise` loop
    guidance.py    classifier-free guidance (combining the noise predictions), training-time
                   label dropout

The U-Net is described in gan_diffusion/models/unet.py and built by each backend.
"""
from gan_diffusion.schedulers.base import (PREDICTION_TYPES, SPACINGS, SchedulerBase, StepOutput,
                                           inference_timesteps, strength_timesteps)
from gan_diffusion.schedulers.ddim import DDIMScheduler
from gan_diffusion.schedulers.ddpm import VARIANCE_TYPES, DDPMScheduler
from gan_diffusion.schedulers.euler import EulerDiscreteScheduler
from gan_diffusion.schedulers.factory import SCHEDULER_CLASSES, scheduler_from_config
from gan_diffusion.schedulers.guidance import drop_labels, guided_noise, guided_predictor
from gan_diffusion.schedulers.loop import SAMPLERS, denoise, make_scheduler
from gan_diffusion.schedulers.pndm import PNDMScheduler
from gan_diffusion.schedulers.schedules import (SCHEDULES, NoiseSchedule, cosine_betas, linear_betas,
                                                make_schedule, scaled_linear_betas)

__all__ = ["NoiseSchedule", "linear_betas", "cosine_betas", "scaled_linear_betas", "make_schedule",
           "SCHEDULES", "SchedulerBase", "DDPMScheduler", "DDIMScheduler", "PNDMScheduler",
           "EulerDiscreteScheduler", "StepOutput", "SPACINGS", "PREDICTION_TYPES", "VARIANCE_TYPES",
           "SAMPLERS", "SCHEDULER_CLASSES", "denoise", "inference_timesteps", "strength_timesteps",
           "make_scheduler", "scheduler_from_config", "guided_noise", "guided_predictor", "drop_labels"]
