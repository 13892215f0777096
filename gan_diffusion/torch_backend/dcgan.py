"""DCGAN in PyTorch. Mirrors gan_diffusion/tf_backend/dcgan.py line for line."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from gan_diffusion.models.dcgan import DCGANConfig, dcgan_weight_shapes, networks
from gan_diffusion.models.plan import init_normal
from gan_diffusion.torch_backend.gan import GANModel
from gan_diffusion.torch_backend.layers import Network, call, canonical_tensors


def bce_logits(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean binary cross-entropy against a constant target, from logits (stable form)."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class DCGAN(GANModel):
    """DCGAN generator + discriminator with their optimizers (PyTorch); conditional when
    config.num_classes > 0."""

    # the architecture (models/mlp_gan.py's MLP GAN reuses this class with its own plans)
    networks = staticmethod(networks)
    weight_shapes_of = staticmethod(dcgan_weight_shapes)

    def __init__(self, config: DCGANConfig):
        super().__init__(config)
        plans = self.networks(config)
        bn = (config.bn_momentum, config.bn_epsilon)
        self.generator = Network(plans["generator"], *bn, config.dtype)          # z (N, latent) -> (N, C, H, W)
        self.discriminator = Network(plans["discriminator"], *bn, config.dtype)  # (N, C, H, W) -> (N, 1, 1, 1)
        self._tensors = {name: canonical_tensors(plans[name], net.layers)
                         for name, net in (("generator", self.generator),
                                           ("discriminator", self.discriminator))}
        self.g_opt = self.make_optimizer(self.generator.parameters())
        self.d_opt = self.make_optimizer(self.discriminator.parameters())
        self._optimizers = {"generator": self.g_opt, "discriminator": self.d_opt}
        self.set_weights(init_normal(plans, config.seed, config.init_std))
        self._G, self._D = self.generator, self.discriminator
        if config.compile:
            self._G, self._D = torch.compile(self.generator), torch.compile(self.discriminator)

    def weight_shapes(self) -> dict:
        return self.weight_shapes_of(self.config)

    # -- training -----------------------------------------------------------------------
    def train_step(self, images, labels=None, z: np.ndarray | None = None) -> dict[str, float]:
        """One DCGAN step (the tutorial's order): update D on real+fake, then G.

        Args:
            images: a batch, NumPy NHWC (uint8 or float in [-1, 1]) or NCHW tensor.
            labels: class labels (N,) of a conditional model (fakes take the same labels);
                ignored by an unconditional one.
            z: latent noise (N, latent_dim); default: the seeded stream at global_step.
        """
        x = self.images(images)  # (N, C, H, W)
        if z is None:
            z = self.noise.normal(self.config.seed, "latent", self.global_step,
                             (x.shape[0], self.config.latent_dim))
        z, y = self.tensor(z), self.labels(labels)
        self.generator.train()
        self.discriminator.train()

        fake = call(self._G, z, y)                           # (N, C, H, W)
        d_real = call(self._D, x, y).reshape(-1)             # (N,) logits
        d_fake = call(self._D, fake.detach(), y).reshape(-1)
        d_loss = bce_logits(d_real, 1.0) + bce_logits(d_fake, 0.0)
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()

        self.discriminator.requires_grad_(False)             # G step: no D weight gradients
        try:
            g_logits = call(self._D, fake, y).reshape(-1)    # D after its update, as in the tutorial
            g_loss = bce_logits(g_logits, 1.0)
            self.g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            self.g_opt.step()
        finally:
            self.discriminator.requires_grad_(True)

        self.global_step += 1
        return {"d_loss": float(d_loss.detach()), "g_loss": float(g_loss.detach()),
                "d_real": float(torch.sigmoid(d_real.detach()).mean()),
                "d_fake": float(torch.sigmoid(d_fake.detach()).mean())}


def build(config: DCGANConfig) -> DCGAN:
    return DCGAN(config)
