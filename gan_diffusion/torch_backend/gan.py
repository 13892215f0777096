"""What every PyTorch GAN shares. Mirrors gan_diffusion/tf_backend/gan.py."""
from __future__ import annotations

import numpy as np
import torch

from gan_diffusion.families.base import TrainerBase
from gan_diffusion.torch_backend import layers as backend_layers
from gan_diffusion.torch_backend import optimizers as backend_optimizers
from gan_diffusion.torch_backend.data import to_torch_loader
from gan_diffusion.torch_backend.layers import call, images_to_input, output_to_numpy, to_tensor
from gan_diffusion.torch_backend.optimizers import make_optimizer


class GANModel(TrainerBase):
    """Generator sampling, input conversion, the data adapter and the optimizers of PyTorch GANs.

    Subclasses set `self.generator` and `self.discriminator` (nn.Module; the WGAN-GP critic is
    its discriminator) and `self._G`, `self._D` (them, or their torch.compile).
    """

    backend_name = "torch"
    backend_layers, backend_optimizers = backend_layers, backend_optimizers  # for TrainerBase

    def make_optimizer(self, params):
        """The config's optimizer (Adam, SGD, RMSprop or Adagrad) over `params`."""
        return make_optimizer(params, self.config)

    # -- NumPy -> tensors in the model's dtype ------------------------------------------
    def images(self, images) -> torch.Tensor:
        return images_to_input(images, self.config.image_shape, self.config.dtype)

    def tensor(self, array) -> torch.Tensor:
        return to_tensor(array, self.config.dtype)

    # -- forward passes (NumPy in, NumPy out; used by sampling and parity tests) ---------
    def forward_generator(self, z: np.ndarray, training: bool = False, labels=None) -> np.ndarray:
        """Generator output, NHWC in [-1, 1]."""
        self.generator.train(training)
        with torch.no_grad():
            return output_to_numpy(call(self._G, self.tensor(z), self.labels(labels)))

    def forward_discriminator(self, images, training: bool = False, labels=None) -> np.ndarray:
        """Discriminator logits / critic scores (N,) for NHWC images."""
        self.discriminator.train(training)
        with torch.no_grad():
            return call(self._D, self.images(images), self.labels(labels)).reshape(-1).numpy()

    def generate(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        return self.forward_generator(z, training=False, labels=labels)

    def batches(self, data, epoch: int):
        return to_torch_loader(data, self.config.batch_size, self.config.seed, epoch,
                               self.config.drop_last)
