"""The family bases, framework-free: what every model of a family shares, on both backends.

    base.py        TrainerBase: the epoch loop, timing, History, checkpoints, sample
                   post-processing (the GAN family uses it as is)
    vae.py         VAEBase(TrainerBase): reconstruct, interpolate, manifold, evaluate
    diffusion.py   DiffusionModelBase(TrainerBase): sample, class grids, figures, the training
                   inputs drawn from NumPy streams (the schedulers are in gan_diffusion/schedulers/)
    ldm.py         LDMBase(DiffusionModelBase): latent diffusion's two stages, reconstructions,
                   the attached autoencoder and latent scale, sampling in latent space

A backend model (gan_diffusion/<backend>_backend/) subclasses one of them and adds the
framework parts. Configs and plans (gan_diffusion/models/) and schedulers never import these.
"""
