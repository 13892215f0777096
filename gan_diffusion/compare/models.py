"""The per-model table of the comparison harness: what `compare` needs to know beyond the
registry. A registered model without an entry gets the defaults (FID/KID from `sample()`,
loss curves from its History), so a new model plugs in with at most one line here.

Fields:
    native_init   (config, rng) -> canonical initial weights, drawn with `rng` (a framework's
                  own generator, gan_diffusion/<backend>_backend/rng.py) from the same
                  distributions as the model's NumPy init; used by --native-rng. None: the
                  model keeps its NumPy init under --native-rng (recorded in the run).
    sample_kwargs extra `model.sample()` arguments for the evaluation samples (diffusion:
                  steps / sampler).
    trajectory    name of a model method `(n, seed, **sample_kwargs) -> uint8
                  (n * frames, H, W, C)`, image-major (row i: image i from x_T to x_0), a
                  sampling trajectory (diffusion models), plotted when present.
    evaluate      metric names of `model.evaluate(eval_data)` reported as quality (the VAE's
                  negative ELBO per image on the evaluation split); () : not called.
    quick, paper  config overrides for `--preset quick` / `--preset paper`.
    history_quality  final-epoch loss names reported as quality (e.g. the VAE's negative ELBO
                  per image); any loss whose name contains "elbo" is reported anyway.
    timed_sample_kwargs  a second sampler timed on TIMED_IMAGES images (DDIM50 for diffusion
                  models: latent against pixel diffusion at equal steps), or None.
    evaluation_only  the config class of a model that trains nothing and is not in the
                  registry's trainable models: its runs are the worker's `img2img` kind
                  (sd-img2img, compare/img2img.py); None for trained models.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from gan_diffusion.configs import Config


def _dcgan_native_init(config: Config, rng: Any) -> dict:
    from gan_diffusion.models.dcgan import networks
    from gan_diffusion.models.plan import init_normal

    return init_normal(networks(config), config.seed, config.init_std, rng=rng)


def _mlp_gan_native_init(config: Config, rng: Any) -> dict:
    from gan_diffusion.models.mlp_gan import networks
    from gan_diffusion.models.plan import init_normal

    return init_normal(networks(config), config.seed, config.init_std, rng=rng)


def _wgan_gp_native_init(config: Config, rng: Any) -> dict:
    from gan_diffusion.models.plan import init_glorot
    from gan_diffusion.models.wgan_gp import networks

    return init_glorot(networks(config), config.seed, rng=rng)


def _vae_native_init(config: Config, rng: Any) -> dict:
    from gan_diffusion.models.plan import init_glorot
    from gan_diffusion.models.vae import networks

    return init_glorot(networks(config), config.seed, rng=rng)


def _ddpm_native_init(config: Config, rng: Any) -> dict:
    from gan_diffusion.models.unet import init_unet

    return init_unet(config, config.seed, rng=rng)


def _ldm_native_init(config: Config, rng: Any) -> dict:
    from gan_diffusion.models.ldm import init_ldm

    return init_ldm(config, config.seed, rng=rng)


# the sampler every diffusion model is also timed with, beside its evaluation sampler: the
# sampling table's "DDIM-50" column, the same for ddpm and ldm (TIMED_IMAGES images, one call)
DDIM50 = {"steps": 50, "sampler": "ddim"}
TIMED_IMAGES = 32


@dataclasses.dataclass(frozen=True)
class ModelTraits:
    native_init: Callable[[Config, Any], dict] | None = None
    sample_kwargs: dict = dataclasses.field(default_factory=dict)
    trajectory: str | None = None
    quick: dict = dataclasses.field(default_factory=dict)
    paper: dict = dataclasses.field(default_factory=dict)
    history_quality: tuple[str, ...] = ()
    evaluate: tuple[str, ...] = ()
    evaluation_only: type[Config] | None = None
    timed_sample_kwargs: dict | None = None


TRAITS: dict[str, ModelTraits] = {
    "dcgan": ModelTraits(native_init=_dcgan_native_init,
                         quick={"g_features": 32, "d_features": 32, "batch_size": 32}),
    "mlp-gan": ModelTraits(native_init=_mlp_gan_native_init, quick={"batch_size": 32}),
    "wgan-gp": ModelTraits(native_init=_wgan_gp_native_init, quick={"d_features": 32, "batch_size": 32}),
    # the VAE's negative ELBO per image on the evaluation split is reported beside FID/KID
    "vae": ModelTraits(native_init=_vae_native_init, evaluate=("neg_elbo",),
                       quick={"batch_size": 32}),
    # quick: recognisable digits in 6 epochs at the cost of the old quick setting (base 16,
    # mults (1, 2), batch 32 = 336 steps, linear, 20 deterministic DDIM steps: noise blobs,
    # FID-LeNet 34.7; conditional, LeNet class accuracy 0.10). Three levels put attention at
    # 7x7, not 14x14 (half the ms per step), so batch 16 buys 672 steps; lr 2e-3, cosine with
    # trailing spacing (it starts from t = 999), and DDIM eta 1, since a model this short left
    # deterministic DDIM speckled and grey. Class-conditional with guidance 2, so 10 steps
    # suffice, at twice the network calls. Measured (seed 0, 500 samples, tf = torch): FID-LeNet
    # 8.8, LeNet class accuracy 0.35 (the real digits: 0.58); docs/compare.md.
    "ddpm": ModelTraits(native_init=_ddpm_native_init, trajectory="trajectory", timed_sample_kwargs=DDIM50,
                        quick={"num_classes": 10, "base_channels": 16, "channel_mults": [1, 2, 2],
                               "batch_size": 16, "learning_rate": 2e-3, "schedule": "cosine",
                               "timestep_spacing": "trailing", "sample_steps": 10, "eta": 1.0}),
    # latent diffusion (--stage both: R/autoencoder, then R): the autoencoder's reconstruction
    # PSNR / SSIM on the evaluation images are quality columns. quick (not in the quick
    # preset's models: compare --preset quick --models ldm,ddpm): class-conditional with
    # guidance 3, 2 autoencoder epochs, batch 16 (672 latent steps in 6 epochs, about 4 s an
    # epoch on 7x7x4 latents), lr 1e-3, 20 DDIM steps on SD's scaled_linear schedule. Measured
    # (torch, seed 0, 500 samples): FID-LeNet 4.1, LeNet class accuracy 0.41 (real digits
    # 0.58), 65 s a run; guidance 5: 0.49 and FID 7.7. The defaults at batch 64 (ae_epochs 3)
    # gave FID 5.1 but class accuracy 0.12 - 0.21; DDPM's cosine / trailing / eta 1 setting
    # drew noise (FID 22, accuracy 0.11): without clipping, x_0 from eps at t = 999 of a
    # cosine schedule (alpha_bar ~ 0) blows up.
    "ldm": ModelTraits(native_init=_ldm_native_init, trajectory="trajectory", timed_sample_kwargs=DDIM50,
                       evaluate=("psnr", "ssim"),
                       quick={"num_classes": 10, "ae_epochs": 2, "batch_size": 16,
                              "learning_rate": 1e-3, "guidance": 3.0, "sample_steps": 20}),
}


def _img2img_traits() -> ModelTraits:
    from gan_diffusion.compare.img2img import Img2ImgConfig

    return ModelTraits(evaluation_only=Img2ImgConfig)


TRAITS["sd-img2img"] = _img2img_traits()   # Stable Diffusion image-to-image, evaluation only


def evaluation_only(model: str) -> bool:
    """Whether `model` is an evaluation-only model of the harness (trains nothing)."""
    return traits(model).evaluation_only is not None


def traits(model: str) -> ModelTraits:
    """The table entry of `model` (defaults for a registered model without one)."""
    return TRAITS.get(model, ModelTraits())
