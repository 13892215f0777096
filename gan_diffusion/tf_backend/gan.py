"""What every TensorFlow/Keras GAN shares. Mirrors gan_diffusion/torch_backend/gan.py."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from gan_diffusion.families.base import TrainerBase
from gan_diffusion.tf_backend import layers as backend_layers
from gan_diffusion.tf_backend import optimizers as backend_optimizers
from gan_diffusion.tf_backend.data import to_tf_dataset
from gan_diffusion.tf_backend.layers import call, images_to_input, output_to_numpy, to_tensor
from gan_diffusion.tf_backend.optimizers import make_optimizer


class GANModel(TrainerBase):
    """Generator sampling, input conversion, the data adapter and the optimizers of Keras GANs.

    Subclasses set `self.generator` and `self.discriminator` (keras.Model; the WGAN-GP
    critic is its discriminator).
    """

    backend_name = "tf"
    backend_layers, backend_optimizers = backend_layers, backend_optimizers  # for TrainerBase

    def make_optimizer(self, variables):
        """The config's optimizer (Adam, SGD, RMSprop or Adagrad) over `variables`."""
        return make_optimizer(variables, self.config)

    # -- NumPy -> tensors in the model's dtype ------------------------------------------
    def images(self, images) -> tf.Tensor:
        return images_to_input(images, self.config.image_shape, self.config.dtype)

    def tensor(self, array) -> tf.Tensor:
        return to_tensor(array, self.config.dtype)

    # -- forward passes (NumPy in, NumPy out; used by sampling and parity tests) ---------
    def forward_generator(self, z: np.ndarray, training: bool = False, labels=None) -> np.ndarray:
        """Generator output, NHWC in [-1, 1]."""
        return output_to_numpy(call(self.generator, self.tensor(z), self.labels(labels), training))

    def forward_discriminator(self, images, training: bool = False, labels=None) -> np.ndarray:
        """Discriminator logits / critic scores (N,) for NHWC images."""
        out = call(self.discriminator, self.images(images), self.labels(labels), training)
        return tf.reshape(out, [-1]).numpy()

    def generate(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        return self.forward_generator(z, training=False, labels=labels)

    def batches(self, data, epoch: int):
        return to_tf_dataset(data, self.config.batch_size, self.config.seed, epoch,
                             self.config.drop_last)
