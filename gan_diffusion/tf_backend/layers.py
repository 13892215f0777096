"""Plan layers as Keras layers, and the canonical weight layout mapping.

The canonical layout (docs/weights.md) is Keras' own, so the mapping is the identity; it
exists so that this file and torch_backend/layers.py have the same structure.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from gan_diffusion.models.plan import Layer


def _padding(layer: Layer) -> str:
    """torch-style padding -> Keras padding name.

    kernel 4, stride 2, padding 1 on an even input is TF 'same' (total padding 2, split 1/1);
    padding 0 is 'valid'. Other combinations would need explicit ZeroPadding2D.
    """
    if layer.same:
        return "same"
    if layer.padding == 0:
        return "valid"
    if (layer.kernel, layer.stride, layer.padding) == (4, 2, 1):
        return "same"
    raise ValueError(f"layer {layer.name}: padding {layer.padding} with kernel {layer.kernel} "
                     f"and stride {layer.stride} has no exact Keras equivalent here")


def make_layer(layer: Layer, bn_momentum: float, bn_eps: float) -> keras.layers.Layer:
    """The Keras layer of one plan layer (bn_momentum in the torch convention)."""
    k, s, b, name = layer.kernel, layer.stride, layer.bias, layer.name
    if layer.kind == "conv":
        return keras.layers.Conv2D(layer.out_ch, k, s, _padding(layer), use_bias=b, name=name)
    if layer.kind == "convt":
        return keras.layers.Conv2DTranspose(layer.out_ch, k, s, _padding(layer), use_bias=b, name=name)
    if layer.kind == "dense":
        return keras.layers.Dense(layer.out_ch, use_bias=b, name=name)
    if layer.kind == "bn":
        return keras.layers.BatchNormalization(momentum=1.0 - bn_momentum, epsilon=bn_eps, name=name)
    if layer.kind == "reshape":
        return keras.layers.Reshape(layer.shape, name=name)
    if layer.kind == "flatten":
        return keras.layers.Flatten(name=name)
    if layer.kind == "relu":
        return keras.layers.ReLU(name=name)
    if layer.kind == "lrelu":
        return keras.layers.LeakyReLU(negative_slope=layer.alpha, name=name)
    if layer.kind == "tanh":
        return keras.layers.Activation("tanh", name=name)
    raise ValueError(f"unknown layer kind {layer.kind!r}")


def Network(layers: list[Layer], bn_momentum: float, bn_eps: float, input_shape: tuple,
            name: str) -> keras.Model:
    """A plan's layers applied in order (the same walk as torch_backend.layers.Network)."""
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for layer in layers:
        x = make_layer(layer, bn_momentum, bn_eps)(x)
    return keras.Model(inputs, x, name=name)


_BN_NAMES = {"gamma": "gamma", "beta": "beta", "moving_mean": "moving_mean",
             "moving_variance": "moving_variance"}


def canonical_tensors(layers: list[Layer], model: keras.Model) -> dict[str, tuple[keras.Variable, str]]:
    """{"<layer>/<param>": (variable, kind)} for every weight of a network."""
    out = {}
    for layer in layers:
        m = model.get_layer(layer.name)
        if layer.kind == "bn":
            for canon, attr in _BN_NAMES.items():
                out[f"{layer.name}/{canon}"] = (getattr(m, attr), "bn")
        elif layer.kind in ("conv", "convt", "dense"):
            out[f"{layer.name}/kernel"] = (m.kernel, layer.kind)
            if layer.bias:
                out[f"{layer.name}/bias"] = (m.bias, "bias")
    return out


def to_canonical(variable, kind: str) -> np.ndarray:
    """Keras layout -> canonical NumPy (identity: Keras kernels are already canonical)."""
    return np.array(variable.value.numpy(), dtype=np.float32)  # .value: the tf.Variable


def from_canonical(array: np.ndarray, kind: str) -> np.ndarray:
    """Inverse of `to_canonical`."""
    return np.asarray(array, dtype=np.float32)


def assign(variable, kind: str, array: np.ndarray) -> None:
    """Copy a canonical array into a Keras variable, in place."""
    variable.assign(from_canonical(array, kind))


def images_to_input(images, image_shape) -> tf.Tensor:
    """NumPy NHWC (uint8, or float in [-1, 1]) or a ready NHWC tensor -> float32 NHWC."""
    if isinstance(images, tf.Tensor):
        return images
    from gan_diffusion.data import as_model_batch

    x = as_model_batch(images, image_shape)  # float32 NHWC in [-1, 1]
    return tf.convert_to_tensor(x)


def output_to_numpy(x) -> np.ndarray:
    """NHWC tensor -> NHWC NumPy float32 (already channels-last)."""
    return np.asarray(x)
