"""The MLP GAN in TensorFlow/Keras: DCGAN's training step (dcgan.py) on models/mlp_gan.py's plans."""
from __future__ import annotations

from gan_diffusion.models import mlp_gan
from gan_diffusion.tf_backend.dcgan import DCGAN


class MLPGAN(DCGAN):
    """Fully connected generator + discriminator, BCE on logits, D then G (TensorFlow/Keras)."""

    networks = staticmethod(mlp_gan.networks)
    weight_shapes_of = staticmethod(mlp_gan.mlp_gan_weight_shapes)


def build(config: mlp_gan.MLPGANConfig) -> MLPGAN:
    return MLPGAN(config)
