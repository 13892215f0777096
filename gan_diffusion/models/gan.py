"""The config fields every GAN shares: data shape, conditioning, optimizer, precision.

DCGAN and WGAN-GP derive their configs from `GANConfig` and change defaults only.

Conditioning (Mirza & Osindero 2014; `num_classes > 0`): the generator's input is the
latent vector joined to a learned label embedding of `embed_dim` values; the
discriminator's input is the image joined to one extra channel, a learned H*W embedding of
the label reshaped to the image's size. `label_layers` gives these plan layers.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from gan_diffusion.configs import Config, check_positive
from gan_diffusion.errors import ConfigError
from gan_diffusion.models.plan import Layer
from gan_diffusion.optim import check_optimizer

DTYPES = ("float32", "float64")


@dataclasses.dataclass
class GANConfig(Config):
    """Fields shared by the GAN configs (their defaults are overridden per model).

    Attributes:
        num_classes: 0 for an unconditional GAN, else the number of classes to condition on.
        embed_dim: size of the generator's label embedding (conditional only).
        optimizer: "adam", "sgd", "rmsprop" or "adagrad" (gan_diffusion.optim), with
            learning_rate, beta1/beta2 (Adam), epsilon (Adam, RMSprop, Adagrad),
            momentum/nesterov (SGD; momentum also RMSprop), rho (RMSprop decay) and
            initial_accumulator (Adagrad).
        dtype: "float32", or "float64" for parity checks free of float32 round-off.
    """

    renamed_fields: ClassVar[dict[str, str]] = {"adam_epsilon": "epsilon"}

    image_shape: tuple[int, int, int] = (28, 28, 1)
    latent_dim: int = 100
    num_classes: int = 0
    embed_dim: int = 50
    optimizer: str = "adam"
    learning_rate: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    epsilon: float = 1e-8
    momentum: float = 0.0
    nesterov: bool = False
    rho: float = 0.9
    initial_accumulator: float = 0.1
    bn_momentum: float = 0.1
    bn_epsilon: float = 1e-5
    batch_size: int = 64
    drop_last: bool = True
    seed: int = 0
    dtype: str = "float32"
    compile: bool = False  # torch.compile the networks (torch backend only; TF always uses tf.function)

    def validate(self) -> None:
        check_positive(self, "latent_dim", "bn_epsilon", "batch_size", "embed_dim")
        check_optimizer(self)
        if not isinstance(self.num_classes, int) or isinstance(self.num_classes, bool) \
                or self.num_classes < 0 or self.num_classes == 1:
            raise ConfigError(f"{self.model} config field num_classes must be 0 (unconditional) "
                              f"or >= 2, got {self.num_classes!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"{self.model} config field dtype must be one of {DTYPES}, "
                              f"got {self.dtype!r}")
        if not 0.0 <= self.bn_momentum < 1.0:
            raise ConfigError(f"{self.model} config field bn_momentum must be in [0, 1), "
                              f"got {self.bn_momentum!r}")

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0


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
