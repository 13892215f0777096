"""Thread pools and versions of TensorFlow/Keras."""
from __future__ import annotations

import os

import keras
import tensorflow as tf

from gan_diffusion.errors import BackendNotAvailableError

if keras.backend.backend() != "tensorflow":
    raise BackendNotAvailableError(
        f"the tf backend needs Keras on TensorFlow, but KERAS_BACKEND is "
        f"{keras.backend.backend()!r}; unset KERAS_BACKEND or set it to 'tensorflow'")


def set_threads(intra_op: int | None = None, inter_op: int | None = None) -> dict:
    """Pin TF's intra-op and inter-op pools (default: all cores / 1); returns them.

    TF accepts this only before it runs its first op; later calls keep the earlier values.
    """
    intra = int(intra_op or os.cpu_count() or 1)
    inter = int(inter_op or 1)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:  # TF already initialised
        pass
    return {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}


def versions() -> dict:
    return {"tensorflow": tf.__version__, "keras": keras.__version__,
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")}
