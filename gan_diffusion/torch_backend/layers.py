"""Plan layers as torch modules, and the canonical weight layout mapping.

Canonical layout (docs/weights.md) is channels-last and Keras-shaped; torch tensors are
mapped to it by a transpose only, never by reshuffling values.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan_diffusion.models.plan import Layer


class BatchNorm(nn.Module):
    """BatchNorm over dim 1 whose running variance uses the biased batch variance.

    torch.nn.BatchNorm2d updates `running_var` with the unbiased variance, Keras with the
    biased one; this module does what Keras does so the statistics match exactly.
    The forward pass (normalise with the biased batch variance) is the same in both.
    """

    def __init__(self, channels: int, momentum: float, eps: float):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                dims = [d for d in range(x.ndim) if d != 1]
                var, mean = torch.var_mean(x, dim=dims, correction=0)
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var, self.momentum)
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            False, 0.0, self.eps)


def make_layer(layer: Layer, bn_momentum: float, bn_eps: float) -> nn.Module:
    """The torch module of one plan layer."""
    k, s, p, b = layer.kernel, layer.stride, layer.padding, layer.bias
    if layer.kind == "conv":
        return nn.Conv2d(layer.in_ch, layer.out_ch, k, s, p, bias=b)
    if layer.kind == "convt":
        return nn.ConvTranspose2d(layer.in_ch, layer.out_ch, k, s, p, bias=b)
    if layer.kind == "dense":
        return nn.Linear(layer.in_ch, layer.out_ch, bias=b)
    if layer.kind == "bn":
        return BatchNorm(layer.out_ch, bn_momentum, bn_eps)
    if layer.kind == "relu":
        return nn.ReLU()
    if layer.kind == "lrelu":
        return nn.LeakyReLU(layer.alpha)
    if layer.kind == "tanh":
        return nn.Tanh()
    raise ValueError(f"unknown layer kind {layer.kind!r}")


_BN_NAMES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
             "moving_variance": "running_var"}


def canonical_tensors(layers: list[Layer], modules: nn.ModuleDict) -> dict[str, tuple[torch.Tensor, str]]:
    """{"<layer>/<param>": (tensor, kind)} for every weight of a network."""
    out = {}
    for layer in layers:
        m = modules[layer.name]
        if layer.kind == "bn":
            for canon, attr in _BN_NAMES.items():
                out[f"{layer.name}/{canon}"] = (getattr(m, attr), "bn")
        elif layer.kind in ("conv", "convt", "dense"):
            out[f"{layer.name}/kernel"] = (m.weight, layer.kind)
            if layer.bias:
                out[f"{layer.name}/bias"] = (m.bias, "bias")
    return out


def to_canonical(tensor: torch.Tensor, kind: str) -> np.ndarray:
    """torch layout -> canonical NumPy (conv (O,I,h,w) and convt (I,O,h,w) -> (h,w,I|O,O|I))."""
    a = tensor.detach().cpu().numpy()
    if kind in ("conv", "convt"):
        return np.ascontiguousarray(a.transpose(2, 3, 1, 0))
    if kind == "dense":
        return np.ascontiguousarray(a.T)
    return a.copy()


def from_canonical(array: np.ndarray, kind: str) -> torch.Tensor:
    """Inverse of `to_canonical`."""
    a = np.asarray(array, dtype=np.float32)
    if kind in ("conv", "convt"):
        a = a.transpose(3, 2, 0, 1)
    elif kind == "dense":
        a = a.T
    return torch.from_numpy(np.ascontiguousarray(a))


def assign(tensor: torch.Tensor, kind: str, array: np.ndarray) -> None:
    """Copy a canonical array into a torch parameter or buffer, in place."""
    with torch.no_grad():
        tensor.copy_(from_canonical(array, kind))


def images_to_input(images, image_shape) -> torch.Tensor:
    """NumPy NHWC (uint8, or float in [-1, 1]) or a ready NCHW tensor -> float32 NCHW."""
    if isinstance(images, torch.Tensor):
        return images
    from gan_diffusion.data import as_model_batch

    x = as_model_batch(images, image_shape)  # float32 NHWC in [-1, 1]
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def output_to_numpy(x: torch.Tensor) -> np.ndarray:
    """NCHW tensor -> NHWC NumPy float32 (other ranks: plain NumPy)."""
    a = x.detach().cpu().numpy()
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)) if a.ndim == 4 else a
