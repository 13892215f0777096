"""tf.data adapter: an ArrayDataset served in the core's seeded order; folder data sets read
with tfds's ImageFolder (`load_image_folder_tfds`), the same images in the same order as the
core's PIL reader."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from gan_diffusion.data import (IMAGE_EXTENSIONS, ArrayDataset, DataError, batch_indices,
                                folder_mode, scan_image_folder, stack_images)
from gan_diffusion.data.folders import open_image

# What tfds.folder_dataset.ImageFolder lists (tensorflow_datasets' _SUPPORTED_IMAGE_FORMAT).
IMAGEFOLDER_EXTENSIONS = (".jpg", ".jpeg", ".png")


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


def _pil_luma(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 -> (...) uint8 with PIL's "RGB" -> "L" integer arithmetic
    (L = (19595 R + 38470 G + 7471 B + 2^15) >> 16, ITU-R 601-2); grey stays grey."""
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def _decode_like_pil():
    """A tfds image decoder giving PIL's pixels: JPEG with the accurate integer IDCT (PIL's
    libjpeg default; TF's own default is the fast one, up to 5 levels off), PNG as is; RGB."""
    import tensorflow_datasets as tfds

    @tfds.decode.make_decoder(output_dtype=tf.uint8)
    def decode(serialized: tf.Tensor, feature) -> tf.Tensor:
        del feature
        return tf.cond(tf.io.is_jpeg(serialized),
                       lambda: tf.io.decode_jpeg(serialized, channels=3, dct_method="INTEGER_ACCURATE"),
                       lambda: tf.io.decode_png(serialized, channels=3))        # (H, W, 3) uint8

    return decode()


def load_image_folder_tfds(root: str | os.PathLike, image_size: int | tuple[int, int] | None = None,
                           mode: str | None = None, extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
                           limit_per_class: int | None = None, name: str | None = None
                           ) -> ArrayDataset:
    """`gan_diffusion.data.load_image_folder`, with TensorFlow Datasets'
    `tfds.folder_dataset.ImageFolder` reading and decoding the files.

    Same arguments, layouts (``root/<class>/<image>`` or a flat folder), errors and result:
    the same images, labels, class names and order, bit for bit (tests/data/test_tfds.py
    compares them, digest included, on PNG and JPEG folders). ImageFolder wants
    ``root_dir/<split>/<label>/<image>`` and shuffles each split, so the listing stays the
    core's (`scan_image_folder`): its files are linked into a temporary
    ``<tmp>/train/<label index>/<file index>.<ext>`` tree that ImageFolder reads, and the
    decoded images are put back in the core's order by file index. TF decodes every file to
    RGB (JPEG with the accurate integer IDCT, as PIL does); mode "L" then applies PIL's own
    integer luma formula, so grey results match too; resizing is the core's PIL
    `resize_image` (`stack_images`). Supported: 8-bit PNG (grey, RGB, palette) and
    baseline/progressive grey or RGB JPEG; TF reads 16-bit PNGs and CMYK JPEGs differently.

    Args:
        root, image_size, mode, extensions, limit_per_class, name: as `load_image_folder`.

    Returns:
        ArrayDataset (uint8 NHWC); labels and class_names None for a flat folder.

    Raises:
        DataError: as `load_image_folder`, plus files ImageFolder cannot list (only .jpg,
            .jpeg, .png), and a temporary folder that cannot hold symbolic links.

    Example:
        >>> ds = load_image_folder_tfds("pets", image_size=64, mode="RGB")  # doctest: +SKIP
        >>> ds.digest() == load_image_folder("pets", image_size=64, mode="RGB").digest()
        True
    """
    import tensorflow_datasets as tfds

    root = Path(root).expanduser()
    if mode is not None and mode not in ("L", "RGB"):
        raise DataError(f"mode must be None, 'L' or 'RGB', got {mode!r}")
    class_names, groups = scan_image_folder(root, tuple(extensions), limit_per_class)
    files = [p for g in groups for p in g]
    odd = [p for p in files if p.suffix.lower() not in IMAGEFOLDER_EXTENSIONS]
    if odd:
        raise DataError(f"{odd[0]} ({len(odd)} such file(s)) is not a {'/'.join(IMAGEFOLDER_EXTENSIONS)} "
                        "file, the only kinds tfds's ImageFolder reads; convert them, or read the "
                        "folder with gan_diffusion.data.load_image_folder (PIL)")
    target = mode or folder_mode(files)                       # "L" / "RGB" (header reads only)
    decoded: list[np.ndarray | None] = [None] * len(files)
    with tempfile.TemporaryDirectory(prefix="gan_diffusion-imagefolder-") as tmp:
        index = 0
        try:
            for label, group in enumerate(groups):
                label_dir = Path(tmp) / "train" / f"{label:05d}"
                label_dir.mkdir(parents=True)
                for path in group:
                    (label_dir / f"{index:08d}{path.suffix.lower()}").symlink_to(path.resolve())
                    index += 1
        except OSError as exc:
            raise DataError(f"cannot lay out {root} for tfds's ImageFolder in {tmp} ({exc}); set "
                            "TMPDIR to a folder that allows symbolic links") from None
        builder = tfds.folder_dataset.ImageFolder(tmp, shape=(None, None, 3))
        label_names = builder.info.features["label"].names          # ["00000", "00001", ...]
        labels = np.full(len(files), -1, np.int64)
        try:
            ds = builder.as_dataset(split="train", shuffle_files=False,
                                    decoders={"image": _decode_like_pil()})
            for ex in tfds.as_numpy(ds):
                i = int(Path(ex["image/filename"].decode()).stem)     # the core's file index
                decoded[i] = ex["image"]                              # (H, W, 3) uint8
                labels[i] = int(label_names[ex["label"]])
        except tf.errors.OpError as exc:
            for path in files:   # name the file TF could not decode (PIL fails on it as well)
                open_image(path)
            raise DataError(f"tfds's ImageFolder could not decode an image of {root} "
                            f"({exc.message}); read the folder with "
                            "gan_diffusion.data.load_image_folder (PIL) instead") from None
    missing = [str(files[i]) for i, a in enumerate(decoded) if a is None]
    if missing:
        raise DataError(f"tfds's ImageFolder did not read {missing[0]} ({len(missing)} file(s)) "
                        f"of {root}")
    pil = (Image.fromarray(_pil_luma(a) if target == "L" else a) for a in decoded)  # L / RGB
    images = stack_images(pil, files, image_size)
    labels = labels if class_names is not None else None
    kind = f"{len(class_names)} classes" if class_names else "unlabelled"
    return ArrayDataset(images=images, labels=labels, name=name or f"folder:{root}",
                        description=(f"image folder {root}: {len(files)} images, {kind} (read with "
                                     "tfds ImageFolder)"), class_names=class_names)
