"""The plain fully connected GAN of the GAN-against-VAE studies (Keras-MNIST-GAN style):
typed config and the framework-free architecture plan. Training is DCGAN's (BCE on logits,
D then G, Adam 2e-4 / 0.5), so the backends reuse the DCGAN step with these plans.

    generator:      z (N, latent) [+ label embedding] -> 256 -> 512 -> 1024 (LeakyReLU 0.2 each)
                    -> H*W*C (tanh) -> image (N, H, W, C)
    discriminator:  image (N, H, W, C) [+ label channel] -> flatten -> 1024 -> 512 -> 256
                    (LeakyReLU 0.2 each) -> 1 logit

Widths: `g_widths` and `d_widths` (defaults the Keras-MNIST-GAN's). Differences from that
script: no dropout in D (its masks would be framework RNG, breaking the parity both
backends are tested for), logits + BCE-with-logits instead of a sigmoid output, weights
N(0, 0.02) everywhere (the script's first layer only), and it works for any image shape.
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

from gan_diffusion.configs import check_positive
from gan_diffusion.errors import ConfigError
from gan_diffusion.models.gan import GANConfig, label_layers
from gan_diffusion.models.plan import Layer, weight_shapes


@dataclasses.dataclass
class MLPGANConfig(GANConfig):
    """MLP GAN hyper-parameters. Shared fields: `GANInputs`, `TrainConfig` (Adam 2e-4, beta1
    0.5, as the studies' script).

    Attributes:
        g_widths, d_widths: hidden layer widths, input side first.
        leaky_slope: LeakyReLU negative slope; init_std: N(0, init_std) weights.
    """

    model: ClassVar[str] = "mlp-gan"
    g_widths: tuple[int, ...] = (256, 512, 1024)
    d_widths: tuple[int, ...] = (1024, 512, 256)
    leaky_slope: float = 0.2
    init_std: float = 0.02
    batch_size: int = 128

    def validate(self) -> None:
        super().validate()
        check_positive(self, "init_std")
        for name in ("g_widths", "d_widths"):
            widths = tuple(int(w) for w in getattr(self, name))
            if not widths or min(widths) < 1:
                raise ConfigError(f"mlp-gan config field {name} must be a non-empty list of "
                                  f"positive widths, got {getattr(self, name)!r}")
            setattr(self, name, widths)


def generator_plan(cfg: MLPGANConfig) -> list[Layer]:
    """Latent vector (N, latent_dim) [and labels (N,)] -> image (N, H, W, C) in [-1, 1]."""
    h, w, c = cfg.image_shape
    dims = [cfg.latent_dim + (cfg.embed_dim if cfg.conditional else 0), *cfg.g_widths]
    layers = list(label_layers(cfg)["generator"])
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        layers += [Layer(f"dense{i}", "dense", a, b, bias=True),
                   Layer(f"lrelu{i}", "lrelu", alpha=cfg.leaky_slope)]
    n = len(cfg.g_widths)
    layers += [Layer(f"dense{n}", "dense", dims[-1], h * w * c, bias=True), Layer("tanh", "tanh"),
               Layer("reshape", "reshape", shape=(h, w, c))]
    return layers


def discriminator_plan(cfg: MLPGANConfig) -> list[Layer]:
    """Image (N, H, W, C) in [-1, 1] [and labels] -> one logit per image (N, 1)."""
    h, w, c = cfg.image_shape
    dims = [h * w * (c + (1 if cfg.conditional else 0)), *cfg.d_widths]
    layers = list(label_layers(cfg)["discriminator"]) + [Layer("flatten", "flatten")]
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        layers += [Layer(f"dense{i}", "dense", a, b, bias=True),
                   Layer(f"lrelu{i}", "lrelu", alpha=cfg.leaky_slope)]
    layers += [Layer(f"dense{len(cfg.d_widths)}", "dense", dims[-1], 1, bias=True)]
    return layers


def networks(cfg: MLPGANConfig) -> dict[str, list[Layer]]:
    return {"generator": generator_plan(cfg), "discriminator": discriminator_plan(cfg)}


def mlp_gan_weight_shapes(cfg: MLPGANConfig) -> dict[str, tuple[int, ...]]:
    return weight_shapes(networks(cfg))


def parameter_count(cfg: MLPGANConfig) -> int:
    return sum(math.prod(s) for s in mlp_gan_weight_shapes(cfg).values())
