"""WGAN-GP (Gulrajani et al. 2017): typed config and the framework-free plans.

The generator is the Keras model of the comparison slides, for 64x64x3:

    Dense(8*8*256, no bias) -> BatchNorm -> LeakyReLU -> Reshape(8, 8, 256)
    -> Conv2DTranspose(128, 5, strides 2, 'same', no bias) -> BatchNorm -> LeakyReLU
    -> Conv2DTranspose(64, 5, strides 2, 'same', no bias) -> BatchNorm -> LeakyReLU
    -> Conv2DTranspose(C, 5, strides 2, 'same', tanh)   (the slide: no bias; ours has one,
                                                          see docs/alignment.md, "WGAN-GP")

with the Keras defaults it relies on: LeakyReLU slope 0.3, BatchNorm momentum 0.99 and
epsilon 1e-3, Glorot-uniform kernels. For 32x32 the map starts at 4x4; for 28x28 at 7x7 with
a stride-1 first transposed conv (the TensorFlow DCGAN tutorial's MNIST generator).
The critic has no BatchNorm: three 5x5 stride-2 'same' convs with LeakyReLU(0.2), then
Flatten and Dense(1).
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from gan_diffusion.configs import check_image_shape, check_positive
from gan_diffusion.errors import ConfigError
from gan_diffusion.models.gan import GANConfig, label_layers
from gan_diffusion.models.plan import Layer, weight_shapes

SIZES = (28, 32, 64)


@dataclasses.dataclass
class WGANGPConfig(GANConfig):
    """WGAN-GP hyper-parameters (defaults: Gulrajani et al. 2017 and the slide's Keras model).

    Shared fields are documented on `GANInputs` (shape, conditioning) and `TrainConfig`
    (optimizer, batch, seed, dtype).
    bn_momentum is in the PyTorch convention (0.01 = Keras' default 0.99).
    """

    model: ClassVar[str] = "wgan-gp"
    image_shape: tuple[int, int, int] = (64, 64, 3)
    learning_rate: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.9
    bn_momentum: float = 0.01
    bn_epsilon: float = 1e-3
    d_features: int = 64
    g_leaky_slope: float = 0.3   # Keras LeakyReLU() default, as in the slide's model
    d_leaky_slope: float = 0.2
    gp_weight: float = 10.0
    n_critic: int = 5

    def validate(self) -> None:
        super().validate()
        self.image_shape = check_image_shape(self.image_shape, SIZES)
        check_positive(self, "d_features", "n_critic")
        if self.gp_weight < 0:
            raise ConfigError(f"wgan-gp config field gp_weight must be >= 0, got {self.gp_weight!r}")


def generator_plan(cfg: WGANGPConfig) -> list[Layer]:
    """Latent vector (N, latent_dim) [and labels (N,)] -> image in [-1, 1], the slide's generator."""
    side, _, channels = cfg.image_shape
    start, strides = {64: (8, (2, 2, 2)), 32: (4, (2, 2, 2)), 28: (7, (1, 2, 2))}[side]
    a, n = cfg.g_leaky_slope, start * start * 256
    z_dim = cfg.latent_dim + (cfg.embed_dim if cfg.conditional else 0)  # latent [+ label embedding]
    layers = label_layers(cfg)["generator"] + [
        Layer("dense0", "dense", z_dim, n), Layer("bn0", "bn", n, n), Layer("lrelu0", "lrelu", alpha=a),
        Layer("reshape", "reshape", shape=(start, start, 256))]
    size, widths = start, (256, 128, 64, channels)
    for i, stride in enumerate(strides, start=1):
        last = i == len(strides)
        layers.append(Layer(f"convt{i}", "convt", widths[i - 1], widths[i], kernel=5, stride=stride,
                            bias=last, same=True, in_size=size))
        size *= stride
        if last:
            layers.append(Layer("tanh", "tanh"))
        else:
            layers += [Layer(f"bn{i}", "bn", widths[i], widths[i]), Layer(f"lrelu{i}", "lrelu", alpha=a)]
    return layers


def critic_plan(cfg: WGANGPConfig) -> list[Layer]:
    """Image (N, H, W, C) in [-1, 1] [and labels] -> one score per image; no BatchNorm."""
    side, _, channels = cfg.image_shape
    in_ch = channels + (1 if cfg.conditional else 0)  # image [+ label channel]
    widths = (in_ch, cfg.d_features, 2 * cfg.d_features, 4 * cfg.d_features)
    layers, size = label_layers(cfg)["discriminator"], side
    for i in range(3):
        layers += [Layer(f"conv{i}", "conv", widths[i], widths[i + 1], kernel=5, stride=2, bias=True,
                         same=True, in_size=size),
                   Layer(f"lrelu{i}", "lrelu", alpha=cfg.d_leaky_slope)]
        size = -(-size // 2)
    layers += [Layer("flatten", "flatten"),
               Layer("dense", "dense", size * size * widths[-1], 1, bias=True)]
    return layers


def networks(cfg: WGANGPConfig) -> dict[str, list[Layer]]:
    """Both plans, keyed by network name (the first part of canonical weight names)."""
    return {"generator": generator_plan(cfg), "critic": critic_plan(cfg)}


def wgan_gp_weight_shapes(cfg: WGANGPConfig) -> dict[str, tuple[int, ...]]:
    return weight_shapes(networks(cfg))
