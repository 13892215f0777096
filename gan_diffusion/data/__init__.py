"""Framework-free datasets (NumPy + PIL): loading, verification and batching.

Never imports TensorFlow or PyTorch at import; scikit-learn is imported only by the
"digits" loader, tensorflow-datasets (which reads with TensorFlow) only by "tfds:NAME".
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

from .celeba import center_crop_resize, load_celeba
from .dataset import (ArrayDataset, batch_indices, epoch_order, from_model_range, iterate_batches,
                      steps_per_epoch, to_model_range, as_model_batch)
from .digits import load_digits_embedded
from .download import NO_DOWNLOAD_ENV, download_file, sha256_file, verify_file
from .errors import DataError
from .folders import (EUROSAT_CLASSES, IMAGE_EXTENSIONS, folder_mode, load_cifar10_jpg, load_eurosat,
                      load_image_folder, resize_image, scan_image_folder, stack_images)
from .mnist import MNIST_FILES, MNIST_MIRRORS, load_mnist, read_idx
from .paths import DATA_DIR_ENV, resolve_data_dir
from .tfds_source import TFDS_PREFIX, load_tfds, parse_tfds_name, tfds_data_dir

__all__ = [
    "DATASETS", "DATA_DIR_ENV", "NO_DOWNLOAD_ENV", "IMAGE_EXTENSIONS", "MNIST_FILES", "MNIST_MIRRORS",
    "EUROSAT_CLASSES", "TFDS_PREFIX", "ArrayDataset", "DataError",
    "load_dataset", "load_mnist", "load_image_folder", "load_cifar10_jpg", "load_eurosat",
    "load_celeba", "load_digits_embedded", "load_tfds",
    "resolve_data_dir", "tfds_data_dir", "parse_tfds_name", "read_idx", "center_crop_resize",
    "resize_image", "scan_image_folder", "folder_mode", "stack_images",
    "sha256_file", "verify_file", "download_file",
    "epoch_order", "batch_indices", "iterate_batches", "steps_per_epoch",
    "to_model_range", "from_model_range", "as_model_batch",
]

DATASETS = ("digits", "mnist", "cifar10", "celeba", "eurosat")  # plus "folder:<path>", a directory
# or "tfds:NAME[:SPLIT]"
_SPLITLESS = ("celeba", "eurosat", "folder")


def _square_size(image_size: int | tuple[int, int] | None, default: int, name: str) -> int:
    if image_size is None:
        return default
    if isinstance(image_size, int):
        return image_size
    h, w = image_size
    if h != w:
        raise DataError(f"dataset {name!r} only supports square images, got image_size={image_size}; "
                        "pass a single int")
    return int(h)


def _resized(ds: ArrayDataset, image_size: int | tuple[int, int] | None) -> ArrayDataset:
    """Resize every image (centre crop to aspect + BICUBIC) when a size is asked for."""
    if image_size is None:
        return ds
    from PIL import Image

    first = resize_image(Image.new("L", ds.image_shape[1::-1]), image_size)
    if first.size == ds.image_shape[1::-1]:
        return ds
    out = np.empty((len(ds), first.size[1], first.size[0], ds.image_shape[2]), np.uint8)
    for i, img in enumerate(ds.images):
        pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        out[i] = np.asarray(resize_image(pil, image_size)).reshape(out.shape[1:])
    return dataclasses.replace(ds, images=out, description=(
        f"{ds.description}; resized to {out.shape[1]}x{out.shape[2]} (BICUBIC)"))


def load_dataset(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
                 download: bool = False, image_size: int | tuple[int, int] | None = None,
                 limit: int | None = None, color_mode: str | None = None) -> ArrayDataset:
    """Load a dataset by name.

    Args:
        name: One of ``DATASETS``, ``"folder:<path>"``, the path of an existing
            directory (read with ``load_image_folder``), or ``"tfds:NAME"`` /
            ``"tfds:NAME:SPLIT"``: a TensorFlow Datasets data set prepared in
            ``<data_dir>/tensorflow_datasets`` (``load_tfds``; never downloaded).
        split: ``"train"`` or ``"test"`` for mnist and cifar10; "digits" ignores it;
            celeba, eurosat and folders have only ``"train"`` (the whole set); any tfds
            split for "tfds:" names (a split in the name wins).
        data_dir: Data folder; see ``resolve_data_dir`` ("digits" needs none).
        download: Allow downloading missing files (only MNIST can be downloaded).
        image_size: Output size, int or (height, width); None keeps the native size
            (celeba and eurosat default to 64, digits to 28).
        limit: Keep only the first N examples (for cifar10/eurosat roughly N / 10
            per class are read so every class is represented; tfds: the first N in file order).
        color_mode: None keeps the dataset's channels; "L" (grey) or "RGB" converts every
            image (a folder is read with PIL ``convert(mode)``; other datasets convert
            RGB -> L with PIL's ITU-R 601-2 luma weights, L -> RGB by repeating the channel).

    Returns:
        The ArrayDataset.

    Example:
        >>> ds = load_dataset("digits", limit=100)
        >>> ds.images.shape
        (100, 28, 28, 1)
    """
    if limit is not None and limit < 1:
        raise DataError(f"limit must be >= 1, got {limit}")
    if color_mode not in (None, "L", "RGB"):
        raise DataError(f"color_mode must be None, 'L' or 'RGB', got {color_mode!r}")
    key = name.lower()
    folder = None
    if name.startswith(TFDS_PREFIX):
        tfds_name, tfds_split = parse_tfds_name(name, split)
        ds = load_tfds(tfds_name, tfds_split, data_dir, image_size=image_size, limit=limit)
        return convert_channels(ds, color_mode)
    if name.startswith("folder:"):
        key, folder = "folder", name[len("folder:"):]
    elif key not in DATASETS and os.path.isdir(os.path.expanduser(name)):
        key, folder = "folder", name
    if key in _SPLITLESS and split != "train":
        raise DataError(f"dataset {name!r} has no {split!r} split (only the whole set, split='train')")
    per_class = None if limit is None else math.ceil(limit / 10)
    resize_after = False
    if key == "digits":
        ds = load_digits_embedded(_square_size(image_size, 28, key))
    elif key == "mnist":
        ds, resize_after = load_mnist(split, data_dir, download=download), True
    elif key == "cifar10":
        ds, resize_after = load_cifar10_jpg(split, data_dir, limit_per_class=per_class), True
    elif key == "celeba":
        ds = load_celeba(data_dir, size=_square_size(image_size, 64, key), limit=limit)
    elif key == "eurosat":
        ds = load_eurosat(data_dir, image_size=image_size or 64, limit_per_class=per_class)
    elif key == "folder":
        ds = load_image_folder(Path(folder).expanduser(), image_size=image_size, mode=color_mode)
    else:
        raise DataError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}, "
                        "'folder:<path>', the path of an existing image folder, or "
                        "'tfds:NAME[:SPLIT]' (a prepared TensorFlow Datasets data set)")
    if limit is not None and limit < len(ds):
        ds = dataclasses.replace(ds.subset(limit), description=f"{ds.description}; first {limit} kept")
    ds = _resized(ds, image_size) if resize_after else ds
    return convert_channels(ds, color_mode) if key != "folder" else ds


def convert_channels(ds: ArrayDataset, color_mode: str | None) -> ArrayDataset:
    """`ds` with every image in `color_mode` ("L": 1 channel, "RGB": 3; None: unchanged)."""
    channels = {None: ds.image_shape[-1], "L": 1, "RGB": 3}[color_mode]
    if channels == ds.image_shape[-1]:
        return ds
    if channels == 3:  # (N, H, W, 1) -> (N, H, W, 3)
        images = np.repeat(ds.images, 3, axis=-1)
    else:  # PIL's "L" conversion: L = R * 299/1000 + G * 587/1000 + B * 114/1000
        luma = ds.images.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        images = np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
    return dataclasses.replace(ds, images=images, description=f"{ds.description}; converted to {color_mode}")
