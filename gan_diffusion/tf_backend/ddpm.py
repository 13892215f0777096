"""DDPM in TensorFlow/Keras. Mirrors gan_diffusion/torch_backend/ddpm.py line for line.

The sampling API, guidance, figures and the NumPy-drawn training inputs come from
`gan_diffusion.families.diffusion.DiffusionModelBase`; this file adds the Keras U-Net,
its EMA copy, the training step and the network call.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from gan_diffusion.families.diffusion import DiffusionModelBase
from gan_diffusion.models.ddpm import DDPMConfig
from gan_diffusion.models.unet import ddpm_weight_shapes, init_unet, timestep_features
from gan_diffusion.tf_backend import layers as backend_layers
from gan_diffusion.tf_backend import optimizers as backend_optimizers
from gan_diffusion.tf_backend.data import to_tf_dataset
from gan_diffusion.tf_backend.layers import images_to_input, labels_to_input
from gan_diffusion.tf_backend.optimizers import make_optimizer
from gan_diffusion.tf_backend.unet import UNet


class DDPM(DiffusionModelBase):
    """U-Net noise predictor, its EMA and the optimizer (TensorFlow/Keras); class-conditional
    with classifier-free guidance when config.num_classes > 0."""

    backend_name = "tf"
    backend_layers, backend_optimizers = backend_layers, backend_optimizers  # for TrainerBase

    def __init__(self, config: DDPMConfig):
        super().__init__(config)
        self.unet = UNet(config, "unet")
        self.ema = UNet(config, "ema")                 # sampled from; updated by the EMA rule only
        self.ema.trainable = False
        self._tensors = {"unet": self.unet.canonical_tensors(), "ema": self.ema.canonical_tensors()}
        self.opt = make_optimizer(self.unet.trainable_variables, config)
        self._optimizers = {"unet": self.opt}
        self.set_weights(init_unet(config, config.seed))
        self._ema_pairs = [(self._tensors["ema"][k][0], w) for k, (w, _) in self._tensors["unet"].items()]
        self._step = tf.function(self._step_impl, reduce_retracing=True)      # graph mode, not eager
        self.network_call = tf.function(self._predict_impl, reduce_retracing=True)  # tensors in/out

    def weight_shapes(self) -> dict:
        return ddpm_weight_shapes(self.config)

    # -- NumPy <-> tensors in the model's dtype -----------------------------------------
    def images(self, images) -> tf.Tensor:
        return images_to_input(images, self.config.image_shape, self.config.dtype)

    def nhwc(self, array: np.ndarray) -> tf.Tensor:
        """An NHWC NumPy array (noise, x_t) as a tensor of the model's dtype (layout kept)."""
        return tf.constant(np.asarray(array, self.config.dtype))

    def tensor(self, array) -> tf.Tensor:
        return tf.constant(np.asarray(array, self.config.dtype))

    def labels(self, labels) -> tf.Tensor | None:
        return None if labels is None or not self.num_classes else labels_to_input(labels)

    def to_numpy(self, x: tf.Tensor) -> np.ndarray:
        """Network output -> NHWC NumPy."""
        return x.numpy()

    # -- the network call the samplers use ----------------------------------------------
    def predict_noise(self, x: np.ndarray, t: np.ndarray, labels: np.ndarray | None = None,
                      ema: bool = True) -> np.ndarray:
        """Predicted noise for x_t (N, H, W, C) at timesteps t (N,) [and labels (N,)], NumPy.

        ema: use the EMA weights (sampling) or the trained ones.
        """
        if self.num_classes and labels is None:
            raise ValueError("this conditional ddpm needs labels (the null class is num_classes)")
        f = timestep_features(t, self.config.base_channels, self.config.dtype)  # (N, ch)
        return self.to_numpy(self.network_call(self.nhwc(x), self.tensor(f), self.labels(labels), ema))

    def _predict_impl(self, x: tf.Tensor, f: tf.Tensor, y: tf.Tensor | None, ema: bool):
        return (self.ema if ema else self.unet)(x, f, y, training=False)

    # -- training -----------------------------------------------------------------------
    def train_step(self, images, labels=None, z: np.ndarray | None = None, t: np.ndarray | None = None,
                   drop: np.ndarray | None = None) -> dict[str, float]:
        """One L_simple step: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) z, loss = mean((z - eps(x_t, t))^2),
        an optimizer step, then the EMA update.

        Args:
            images: a batch, NumPy NHWC (uint8 or float in [-1, 1]) or NHWC tensor.
            labels: class labels (N,) of a conditional model; ignored by an unconditional one.
            z: the noise (N, H, W, C) (NHWC in both backends); t: timesteps (N,); drop: the
                label-dropout mask (N,). Default: the NumPy streams at global_step.
        """
        x0 = self.images(images)                                        # (N, H, W, C)
        y = np.asarray(labels) if labels is not None and self.num_classes else None
        inp = self.training_inputs(int(x0.shape[0]), self.global_step, y, z, t, drop)
        rate = 1.0 - self.ema_decay_at(self.global_step)                # EMA: e += rate (w - e)
        loss = self._step(x0, self.nhwc(inp["z"]), self.tensor(inp["a"]), self.tensor(inp["b"]),
                          self.tensor(inp["features"]), self.labels(inp["labels"]), self.tensor(rate))
        self.global_step += 1
        return {"loss": float(loss)}

    def _step_impl(self, x0, z, a, b, f, y, rate):
        with tf.GradientTape() as tape:
            x_t = a * x0 + b * z                                        # forward process q(x_t | x_0)
            eps = self.unet(x_t, f, y, training=True)                   # (N, H, W, C)
            loss = tf.reduce_mean(tf.square(eps - z))                   # L_simple
        grads = tape.gradient(loss, self.unet.trainable_variables)
        self.opt.apply_gradients(zip(grads, self.unet.trainable_variables))
        for e, w in self._ema_pairs:
            e.assign_add(rate * (w - e))
        return loss

    def batches(self, data, epoch: int):
        return to_tf_dataset(data, self.config.batch_size, self.config.seed, epoch,
                             self.config.drop_last)


def build(config: DDPMConfig) -> DDPM:
    return DDPM(config)
