"""The FID Inception-v3 feature network in TensorFlow/Keras. Mirrors torch_backend/inception.py
line for line.

Layer attributes carry torchvision's / pytorch-fid's names (`net.Mixed_5b.branch1x1.conv`), so
a canonical weight name is the attribute path of its Keras variable
(`inception/Mixed_5b/branch1x1/conv/kernel` -> `net.Mixed_5b.branch1x1.conv.kernel`) and the
layout mapping is the identity. The architecture comes from gan_diffusion/models/inception.py.

Weights, batching and ids are backend-neutral (metrics/extractor_base.py): `load_fid_weights`
reads a canonical .npz without torch; a pytorch-fid .pth needs torch, imported lazily by
gan_diffusion.weightfile.read_state_dict (torch.load(weights_only=True)). Convert once with
`models.inception.convert_fid_weights` to run without torch.

Example:
    >>> ext = build("fid_inception.npz")     # or build() with torch installed
    >>> ext.features(images_uint8).shape     # NHWC uint8 in, pool3 out
    (16, 2048)
"""
from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf

from gan_diffusion.metrics.extractor_base import InceptionExtractorBase
from gan_diffusion.models import inception as spec
from gan_diffusion.models.inception import convert_fid_weights, read_fid_weights  # noqa: F401  (re-exported)
from gan_diffusion.tf_backend.layers import assign, to_canonical


# -- pool branches ------------------------------------------------------------------------
def avg_pool_3x3(x: tf.Tensor) -> tf.Tensor:
    """3x3 average, stride 1, 'SAME': TF does not count the padded zeros (count_include_pad=False)."""
    return tf.nn.avg_pool2d(x, ksize=3, strides=1, padding="SAME")


def max_pool_3x3(x: tf.Tensor, stride: int = 1) -> tf.Tensor:
    """3x3 max pool: stride 1 with 'SAME' padding (FIDInceptionE_2), or stride 2 'VALID'."""
    return tf.nn.max_pool2d(x, ksize=3, strides=stride, padding="SAME" if stride == 1 else "VALID")


def resize_bilinear(x: tf.Tensor, size: int = spec.INPUT_SIZE) -> tf.Tensor:
    """(N, H, W, C) -> (N, size, size, C) with the taps of torch's F.interpolate(bilinear,
    align_corners=False): width first, then height (agrees with torch to ~1e-7; see
    models.inception.resize_taps for why not tf.image.resize)."""
    for axis in (2, 1):
        i0, i1, w0, w1 = spec.resize_taps(x.shape[axis], size)
        shape = [1, 1, 1, 1]
        shape[axis] = size                                           # broadcast the weights
        x = tf.gather(x, i0, axis=axis) * w0.reshape(shape) + tf.gather(x, i1, axis=axis) * w1.reshape(shape)
    return x


# -- layers -------------------------------------------------------------------------------
class BasicConv2d(keras.layers.Layer):
    """Conv (no bias) -> BatchNorm(eps=0.001, moving statistics) -> ReLU."""

    def __init__(self, c: spec.Conv):
        super().__init__(name=c.name.rsplit("/", 1)[-1])
        self.conv = keras.layers.Conv2D(c.out_ch, c.kernel, c.stride, c.keras_padding,
                                        use_bias=False, name="conv")
        self.bn = keras.layers.BatchNormalization(epsilon=spec.BN_EPS, name="bn")
        self.conv.build((None, None, None, c.in_ch))  # variables now, as torch does:
        self.bn.build((None, None, None, c.out_ch))   # no symbolic build pass needed
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.relu(self.bn(self.conv(x), training=False))


class _Block(keras.layers.Layer):
    """A Mixed_* block: one BasicConv2d per branch conv, named as in torchvision."""

    def __init__(self, block: spec.Block):
        super().__init__(name=block.name)
        for branch, c in block.convs.items():
            setattr(self, branch, BasicConv2d(c))
        self.built = True


class FIDInceptionA(_Block):
    """Mixed_5b/5c/5d (35x35): 1x1 | 5x5 | double 3x3 | avg pool (padding not counted) + 1x1."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(avg_pool_3x3(x))
        return tf.concat([b1, b5, b3, bp], axis=-1)  # (N, 35, 35, 224 + pool_features)


class InceptionB(_Block):
    """Mixed_6a: 35x35 -> 17x17 (stride-2 3x3 | double 3x3 | max pool)."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return tf.concat([b3, bd, max_pool_3x3(x, stride=2)], axis=-1)  # (N, 17, 17, 768)


