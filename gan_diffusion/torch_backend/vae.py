"""VAE in PyTorch. Mirrors gan_diffusion/tf_backend/vae.py line for line."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan_diffusion.families.vae import VAEBase
from gan_diffusion.models.plan import Layer, init_glorot
from gan_diffusion.models.vae import VAEConfig, networks, split_heads, vae_weight_shapes
from gan_diffusion.torch_backend import layers as backend_layers
from gan_diffusion.torch_backend import optimizers as backend_optimizers
from gan_diffusion.torch_backend.data import to_torch_loader
from gan_diffusion.torch_backend.layers import (Network, call, canonical_tensors, images_to_input,
                                                make_layer, output_to_numpy, to_tensor)
from gan_diffusion.torch_backend.optimizers import make_optimizer

NO_BN = (0.1, 1e-5)  # Network's BatchNorm settings: unused, the VAE has no BatchNorm


class Encoder(nn.Module):
    """Image (N, C, H, W) in [0, 1] [and labels] -> (z_mean, z_log_var), (N, latent) each:
    the trunk, then both heads on the trunk's output."""

    def __init__(self, plan: list[Layer], dtype: str):
        super().__init__()
        trunk, heads = split_heads(plan)
        self.trunk = Network(trunk, *NO_BN, dtype)                      # -> (N, hidden)
        self.heads = nn.ModuleDict({head.name: make_layer(head, *NO_BN) for head in heads})
        self.heads.to(getattr(torch, dtype))

    @property
    def layers(self) -> dict[str, nn.Module]:
        """Every layer by its plan name (trunk and heads), for canonical_tensors."""
        return {**self.trunk.layers, **self.heads}

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        h = call(self.trunk, x, labels)
        return self.heads["z_mean"](h), self.heads["z_log_var"](h)


