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


def image_files(path: str | os.PathLike) -> list:
    """The image files of a folder (sorted by name), or the one file given.

    Raises:
        ConfigError: the path does not exist, or the folder holds no image.
    """
    from pathlib import Path

    from gan_diffusion.data.folders import IMAGE_EXTENSIONS, list_images
    from gan_diffusion.errors import ConfigError

    p = Path(path)
    if p.is_dir():
        files = list_images(p, IMAGE_EXTENSIONS + (".webp",))
        if not files:
            raise ConfigError(f"{p} holds no image ({', '.join(IMAGE_EXTENSIONS)}, .webp)")
        return files
    if not p.is_file():
        raise ConfigError(f"input image {p} does not exist")
    return [p]


def load_init_images(images, n: int, size: tuple[int, int]) -> tuple[np.ndarray, list[str]]:
    """Image-to-image inputs as uint8 (n, H, W, 3) RGB at `size` = (H, W), and a note for
    every image that had to be converted or resized (Lanczos, as diffusers' VaeImageProcessor).

    Args:
        images: a path (file or folder), a PIL image, a uint8 (H, W, 3) or (B, H, W, 3) array,
            or a list of those; one image is used for all n, otherwise there must be n.

    Raises:
        ConfigError: unreadable files, a count that is neither 1 nor n, non-uint8 arrays.
    """
    from PIL import Image

    from gan_diffusion.data.folders import open_image
    from gan_diffusion.errors import ConfigError

    if isinstance(images, (str, os.PathLike)):
        items = [(str(f), f) for f in image_files(images)]
    elif isinstance(images, np.ndarray) and images.ndim == 4:
        items = [(f"image {i}", a) for i, a in enumerate(images)]
    elif isinstance(images, (list, tuple)):
        items = [(str(x) if isinstance(x, (str, os.PathLike)) else f"image {i}", x)
                 for i, x in enumerate(images)]
    else:
        items = [("image 0", images)]
    if len(items) not in (1, n):
        raise ConfigError(f"{len(items)} input images for {n} outputs: give one image or {n}")
    h, w = size
    out, notes = [], []
    for name, item in items:
        if isinstance(item, (str, os.PathLike)):
            pil = open_image(item)      # DataError naming the file if it cannot be decoded
        elif isinstance(item, np.ndarray):
            if item.dtype != np.uint8 or item.ndim not in (2, 3):
                raise ConfigError(f"{name}: arrays must be uint8 (H, W) or (H, W, C), got "
                                  f"{item.dtype} {item.shape}")
            pil = Image.fromarray(item if item.ndim == 2 or item.shape[-1] != 1 else item[..., 0])
        elif isinstance(item, Image.Image):
            pil = item
        else:
            raise ConfigError(f"{name}: expected a path, a PIL image or a uint8 array, got "
                              f"{type(item).__name__}")
        if pil.mode != "RGB":
            notes.append(f"{name}: converted from mode {pil.mode} to RGB")
            pil = pil.convert("RGB")
        if pil.size != (w, h):
            notes.append(f"{name}: resized from {pil.size[1]}x{pil.size[0]} to {h}x{w} (Lanczos)")
            pil = pil.resize((w, h), resample=Image.LANCZOS)
        out.append(np.asarray(pil, np.uint8))
    batch = np.stack(out)
    return (np.repeat(batch, n, axis=0) if len(batch) == 1 else batch), notes
