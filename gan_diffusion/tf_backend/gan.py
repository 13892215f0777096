"""What every TensorFlow/Keras GAN shares. Mirrors gan_diffusion/torch_backend/gan.py."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from gan_diffusion.tf_backend import layers as backend_layers
from gan_diffusion.tf_backend import optimizers as backend_optimizers
from gan_diffusion.tf_backend.data import to_tf_dataset
from gan_diffusion.tf_backend.layers import output_to_numpy
from gan_diffusion.tf_backend.optimizers import Adam, make_adam
from gan_diffusion.trainer import TrainerBase


class GANModel(TrainerBase):
    """Generator sampling, the data adapter and Adam construction for Keras GANs.

    Subclasses set `self.generator` (a keras.Model).
    """

    backend_name = "tf"
    backend_layers, backend_optimizers = backend_layers, backend_optimizers  # for TrainerBase

    def make_adam(self, variables) -> Adam:
        """Adam with the config's learning rate, betas and epsilon."""
        c = self.config
        return make_adam(variables, lr=c.learning_rate, beta1=c.beta1, beta2=c.beta2, eps=c.adam_epsilon)

    def forward_generator(self, z: np.ndarray, training: bool = False) -> np.ndarray:
        """Generator output, NHWC float32 in [-1, 1]."""
        return output_to_numpy(self.generator(tf.constant(np.asarray(z, np.float32)), training=training))

    def generate(self, z: np.ndarray) -> np.ndarray:
        return self.forward_generator(z, training=False)

    def batches(self, data, epoch: int):
        return to_tf_dataset(data, self.config.batch_size, self.config.seed, epoch,
                             self.config.drop_last)
