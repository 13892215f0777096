"""TensorBoard event logs with TensorFlow's own writer. Mirrors gan_diffusion/torch_backend/tensorboard.py.

`tf.summary.scalar`/`image` are implemented by the `tensorboard` package (TF 2.21 does not
depend on it; it is in requirements/cpu.txt).
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from gan_diffusion.errors import BackendNotAvailableError

try:
    import tensorboard  # noqa: F401  (implements tf.summary.scalar / image)
except ImportError as exc:
    raise BackendNotAvailableError(f"TensorBoard logs need the tensorboard package ({exc}); "
                                   "install it with: pip install tensorboard") from None


class EventWriter:
    """Scalars and images of one run, written to `logdir` as TensorBoard event files.

    Example:
        >>> w = EventWriter("run/tensorboard"); w.scalars(1, {"loss/d": 0.7}); w.close()
    """

    def __init__(self, logdir: str | os.PathLike):
        self.writer = tf.summary.create_file_writer(str(logdir))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """One value per tag at `step` (the epoch)."""
        with self.writer.as_default():
            for tag, value in values.items():
                tf.summary.scalar(tag, float(value), step=int(step))

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """A uint8 (H, W, C) image, e.g. a sample grid."""
        image = np.asarray(image)
        if image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)                 # (H, W, 3)
        with self.writer.as_default():
            tf.summary.image(tag, image[None], step=int(step))   # (1, H, W, 3)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
