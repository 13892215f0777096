"""The MLP GAN in PyTorch: DCGAN's training step (dcgan.py) on models/mlp_gan.py's plans."""
from __future__ import annotations

from gan_diffusion.models import mlp_gan
from gan_diffusion.torch_backend.dcgan import DCGAN


class MLPGAN(DCGAN):
    """Fully connected generator + discriminator, BCE on logits, D then G (PyTorch)."""

    networks = staticmethod(mlp_gan.networks)
    weight_shapes_of = staticmethod(mlp_gan.mlp_gan_weight_shapes)


def build(config: mlp_gan.MLPGANConfig) -> MLPGAN:
    return MLPGAN(config)
