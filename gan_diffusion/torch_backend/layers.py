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
            # torch's kernel computes the batch statistics once: with momentum 1 it leaves the
            # batch mean and the unbiased variance in fresh buffers, rescaled here to the
            # biased one (a separate var_mean pass cost ~4 % of a WGAN-GP step, issue 18)
            mean, var = torch.zeros_like(self.running_mean), torch.zeros_like(self.running_var)
            out = F.batch_norm(x, mean, var, self.weight, self.bias, True, 1.0, self.eps)
            n = x.numel() // x.shape[1]
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * ((n - 1) / n), self.momentum)
            return out
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            False, 0.0, self.eps)


class SameConv2d(nn.Conv2d):
    """Conv2d with TF 'same' padding: the symmetric part as the conv's own padding, and only
    TF's odd extra pixel (after) by an explicit zero pad. (Padding all of it explicitly made
    the convolution's input gradient larger: +40 % backward time in WGAN-GP, issue 18.)"""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, bias: bool, in_size: int):
        before, after = same_pads(in_size, kernel, stride)
        sym = min(before, after)
        super().__init__(in_ch, out_ch, kernel, stride, padding=sym, bias=bias)
        self.pads = (before - sym, after - sym) * 2   # F.pad order: left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads) if any(self.pads) else x)


class SameConvTranspose2d(nn.ConvTranspose2d):
    """ConvTranspose2d with TF 'same' semantics: TF's crop of the full transposed conv.

    TF keeps `size` pixels of the full output starting at `start`, and its odd extra crop
    pixel is at the end; torch's padding p / output_padding op keep full[p : L - p + op], so
    they reach TF's window only when the crop is symmetric. Otherwise the input gets q zero
    rows and columns in front, which shifts the full output by q * stride, and p / op are
    chosen for the shifted window (5x5 or 3x3, stride 2: q = 1, op = 1). Exact, and 1.8x
    faster forward + backward than the full transposed conv then a crop (issue 18).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, bias: bool, in_size: int):
        start, size, full = convt_crop(in_size, kernel, stride)
        op0 = start - (full - start - size)                # crop before - crop after (<= 0)
        q = -(op0 // stride) if op0 < 0 else 0             # ceil(-op0 / stride)
        pad, out_pad = start + q * stride, op0 + q * stride
        assert 0 <= out_pad < stride and out_pad <= pad, (in_size, kernel, stride)
        super().__init__(in_ch, out_ch, kernel, stride, padding=pad, output_padding=out_pad,
                         bias=bias)
        self.in_pads = (q, 0, q, 0)                        # F.pad: left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # (N, C, in, in) -> (N, O, size, size)
        return super().forward(F.pad(x, self.in_pads) if self.in_pads[0] else x)


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
