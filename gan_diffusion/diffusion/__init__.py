"""Diffusion models, framework-free (NumPy): classifier-free guidance and the sampling API
shared by both backends. The schedulers (DDPM, DDIM, noise schedules) are in
gan_diffusion/schedulers/.

    guidance.py    classifier-free guidance and training-time label dropout
    pipeline.py    DiffusionModelBase: sample(), class grids, figures, training inputs
"""
from gan_diffusion.diffusion.guidance import drop_labels, guided_noise, guided_predictor

__all__ = ["guided_noise", "guided_predictor", "drop_labels"]