class FIDInceptionC(_Block):
    """Mixed_6b..6e (17x17): 1x1 | 1x7,7x1 | 7x1,1x7,7x1,1x7 | avg pool (padding not counted) + 1x1."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = conv(bd)
        bp = self.branch_pool(avg_pool_3x3(x))
        return tf.concat([b1, b7, bd, bp], axis=-1)  # (N, 17, 17, 768)


class InceptionD(_Block):
    """Mixed_7a: 17x17 -> 8x8 (1x1, stride-2 3x3 | 1x1, 1x7, 7x1, stride-2 3x3 | max pool)."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for conv in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = conv(b7)
        return tf.concat([b3, b7, max_pool_3x3(x, stride=2)], axis=-1)  # (N, 8, 8, 1280)


class FIDInceptionE_1(_Block):
    """Mixed_7b (8x8): 1x1 | 1x1 -> (1x3, 3x1) | 3x3 -> (1x3, 3x1) | avg pool (padding not counted)."""

    def pool(self, x: tf.Tensor) -> tf.Tensor:
        return avg_pool_3x3(x)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = tf.concat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], axis=-1)      # (N, 8, 8, 768)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = tf.concat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], axis=-1)  # (N, 8, 8, 768)
        bp = self.branch_pool(self.pool(x))
        return tf.concat([b1, b3, bd, bp], axis=-1)  # (N, 8, 8, 2048)


class FIDInceptionE_2(FIDInceptionE_1):
    """Mixed_7c: as E_1 but the pool branch takes a MAX pool (as the 2015-12-05 TF graph does)."""

    def pool(self, x: tf.Tensor) -> tf.Tensor:
        return max_pool_3x3(x, stride=1)


_BLOCKS = {"FIDInceptionA": FIDInceptionA, "InceptionB": InceptionB, "FIDInceptionC": FIDInceptionC,
           "InceptionD": InceptionD, "FIDInceptionE_1": FIDInceptionE_1, "FIDInceptionE_2": FIDInceptionE_2}


class FIDInceptionV3(keras.Model):
    """The network: (N, 299, 299, 3) in [-1, 1] -> pool3 (N, 2048); `fc` gives the logits.

    Always in inference mode: BatchNorm uses its moving statistics, there is no dropout.
    Every variable is created at construction (shapes come from the spec, not from an input).
    """

    def __init__(self):
        super().__init__(name="inception")
        for c in spec.STEM:
            setattr(self, c.name, BasicConv2d(c))
        for block in spec.BLOCKS:
            setattr(self, block.name, _BLOCKS[block.kind](block))
        self.fc = keras.layers.Dense(spec.NUM_CLASSES, name="fc")
        self.fc.build((None, spec.FEATURE_DIM))
        self.built = True

    def call(self, x: tf.Tensor) -> tf.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (N, 147, 147, 64)
        x = max_pool_3x3(x, stride=2)                                      # (N, 73, 73, 64)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))                      # (N, 71, 71, 192)
        x = max_pool_3x3(x, stride=2)                                      # (N, 35, 35, 192)
        for block in spec.BLOCKS:
            x = getattr(self, block.name)(x)                               # ... (N, 8, 8, 2048)
        return tf.reduce_mean(x, axis=(1, 2))                              # (N, 2048) pool3


# -- the extractor --------------------------------------------------------------------------
class InceptionExtractor(InceptionExtractorBase):
    """FID Inception-v3 on NHWC images (weights, batching and ids: metrics.extractor_base).

    Attributes:
        net: the FIDInceptionV3 model.
    """

    backend_name = "tf"
    _to_canonical = staticmethod(to_canonical)
    _assign = staticmethod(assign)

    def __init__(self):
        self.net = FIDInceptionV3()
        super().__init__({name: (functools.reduce(getattr, name.split("/")[1:], self.net), kind)
                          for name, kind, _ in spec.layout()})

    def preprocess(self, images: np.ndarray) -> tf.Tensor:
        """NHWC uint8 (or float in [0, 1]) -> (N, 299, 299, 3) float32 in [-1, 1], as pytorch-fid:
        bilinear resize (align_corners=False, no antialiasing), then 2x - 1."""
        x = tf.convert_to_tensor(spec.as_unit_images(images))                 # (N, H, W, 3)
        x = resize_bilinear(x, spec.INPUT_SIZE)                               # (N, 299, 299, 3)
        return 2.0 * x - 1.0

    @tf.function(input_signature=[tf.TensorSpec([None, spec.INPUT_SIZE, spec.INPUT_SIZE, 3], tf.float32)])
    def _forward(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(N, 299, 299, 3) -> pool3 (N, 2048), logits (N, 1008)."""
        pool3 = self.net(x)
        return pool3, self.net.fc(pool3)


build = InceptionExtractor.build
