"""Image grids and PNG output (NumPy + PIL)."""
from __future__ import annotations

import math
import os

import numpy as np


def make_grid(images: np.ndarray, nrow: int | None = None, padding: int = 2,
              pad_value: int = 0) -> np.ndarray:
    """Tile uint8 NHWC images into one (H', W', C) image.

    Args:
        images: uint8 array (N, H, W, C).
        nrow: images per row (default: ceil(sqrt(N))).
        padding: pixels between tiles.

    Returns:
        uint8 array (rows*(H+p)+p, nrow*(W+p)+p, C).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"make_grid needs uint8 images (N, H, W, C), got {images.dtype} "
                         f"{images.shape}")
    n, h, w, c = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, c),
                   pad_value, np.uint8)
    for i, img in enumerate(images):
        r, col = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y:y + h, x:x + w] = img
    return grid


def save_png(path: str | os.PathLike, image: np.ndarray, scale: int = 1) -> None:
    """Save a uint8 (H, W, 1|3) image as PNG atomically, optionally upscaled (nearest)."""
    from PIL import Image

    from gan_diffusion.utils.io import atomic_open

    image = np.asarray(image)
    if scale > 1:
        image = image.repeat(scale, axis=0).repeat(scale, axis=1)
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    with atomic_open(path, "wb") as f:
        pil.save(f, format="PNG")


def save_grid(path: str | os.PathLike, images: np.ndarray, nrow: int | None = None) -> None:
    """Tile images (uint8 NHWC) and save as PNG; small images are upscaled for viewing."""
    grid = make_grid(images, nrow)
    save_png(path, grid, scale=max(1, 256 // max(grid.shape[:2]) + 1) if grid.shape[0] < 256 else 1)
