"""WGAN-GP in PyTorch. Mirrors gan_diffusion/tf_backend/wgan_gp.py line for line."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from gan_diffusion.models.plan import init_glorot
from gan_diffusion.models.wgan_gp import WGANGPConfig, networks, wgan_gp_weight_shapes
from gan_diffusion.torch_backend.gan import GANModel
from gan_diffusion.torch_backend.layers import Network, call, canonical_tensors


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """mean((||d critic(x_hat) / d x_hat||_2 - 1)^2), x_hat = eps * real + (1 - eps) * fake.

    critic: images -> scores (labels already bound for a conditional critic).
    eps: (N, 1, 1, 1), one weight per sample. The graph is kept (create_graph) so the
    penalty can be differentiated with respect to the critic's weights.
    """
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)        # (N, C, H, W)
    grads, = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norms = grads.flatten(1).norm(2, dim=1)                             # (N,)
    return ((norms - 1.0) ** 2).mean()


class WGANGP(GANModel):
    """WGAN-GP generator + critic with their optimizers (PyTorch); conditional when
    config.num_classes > 0."""

    def __init__(self, config: WGANGPConfig):
        super().__init__(config)
        plans = networks(config)
        bn = (config.bn_momentum, config.bn_epsilon)
        self.generator = Network(plans["generator"], *bn, config.dtype)             # z (N, latent) -> (N, C, H, W)
        self.critic = self.discriminator = Network(plans["critic"], *bn, config.dtype)  # (N, C, H, W) -> (N, 1)
        self._tensors = {name: canonical_tensors(plans[name], net.layers)
                         for name, net in (("generator", self.generator), ("critic", self.critic))}
        self.g_opt = self.make_optimizer(self.generator.parameters())
        self.c_opt = self.make_optimizer(self.critic.parameters())
        self._optimizers = {"generator": self.g_opt, "critic": self.c_opt}
        self.set_weights(init_glorot(plans, config.seed))
        self._G, self._D = self.generator, self.critic
        if config.compile:
            self._G, self._D = torch.compile(self.generator), torch.compile(self.critic)

    def weight_shapes(self) -> dict:
        return wgan_gp_weight_shapes(self.config)

    def gradient_penalty(self, real: np.ndarray, fake: np.ndarray, eps: np.ndarray,
                         labels=None) -> float:
        """The penalty for NHWC images and per-sample weights eps (N,), as NumPy."""
        y = self.labels(labels)
        e = self.tensor(np.asarray(eps).reshape(-1, 1, 1, 1))
        return float(gradient_penalty(lambda v: call(self._D, v, y), self.images(real),
                                      self.images(fake), e).detach())

    def interpolation_weights(self, step: int, n: int) -> np.ndarray:
        """The per-sample interpolation weights of `step`: uniform [0, 1), shape (n,)."""
        return self.noise.uniform(self.config.seed, "interp", step, (n,))

    # -- training -----------------------------------------------------------------------
    def train_step(self, images, labels=None, z: np.ndarray | None = None,
                   eps: np.ndarray | None = None, z_g: np.ndarray | None = None) -> dict[str, float]:
        """One critic update on this batch; every n_critic-th step also one generator update.

        Args:
            images: a batch, NumPy NHWC (uint8 or float in [-1, 1]) or NCHW tensor.
            labels: class labels (N,) of a conditional model (fakes take the same labels);
                ignored by an unconditional one.
            z, eps, z_g: critic latent (N, latent_dim), interpolation weights (N,), generator
                latent; default: the seeded streams at global_step.
        """
        cfg, step = self.config, self.global_step
        x = self.images(images)                                       # (N, C, H, W)
        n = x.shape[0]
        z = self.noise.normal(cfg.seed, "latent", step, (n, cfg.latent_dim)) if z is None else z
        eps = self.interpolation_weights(step, n) if eps is None else eps
        y = self.labels(labels)
        e = self.tensor(np.asarray(eps).reshape(-1, 1, 1, 1))
        self.generator.train()
        self.critic.train()

        fake = call(self._G, self.tensor(z), y).detach()             # G's BN statistics update here too
        c_real, c_fake = call(self._D, x, y).mean(), call(self._D, fake, y).mean()
        gp = gradient_penalty(lambda v: call(self._D, v, y), x, fake, e)
        c_loss = c_fake - c_real + cfg.gp_weight * gp
        self.c_opt.zero_grad(set_to_none=True)
        c_loss.backward()
        self.c_opt.step()
        out = {"c_loss": float(c_loss.detach()), "wasserstein": float((c_real - c_fake).detach()),
               "gp": float(gp.detach())}

        if (step + 1) % cfg.n_critic == 0:
            if z_g is None:
                z_g = self.noise.normal(cfg.seed, "latent_g", step, (n, cfg.latent_dim))
            self.critic.requires_grad_(False)                         # G step: no critic gradients
            try:
                g_loss = -call(self._D, call(self._G, self.tensor(z_g), y), y).mean()
                self.g_opt.zero_grad(set_to_none=True)
                g_loss.backward()
                self.g_opt.step()
            finally:
                self.critic.requires_grad_(True)
            out["g_loss"] = float(g_loss.detach())
        self.global_step += 1
        return out


def build(config: WGANGPConfig) -> WGANGP:
    return WGANGP(config)
