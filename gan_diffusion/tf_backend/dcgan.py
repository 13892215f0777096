"""DCGAN in TensorFlow/Keras. Mirrors gan_diffusion/torch_backend/dcgan.py line for line."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from gan_diffusion.models.dcgan import DCGANConfig, dcgan_weight_shapes, networks
from gan_diffusion.models.plan import init_normal
from gan_diffusion.tf_backend.gan import GANModel
from gan_diffusion.tf_backend.layers import Network, call, canonical_tensors


def bce_logits(logits: tf.Tensor, target: float) -> tf.Tensor:
    """Mean binary cross-entropy against a constant target, from logits (stable form)."""
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.fill(tf.shape(logits), tf.cast(target, logits.dtype)), logits=logits))


class DCGAN(GANModel):
    """DCGAN generator + discriminator with their optimizers (TensorFlow/Keras); conditional
    when config.num_classes > 0."""

    # the architecture (models/mlp_gan.py's MLP GAN reuses this class with its own plans)
    networks = staticmethod(networks)
    weight_shapes_of = staticmethod(dcgan_weight_shapes)

    def __init__(self, config: DCGANConfig):
        super().__init__(config)
        plans = self.networks(config)
        bn = (config.bn_momentum, config.bn_epsilon)
        self.generator = Network(plans["generator"], *bn, (config.latent_dim,), "generator",
                                 config.dtype)
        self.discriminator = Network(plans["discriminator"], *bn, config.image_shape,
                                     "discriminator", config.dtype)
        self._tensors = {name: canonical_tensors(plans[name], net)
                         for name, net in (("generator", self.generator),
                                           ("discriminator", self.discriminator))}
        self.g_opt = self.make_optimizer(self.generator.trainable_variables)
        self.d_opt = self.make_optimizer(self.discriminator.trainable_variables)
        self._optimizers = {"generator": self.g_opt, "discriminator": self.d_opt}
        self.set_weights(init_normal(plans, config.seed, config.init_std))
        self._step = tf.function(self._step_impl, reduce_retracing=True)  # graph mode, not eager

    def weight_shapes(self) -> dict:
        return self.weight_shapes_of(self.config)

    # -- training -----------------------------------------------------------------------
    def train_step(self, images, labels=None, z: np.ndarray | None = None) -> dict[str, float]:
        """One DCGAN step (the tutorial's order): update D on real+fake, then G.

        Args:
            images: a batch, NumPy NHWC (uint8 or float in [-1, 1]) or NHWC tensor.
            labels: class labels (N,) of a conditional model (fakes take the same labels);
                ignored by an unconditional one.
            z: latent noise (N, latent_dim); default: the seeded stream at global_step.
        """
        x = self.images(images)  # (N, H, W, C)
        if z is None:
            z = self.noise.normal(self.config.seed, "latent", self.global_step,
                             (int(x.shape[0]), self.config.latent_dim))
        d_loss, g_loss, d_real, d_fake = self._step(x, self.tensor(z), self.labels(labels))
        self.global_step += 1
        return {"d_loss": float(d_loss), "g_loss": float(g_loss),
                "d_real": float(d_real), "d_fake": float(d_fake)}

    def _step_impl(self, x: tf.Tensor, z: tf.Tensor, y: tf.Tensor | None):
        G, D = self.generator, self.discriminator
        with tf.GradientTape(watch_accessed_variables=False) as g_tape:  # G step: no D weight gradients
            g_tape.watch([v.value for v in G.trainable_variables])  # the tf.Variables under Keras variables
            fake = call(G, z, y, training=True)                           # (N, H, W, C)
            with tf.GradientTape() as d_tape:
                d_real = tf.reshape(call(D, x, y, training=True), [-1])   # (N,) logits
                d_fake = tf.reshape(call(D, tf.stop_gradient(fake), y, training=True), [-1])
                d_loss = bce_logits(d_real, 1.0) + bce_logits(d_fake, 0.0)
            d_grads = d_tape.gradient(d_loss, D.trainable_variables)
            self.d_opt.apply_gradients(zip(d_grads, D.trainable_variables))

            g_logits = tf.reshape(call(D, fake, y, training=True), [-1])  # D after its update, as in the tutorial
            g_loss = bce_logits(g_logits, 1.0)
        g_grads = g_tape.gradient(g_loss, G.trainable_variables)
        self.g_opt.apply_gradients(zip(g_grads, G.trainable_variables))
        return (d_loss, g_loss, tf.reduce_mean(tf.sigmoid(d_real)),
                tf.reduce_mean(tf.sigmoid(d_fake)))


def build(config: DCGANConfig) -> DCGAN:
    return DCGAN(config)
