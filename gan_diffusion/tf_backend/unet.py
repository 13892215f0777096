"""The DDPM U-Net in TensorFlow/Keras (NHWC). Mirrors gan_diffusion/torch_backend/unet.py.

Both files build the blocks of `gan_diffusion.models.unet.unet_blocks` in the same order
with the same canonical weight names; only framework calls differ. Aligned with torch:
GroupNormalization epsilon (Keras default 1e-3, torch 1e-5: the config's norm_epsilon in
both), 3x3 'same' convs (symmetric at stride 1), the stride-2 downsampling (explicit
ZeroPadding2D(1) + 'valid', torch's padding=1), nearest-neighbour upsampling.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from gan_diffusion.models.unet import Block, context_spec, unet_blocks, unet_params

PARAM_ATTRS = {"kernel": "kernel", "bias": "bias", "gamma": "gamma", "beta": "beta",
               "embeddings": "embeddings"}  # canonical param -> Keras attribute


def silu(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.silu(x)


def group_norm(cfg, name: str) -> keras.layers.Layer:
    return keras.layers.GroupNormalization(cfg.norm_groups, epsilon=cfg.norm_epsilon, name=name,
                                           dtype=cfg.dtype)


def conv(cfg, out_ch: int, kernel: int, name: str, stride: int = 1, padding: str = "same"
         ) -> keras.layers.Layer:
    return keras.layers.Conv2D(out_ch, kernel, stride, padding, name=name, dtype=cfg.dtype)


def dense(cfg, out_ch: int, name: str) -> keras.layers.Layer:
    return keras.layers.Dense(out_ch, name=name, dtype=cfg.dtype)


class InputConv(keras.layers.Layer):
    """conv_in: 3x3 conv from the image channels to base_channels."""

    def __init__(self, block: Block, cfg):
        super().__init__(name=block.name, dtype=cfg.dtype)
        self.conv = conv(cfg, block.out_ch, 3, "conv")
        self.parts = {"": self.conv}

    def call(self, x, temb, training=False):
        return self.conv(x)


class ResBlock(keras.layers.Layer):
    """h = conv1(SiLU(norm1(x))) + Dense(SiLU(temb)); h = conv2(dropout(SiLU(norm2(h))));
    out = skip(x) + h."""

    def __init__(self, block: Block, cfg):
        super().__init__(name=block.name, dtype=cfg.dtype)
        o = block.out_ch
        self.norm1, self.conv1 = group_norm(cfg, "norm1"), conv(cfg, o, 3, "conv1")
        self.temb = dense(cfg, o, "temb")
        self.norm2, self.conv2 = group_norm(cfg, "norm2"), conv(cfg, o, 3, "conv2")
        self.dropout = keras.layers.Dropout(cfg.dropout, dtype=cfg.dtype)
        self.skip = conv(cfg, o, 1, "skip") if block.in_ch != o else None
        self.parts = {"norm1": self.norm1, "conv1": self.conv1, "temb": self.temb,
                      "norm2": self.norm2, "conv2": self.conv2}
        if self.skip is not None:
            self.parts["skip"] = self.skip

    def call(self, x, temb, training=False):
        h = self.conv1(silu(self.norm1(x)))                            # (N, H, W, out)
        h = h + self.temb(silu(temb))[:, None, None, :]                # + (N, 1, 1, out)
        h = self.conv2(self.dropout(silu(self.norm2(h)), training=training))
        return (x if self.skip is None else self.skip(x)) + h


class AttentionBlock(keras.layers.Layer):
    """Single-head self-attention over the H*W positions, with a residual connection."""

    def __init__(self, block: Block, cfg):
        super().__init__(name=block.name, dtype=cfg.dtype)
        c = block.in_ch
        self.norm = group_norm(cfg, "norm")
        self.q, self.k, self.v, self.proj = (dense(cfg, c, n) for n in ("q", "k", "v", "proj"))
        self.scale = c ** -0.5
        self.parts = {"norm": self.norm, "q": self.q, "k": self.k, "v": self.v, "proj": self.proj}

    def call(self, x, temb, training=False):
        shape = tf.shape(x)                                            # (N, H, W, C)
        tokens = tf.reshape(self.norm(x), [shape[0], shape[1] * shape[2], shape[3]])  # (N, HW, C)
        q, k, v = self.q(tokens), self.k(tokens), self.v(tokens)
        w = tf.nn.softmax(tf.einsum("nqc,nkc->nqk", q, k) * self.scale, axis=-1)     # (N, HW, HW)
        out = self.proj(tf.einsum("nqk,nkc->nqc", w, v))                              # (N, HW, C)
        return x + tf.reshape(out, shape)


class CrossAttentionBlock(keras.layers.Layer):
    """Single-head cross-attention of the H*W positions (queries) over the T context tokens
    (keys, values of width D), with a residual connection; called as block(x, context)."""

    def __init__(self, block: Block, cfg):
        super().__init__(name=block.name, dtype=cfg.dtype)
        c = block.in_ch
        self.norm = group_norm(cfg, "norm")
        self.q, self.k, self.v, self.proj = (dense(cfg, c, n) for n in ("q", "k", "v", "proj"))
        self.scale = c ** -0.5
        self.parts = {"norm": self.norm, "q": self.q, "k": self.k, "v": self.v, "proj": self.proj}

    def call(self, x, context, training=False):
        shape = tf.shape(x)                                            # (N, H, W, C)
        tokens = tf.reshape(self.norm(x), [shape[0], shape[1] * shape[2], shape[3]])  # (N, HW, C)
        q, k, v = self.q(tokens), self.k(context), self.v(context)    # (N, HW, C), (N, T, C) x2
        w = tf.nn.softmax(tf.einsum("nqc,nkc->nqk", q, k) * self.scale, axis=-1)     # (N, HW, T)
        out = self.proj(tf.einsum("nqk,nkc->nqc", w, v))                              # (N, HW, C)
        return x + tf.reshape(out, shape)


class Downsample(keras.layers.Layer):
    """3x3 conv, stride 2, after zero padding 1 on every side (exactly torch's padding=1)."""

    def __init__(self, block: Block, cfg):
        super().__init__(name=block.name, dtype=cfg.dtype)
        self.pad = keras.layers.ZeroPadding2D(1, dtype=cfg.dtype)
        self.conv = conv(cfg, block.out_ch, 3, "conv", stride=2, padding="valid")
        self.parts = {"": self.conv}

    def call(self, x, temb, training=False):
        return self.conv(self.pad(x))                                  # (N, H/2, W/2, C)


class Upsample(keras.layers.Layer):
    """Nearest-neighbour x2, then a 3x3 conv."""

    def __init__(self, block: Block, cfg):
        super().__init__(name=block.name, dtype=cfg.dtype)
        self.up = keras.layers.UpSampling2D(2, interpolation="nearest", dtype=cfg.dtype)
        self.conv = conv(cfg, block.out_ch, 3, "conv")
        self.parts = {"": self.conv}

    def call(self, x, temb, training=False):
        return self.conv(self.up(x))                                   # (N, 2H, 2W, C)


class OutputBlock(keras.layers.Layer):
    """GroupNorm -> SiLU -> 3x3 conv to the image channels."""

    def __init__(self, block: Block, cfg):
        super().__init__(name=block.name, dtype=cfg.dtype)
        self.norm, self.conv = group_norm(cfg, "norm"), conv(cfg, block.out_ch, 3, "conv")
        self.parts = {"norm": self.norm, "conv": self.conv}

    def call(self, x, temb, training=False):
        return self.conv(silu(self.norm(x)))


BLOCKS = {"conv_in": InputConv, "res": ResBlock, "attn": AttentionBlock, "xattn": CrossAttentionBlock,
          "down": Downsample, "up": Upsample, "out": OutputBlock}


class UNet(keras.Model):
    """Noise predictor eps(x_t, t[, y]): x (N, H, W, C), sinusoidal features (N, ch),
    labels (N,) int for a conditional model (class embedding, or the cross-attention
    context when the config has one) -> (N, H, W, C)."""

    def __init__(self, cfg, name: str = "unet"):
        super().__init__(name=name, dtype=cfg.dtype)
        self.cfg, self.specs = cfg, unet_blocks(cfg)
        E = 4 * cfg.base_channels
        self.time_dense0, self.time_dense1 = dense(cfg, E, "time.dense0"), dense(cfg, E, "time.dense1")
        self.label = (keras.layers.Embedding(cfg.num_classes + 1, E, name="label", dtype=cfg.dtype)
                      if cfg.num_classes else None)
        k, d, tokens = context_spec(cfg)
        self.context_shape = (tokens, d)
        self.context = (keras.layers.Embedding(k + 1, tokens * d, name="context", dtype=cfg.dtype)
                        if k else None)
        self.blocks = [BLOCKS[spec.kind](spec, cfg) for spec in self.specs]
        side, _, channels = cfg.image_shape                            # build the variables
        self(tf.zeros((1, side, side, channels), cfg.dtype), tf.zeros((1, cfg.base_channels), cfg.dtype),
             tf.zeros((1,), tf.int32) if cfg.num_classes or k else None)

    def call(self, x, features, labels=None, training=False):
        temb = self.time_dense1(silu(self.time_dense0(features)))     # (N, E)
        if self.label is not None:
            temb = temb + self.label(labels)                           # + class embedding (N, E)
        context = None
        if self.context is not None:                                   # label tokens (N, T, D)
            context = tf.reshape(self.context(labels), [-1, *self.context_shape])
        skips, h = [], x
        for spec, block in zip(self.specs, self.blocks):
            if spec.concat:
                h = tf.concat([h, skips.pop()], axis=-1)               # channels last
            h = block(h, context if spec.kind == "xattn" else temb, training=training)
            if spec.push:
                skips.append(h)
        return h

    def canonical_tensors(self) -> dict[str, tuple[keras.Variable, str]]:
        """{"<layer>/<param>": (variable, kind)} for every canonical weight (models/unet.py)."""
        layers = {"time.dense0": self.time_dense0, "time.dense1": self.time_dense1, "label": self.label,
                  "context": self.context}
        for spec, block in zip(self.specs, self.blocks):
            layers.update({f"{spec.name}.{p}" if p else spec.name: m for p, m in block.parts.items()})
        out = {}
        for name, (kind, shape) in unet_params(self.cfg).items():
            path, param = name.rsplit("/", 1)
            var = getattr(layers[path], PARAM_ATTRS[param])
            assert tuple(var.shape) == shape, (name, var.shape, shape)
            out[name] = (var, kind)
        return out
