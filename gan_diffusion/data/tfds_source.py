"""TensorFlow Datasets as a dataset source: ``load_dataset("tfds:NAME[:SPLIT]")``.

A tfds data set is read offline, from the folder it was prepared in; nothing is ever
downloaded (``tfds.load(..., download=False)``). The folder is ``<data dir>/tensorflow_datasets``
(the data dir of ``resolve_data_dir``), holding tfds's usual ``NAME/VERSION/`` (or
``NAME/CONFIG/VERSION/``) folders, as ``tfds build NAME --data_dir <data dir>/tensorflow_datasets``
writes them.

tensorflow-datasets is imported on use only (the data package stays framework-free when
imported); reading its TFRecord files needs TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from .dataset import ArrayDataset
from .errors import DataError
from .folders import stack_images
from .paths import DATA_DIR_ENV, resolve_data_dir

__all__ = ["TFDS_PREFIX", "TFDS_SUBDIR", "tfds_data_dir", "parse_tfds_name", "load_tfds"]

TFDS_PREFIX = "tfds:"
TFDS_SUBDIR = "tensorflow_datasets"


def tfds_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``<data dir>/tensorflow_datasets``: where prepared tfds data sets are read from."""
    return resolve_data_dir(data_dir) / TFDS_SUBDIR


def parse_tfds_name(name: str, split: str = "train") -> tuple[str, str]:
    """``"tfds:NAME"`` / ``"tfds:NAME:SPLIT"`` -> (NAME, SPLIT); the split in the name wins
    over `split`, which may only be left at "train" or repeat it.

    NAME is a tfds name, optionally with a config (``eurosat/rgb``); tfds's ``NAME:VERSION``
    form cannot be written here (the colon starts the split), so tfds picks the version (its
    code's current one). SPLIT is anything tfds accepts (``test``, ``train[:10%]``).

    Example:
        >>> parse_tfds_name("tfds:cifar10:test")
        ('cifar10', 'test')
    """
    rest = name[len(TFDS_PREFIX):] if name.startswith(TFDS_PREFIX) else name
    ds_name, sep, ds_split = rest.partition(":")
    if not ds_name:
        raise DataError(f"dataset {name!r}: give the tfds name, e.g. 'tfds:mnist' or "
                        "'tfds:eurosat/rgb:train'")
    if not sep:
        return ds_name, split
    if not ds_split:
        raise DataError(f"dataset {name!r} ends with ':' but names no split; write "
                        f"'tfds:{ds_name}:test' or leave the split out")
    if split not in ("train", ds_split):
        raise DataError(f"dataset {name!r} names split {ds_split!r} but split={split!r} was "
                        "passed too; give the split once")
    return ds_name, ds_split


def _keys(info, name: str) -> tuple[str, str | None]:
    """(image feature key, ClassLabel key or None) of a tfds DatasetInfo."""
    import tensorflow_datasets as tfds

    feats = dict(info.features.items())
    sup = info.supervised_keys if isinstance(info.supervised_keys, tuple) else ()
    images = [k for k, f in feats.items() if isinstance(f, tfds.features.Image)]
    labels = [k for k, f in feats.items() if isinstance(f, tfds.features.ClassLabel)]
    image = sup[0] if sup and sup[0] in images else (images[0] if len(images) == 1 else None)
    if image is None:
        raise DataError(f"tfds dataset {name!r} has {len(images)} top-level image features "
                        f"({', '.join(images) or 'none'}), so which one to read is unclear; "
                        "only image data sets with one image feature can be loaded")
    label = (sup[1] if len(sup) > 1 and sup[1] in labels else
             labels[0] if len(labels) == 1 else None)
    return image, label


def load_tfds(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
              image_size: int | tuple[int, int] | None = None,
              limit: int | None = None) -> ArrayDataset:
    """Load a prepared TensorFlow Datasets image data set into memory.

    Args:
        name: tfds name, optionally with a config (``"mnist"``, ``"eurosat/rgb"``).
        split: tfds split (``"train"``, ``"test"``, ``"train[:1000]"``).
        data_dir: Data folder; tfds data is read from ``tfds_data_dir(data_dir)``.
        image_size: None requires one image size; an int or (height, width) resizes every
            image with ``resize_image`` (centre crop to the aspect ratio, PIL BICUBIC).
        limit: Keep only the first N examples (in tfds's file order, unshuffled).

    Returns:
        ArrayDataset (uint8 NHWC; the labels and class names of the data set's ClassLabel
        feature, if it has one), named ``"tfds:<name>"``.

    Raises:
        DataError: tensorflow-datasets missing, unknown name, data set not prepared in the
            folder (naming it and how to prepare it), no single image feature, unsupported
            images (not uint8, not 1 or 3 channels), mixed sizes without image_size.

    Example:
        >>> load_tfds("mnist", "test", limit=100).images.shape  # doctest: +SKIP
        (100, 28, 28, 1)
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as exc:
        raise DataError(f"dataset 'tfds:{name}' needs tensorflow-datasets and TensorFlow ({exc}); "
                        "pip install tensorflow-datasets tensorflow") from None
    folder = tfds_data_dir(data_dir)
    try:
        ds, info = tfds.load(name, split=split, data_dir=str(folder), download=False,
                             shuffle_files=False, with_info=True)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(f"tfds has no dataset {name!r} (neither in its catalogue nor prepared in "
                        f"{folder}); see tfds.list_builders() or "
                        "https://www.tensorflow.org/datasets/catalog") from None
    except AssertionError as exc:  # tfds' "could not find data in ..." (download=False)
        raise DataError(
            f"tfds dataset {name!r} is not prepared in {folder} ({exc}); it is never downloaded "
            f"here. On a machine with internet access run `tfds build {name} --data_dir DIR` "
            f"(or tfds.load({name!r}, data_dir=DIR, download=True)), then copy "
            f"DIR/{name.split('/')[0]}/ into {folder}; {DATA_DIR_ENV} / --data-dir names the "
            f"data folder that holds {TFDS_SUBDIR}/") from None
    except ValueError as exc:      # e.g. an unknown split
        raise DataError(f"tfds dataset {name!r}, split {split!r}: {exc}") from None
    image_key, label_key = _keys(info, name)
    if limit is not None:
        ds = ds.take(limit)
    arrays, labels = [], []
    for ex in tfds.as_numpy(ds):
        arrays.append(ex[image_key])
        if label_key is not None:
            labels.append(int(ex[label_key]))
    if not arrays:
        raise DataError(f"tfds dataset {name!r}, split {split!r} in {folder} holds no examples")
    where = [f"tfds:{name} {split} example {i}" for i in range(len(arrays))]
    for what, a in zip(where, arrays):
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[-1] not in (1, 3):
            raise DataError(f"{what} is a {a.dtype} image of shape {a.shape}; only uint8 images "
                            "with 1 (grey) or 3 (RGB) channels can be loaded")
    if image_size is None and len({a.shape for a in arrays}) == 1:
        images = np.stack(arrays)
    else:   # resize (or name the first odd size) as image folders do
        pil = (Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in arrays)
        images = stack_images(pil, where, image_size)
    class_names = list(info.features[label_key].names) if label_key is not None else None
    size = "" if image_size is None else f", resized to {images.shape[1]}x{images.shape[2]} (BICUBIC)"
    return ArrayDataset(
        images=images, labels=np.asarray(labels, np.int64) if label_key is not None else None,
        name=f"{TFDS_PREFIX}{name}", class_names=class_names,
        description=(f"TensorFlow Datasets {name!r} split {split!r}: {len(images)} images from "
                     f"{folder}{size}"))
