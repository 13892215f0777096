"""Diffusion models, framework-free (NumPy): noise schedules, DDPM/DDIM samplers,
classifier-free guidance and the sampling API shared by both backends.

Layout (diffusers style: networks, schedulers and pipelines apart):
    schedules.py   linear and cosine beta schedules and every coefficient derived from them
    samplers.py    DDPMSampler, DDIMSampler (set_timesteps / step) and the `denoise` loop
    guidance.py    classifier-free guidance and training-time label dropout
    pipeline.py    DiffusionModelBase: sample(), class grids, figures, training inputs
The U-Net is described in gan_diffusion/models/unet.py and built by each backend.
"""
from gan_diffusion.diffusion.guidance import drop_labels, guided_noise, guided_predictor
from gan_diffusion.diffusion.samplers import (DDIMSampler, DDPMSampler, StepOutput, denoise,
                                              inference_timesteps, make_sampler)
from gan_diffusion.diffusion.schedules import NoiseSchedule, cosine_betas, linear_betas, make_schedule

__all__ = ["NoiseSchedule", "linear_betas", "cosine_betas", "make_schedule", "DDPMSampler",
           "DDIMSampler", "StepOutput", "denoise", "inference_timesteps", "make_sampler",
           "guided_noise", "guided_predictor", "drop_labels"]
