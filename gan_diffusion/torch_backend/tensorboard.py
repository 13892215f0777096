"""TensorBoard event logs with PyTorch's own writer. Mirrors gan_diffusion/tf_backend/tensorboard.py.

`torch.utils.tensorboard` needs the `tensorboard` package (not torchvision). That package
imports TensorFlow when it can find it, unless the marker module
`tensorboard.compat.notf` exists (the "no TensorFlow" switch described in
tensorboard/compat/__init__.py). Unless TensorFlow is already loaded, we register that
marker so a torch run never loads TensorFlow (one framework per process, honest memory);
tf.summary then does not work in this process (the TF backend has its own writer).
"""
from __future__ import annotations

import os
import sys
import types

import numpy as np

from gan_diffusion.errors import BackendNotAvailableError

if "tensorflow" not in sys.modules:
    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))
try:
    from torch.utils.tensorboard import SummaryWriter  # noqa: E402  (after the marker)
except ImportError as exc:
    raise BackendNotAvailableError(f"TensorBoard logs need the tensorboard package ({exc}); "
                                   "install it with: pip install tensorboard") from None


class EventWriter:
    """Scalars and images of one run, written to `logdir` as TensorBoard event files.

    Example:
        >>> w = EventWriter("run/tensorboard"); w.scalars(1, {"loss/d": 0.7}); w.close()
    """

    def __init__(self, logdir: str | os.PathLike):
        self.writer = SummaryWriter(str(logdir))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """One value per tag at `step` (the epoch)."""
        for tag, value in values.items():
            self.writer.add_scalar(tag, float(value), int(step))

    def image(self, tag: str, image: np.ndarray, step: int) -> None:
        """A uint8 (H, W, C) image, e.g. a sample grid."""
        image = np.asarray(image)
        if image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)                 # (H, W, 3)
        self.writer.add_image(tag, image, int(step), dataformats="HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
