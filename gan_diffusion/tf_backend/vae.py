"""VAE in TensorFlow/Keras. Mirrors gan_diffusion/torch_backend/vae.py line for line."""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from gan_diffusion.families.vae import VAEBase
from gan_diffusion.models.plan import Layer, init_glorot
from gan_diffusion.models.vae import VAEConfig, networks, split_heads, vae_weight_shapes
from gan_diffusion.tf_backend import layers as backend_layers
from gan_diffusion.tf_backend import optimizers as backend_optimizers
from gan_diffusion.tf_backend.data import to_tf_dataset
from gan_diffusion.tf_backend.layers import (Network, call, canonical_tensors, images_to_input,
                                             make_layer, output_to_numpy, to_tensor)
from gan_diffusion.tf_backend.optimizers import make_optimizer

NO_BN = (0.1, 1e-5)  # Network's BatchNorm settings: unused, the VAE has no BatchNorm


def Encoder(plan: list[Layer], input_shape: tuple, dtype: str) -> keras.Model:
    """Image (N, H, W, C) in [0, 1] [and labels] -> [z_mean, z_log_var], (N, latent) each:
    the trunk, then both heads on the trunk's output."""
    trunk, heads = split_heads(plan)
    base = Network(trunk, *NO_BN, input_shape, "encoder", dtype)    # -> (N, hidden)
    h = base.output
    return keras.Model(base.input, [make_layer(head, *NO_BN, dtype)(h) for head in heads],
                       name="encoder")


def reconstruction_nll(config: VAEConfig, x01: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """-log p(x | z) per image (N,), summed over pixels (formulas in models/vae.py)."""
    if config.likelihood == "bernoulli":
        per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=x01, logits=logits)
    else:
        s = config.gaussian_sigma
        per_pixel = (tf.square(x01 - tf.sigmoid(logits)) * (1.0 / (2.0 * s * s))
                     + 0.5 * math.log(2.0 * math.pi * s * s))
    return tf.reduce_sum(tf.reshape(per_pixel, [tf.shape(per_pixel)[0], -1]), axis=1)


def kl_standard_normal(z_mean: tf.Tensor, z_log_var: tf.Tensor) -> tf.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) per image (N,), closed form."""
    return -0.5 * tf.reduce_sum(1.0 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var), axis=1)


class VAE(VAEBase):
    """Encoder + decoder with their optimizers (TensorFlow/Keras); conditional when
    config.num_classes > 0."""

    backend_name = "tf"
    backend_layers, backend_optimizers = backend_layers, backend_optimizers  # for TrainerBase

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        plans = networks(config)
        self.encoder = Encoder(plans["encoder"], config.image_shape, config.dtype)
        self.decoder = Network(plans["decoder"], *NO_BN, (config.latent_dim,), "decoder",
                               config.dtype)                       # z -> logits (N, H, W, C)
        self._tensors = {name: canonical_tensors(plans[name], net)
                         for name, net in (("encoder", self.encoder), ("decoder", self.decoder))}
        # one optimizer per network: the rules are elementwise, so this is one optimizer over all
        self.e_opt = make_optimizer(self.encoder.trainable_variables, config)
        self.d_opt = make_optimizer(self.decoder.trainable_variables, config)
        self._optimizers = {"encoder": self.e_opt, "decoder": self.d_opt}
        self.set_weights(init_glorot(plans, config.seed))
        self._step = tf.function(self._step_impl, reduce_retracing=True)  # graph mode, not eager
        self._terms = tf.function(self._terms_impl, reduce_retracing=True)

    def weight_shapes(self) -> dict:
        return vae_weight_shapes(self.config)

    # -- NumPy -> tensors in the model's dtype ------------------------------------------
    def images(self, images) -> tf.Tensor:
        """A batch (NumPy uint8 / float in [-1, 1], or the adapter's tensor) in [0, 1]."""
        return (images_to_input(images, self.config.image_shape, self.config.dtype) + 1.0) / 2.0

    def tensor(self, array) -> tf.Tensor:
        return to_tensor(array, self.config.dtype)

    def batches(self, data, epoch: int):
        return to_tf_dataset(data, self.config.batch_size, self.config.seed, epoch,
                             self.config.drop_last)

    # -- forward passes (NumPy in, NumPy out) ---------------------------------------------
    def encode(self, images, labels=None) -> tuple[np.ndarray, np.ndarray]:
        """(z_mean, z_log_var) of images (uint8 or float in [-1, 1]), (N, latent_dim) each."""
        z_mean, z_log_var = call(self.encoder, self.images(images), self.labels(labels))
        return output_to_numpy(z_mean), output_to_numpy(z_log_var)

    def decode(self, z: np.ndarray, labels=None) -> np.ndarray:
        """sigmoid(decoder(z)): the likelihood's mean, NHWC in [0, 1]."""
        return output_to_numpy(tf.sigmoid(call(self.decoder, self.tensor(z), self.labels(labels))))

    def loss_terms(self, images, labels=None, eps: np.ndarray | None = None) -> dict[str, float]:
        """The batch's loss terms (nats per image, bits/dim) without an update; eps default:
        the "reparam" stream at global_step (what train_step would draw)."""
        x = self.images(images)
        eps = self.reparam_noise(self.global_step, int(x.shape[0])) if eps is None else eps
        return self.report(*self._terms(x, self.tensor(eps), self.labels(labels)))

    # -- training -----------------------------------------------------------------------
    def train_step(self, images, labels=None, eps: np.ndarray | None = None) -> dict[str, float]:
        """One step on the negative ELBO (batch mean), encoder and decoder together.

        Args:
            images: a batch, NumPy NHWC (uint8 or float in [-1, 1]) or NHWC tensor.
            labels: class labels (N,) of a conditional model; ignored by an unconditional one.
            eps: reparameterisation noise (N, latent_dim); default: the seeded "reparam"
                stream at global_step.

        Returns:
            {"neg_elbo", "recon", "kl"} in nats per image and "bpd" (bits/dim), before the update.
        """
        x = self.images(images)                                       # (N, H, W, C) in [0, 1]
        eps = self.reparam_noise(self.global_step, int(x.shape[0])) if eps is None else eps
        neg_elbo, recon, kl = self._step(x, self.tensor(eps), self.labels(labels))
        self.global_step += 1
        return self.report(neg_elbo, recon, kl)

    def _terms_impl(self, x: tf.Tensor, eps: tf.Tensor, y: tf.Tensor | None):
        z_mean, z_log_var = call(self.encoder, x, y, training=True)    # (N, latent) each
        z = z_mean + tf.exp(0.5 * z_log_var) * eps                     # reparameterisation
        logits = call(self.decoder, z, y, training=True)                # (N, H, W, C)
        recon = reconstruction_nll(self.config, x, logits)             # (N,)
        kl = kl_standard_normal(z_mean, z_log_var)                     # (N,)
        return tf.reduce_mean(recon + kl), tf.reduce_mean(recon), tf.reduce_mean(kl)

    def _step_impl(self, x: tf.Tensor, eps: tf.Tensor, y: tf.Tensor | None):
        E, D = self.encoder, self.decoder
        with tf.GradientTape() as tape:
            neg_elbo, recon, kl = self._terms_impl(x, eps, y)
        e_grads, d_grads = tape.gradient(neg_elbo, [E.trainable_variables, D.trainable_variables])
        self.e_opt.apply_gradients(zip(e_grads, E.trainable_variables))
        self.d_opt.apply_gradients(zip(d_grads, D.trainable_variables))
        return neg_elbo, recon, kl


def build(config: VAEConfig) -> VAE:
    return VAE(config)
