"""Plan layers as torch modules, and the canonical weight layout mapping.

Canonical layout (docs/weights.md) is channels-last and Keras-shaped; torch tensors are
mapped to it by a transpose only, never by reshuffling values.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan_diffusion.models.plan import Layer, convt_crop, same_pads


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


class SameConv2d(nn.Conv2d):
    """Conv2d with TF 'same' padding, asymmetric where TF's is (zero-pad, then 'valid')."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, bias: bool, in_size: int):
        super().__init__(in_ch, out_ch, kernel, stride, padding=0, bias=bias)
        before, after = same_pads(in_size, kernel, stride)
        self.pads = (before, after, before, after)  # F.pad order: left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads))


class SameConvTranspose2d(nn.ConvTranspose2d):
    """ConvTranspose2d with TF 'same' semantics: the full transposed conv, then TF's crop.

    torch's padding/output_padding would crop symmetrically (plus one row at the end);
    TF crops `before` rows at the start, which for 5x5 stride 2 is one pixel different.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, bias: bool, in_size: int):
        super().__init__(in_ch, out_ch, kernel, stride, padding=0, bias=bias)
        self.start, self.size, _ = convt_crop(in_size, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        full = super().forward(x)                 # (N, C, (in-1)*s+k, (in-1)*s+k)
        a, b = self.start, self.start + self.size
        return full[:, :, a:b, a:b]


class ReshapeHWC(nn.Module):
    """(N, h*w*c) in Keras' HWC order -> (N, c, h, w)."""

    def __init__(self, shape: tuple[int, int, int]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape).permute(0, 3, 1, 2)


class FlattenHWC(nn.Module):
    """(N, C, H, W) -> (N, H*W*C) in Keras' HWC order, so dense kernels are shared."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


class GlobalAvgPool(nn.Module):
    """(N, C, H, W) -> (N, C): mean over the spatial axes (Keras' GlobalAveragePooling2D)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def make_layer(layer: Layer, bn_momentum: float, bn_eps: float) -> nn.Module:
    """The torch module of one plan layer."""
    k, s, p, b = layer.kernel, layer.stride, layer.padding, layer.bias
    if layer.kind == "conv" and layer.same:
        return SameConv2d(layer.in_ch, layer.out_ch, k, s, b, layer.in_size)
    if layer.kind == "convt" and layer.same:
        return SameConvTranspose2d(layer.in_ch, layer.out_ch, k, s, b, layer.in_size)
    if layer.kind == "reshape":
        return ReshapeHWC(layer.shape)
    if layer.kind == "flatten":
        return FlattenHWC()
    if layer.kind == "conv":
        return nn.Conv2d(layer.in_ch, layer.out_ch, k, s, p, bias=b)
    if layer.kind == "convt":
        return nn.ConvTranspose2d(layer.in_ch, layer.out_ch, k, s, p, bias=b)
    if layer.kind == "dense":
        return nn.Linear(layer.in_ch, layer.out_ch, bias=b)
    if layer.kind == "embed":
        return nn.Embedding(layer.in_ch, layer.out_ch)
    if layer.kind == "bn":
        return BatchNorm(layer.out_ch, bn_momentum, bn_eps)
    if layer.kind == "relu":
        return nn.ReLU()
    if layer.kind == "lrelu":
        return nn.LeakyReLU(layer.alpha)
    if layer.kind == "tanh":
        return nn.Tanh()
    if layer.kind == "maxpool":
        return nn.MaxPool2d(k, s)
    if layer.kind == "gap":
        return GlobalAvgPool()
    raise ValueError(f"unknown layer kind {layer.kind!r}")


class Network(nn.Module):
    """A plan's layers applied in order (the same walk as tf_backend.layers.Network).

    A plan that starts with an "embed" layer reads labels: `network(x, labels)`.
    """

    def __init__(self, layers: list[Layer], bn_momentum: float, bn_eps: float,
                 dtype: str = "float32"):
        super().__init__()
        self.plan = layers
        self.layers = nn.ModuleDict({l.name: make_layer(l, bn_momentum, bn_eps) for l in layers})
        self.to(getattr(torch, dtype))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        for layer, module in zip(self.plan, self.layers.values()):
            if layer.kind == "embed":
                e = module(labels)                                  # (N, out_ch)
                if layer.join == "channel":                         # (N, 1, H, W): one more channel
                    e = e.reshape(-1, 1, layer.in_size, layer.in_size)
                x = torch.cat([x, e], dim=1)
            else:
                x = module(x)
        return x


def call(model: nn.Module, x: torch.Tensor, labels: torch.Tensor | None = None,
         training: bool = False) -> torch.Tensor:
    """Run a Network on `x`, with labels (N,) when it is conditional (mode set by the caller)."""
    return model(x) if labels is None else model(x, labels)


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
        elif layer.kind == "embed":
            out[f"{layer.name}/embeddings"] = (m.weight, "embed")
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


def from_canonical(array: np.ndarray, kind: str, dtype: str = "float32") -> torch.Tensor:
    """Inverse of `to_canonical`."""
    a = np.asarray(array, dtype=dtype)
    if kind in ("conv", "convt"):
        a = a.transpose(3, 2, 0, 1)
    elif kind == "dense":
        a = a.T
    return torch.from_numpy(np.ascontiguousarray(a))


def assign(tensor: torch.Tensor, kind: str, array: np.ndarray) -> None:
    """Copy a canonical array into a torch parameter or buffer, in place."""
    with torch.no_grad():
        tensor.copy_(from_canonical(array, kind, str(tensor.dtype).removeprefix("torch.")))


def to_tensor(array, dtype: str = "float32") -> torch.Tensor:
    """A NumPy array (noise, weights of interpolation) as a tensor of the model's dtype."""
    return torch.from_numpy(np.array(array, dtype=dtype))


def labels_to_input(labels) -> torch.Tensor | None:
    """Class labels (N,) as an int64 tensor (None stays None)."""
    if labels is None or isinstance(labels, torch.Tensor):
        return None if labels is None else labels.long()
    return torch.from_numpy(np.asarray(labels, dtype=np.int64))


def images_to_input(images, image_shape, dtype: str = "float32") -> torch.Tensor:
    """NumPy NHWC (uint8, or float in [-1, 1]) or a ready NCHW tensor -> NCHW of `dtype`."""
    if isinstance(images, torch.Tensor):
        return images.to(getattr(torch, dtype))
    from gan_diffusion.data import as_model_batch

    x = as_model_batch(images, image_shape)  # float32 NHWC in [-1, 1]
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=dtype))


def output_to_numpy(x: torch.Tensor) -> np.ndarray:
    """NCHW tensor -> NHWC NumPy (other ranks: plain NumPy)."""
    a = x.detach().cpu().numpy()
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)) if a.ndim == 4 else a
