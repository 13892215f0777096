"""Architecture plans: a framework-free list of layers that both backends build from.

Both backends walk the same plan, so their networks have the same layers in the same order
with the same canonical names. The plan also fixes the canonical weight layout (see
docs/weights.md): channels-last, Keras-style kernels.

    conv   kernel (kh, kw, in, out)    torch Conv2d weight          (out, in, kh, kw)
    convt  kernel (kh, kw, out, in)    torch ConvTranspose2d weight (in, out, kh, kw)
    dense  kernel (in, out)            torch Linear weight          (out, in)
    bn     gamma, beta, moving_mean, moving_variance, each (channels,)
    embed  embeddings (classes, dim)  torch Embedding weight        (classes, dim)

Parameter-free kinds: relu, lrelu, tanh, reshape, flatten, maxpool (kernel x kernel window,
`stride`, no padding) and gap (global average pool: (N, H, W, C) -> (N, C)).

Layers with `same=True` follow TensorFlow's 'same' padding exactly, including its
asymmetric split (more padding after than before), which PyTorch has no flag for.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gan_diffusion.errors import ConfigError

PARAM_KINDS = ("conv", "convt", "dense", "bn", "embed")


@dataclass(frozen=True)
class Layer:
    """One step of a network.

    Attributes:
        name: canonical layer name, unique within its network (e.g. "convt0").
        kind: "conv", "convt", "dense", "bn", "relu", "lrelu", "tanh", "reshape", "flatten",
            "maxpool", "gap", or "embed" (a label embedding; it reads the labels, not the
            running tensor).
        in_ch, out_ch: channels (features for dense).
        kernel, stride, padding: torch-style integers; padding 1 with kernel 4 and stride 2
            is TF's 'same' (total padding 2, split 1/1), as is padding (kernel - 1) / 2 with
            an odd kernel and stride 1; padding 0 is 'valid'.
        bias: whether the layer has a bias vector.
        alpha: negative slope of a leaky ReLU.
        same: TF 'same' padding (conv: output ceil(in / stride); convt: output in * stride);
            `padding` is then unused and `in_size` (the input's spatial side) is required.
        in_size: spatial side of the input (for `same` layers).
        shape: (h, w, c) target of a "reshape" layer (HWC order, as Keras' Reshape).
        join: how an "embed" layer's output joins the running tensor: "vector" (appended to
            the features of an (N, F) input) or "channel" (reshaped to (N, in_size, in_size, 1)
            and appended as the last image channel).
    """

    name: str
    kind: str
    in_ch: int = 0
    out_ch: int = 0
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    bias: bool = False
    alpha: float = 0.0
    same: bool = False
    in_size: int = 0
    shape: tuple[int, int, int] = (0, 0, 0)
    join: str = ""


def same_pads(in_size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF 'same' padding of a convolution over one spatial axis: (before, after).

    TF pads max((ceil(in / s) - 1) * s + k - in, 0) in total and puts the odd pixel after:
    for a 5x5 stride-2 conv on 64 pixels that is (1, 2), where torch's padding=2 gives
    (2, 2) and shifts the output by one pixel.

    Example:
        >>> same_pads(64, 5, 2), same_pads(7, 5, 2), same_pads(16, 4, 2)
        ((1, 2), (2, 2), (1, 1))
    """
    out = -(-in_size // stride)
    total = max((out - 1) * stride + kernel - in_size, 0)
    return total // 2, total - total // 2


def convt_crop(in_size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """How a TF 'same' transposed conv cuts its output from the full one: (start, size, full).

    The full transposed convolution (no padding) has (in - 1) * s + k pixels; TF keeps
    in * s of them starting at the 'before' padding of the forward conv it is the adjoint of.
    """
    out = in_size * stride
    before, _ = same_pads(out, kernel, stride)
    return before, out, (in_size - 1) * stride + kernel


def param_shapes(layer: Layer) -> dict[str, tuple[int, ...]]:
    """Canonical parameter names and shapes of one layer ({} for activations)."""
    k, i, o = layer.kernel, layer.in_ch, layer.out_ch
    if layer.kind == "conv":
        shapes = {"kernel": (k, k, i, o)}
    elif layer.kind == "convt":
        shapes = {"kernel": (k, k, o, i)}
    elif layer.kind == "dense":
        shapes = {"kernel": (i, o)}
    elif layer.kind == "bn":
        return {p: (o,) for p in ("gamma", "beta", "moving_mean", "moving_variance")}
    elif layer.kind == "embed":
        return {"embeddings": (i, o)}
    else:
        return {}
    if layer.bias:
        shapes["bias"] = (o,)
    return shapes


def weight_shapes(networks: dict[str, list[Layer]]) -> dict[str, tuple[int, ...]]:
    """All canonical weights of a model: {"<network>/<layer>/<param>": shape}."""
    return {f"{net}/{layer.name}/{p}": shape
            for net, layers in networks.items() for layer in layers
            for p, shape in param_shapes(layer).items()}


def init_glorot(networks: dict[str, list[Layer]], seed: int, rng: Any = None
                ) -> dict[str, np.ndarray]:
    """Keras' default initialisation in NumPy: Glorot-uniform kernels
    (limit sqrt(6 / (fan_in + fan_out)), fans include the receptive field), zero biases,
    BatchNorm gamma 1, beta 0, moving mean 0, variance 1; label embeddings N(0, 1).

    `rng`: another generator with NumPy's `normal`/`uniform` signatures (a framework's own,
    for --native-rng runs); default: NumPy seeded with `seed`."""
    rng = np.random.default_rng([seed, 0x1417]) if rng is None else rng  # stream id: weight init
    out = {}
    for name, shape in weight_shapes(networks).items():
        param = name.rsplit("/", 1)[1]
        if param == "kernel":
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            value = rng.uniform(-limit, limit, shape)
        elif param == "embeddings":
            value = rng.normal(0.0, 1.0, shape)
        elif param in ("gamma", "moving_variance"):
            value = np.ones(shape)
        else:  # beta, bias, moving_mean
            value = np.zeros(shape)
        out[name] = value.astype(np.float32)
    return out


def init_normal(networks: dict[str, list[Layer]], seed: int, std: float = 0.02,
                rng: Any = None) -> dict[str, np.ndarray]:
    """DCGAN initialisation in NumPy, so every backend starts from the same weights.

    Kernels ~ N(0, std); BatchNorm gamma ~ N(1, std), beta = 0; moving mean 0, variance 1;
    biases 0; label embeddings ~ N(0, 1) (torch's nn.Embedding default). `rng`: as in
    `init_glorot`.
    """
    rng = np.random.default_rng([seed, 0x1417]) if rng is None else rng  # stream id: weight init
    out = {}
    for name, shape in weight_shapes(networks).items():
        param = name.rsplit("/", 1)[1]
        if param == "kernel":
            value = rng.normal(0.0, std, shape)
        elif param == "embeddings":
            value = rng.normal(0.0, 1.0, shape)
        elif param == "gamma":
            value = rng.normal(1.0, std, shape)
        elif param == "moving_variance":
            value = np.ones(shape)
        else:  # beta, bias, moving_mean
            value = np.zeros(shape)
        out[name] = value.astype(np.float32)
    return out


def check_weights(weights: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]],
                  model: str) -> None:
    """Raise ValueError naming missing/unexpected keys or a wrong shape/dtype."""
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise ValueError(f"{model} weights do not match the canonical layout: "
                         f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                         f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}; "
                         "were they saved from a model with another config?")
    for name, shape in expected.items():
        value = np.asarray(weights[name])
        if value.shape != tuple(shape):
            raise ValueError(f"{model} weight {name} has shape {value.shape}, expected {shape} "
                             "(canonical channels-last layout, see docs/weights.md)")
        if not np.issubdtype(value.dtype, np.floating):
            raise ValueError(f"{model} weight {name} has dtype {value.dtype}, expected float")


def unit_floats(x: np.ndarray, fix: str) -> np.ndarray:
    """Float images checked to lie in [0, 1], as float32; ConfigError naming NaN/inf values
    apart from values out of range, with `fix` appended."""
    x = x.astype(np.float32, copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        raise ConfigError(f"float images hold {int(x.size - finite.sum())} non-finite value(s) "
                          f"(NaN or inf) in {int((~finite).reshape(len(x), -1).any(1).sum())} "
                          "image(s); remove or repair them")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise ConfigError(f"float images must lie in [0, 1], got values in [{x.min():.3g}, "
                          f"{x.max():.3g}]; {fix}")
    return x
