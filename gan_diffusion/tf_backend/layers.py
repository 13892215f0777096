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
    if layer.stride == 1 and layer.kernel % 2 == 1 and layer.padding == (layer.kernel - 1) // 2:
        return "same"  # odd kernel, stride 1: TF pads (k - 1) / 2 on both sides, as torch
    raise ValueError(f"layer {layer.name}: padding {layer.padding} with kernel {layer.kernel} "
                     f"and stride {layer.stride} has no exact Keras equivalent here")


class LeakyReLU(keras.layers.Layer):
    """x if x > 0 else slope * x, with the slope in the layer's dtype (gradient 1 or slope,
    as torch's and TF's). keras.layers.LeakyReLU hands the slope to tf.nn.leaky_relu as a
    float32 attribute, 3e-9 off 0.2, which float64 parity checks see."""

    def __init__(self, negative_slope: float, **kwargs):
        super().__init__(**kwargs)
        self.negative_slope = float(negative_slope)

    def call(self, x):
        return tf.where(x > 0, x, x * tf.constant(self.negative_slope, x.dtype))  # exact in float64

    def get_config(self) -> dict:
        return {**super().get_config(), "negative_slope": self.negative_slope}


def make_layer(layer: Layer, bn_momentum: float, bn_eps: float, dtype: str = "float32"
               ) -> keras.layers.Layer:
    """The Keras layer of one plan layer (bn_momentum in the torch convention)."""
    k, s, b, name, kw = layer.kernel, layer.stride, layer.bias, layer.name, {"dtype": dtype}
    if layer.kind == "conv":
        return keras.layers.Conv2D(layer.out_ch, k, s, _padding(layer), use_bias=b, name=name, **kw)
    if layer.kind == "convt":
        return keras.layers.Conv2DTranspose(layer.out_ch, k, s, _padding(layer), use_bias=b, name=name,
                                            **kw)
    if layer.kind == "dense":
        return keras.layers.Dense(layer.out_ch, use_bias=b, name=name, **kw)
    if layer.kind == "embed":
        return keras.layers.Embedding(layer.in_ch, layer.out_ch, name=name, **kw)
    if layer.kind == "bn":
        return keras.layers.BatchNormalization(momentum=1.0 - bn_momentum, epsilon=bn_eps, name=name,
                                               **kw)
    if layer.kind == "reshape":
        return keras.layers.Reshape(layer.shape, name=name, **kw)
    if layer.kind == "flatten":
        return keras.layers.Flatten(name=name, **kw)
    if layer.kind == "relu":
        return keras.layers.ReLU(name=name, **kw)
    if layer.kind == "lrelu":
        return LeakyReLU(layer.alpha, name=name, **kw)
    if layer.kind == "tanh":
        return keras.layers.Activation("tanh", name=name, **kw)
    if layer.kind == "maxpool":
        return keras.layers.MaxPooling2D(k, s, "valid", name=name, **kw)
    if layer.kind == "gap":
        return keras.layers.GlobalAveragePooling2D(name=name, **kw)
    raise ValueError(f"unknown layer kind {layer.kind!r}")


def Network(layers: list[Layer], bn_momentum: float, bn_eps: float, input_shape: tuple,
            name: str, dtype: str = "float32") -> keras.Model:
    """A plan's layers applied in order (the same walk as torch_backend.layers.Network).

    A plan that starts with an "embed" layer gives a two-input model, called as
    `model([x, labels])` (see `call`).
    """
    x = inputs = keras.Input(shape=input_shape, dtype=dtype, name=f"{name}_input")
    labels = None
    for layer in layers:
        if layer.kind == "embed":
            labels = keras.Input(shape=(), dtype="int32", name=f"{name}_labels")
            e = make_layer(layer, bn_momentum, bn_eps, dtype)(labels)         # (N, out_ch)
            if layer.join == "channel":                                       # (N, H, W, 1)
                e = keras.layers.Reshape((layer.in_size, layer.in_size, 1), dtype=dtype,
                                         name=f"{layer.name}_reshape")(e)
            x = keras.layers.Concatenate(axis=-1, dtype=dtype, name=f"{layer.name}_join")([x, e])
        else:
            x = make_layer(layer, bn_momentum, bn_eps, dtype)(x)
    return keras.Model(inputs if labels is None else [inputs, labels], x, name=name)


def call(model: keras.Model, x, labels=None, training: bool = False):
    """Run a Network on `x`, with labels (N,) when it is conditional."""
    return model(x if labels is None else [x, labels], training=training)


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
        elif layer.kind == "embed":
            out[f"{layer.name}/embeddings"] = (m.embeddings, "embed")
        elif layer.kind in ("conv", "convt", "dense"):
            out[f"{layer.name}/kernel"] = (m.kernel, layer.kind)
            if layer.bias:
                out[f"{layer.name}/bias"] = (m.bias, "bias")
    return out


def to_canonical(variable, kind: str) -> np.ndarray:
    """Keras layout -> canonical NumPy, in the variable's dtype (identity: Keras kernels are
    already canonical)."""
    return np.array(variable.value.numpy())  # .value: the tf.Variable


def from_canonical(array: np.ndarray, kind: str, dtype: str = "float32") -> np.ndarray:
    """Inverse of `to_canonical`."""
    return np.asarray(array, dtype=dtype)


def assign(variable, kind: str, array: np.ndarray) -> None:
    """Copy a canonical array into a Keras variable, in place (cast to its dtype)."""
    variable.assign(from_canonical(array, kind, variable.dtype))


def to_tensor(array, dtype: str = "float32") -> tf.Tensor:
    """A NumPy array (noise, weights of interpolation) as a tensor of the model's dtype."""
    return tf.constant(np.asarray(array, dtype=dtype))


def labels_to_input(labels) -> tf.Tensor | None:
    """Class labels (N,) as an int32 tensor (None stays None)."""
    if labels is None or isinstance(labels, tf.Tensor):
        return None if labels is None else tf.cast(labels, tf.int32)
    return tf.constant(np.asarray(labels, dtype=np.int32))


def images_to_input(images, image_shape, dtype: str = "float32") -> tf.Tensor:
    """NumPy NHWC (uint8, or float in [-1, 1]) or a ready NHWC tensor -> NHWC of `dtype`."""
    if isinstance(images, tf.Tensor):
        return images if images.dtype == dtype else tf.cast(images, dtype)
    from gan_diffusion.data import as_model_batch

    x = as_model_batch(images, image_shape)  # float32 NHWC in [-1, 1]
    return tf.convert_to_tensor(x.astype(dtype, copy=False))


def output_to_numpy(x) -> np.ndarray:
    """NHWC tensor -> NHWC NumPy (already channels-last)."""
    return np.asarray(x)
