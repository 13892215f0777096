"""DDPM in PyTorch. Mirrors gan_diffusion/tf_backend/ddpm.py line for line.

The sampling API, guidance, figures and the NumPy-drawn training inputs come from
`gan_diffusion.families.diffusion.DiffusionModelBase`; this file adds the torch U-Net,
its EMA copy, the training step and the network call.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from gan_diffusion.families.diffusion import DiffusionModelBase
from gan_diffusion.models.ddpm import DDPMConfig
from gan_diffusion.models.unet import ddpm_weight_shapes, init_unet, timestep_features
from gan_diffusion.torch_backend import layers as backend_layers
from gan_diffusion.torch_backend import optimizers as backend_optimizers
from gan_diffusion.torch_backend.data import to_torch_loader
from gan_diffusion.torch_backend.layers import images_to_input, labels_to_input
from gan_diffusion.torch_backend.optimizers import make_optimizer
from gan_diffusion.torch_backend.unet import UNet


class DDPM(DiffusionModelBase):
    """U-Net noise predictor, its EMA and the optimizer (PyTorch); class-conditional
    with classifier-free guidance when config.num_classes > 0."""

    backend_name = "torch"
    backend_layers, backend_optimizers = backend_layers, backend_optimizers  # for TrainerBase

    def __init__(self, config: DDPMConfig):
        super().__init__(config)
        self.unet = UNet(config, "unet")
        self.ema = UNet(config, "ema")                 # sampled from; updated by the EMA rule only
        self.ema.requires_grad_(False)
        self._tensors = {"unet": self.unet.canonical_tensors(), "ema": self.ema.canonical_tensors()}
        self.opt = make_optimizer(self.unet.parameters(), config)
        self._optimizers = {"unet": self.opt}
        self.set_weights(init_unet(config, config.seed))
        self._ema_pairs = [(self._tensors["ema"][k][0], w) for k, (w, _) in self._tensors["unet"].items()]
        self._unet = torch.compile(self.unet) if config.compile else self.unet
        self.network_call = self._predict_impl                                 # tensors in/out
        self.unet.train()
        self.ema.eval()

    def weight_shapes(self) -> dict:
        return ddpm_weight_shapes(self.config)

    # -- NumPy <-> tensors in the model's dtype -----------------------------------------
    def images(self, images) -> torch.Tensor:
        return images_to_input(images, self.config.image_shape, self.config.dtype)

    def nhwc(self, array: np.ndarray) -> torch.Tensor:
        """An NHWC NumPy array (noise, x_t) as an NCHW tensor of the model's dtype."""
        return torch.from_numpy(np.ascontiguousarray(np.asarray(array).transpose(0, 3, 1, 2),
                                                     self.config.dtype))

    def tensor(self, array) -> torch.Tensor:
        return torch.from_numpy(np.array(array, self.config.dtype))

    def labels(self, labels) -> torch.Tensor | None:
        return None if labels is None or not self.num_classes else labels_to_input(labels)

    def to_numpy(self, x: torch.Tensor) -> np.ndarray:
        """Network output (NCHW) -> NHWC NumPy."""
        return np.ascontiguousarray(x.detach().numpy().transpose(0, 2, 3, 1))

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

    @torch.inference_mode()
    def _predict_impl(self, x: torch.Tensor, f: torch.Tensor, y: torch.Tensor | None, ema: bool):
        net = self.ema if ema else self.unet
        mode = net.training
        net.eval()
        try:
            return net(x, f, y)
        finally:
            net.train(mode)

    # -- training -----------------------------------------------------------------------
    def train_step(self, images, labels=None, z: np.ndarray | None = None, t: np.ndarray | None = None,
                   drop: np.ndarray | None = None) -> dict[str, float]:
        """One L_simple step: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) z, loss = mean((z - eps(x_t, t))^2),
        an optimizer step, then the EMA update.

        Args:
            images: a batch, NumPy NHWC (uint8 or float in [-1, 1]) or NCHW tensor.
            labels: class labels (N,) of a conditional model; ignored by an unconditional one.
            z: the noise (N, H, W, C) (NHWC in both backends); t: timesteps (N,); drop: the
                label-dropout mask (N,). Default: the NumPy streams at global_step.
        """
        x0 = self.images(images)                                        # (N, C, H, W)
        y = np.asarray(labels) if labels is not None and self.num_classes else None
        inp = self.training_inputs(int(x0.shape[0]), self.global_step, y, z, t, drop)
        rate = 1.0 - self.ema_decay_at(self.global_step)                # EMA: e += rate (w - e)
        loss = self._step_impl(x0, self.nhwc(inp["z"]), self.tensor(inp["a"]), self.tensor(inp["b"]),
                               self.tensor(inp["features"]), self.labels(inp["labels"]), rate)
        self.global_step += 1
        return {"loss": float(loss)}

    def _step_impl(self, x0, z, a, b, f, y, rate):
        self.unet.train()
        x_t = a * x0 + b * z                                            # forward process q(x_t | x_0)
        eps = self._unet(x_t, f, y)                                     # (N, C, H, W)
        loss = F.mse_loss(eps, z)                                       # L_simple
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            for e, w in self._ema_pairs:
                e.add_(rate * (w - e))
        return loss.detach()

    def batches(self, data, epoch: int):
        return to_torch_loader(data, self.config.batch_size, self.config.seed, epoch,
                               self.config.drop_last)


def build(config: DDPMConfig) -> DDPM:
    return DDPM(config)
