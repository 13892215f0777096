"""tf.data adapter: an ArrayDataset served in the core's seeded order."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from gan_diffusion.data import ArrayDataset, batch_indices


def to_tf_dataset(data: ArrayDataset, batch_size: int, seed: int, epoch: int,
                  drop_last: bool = True) -> tf.data.Dataset:
    """A tf.data.Dataset yielding (float32 NHWC images in [-1, 1], int64 labels or -1).

    The batches are exactly those of `gan_diffusion.data.batch_indices(...)`, the same
    order the torch adapter serves.

    Example:
        >>> for images, labels in to_tf_dataset(ds, 128, seed=0, epoch=0): ...
    """
    order = batch_indices(len(data), batch_size, seed, epoch, drop_last=drop_last)
    labels = data.labels if data.labels is not None else np.full(len(data), -1, np.int64)
    images_t = tf.constant(data.images)                                # uint8 (N, H, W, C)
    labels_t = tf.constant(labels)
    # consecutive chunks of the flat order are exactly the core's batches
    flat = np.concatenate(order) if order else np.zeros(0, np.int64)
    batches = tf.data.Dataset.from_tensor_slices(flat).batch(batch_size)

    def gather(idx):
        x = tf.cast(tf.gather(images_t, idx), tf.float32) / 127.5 - 1.0  # (B, H, W, C) in [-1, 1]
        return x, tf.gather(labels_t, idx)

    return batches.map(gather, num_parallel_calls=1).prefetch(2)
