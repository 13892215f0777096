"""In-memory image datasets and framework-independent batching.

Everything here is pure NumPy, so a given seed yields the same example order
whether the batches feed PyTorch, TensorFlow or plain NumPy code.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .errors import DataError

__all__ = [
    "ArrayDataset",
    "epoch_order",
    "batch_indices",
    "iterate_batches",
    "steps_per_epoch",
    "to_model_range",
    "from_model_range",
]


@dataclass
class ArrayDataset:
    """Images (uint8, NHWC) with optional integer labels, held in memory.

    Args:
        images: uint8 array of shape (N, H, W, C) with C in {1, 3}.
        labels: int64 array of shape (N,), or None for unlabelled data.
        name: Short identifier, e.g. ``"mnist"`` or ``"folder:/path"``.
        description: One human-readable line saying what the data really is.
        class_names: Optional names of the classes, indexed by label.

    Example:
        >>> ds = ArrayDataset(np.zeros((2, 8, 8, 1), np.uint8), None, "toy", "two black squares")
        >>> len(ds), ds.image_shape
        (2, (8, 8, 1))
    """

    images: np.ndarray
    labels: np.ndarray | None
    name: str
    description: str
    class_names: list[str] | None = None

    def digest(self) -> str:
        """sha256 of the images and labels (shape, dtype, bytes): equal digests, the same data
        in the same order. Run records keep it; resume and rerun refuse other data."""
        import hashlib

        h = hashlib.sha256()
        for a in (self.images, self.labels):
            if a is not None:
                a = np.ascontiguousarray(a)
                h.update(f"{a.dtype.str}|{a.shape}|".encode())
                h.update(memoryview(a).cast("B"))
        return h.hexdigest()

    def __post_init__(self) -> None:
        images = self.images
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
            got = getattr(images, "dtype", type(images).__name__)
            raise DataError(f"dataset {self.name!r}: images must be a uint8 numpy array, got {got}; "
                            "convert with np.asarray(x, dtype=np.uint8)")
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise DataError(f"dataset {self.name!r}: images must have shape (N, H, W, C) with C 1 or 3, "
                            f"got {images.shape}; add a channel axis with x[..., None] for grey images")
        if self.labels is not None:
            labels = np.asarray(self.labels)
            if labels.ndim != 1 or len(labels) != len(images) or labels.dtype.kind not in "iu":
                raise DataError(f"dataset {self.name!r}: labels must be integers of shape ({len(images)},), "
                                f"got {labels.dtype} {labels.shape}; pass one label per image or labels=None")
            self.labels = labels.astype(np.int64, copy=False)
        if self.class_names is not None:
            self.class_names = list(self.class_names)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        h, w, c = self.images.shape[1:]
        return int(h), int(w), int(c)

    @property
    def num_classes(self) -> int | None:
        """Number of classes: len(class_names), else max label + 1, else None."""
        if self.class_names is not None:
            return len(self.class_names)
        if self.labels is not None and len(self.labels):
            return int(self.labels.max()) + 1
        return None

    def subset(self, n: int) -> "ArrayDataset":
        """Return the first ``n`` examples (all of them if ``n >= len(self)``).

        Args:
            n: Number of examples to keep, >= 0.

        Returns:
            A new ArrayDataset sharing memory with this one.

        Example:
            >>> ds = ArrayDataset(np.zeros((5, 4, 4, 1), np.uint8), None, "toy", "zeros")
            >>> len(ds.subset(3))
            3
        """
        if n < 0:
            raise DataError(f"subset size must be >= 0, got {n}; pass a non-negative limit")
        labels = None if self.labels is None else self.labels[:n]
        return dataclasses.replace(self, images=self.images[:n], labels=labels)


def _check_counts(n: int, batch_size: int | None = None, world_size: int = 1, rank: int = 0) -> None:
    if n < 0:
        raise DataError(f"number of examples must be >= 0, got {n}")
    if batch_size is not None and batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise DataError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")


def epoch_order(n: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
    """Shuffled example indices for one epoch, identical for every framework.

    The permutation is ``np.random.default_rng([seed, epoch]).permutation(n)``. With
    ``world_size > 1`` rank ``r`` gets ``order[r::world_size]`` truncated to
    ``n // world_size`` items, so every rank sees the same number of examples and
    the shards are disjoint.

    Args:
        n: Number of examples.
        seed: Non-negative base seed of the run.
        epoch: Non-negative epoch number.
        rank: Index of this process, 0 <= rank < world_size.
        world_size: Number of processes sharing the epoch.

    Returns:
        int64 array of indices.

    Example:
        >>> epoch_order(5, seed=0, epoch=0).tolist() == epoch_order(5, 0, 0).tolist()
        True
    """
    _check_counts(n, world_size=world_size, rank=rank)
    order = np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64)
    if world_size > 1:
        order = order[rank::world_size][: n // world_size]
    return order


def steps_per_epoch(n: int, batch_size: int, drop_last: bool = True, world_size: int = 1) -> int:
    """Number of batches each process gets per epoch.

    Args:
        n: Number of examples in the dataset.
        batch_size: Examples per batch (per process).
        drop_last: Drop the final incomplete batch.
        world_size: Number of processes sharing the epoch.

    Returns:
        The number of batches ``batch_indices`` returns for these arguments.

    Example:
        >>> steps_per_epoch(10, 4), steps_per_epoch(10, 4, drop_last=False)
        (2, 3)
    """
    _check_counts(n, batch_size, world_size)
    per_rank = n // world_size
    return per_rank // batch_size if drop_last else math.ceil(per_rank / batch_size)


def batch_indices(n: int, batch_size: int, seed: int, epoch: int, drop_last: bool = True,
                  rank: int = 0, world_size: int = 1) -> list[np.ndarray]:
    """Split this rank's epoch order into batches of indices.

    Args:
        n: Number of examples.
        batch_size: Examples per batch.
        seed: Base seed of the run.
        epoch: Epoch number.
        drop_last: Drop the final incomplete batch.
        rank: Index of this process.
        world_size: Number of processes.

    Returns:
        List of int64 index arrays, ``steps_per_epoch(...)`` of them.

    Example:
        >>> [len(b) for b in batch_indices(10, 4, seed=0, epoch=0, drop_last=False)]
        [4, 4, 2]
    """
    _check_counts(n, batch_size, world_size, rank)
    order = epoch_order(n, seed, epoch, rank, world_size)
    steps = steps_per_epoch(n, batch_size, drop_last, world_size)
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(steps)]


def iterate_batches(ds: ArrayDataset, batch_size: int, seed: int, epoch: int,
                    drop_last: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Yield shuffled ``(images, labels)`` batches of one epoch.

    Args:
        ds: The dataset.
        batch_size: Examples per batch.
        seed: Base seed of the run.
        epoch: Epoch number.
        drop_last: Drop the final incomplete batch.

    Returns:
        Iterator of (uint8 NHWC images, int64 labels or None).

    Example:
        >>> ds = ArrayDataset(np.zeros((10, 4, 4, 1), np.uint8), None, "toy", "zeros")
        >>> [x.shape[0] for x, _ in iterate_batches(ds, 4, seed=0, epoch=0)]
        [4, 4]
    """
    for idx in batch_indices(len(ds), batch_size, seed, epoch, drop_last):
        yield ds.images[idx], (None if ds.labels is None else ds.labels[idx])


