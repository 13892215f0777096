"""CelebA aligned faces: centre crop + resize."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from .dataset import ArrayDataset
from .errors import DataError
from .folders import open_image
from .paths import DATA_DIR_ENV, resolve_data_dir

__all__ = ["center_crop_resize", "celeba_candidates", "load_celeba"]


def center_crop_resize(img: Image.Image, size: int = 64, crop: int | None = None) -> Image.Image:
    """Take a centred square crop and resize it to ``size x size`` with PIL BICUBIC.

    Args:
        img: PIL image, e.g. a 178x218 aligned CelebA face.
        size: Output side in pixels.
        crop: Side of the centred square crop; default the largest one that fits.

    Returns:
        A ``size x size`` PIL image in the same mode.

    Example:
        >>> center_crop_resize(Image.new("RGB", (178, 218)), 64).size
        (64, 64)
    """
    w, h = img.size
    side = min(w, h) if crop is None else crop
    if not 1 <= side <= min(w, h) or size < 1:
        raise DataError(f"cannot take a {side}px centre crop of a {w}x{h} image and resize to {size}; "
                        f"use 1 <= crop <= {min(w, h)} and size >= 1")
    left, top = (w - side) // 2, (h - side) // 2
    return img.resize((size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side))


def celeba_candidates(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for CelebA JPEGs, in order."""
    root = resolve_data_dir(data_dir)
    return [root / "celeba" / "img_align_celeba", root / "img_align_celeba", root / "celeba-samples"]


def load_celeba(data_dir: str | os.PathLike | None = None, size: int = 64, crop: int | None = None,
                limit: int | None = None) -> ArrayDataset:
    """Load aligned CelebA faces, centre-cropped and resized, unlabelled.

    Args:
        data_dir: Data folder; see ``resolve_data_dir``. The first of
            ``celeba/img_align_celeba``, ``img_align_celeba``, ``celeba-samples``
            holding ``*.jpg`` files is used.
        size: Output side in pixels.
        crop: Side of the centred square crop (default: the image width).
        limit: Read only the first N files (sorted by name).

    Returns:
        ArrayDataset of (N, size, size, 3) uint8, labels None.

    Example:
        >>> load_celeba("/data", size=64).images.shape  # doctest: +SKIP
        (32, 64, 64, 3)
    """
    tried = celeba_candidates(data_dir)
    folder = next((p for p in tried if p.is_dir() and any(p.glob("*.jpg"))), None)
    if folder is None:
        raise DataError(f"CelebA images not found (tried {', '.join(map(str, tried))}); download "
                        "img_align_celeba.zip yourself and unzip it into <data_dir>/celeba/, with "
                        f"{DATA_DIR_ENV} / --data-dir pointing at <data_dir>")
    if limit is not None and limit < 1:
        raise DataError(f"limit must be >= 1, got {limit}")
    files = sorted(folder.glob("*.jpg"))[:limit]
    images = np.empty((len(files), size, size, 3), np.uint8)
    for i, path in enumerate(files):
        images[i] = np.asarray(center_crop_resize(open_image(path).convert("RGB"), size, crop))
    note = " (a small sample, not the full dataset)" if folder.name == "celeba-samples" else ""
    return ArrayDataset(images=images, labels=None, name="celeba",
                        description=f"CelebA aligned faces from {folder}{note}: {len(files)} images, "
                                    f"centre-cropped and resized to {size}x{size}")
