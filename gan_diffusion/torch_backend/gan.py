"""What every PyTorch GAN shares. Mirrors gan_diffusion/tf_backend/gan.py."""
from __future__ import annotations

import numpy as np
import torch

from gan_diffusion.torch_backend import layers as backend_layers
from gan_diffusion.torch_backend import optimizers as backend_optimizers
from gan_diffusion.torch_backend.data import to_torch_loader
from gan_diffusion.torch_backend.layers import output_to_numpy
from gan_diffusion.torch_backend.optimizers import make_adam
from gan_diffusion.trainer import TrainerBase


class GANModel(TrainerBase):
    """Generator sampling, the data adapter and Adam construction for PyTorch GANs.

    Subclasses set `self.generator` (an nn.Module) and `self._G` (it, or its torch.compile).
    """

    backend_name = "torch"
    backend_layers, backend_optimizers = backend_layers, backend_optimizers  # for TrainerBase

    def make_adam(self, params) -> torch.optim.Adam:
        """Adam with the config's learning rate, betas and epsilon."""
        c = self.config
        return make_adam(params, lr=c.learning_rate, beta1=c.beta1, beta2=c.beta2, eps=c.adam_epsilon)

    def forward_generator(self, z: np.ndarray, training: bool = False) -> np.ndarray:
        """Generator output, NHWC float32 in [-1, 1]."""
        self.generator.train(training)
        with torch.no_grad():
            return output_to_numpy(self._G(torch.from_numpy(np.asarray(z, np.float32))))

    def generate(self, z: np.ndarray) -> np.ndarray:
        return self.forward_generator(z, training=False)

    def batches(self, data, epoch: int):
        return to_torch_loader(data, self.config.batch_size, self.config.seed, epoch,
                               self.config.drop_last)
