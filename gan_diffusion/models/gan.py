"""The config fields every GAN shares: data shape, conditioning, BatchNorm, training.

DCGAN and WGAN-GP derive their configs from `GANConfig` and change defaults only.

Conditioning (Mirza & Osindero 2014; `num_classes > 0`): the generator's input is the
latent vector joined to a learned label embedding of `embed_dim` values; the
discriminator's input is the image joined to one extra channel, a learned H*W embedding of
the label reshaped to the image's size. `label_layers` gives these plan layers.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from gan_diffusion.configs import Config, TrainConfig, check_num_classes, check_positive
from gan_diffusion.errors import ConfigError
from gan_diffusion.models.plan import Layer


@dataclasses.dataclass
class GANInputs(Config):
    """What a GAN's networks take and make: image shape, latent size, conditioning.

    Attributes:
        num_classes: 0 for an unconditional GAN, else the number of classes to condition on.
        embed_dim: size of the generator's label embedding (conditional only).
    """

    image_shape: tuple[int, int, int] = (28, 28, 1)
    latent_dim: int = 100
    num_classes: int = 0
    embed_dim: int = 50

    def validate(self) -> None:
        super().validate()
        check_positive(self, "latent_dim", "embed_dim")
        check_num_classes(self)

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0


@dataclasses.dataclass
class GANConfig(TrainConfig, GANInputs):
    """Fields shared by the GAN configs (their defaults are overridden per model): the
    inputs (`GANInputs`), the training fields (`TrainConfig`; Adam 2e-4, beta1 0.5 as in
    the DCGAN paper), then BatchNorm's (PyTorch convention, as torch's defaults).
    """

    renamed_fields: ClassVar[dict[str, str]] = {"adam_epsilon": "epsilon"}

    learning_rate: float = 2e-4
    beta1: float = 0.5
    bn_momentum: float = 0.1
    bn_epsilon: float = 1e-5

    def validate(self) -> None:
        super().validate()
        check_positive(self, "bn_epsilon")
        if not 0.0 <= self.bn_momentum < 1.0:
            raise ConfigError(f"{self.model} config field bn_momentum must be in [0, 1), "
                              f"got {self.bn_momentum!r}")


def label_layers(cfg: GANConfig) -> dict[str, list[Layer]]:
    """The label-embedding layer that starts each network of a conditional GAN ({} if not).

    generator:      labels (N,) -> (N, embed_dim), joined after the latent vector
    discriminator:  labels (N,) -> (N, H*W) -> (N, H, W, 1), joined after the image channels
    """
    if not cfg.conditional:
        return {"generator": [], "discriminator": []}
    side = cfg.image_shape[0]
    return {"generator": [Layer("label", "embed", cfg.num_classes, cfg.embed_dim, join="vector")],
            "discriminator": [Layer("label", "embed", cfg.num_classes, side * side,
                                    join="channel", in_size=side)]}
