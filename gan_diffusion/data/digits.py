"""scikit-learn's embedded 8x8 digits, upscaled: a tiny offline stand-in, NOT MNIST."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .dataset import ArrayDataset
from .errors import DataError

__all__ = ["load_digits_embedded"]


def load_digits_embedded(size: int = 28) -> ArrayDataset:
    """Load scikit-learn's bundled 8x8 handwritten digits, upscaled to ``size x size``.

    The 1,797 images ship inside scikit-learn (no download, no data dir). Values
    0..16 are scaled to 0..255 and each image is upscaled with PIL BICUBIC.

    Args:
        size: Output side in pixels.

    Returns:
        ArrayDataset "digits": (1797, size, size, 1) uint8, labels 0..9.

    Example:
        >>> load_digits_embedded(28).images.shape  # doctest: +SKIP
        (1797, 28, 28, 1)
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("the 'digits' dataset needs scikit-learn, which is not installed; "
                        "run `pip install scikit-learn` or choose another dataset") from None
    if size < 1:
        raise DataError(f"size must be >= 1, got {size}")
    bunch = load_digits()
    small = np.clip(np.rint(bunch.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    images = np.empty((len(small), size, size, 1), np.uint8)
    for i, img in enumerate(small):
        big = Image.fromarray(img).resize((size, size), Image.Resampling.BICUBIC)
        images[i, ..., 0] = np.asarray(big)
    return ArrayDataset(
        images=images, labels=bunch.target.astype(np.int64), name="digits",
        description=(f"embedded scikit-learn 8x8 digits ({len(images)} images) upscaled to "
                     f"{size}x{size}, NOT MNIST"),
        class_names=[str(i) for i in range(10)])
