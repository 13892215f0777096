"""DCGAN: typed config and the framework-free architecture plan.

The architecture is the PyTorch DCGAN tutorial's (Radford et al. 2015), sized by image shape:
the generator starts from a 4x4 map (7x7 for 28x28 images) and doubles it with stride-2
transposed convolutions; the discriminator mirrors it. No conv biases, as in the tutorial.

    side 64: z -> 4x4x8g -> 8x8x4g -> 16x16x2g -> 32x32xg -> 64x64xC   (g = g_features)
    side 32: z -> 4x4x4g -> 8x8x2g -> 16x16xg -> 32x32xC
    side 28: z -> 7x7x4g -> 14x14x2g -> 28x28xC   (the 32x32 widths without its last hidden stage,
                                                  i.e. the usual 256-128 MNIST DCGAN for g = 64)
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

from gan_diffusion.configs import check_image_shape, check_positive
from gan_diffusion.models.gan import GANConfig, label_layers
from gan_diffusion.models.plan import Layer, weight_shapes

SIZES = (28, 32, 64)


@dataclasses.dataclass
class DCGANConfig(GANConfig):
    """DCGAN hyper-parameters (defaults: the PyTorch DCGAN tutorial, except batch size 64,
    which gives recognisable MNIST digits after one epoch where 128 does not).

    Shared fields are documented on `GANInputs` (shape, conditioning) and `TrainConfig`
    (optimizer, batch, seed, dtype).
    BatchNorm momentum uses the PyTorch convention (weight of the new batch statistic):
    Keras' momentum is 1 - bn_momentum. See docs/alignment.md.
    """

    model: ClassVar[str] = "dcgan"
    g_features: int = 64
    d_features: int = 64
    leaky_slope: float = 0.2
    init_std: float = 0.02

    def validate(self) -> None:
        super().validate()
        self.image_shape = check_image_shape(self.image_shape, SIZES)
        check_positive(self, "g_features", "d_features", "init_std")


def _stages(side: int) -> tuple[int, int]:
    """(start side, number of stride-2 stages) for an image side."""
    start = 7 if side == 28 else 4
    return start, int(round(math.log2(side // start)))


def generator_plan(cfg: DCGANConfig) -> list[Layer]:
    """Generator layers: latent vector (N, latent_dim) [and labels (N,)] -> image in [-1, 1]."""
    side, _, channels = cfg.image_shape
    start, n = _stages(side)
    top = max(n, 3) - 1  # 28x28 (n = 2) keeps the 4g, 2g widths of the 32x32 generator
    widths = [cfg.g_features * 2 ** (top - i) for i in range(n)]  # e.g. [8g, 4g, 2g, g]
    z_dim = cfg.latent_dim + (cfg.embed_dim if cfg.conditional else 0)  # latent [+ label embedding]
    layers = label_layers(cfg)["generator"] + [
        Layer("reshape", "reshape", shape=(1, 1, z_dim)),  # (N, z_dim) -> 1x1 map
        Layer("convt0", "convt", z_dim, widths[0], kernel=start),
              Layer("bn0", "bn", widths[0], widths[0]), Layer("relu0", "relu")]
    for i in range(1, n):
        layers += [Layer(f"convt{i}", "convt", widths[i - 1], widths[i], 4, 2, 1),
                   Layer(f"bn{i}", "bn", widths[i], widths[i]), Layer(f"relu{i}", "relu")]
    layers += [Layer(f"convt{n}", "convt", widths[-1], channels, 4, 2, 1), Layer("tanh", "tanh")]
    return layers


def discriminator_plan(cfg: DCGANConfig) -> list[Layer]:
    """Discriminator layers: image (N, H, W, C) in [-1, 1] [and labels] -> one logit per image."""
    side, _, channels = cfg.image_shape
    start, n = _stages(side)
    widths = [cfg.d_features * 2 ** i for i in range(n)]  # e.g. [d, 2d, 4d, 8d]
    a = cfg.leaky_slope
    in_ch = channels + (1 if cfg.conditional else 0)  # image [+ label channel]
    layers = label_layers(cfg)["discriminator"] + [
        Layer("conv0", "conv", in_ch, widths[0], 4, 2, 1), Layer("lrelu0", "lrelu", alpha=a)]
    for i in range(1, n):
        layers += [Layer(f"conv{i}", "conv", widths[i - 1], widths[i], 4, 2, 1),
                   Layer(f"bn{i}", "bn", widths[i], widths[i]), Layer(f"lrelu{i}", "lrelu", alpha=a)]
    layers += [Layer(f"conv{n}", "conv", widths[-1], 1, kernel=start)]
    return layers


def networks(cfg: DCGANConfig) -> dict[str, list[Layer]]:
    """Both plans, keyed by network name (the first part of canonical weight names)."""
    return {"generator": generator_plan(cfg), "discriminator": discriminator_plan(cfg)}


def dcgan_weight_shapes(cfg: DCGANConfig) -> dict[str, tuple[int, ...]]:
    """Canonical weight names and shapes of a DCGAN."""
    return weight_shapes(networks(cfg))
