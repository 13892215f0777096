"""Bring your own network: a diffusers `UNet2DModel` as the noise predictor of our samplers.

diffusers is PyTorch-only, so this adapter has no TensorFlow twin. It turns a UNet2DModel
(NCHW tensors, `unet(x, t, class_labels).sample`) into the NumPy call our samplers take,
predict(x_t NHWC, t (N,)[, labels]) -> eps NHWC, and gives the L_simple loss for training
it with our schedule and NumPy noise.

Example:
    >>> from diffusers import UNet2DModel
    >>> unet = UNet2DModel(sample_size=28, in_channels=1, out_channels=1, ...)   # or from_pretrained
    >>> predict = DiffusersNoisePredictor(unet)
    >>> scheduler = make_scheduler("ddim", make_schedule("linear"), steps=50)
    >>> x0 = denoise(predict, scheduler, noise.normal(0, "sample", 0, (16, 28, 28, 1)))
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gan_diffusion.schedulers.schedules import NoiseSchedule


class DiffusersNoisePredictor:
    """A diffusers UNet2DModel (epsilon prediction) as predict(x, t[, labels]) -> eps, NumPy.

    Args:
        unet: a `diffusers.UNet2DModel` (any torch module called as unet(x, t[, class_labels])
            returning an object with `.sample`, or a tensor).
        labels: class labels (N,) passed as `class_labels` on every call (class-conditional
            UNet2DModels, num_class_embeds > 0); None for unconditional ones.
    """

    def __init__(self, unet: Any, labels: np.ndarray | None = None):
        self.unet = unet
        self.labels = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.long)
        self.dtype = next(unet.parameters()).dtype

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The UNet on NCHW tensors (with autograd), returning the predicted noise (NCHW)."""
        out = self.unet(x, t) if labels is None else self.unet(x, t, class_labels=labels)
        return getattr(out, "sample", out)

    @torch.inference_mode()
    def __call__(self, x: np.ndarray, t: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """eps for x_t (N, H, W, C) at timesteps t (N,), as NumPy NHWC in x's dtype."""
        xt = torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2))).to(self.dtype)
        y = self.labels if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.long)
        eps = self.forward(xt, torch.as_tensor(np.asarray(t), dtype=torch.long), y)
        return np.ascontiguousarray(eps.float().numpy().transpose(0, 2, 3, 1)).astype(x.dtype, copy=False)

    def loss(self, x0: np.ndarray, t: np.ndarray, z: np.ndarray, schedule: NoiseSchedule,
             labels: np.ndarray | None = None) -> torch.Tensor:
        """L_simple = mean((z - eps(x_t, t))^2) with x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) z,
        as a torch scalar to backpropagate (x0, z NHWC NumPy; t (N,) from our streams)."""
        x_t = schedule.q_sample(np.asarray(x0, np.float64), t, np.asarray(z, np.float64))

        def nchw(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).to(self.dtype)

        y = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.long)
        eps = self.forward(nchw(x_t), torch.as_tensor(np.asarray(t), dtype=torch.long), y)
        return F.mse_loss(eps, nchw(np.asarray(z)))
