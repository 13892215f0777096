"""An offline feature network on resized images, framework-free: the resize happens here,
once, in NumPy/PIL, so both backends see the very same 32x32 pixels.

    cnn-cifar10-resized32   HxWx3 (any size) -> resize to 32x32 -> the shipped CIFAR-10 CNN
    lenet-mnist-resized28   HxWx1 (any size) -> resize to 28x28 -> the shipped MNIST LeNet

The resize rule is `gan_diffusion.data.resize_image`, the one the datasets use for
`image_size=`: centre-crop to a square (nothing is cropped from a square image), then PIL
BICUBIC (Pillow's bicubic with support scaled to the reduction, i.e. antialiased when
shrinking). uint8 images are resized as 8-bit RGB (PIL rounds and clips); float images in
[0, 1] per channel as 32-bit float ("F") images, then clipped to [0, 1].

Example:
    >>> ext = ResizedExtractor(cnn_cifar10_tf, 32, "cnn-cifar10-resized32")
    >>> ext.features(eurosat_uint8).shape          # (N, 64, 64, 3) in
    (N, 192)
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from gan_diffusion.data.folders import resize_image
from gan_diffusion.errors import ConfigError
from gan_diffusion.models.plan import unit_floats

__all__ = ["ResizedExtractor", "resize_images", "resized_id"]


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """NHWC images (N, H, W, C), uint8 or float in [0, 1] -> (N, size, size, C), same dtype
    (float32 for floats), by the module's rule; unchanged when already size x size.

    Raises:
        ConfigError: not 4-D, or neither uint8 nor float.

    Example:
        >>> resize_images(np.zeros((2, 64, 64, 3), np.uint8), 32).shape
        (2, 32, 32, 3)
    """
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ConfigError(f"expected NHWC images (N, H, W, C) with C 1 or 3, got {x.shape}")
    n, h, w, c = x.shape
    if (h, w) == (size, size):
        return x
    if x.dtype == np.uint8:
        out = np.empty((n, size, size, c), np.uint8)
        for i in range(n):
            pil = Image.fromarray(x[i, ..., 0] if c == 1 else x[i])          # "L" / "RGB"
            out[i] = np.asarray(resize_image(pil, size)).reshape(size, size, c)
        return out
    if not np.issubdtype(x.dtype, np.floating):
        raise ConfigError(f"images must be uint8 or float in [0, 1], got dtype {x.dtype}")
    x = unit_floats(x, "convert model outputs in [-1, 1] with gan_diffusion.data.from_model_range "
                       "first")
    out = np.empty((n, size, size, c), np.float32)
    for i in range(n):
        for ch in range(c):                                                  # "F" per channel
            out[i, ..., ch] = np.asarray(resize_image(Image.fromarray(x[i, ..., ch]), size))
    return np.clip(out, 0.0, 1.0)


def resized_id(name: str, inner_name: str, inner_id: str) -> str:
    """The id of `inner_id` (e.g. "cnn-cifar10@ceb135ea3b60") under the resizing extractor
    `name`: "cnn-cifar10-resized32@ceb135ea3b60", so its statistics never mix with those of
    the network on native-size images."""
    if not inner_id.startswith(inner_name):
        raise ValueError(f"extractor id {inner_id!r} does not start with {inner_name!r}")
    return name + inner_id[len(inner_name):]


class ResizedExtractor:
    """A backend classifier (tf or torch) that first resizes images to `size` x `size` (RGB
    for the CIFAR-10 CNN, grey for the LeNet: the inner network's channels).

    Attributes:
        inner: the wrapped extractor (tf_backend/torch_backend classifiers.Classifier).
        size: the side the images are resized to (the inner network's).
        name: registry name, the prefix of `extractor_id`.
    """

    def __init__(self, inner: Any, size: int, name: str):
        self.inner, self.size, self.name = inner, int(size), name

    @property
    def extractor_id(self) -> str:
        """"<name>@<sha256 prefix>" with the shipped weights, "<name>[label]" otherwise."""
        return resized_id(self.name, self.inner.spec.name, self.inner.extractor_id)

    def preprocess_images(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, C) uint8 or float in [0, 1] -> (N, size, size, C), same dtype; C the
        inner network's (3: RGB, 1: grey)."""
        x = np.asarray(images)
        c = int(self.inner.spec.image_shape[-1])
        if x.ndim != 4 or x.shape[-1] != c:
            fix = ("repeat a grey channel with np.repeat(x, 3, axis=-1) first" if c == 3 else
                   "convert RGB to grey first (gan_diffusion.data: color_mode='L')")
            raise ConfigError(f"the {self.name} extractor takes {'RGB' if c == 3 else 'grey'} "
                              f"images (N, H, W, {c}) of any size, got {x.shape}; {fix}")
        return resize_images(x, self.size)

    def features_and_logits(self, images: np.ndarray, batch_size: int | None = None
                            ) -> tuple[np.ndarray, np.ndarray]:
        """Features (N, F) and logits (N, 10), float32, of the resized images."""
        return self.inner.features_and_logits(self.preprocess_images(images), batch_size)

    def features(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Features (N, F) float32 of the resized images."""
        return self.features_and_logits(images, batch_size)[0]

    def logits(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Class logits (N, 10) float32 of the resized images."""
        return self.features_and_logits(images, batch_size)[1]

    def __getattr__(self, attr: str) -> Any:
        """Everything else (weights, batch_size, feature_dim, backend_name, ...): the inner
        network's."""
        if attr == "inner":       # not set yet (copy/pickle): no recursion
            raise AttributeError(attr)
        return getattr(self.inner, attr)
