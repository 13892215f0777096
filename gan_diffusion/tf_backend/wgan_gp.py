"""WGAN-GP in TensorFlow/Keras. Mirrors gan_diffusion/torch_backend/wgan_gp.py line for line."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from gan_diffusion.models.plan import init_glorot
from gan_diffusion.models.wgan_gp import WGANGPConfig, networks, wgan_gp_weight_shapes
from gan_diffusion.tf_backend.gan import GANModel
from gan_diffusion.tf_backend.layers import Network, call, canonical_tensors


def gradient_penalty(critic: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor, fake: tf.Tensor,
                     eps: tf.Tensor) -> tf.Tensor:
    """mean((||d critic(x_hat) / d x_hat||_2 - 1)^2), x_hat = eps * real + (1 - eps) * fake.

    critic: images -> scores (labels already bound for a conditional critic).
    eps: (N, 1, 1, 1), one weight per sample. Called under an outer tape, the penalty can be
    differentiated with respect to the critic's weights.
    """
    x_hat = eps * real + (1 - eps) * fake                               # (N, H, W, C)
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        scores = critic(x_hat)
    grads = tape.gradient(scores, x_hat)
    norms = tf.norm(tf.reshape(grads, [tf.shape(grads)[0], -1]), axis=1)  # (N,)
    return tf.reduce_mean((norms - 1.0) ** 2)


class WGANGP(GANModel):
    """WGAN-GP generator + critic with their optimizers (TensorFlow/Keras); conditional when
    config.num_classes > 0."""

    def __init__(self, config: WGANGPConfig):
        super().__init__(config)
        plans = networks(config)
        bn = (config.bn_momentum, config.bn_epsilon)
        self.generator = Network(plans["generator"], *bn, (config.latent_dim,), "generator",
                                 config.dtype)
        self.critic = self.discriminator = Network(plans["critic"], *bn, config.image_shape, "critic",
                                                   config.dtype)
        self._tensors = {name: canonical_tensors(plans[name], net)
                         for name, net in (("generator", self.generator), ("critic", self.critic))}
        self.g_opt = self.make_optimizer(self.generator.trainable_variables)
        self.c_opt = self.make_optimizer(self.critic.trainable_variables)
        self._optimizers = {"generator": self.g_opt, "critic": self.c_opt}
        self.set_weights(init_glorot(plans, config.seed))
        self._critic_step = tf.function(self._critic_step_impl, reduce_retracing=True)
        self._generator_step = tf.function(self._generator_step_impl, reduce_retracing=True)

    def weight_shapes(self) -> dict:
        return wgan_gp_weight_shapes(self.config)

    def gradient_penalty(self, real: np.ndarray, fake: np.ndarray, eps: np.ndarray,
                         labels=None) -> float:
        """The penalty for NHWC images and per-sample weights eps (N,), as NumPy."""
        y = self.labels(labels)
        e = self.tensor(np.asarray(eps).reshape(-1, 1, 1, 1))
        return float(gradient_penalty(lambda v: call(self.critic, v, y, training=True),
                                      self.images(real), self.images(fake), e))

    def interpolation_weights(self, step: int, n: int) -> np.ndarray:
        """The per-sample interpolation weights of `step`: uniform [0, 1), shape (n,)."""
        return self.noise.uniform(self.config.seed, "interp", step, (n,))

    # -- training -----------------------------------------------------------------------
    def train_step(self, images, labels=None, z: np.ndarray | None = None,
                   eps: np.ndarray | None = None, z_g: np.ndarray | None = None) -> dict[str, float]:
        """One critic update on this batch; every n_critic-th step also one generator update.

        Args:
            images: a batch, NumPy NHWC (uint8 or float in [-1, 1]) or NHWC tensor.
            labels: class labels (N,) of a conditional model (fakes take the same labels);
                ignored by an unconditional one.
            z, eps, z_g: critic latent (N, latent_dim), interpolation weights (N,), generator
                latent; default: the seeded streams at global_step.
        """
        cfg, step = self.config, self.global_step
        x = self.images(images)                                       # (N, H, W, C)
        n = int(x.shape[0])
        z = self.noise.normal(cfg.seed, "latent", step, (n, cfg.latent_dim)) if z is None else z
        eps = self.interpolation_weights(step, n) if eps is None else eps
        y = self.labels(labels)
        e = self.tensor(np.asarray(eps).reshape(-1, 1, 1, 1))
        c_loss, wasserstein, gp = self._critic_step(x, self.tensor(z), e, y)
        out = {"c_loss": float(c_loss), "wasserstein": float(wasserstein), "gp": float(gp)}

        if (step + 1) % cfg.n_critic == 0:
            if z_g is None:
                z_g = self.noise.normal(cfg.seed, "latent_g", step, (n, cfg.latent_dim))
            out["g_loss"] = float(self._generator_step(self.tensor(z_g), y))
        self.global_step += 1
        return out

    def _critic_step_impl(self, x: tf.Tensor, z: tf.Tensor, e: tf.Tensor, y: tf.Tensor | None):
        G, C, cfg = self.generator, self.critic, self.config
        fake = tf.stop_gradient(call(G, z, y, training=True))        # G's BN statistics update here too
        with tf.GradientTape() as tape:
            c_real = tf.reduce_mean(call(C, x, y, training=True))
            c_fake = tf.reduce_mean(call(C, fake, y, training=True))
            gp = gradient_penalty(lambda v: call(C, v, y, training=True), x, fake, e)
            c_loss = c_fake - c_real + cfg.gp_weight * gp
        grads = tape.gradient(c_loss, C.trainable_variables)
        self.c_opt.apply_gradients(zip(grads, C.trainable_variables))
        return c_loss, c_real - c_fake, gp

    def _generator_step_impl(self, z: tf.Tensor, y: tf.Tensor | None):
        G, C = self.generator, self.critic
        with tf.GradientTape(watch_accessed_variables=False) as tape:  # G step: no critic gradients
            tape.watch([v.value for v in G.trainable_variables])
            g_loss = -tf.reduce_mean(call(C, call(G, z, y, training=True), y, training=True))
        grads = tape.gradient(g_loss, G.trainable_variables)
        self.g_opt.apply_gradients(zip(grads, G.trainable_variables))
        return g_loss


def build(config: WGANGPConfig) -> WGANGP:
    return WGANGP(config)
