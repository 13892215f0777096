"""Name-keyed model registry: model name -> config class and backend module name.

Each backend package has a module of that name with a `build(config)` function, so
`Backend.build("dcgan", ...)` imports `gan_diffusion.<backend>_backend.dcgan`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gan_diffusion.configs import Config
from gan_diffusion.errors import UnknownNameError
from gan_diffusion.models.dcgan import DCGANConfig
from gan_diffusion.models.mlp_gan import MLPGANConfig
from gan_diffusion.models.vae import VAEConfig
from gan_diffusion.models.ddpm import DDPMConfig
from gan_diffusion.models.ldm import LDMConfig
from gan_diffusion.models.stylegan2 import StyleGAN2Config
from gan_diffusion.models.wgan_gp import WGANGPConfig
from gan_diffusion.sd.config import SDConfig, SDV2Config


@dataclass(frozen=True)
class ModelSpec:
    name: str
    config_cls: type[Config]
    module: str
    description: str
    trainable: bool = True   # False: sampling only (Stable Diffusion); `train` refuses it


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> None:
    """Add a model to the registry (used at import time by the core)."""
    _REGISTRY[spec.name] = spec


def get_spec(name: str) -> ModelSpec:
    """The registered model called `name`; UnknownNameError lists the valid ones."""
    if name not in _REGISTRY:
        raise UnknownNameError("model", name, _REGISTRY)
    return _REGISTRY[name]


def list_models(trainable: bool | None = None) -> list[str]:
    """Names of the registered models (only the trainable ones, or only the others)."""
    return sorted(n for n, s in _REGISTRY.items() if trainable is None or s.trainable == trainable)


def make_config(name: str, image_shape: Any = None, **overrides: Any) -> Config:
    """Build the typed config of model `name` from keyword overrides.

    Example:
        >>> make_config("dcgan", image_shape=(28, 28, 1), latent_dim=64)
    """
    spec = get_spec(name)
    data = dict(overrides)
    if image_shape is not None:
        data["image_shape"] = tuple(image_shape)
    return spec.config_cls.from_dict(data)


register(ModelSpec("dcgan", DCGANConfig, "dcgan",
                   "DCGAN (Radford et al. 2015), the PyTorch DCGAN-tutorial architecture"))
register(ModelSpec("mlp-gan", MLPGANConfig, "mlp_gan",
                   "the plain fully connected GAN of the GAN-against-VAE studies "
                   "(Keras-MNIST-GAN style, BCE; docs/mlp_gan.md)"))
register(ModelSpec("wgan-gp", WGANGPConfig, "wgan_gp",
                   "WGAN-GP (Gulrajani et al. 2017), the comparison slides' Keras generator"))
register(ModelSpec("vae", VAEConfig, "vae",
                   "VAE (Kingma & Welling 2014), the Keras example's convolutional architecture"))
register(ModelSpec("ddpm", DDPMConfig, "ddpm",
                   "DDPM (Ho et al. 2020) with a U-Net, DDPM/DDIM samplers, classifier-free guidance"))
register(ModelSpec("ldm", LDMConfig, "ldm",
                   "latent diffusion (Rombach et al. 2022): a KL autoencoder, then a latent U-Net with "
                   "cross-attention on label tokens (two stages; docs/ldm.md)"))
register(ModelSpec("stylegan2", StyleGAN2Config, "stylegan2",
                   "StyleGAN2 (Karras et al. 2020), config F scaled down: mapping network, "
                   "modulated convs, residual D, lazy R1, path length, mixing (docs/stylegan2.md)"))
register(ModelSpec("sd-v1", SDConfig, "stable_diffusion",
                   "Stable Diffusion v1.x (Rombach et al. 2022): keras-cv / diffusers networks, "
                   "one weight set, text-to-image and image-to-image (not trainable)",
                   trainable=False))
register(ModelSpec("sd-v2", SDV2Config, "stable_diffusion",
                   "Stable Diffusion 2.x-base (OpenCLIP ViT-H text encoder), as sd-v1",
                   trainable=False))