def reconstruction_nll(config: VAEConfig, x01: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """-log p(x | z) per image (N,), summed over pixels (formulas in models/vae.py)."""
    if config.likelihood == "bernoulli":
        per_pixel = F.binary_cross_entropy_with_logits(logits, x01, reduction="none")
    else:
        s = config.gaussian_sigma
        per_pixel = (torch.square(x01 - torch.sigmoid(logits)) * (1.0 / (2.0 * s * s))
                     + 0.5 * math.log(2.0 * math.pi * s * s))
    return per_pixel.flatten(1).sum(dim=1)


def kl_standard_normal(z_mean: torch.Tensor, z_log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) per image (N,), closed form."""
    return -0.5 * torch.sum(1.0 + z_log_var - torch.square(z_mean) - torch.exp(z_log_var), dim=1)


class VAE(VAEBase):
    """Encoder + decoder with their optimizers (PyTorch); conditional when
    config.num_classes > 0."""

    backend_name = "torch"
    backend_layers, backend_optimizers = backend_layers, backend_optimizers  # for TrainerBase

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        plans = networks(config)
        self.encoder = Encoder(plans["encoder"], config.dtype)
        self.decoder = Network(plans["decoder"], *NO_BN, config.dtype)  # z -> logits (N, C, H, W)
        self._tensors = {name: canonical_tensors(plans[name], net.layers)
                         for name, net in (("encoder", self.encoder), ("decoder", self.decoder))}
        # one optimizer per network: the rules are elementwise, so this is one optimizer over all
        self.e_opt = make_optimizer(self.encoder.parameters(), config)
        self.d_opt = make_optimizer(self.decoder.parameters(), config)
        self._optimizers = {"encoder": self.e_opt, "decoder": self.d_opt}
        self.set_weights(init_glorot(plans, config.seed))
        self._E, self._D = self.encoder, self.decoder
        if config.compile:
            self._E, self._D = torch.compile(self.encoder), torch.compile(self.decoder)

    def weight_shapes(self) -> dict:
        return vae_weight_shapes(self.config)

    # -- NumPy -> tensors in the model's dtype ------------------------------------------
    def images(self, images) -> torch.Tensor:
        """A batch (NumPy uint8 / float in [-1, 1], or the adapter's tensor) in [0, 1]."""
        return (images_to_input(images, self.config.image_shape, self.config.dtype) + 1.0) / 2.0

    def tensor(self, array) -> torch.Tensor:
        return to_tensor(array, self.config.dtype)

    def batches(self, data, epoch: int):
        return to_torch_loader(data, self.config.batch_size, self.config.seed, epoch,
                               self.config.drop_last)

    # -- forward passes (NumPy in, NumPy out) ---------------------------------------------
    def encode(self, images, labels=None) -> tuple[np.ndarray, np.ndarray]:
        """(z_mean, z_log_var) of images (uint8 or float in [-1, 1]), (N, latent_dim) each."""
        with torch.no_grad():
            z_mean, z_log_var = call(self._E, self.images(images), self.labels(labels))
        return output_to_numpy(z_mean), output_to_numpy(z_log_var)

    def decode(self, z: np.ndarray, labels=None) -> np.ndarray:
        """sigmoid(decoder(z)): the likelihood's mean, NHWC in [0, 1]."""
        with torch.no_grad():
            return output_to_numpy(torch.sigmoid(call(self._D, self.tensor(z), self.labels(labels))))

    def loss_terms(self, images, labels=None, eps: np.ndarray | None = None) -> dict[str, float]:
        """The batch's loss terms (nats per image, bits/dim) without an update; eps default:
        the "reparam" stream at global_step (what train_step would draw)."""
        x = self.images(images)
        eps = self.reparam_noise(self.global_step, x.shape[0]) if eps is None else eps
        with torch.no_grad():
            return self.report(*(float(t) for t in self._terms_impl(x, self.tensor(eps), self.labels(labels))))

    # -- training -----------------------------------------------------------------------
    def train_step(self, images, labels=None, eps: np.ndarray | None = None) -> dict[str, float]:
        """One step on the negative ELBO (batch mean), encoder and decoder together.

        Args:
            images: a batch, NumPy NHWC (uint8 or float in [-1, 1]) or NCHW tensor.
            labels: class labels (N,) of a conditional model; ignored by an unconditional one.
            eps: reparameterisation noise (N, latent_dim); default: the seeded "reparam"
                stream at global_step.

        Returns:
            {"neg_elbo", "recon", "kl"} in nats per image and "bpd" (bits/dim), before the update.
        """
        x = self.images(images)                                       # (N, C, H, W) in [0, 1]
        eps = self.reparam_noise(self.global_step, x.shape[0]) if eps is None else eps
        neg_elbo, recon, kl = self._step_impl(x, self.tensor(eps), self.labels(labels))
        self.global_step += 1
        return self.report(float(neg_elbo), float(recon), float(kl))

    def _terms_impl(self, x: torch.Tensor, eps: torch.Tensor, y: torch.Tensor | None):
        z_mean, z_log_var = call(self._E, x, y)                         # (N, latent) each
        z = z_mean + torch.exp(0.5 * z_log_var) * eps                   # reparameterisation
        logits = call(self._D, z, y)                                    # (N, C, H, W)
        recon = reconstruction_nll(self.config, x, logits)             # (N,)
        kl = kl_standard_normal(z_mean, z_log_var)                     # (N,)
        return torch.mean(recon + kl), torch.mean(recon), torch.mean(kl)

    def _step_impl(self, x: torch.Tensor, eps: torch.Tensor, y: torch.Tensor | None):
        self.encoder.train()
        self.decoder.train()
        neg_elbo, recon, kl = self._terms_impl(x, eps, y)
        self.e_opt.zero_grad(set_to_none=True)
        self.d_opt.zero_grad(set_to_none=True)
        neg_elbo.backward()
        self.e_opt.step()
        self.d_opt.step()
        return neg_elbo.detach(), recon.detach(), kl.detach()


def build(config: VAEConfig) -> VAE:
    return VAE(config)