def to_model_range(images_uint8: np.ndarray) -> np.ndarray:
    """Map uint8 pixels 0..255 to float32 in [-1, 1] (``x / 127.5 - 1``).

    Args:
        images_uint8: uint8 array of any shape.

    Returns:
        float32 array of the same shape.

    Example:
        >>> to_model_range(np.array([0, 255], np.uint8)).tolist()
        [-1.0, 1.0]
    """
    x = np.asarray(images_uint8)
    if x.dtype != np.uint8:
        raise DataError(f"to_model_range expects uint8 pixels, got {x.dtype}; pass the raw dataset images")
    return x.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def from_model_range(x: np.ndarray) -> np.ndarray:
    """Map floats in [-1, 1] back to uint8 pixels (clipped, rounded).

    Args:
        x: Float array, typically model output.

    Returns:
        uint8 array of the same shape; exact inverse of ``to_model_range``.

    Example:
        >>> from_model_range(np.array([-1.0, 0.0, 1.0, 3.0])).tolist()
        [0, 128, 255, 255]
    """
    y = (np.asarray(x, dtype=np.float64) + 1.0) * 127.5
    return np.clip(np.rint(y), 0, 255).astype(np.uint8)


def as_model_batch(images: np.ndarray, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Check a NumPy NHWC batch and bring it to the models' float32 range [-1, 1].

    uint8 images are scaled with `to_model_range`; float images are taken as already in
    [-1, 1]. Backends call this before converting to their own tensors.

    Raises:
        ValueError: the batch is not (N, *image_shape).

    Example:
        >>> as_model_batch(np.zeros((2, 4, 4, 1), np.uint8), (4, 4, 1)).min()
        np.float32(-1.0)
    """
    images = np.asarray(images)
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(image_shape):
        raise ValueError(f"expected images of shape (N, {', '.join(map(str, image_shape))}) "
                         f"(NHWC), got {images.shape}")
    return to_model_range(images) if images.dtype == np.uint8 else images.astype(np.float32)
