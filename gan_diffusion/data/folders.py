"""Image-folder datasets: generic class folders, CIFAR-10 JPEG export, EuroSAT RGB."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .dataset import ArrayDataset
from .errors import DataError
from .paths import DATA_DIR_ENV, resolve_data_dir

__all__ = ["IMAGE_EXTENSIONS", "EUROSAT_CLASSES", "open_image", "list_images", "resize_image",
           "scan_image_folder", "folder_mode", "stack_images", "load_image_folder",
           "load_cifar10_jpg", "check_eurosat_classes", "load_eurosat"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
# The 10 land-use classes of EuroSAT RGB (its folder names, sorted: labels 0..9).
EUROSAT_CLASSES = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial",
                   "Pasture", "PermanentCrop", "Residential", "River", "SeaLake")
_MODES = ("L", "RGB")
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode one image with PIL.

    Args:
        path: Image file.

    Returns:
        The decoded PIL image (file closed).

    Example:
        >>> open_image("cat.png").size  # doctest: +SKIP
        (32, 32)
    """
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except _DECODE_ERRORS as exc:
        raise _corrupt(path, exc) from None


def _corrupt(path: str | os.PathLike, exc: Exception) -> DataError:
    return DataError(f"cannot decode image {path} ({exc}); the file is corrupt or not an image: "
                     "delete or replace it")


def _size_hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if h < 1 or w < 1:
        raise DataError(f"image_size must be positive, got {image_size}")
    return int(h), int(w)


def resize_image(img: Image.Image, image_size: int | tuple[int, int]) -> Image.Image:
    """Centre-crop to the target aspect ratio, then resize with PIL BICUBIC.

    Args:
        img: PIL image.
        image_size: Side of a square, or (height, width).

    Returns:
        Image of exactly that size (unchanged if it already has it).

    Example:
        >>> resize_image(Image.new("RGB", (40, 20)), 16).size
        (16, 16)
    """
    th, tw = _size_hw(image_size)
    w, h = img.size
    if (w, h) == (tw, th):
        return img
    if w * th > h * tw:  # too wide: crop left/right
        cw, ch = h * tw / th, h
    else:  # too tall: crop top/bottom
        cw, ch = w, w * th / tw
    left, top = (w - cw) / 2, (h - ch) / 2
    return img.resize((tw, th), Image.Resampling.BICUBIC, box=(left, top, left + cw, top + ch))


def list_images(folder: Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """The image files directly in `folder` (by suffix, case-insensitive; hidden files skipped), sorted."""
    exts = tuple(e.lower() for e in extensions)
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts)


def _scan(root: Path, extensions: tuple[str, ...]) -> tuple[list[str] | None, list[list[Path]]]:
    """Return (class names or None, files per group)."""
    if not root.is_dir():
        what = "is not a directory" if root.exists() else "does not exist"
        raise DataError(f"image folder {root} {what}; pass a folder of images or of class sub-folders")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    top = list_images(root, extensions)
    if not subdirs:
        if not top:
            raise DataError(f"image folder {root} contains no images with extensions {list(extensions)}; "
                            "add images or pass extensions=")
        return None, [top]
    if top:
        raise DataError(f"image folder {root} mixes images ({top[0].name}, ...) and class sub-folders; "
                        "move the loose images into a class folder or point at a folder with one layout")
    groups = []
    for d in subdirs:
        files = list_images(d, extensions)
        if not files:
            raise DataError(f"class folder {d} contains no images with extensions {list(extensions)}; "
                            "remove the empty folder or add images to it")
        groups.append(files)
    return [d.name for d in subdirs], groups


def scan_image_folder(root: str | os.PathLike, extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
                      limit_per_class: int | None = None
                      ) -> tuple[list[str] | None, list[list[Path]]]:
    """The files `load_image_folder` reads, in its order, without decoding any.

    Args:
        root: ``root/<class>/<image>`` or a flat folder of images.
        extensions: File suffixes to read (case-insensitive).
        limit_per_class: Keep only the first N files of each class (or of the flat folder).

    Returns:
        (sorted class names, or None for a flat folder; the sorted files of each class, one
        list for a flat folder). Label k is class_names[k]; the dataset's order is the
        concatenation of the lists.

    Example:
        >>> scan_image_folder("pets")  # doctest: +SKIP
        (['cat', 'dog'], [[Path('pets/cat/1.png'), ...], [Path('pets/dog/1.png'), ...]])
    """
    if limit_per_class is not None and limit_per_class < 1:
        raise DataError(f"limit_per_class must be >= 1, got {limit_per_class}")
    class_names, groups = _scan(Path(root).expanduser(), tuple(extensions))
    return class_names, [g[:limit_per_class] for g in groups]


def _check_mode(mode: str, path, first: tuple[object, str] | None) -> None:
    """DataError unless `mode` is "L"/"RGB" and (after the first file) the first file's."""
    fix = "pass mode='RGB' or mode='L' (the CLI's --color-mode RGB|L) to convert every image"
    if first is None and mode not in _MODES:
        raise DataError(f"{path} has PIL mode {mode!r}, not 'L' or 'RGB'; {fix}")
    if first is not None and mode != first[1]:
        raise DataError(f"{path} has PIL mode {mode!r} but {first[0]} has {first[1]!r}; {fix}")


def folder_mode(files: Sequence[str | os.PathLike]) -> str:
    """The PIL mode ("L" or "RGB") all `files` share, read from their headers only; the
    DataError of `load_image_folder(mode=None)` otherwise (another mode, mixed modes, a file
    that is not an image).

    Example:
        >>> folder_mode(sum(scan_image_folder("pets")[1], []))  # doctest: +SKIP
        'RGB'
    """
    first = None
    for path in files:
        try:
            with Image.open(path) as im:
                mode = im.mode
        except _DECODE_ERRORS as exc:
            raise _corrupt(path, exc) from None
        _check_mode(mode, path, first)
        first = first or (path, mode)
    if first is None:
        raise DataError("no image files given")
    return first[1]


def stack_images(images: Iterable[Image.Image], files: Sequence[object],
                 image_size: int | tuple[int, int] | None = None) -> np.ndarray:
    """uint8 NHWC array of PIL images in "L" or "RGB" mode, resized like `load_image_folder`.

    Args:
        images: One decoded image per entry of `files`, in order.
        files: What each image is (a path, or a description), for error messages.
        image_size: None requires one size; an int or (height, width) resizes each image
            with `resize_image` (centre crop to the aspect ratio, PIL BICUBIC).

    Returns:
        (len(files), H, W, 1 or 3) uint8.

    Example:
        >>> stack_images([Image.new("L", (4, 4))], ["a.png"], 2).shape
        (1, 2, 2, 1)
    """
    out: np.ndarray | None = None
    first_size = None
    for i, (path, img) in enumerate(zip(files, images)):
        if image_size is not None:
            img = resize_image(img, image_size)
        elif first_size is not None and img.size != first_size:
            raise DataError(f"{path} is {img.size[0]}x{img.size[1]} but {files[0]} is "
                            f"{first_size[0]}x{first_size[1]}; pass image_size= to resize every image")
        if out is None:
            first_size = img.size
            out = np.empty((len(files), img.size[1], img.size[0], 1 if img.mode == "L" else 3),
                           np.uint8)
        out[i] = np.asarray(img, dtype=np.uint8).reshape(out.shape[1:])
    if out is None:
        raise DataError("no images given")
    return out


def load_image_folder(root: str | os.PathLike, image_size: int | tuple[int, int] | None = None,
                      mode: str | None = None, extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
                      limit_per_class: int | None = None, name: str | None = None) -> ArrayDataset:
    """Load ``root/<class>/<image>`` (labelled) or a flat folder of images (unlabelled).

    Classes are the sorted sub-folder names (labels 0..K-1); files are sorted within
    each class, so the result is deterministic.

    Args:
        root: The folder.
        image_size: None requires every image to have the same size; an int (square)
            or (height, width) centre-crops each image to that aspect ratio and
            resizes it with PIL BICUBIC.
        mode: None requires every image to share one mode, "L" or "RGB"; "L" or "RGB"
            converts every image with PIL ``Image.convert(mode)``.
        extensions: File suffixes to read (case-insensitive); other files are ignored.
        limit_per_class: Keep only the first N files of each class (or of the flat folder).
        name: Dataset name; default ``"folder:<root>"``.

    Returns:
        ArrayDataset (uint8 NHWC); labels and class_names are None for a flat folder.

    Example:
        >>> ds = load_image_folder("pets", image_size=64, mode="RGB")  # doctest: +SKIP
        >>> ds.class_names, ds.images.shape  # doctest: +SKIP
        (['cat', 'dog'], (20, 64, 64, 3))
    """
    root = Path(root).expanduser()
    if mode is not None and mode not in _MODES:
        raise DataError(f"mode must be None, 'L' or 'RGB', got {mode!r}")
    class_names, groups = scan_image_folder(root, tuple(extensions), limit_per_class)
    files = [p for g in groups for p in g]

    def decoded() -> Iterable[Image.Image]:
        first = None
        for path in files:
            img = open_image(path)
            if mode is not None:
                img = img.convert(mode)
            else:
                _check_mode(img.mode, path, first)
                first = first or (path, img.mode)
            yield img

    images = stack_images(decoded(), files, image_size)
    labels = None
    if class_names is not None:
        labels = np.repeat(np.arange(len(groups), dtype=np.int64), [len(g) for g in groups])
    kind = f"{len(class_names)} classes" if class_names else "unlabelled"
    return ArrayDataset(images=images, labels=labels, name=name or f"folder:{root}",
                        description=f"image folder {root}: {len(files)} images, {kind}",
                        class_names=class_names)


def load_cifar10_jpg(split: str = "train", data_dir: str | os.PathLike | None = None,
                     limit_per_class: int | None = None) -> ArrayDataset:
    """Load the CIFAR-10 JPEG export ``<data_dir>/cifar10-jpg/<split>/<class>/*.jpg``.

    Args:
        split: ``"train"`` (5,000 per class) or ``"test"`` (1,000 per class).
        data_dir: Data folder; see ``resolve_data_dir``.
        limit_per_class: Keep only the first N images of each class.

    Returns:
        ArrayDataset of 32x32 RGB images, labels 0..9, the 10 class names.

    Example:
        >>> load_cifar10_jpg("test", limit_per_class=20).images.shape  # doctest: +SKIP
        (200, 32, 32, 3)
    """
    if split not in ("train", "test"):
        raise DataError(f"unknown CIFAR-10 split {split!r}; use 'train' or 'test'")
    folder = resolve_data_dir(data_dir) / "cifar10-jpg" / split
    if not folder.is_dir():
        raise DataError(f"CIFAR-10 JPEG folder {folder} not found; set {DATA_DIR_ENV} / --data-dir to a "
                        f"folder containing cifar10-jpg/{split}/<class>/*.jpg")
    ds = load_image_folder(folder, mode="RGB", extensions=(".jpg", ".jpeg"),
                           limit_per_class=limit_per_class, name="cifar10")
    if ds.image_shape != (32, 32, 3):
        raise DataError(f"{folder} holds {ds.image_shape} images, expected 32x32 RGB CIFAR-10 JPEGs")
    return dataclasses.replace(ds, description=(
        f"CIFAR-10 {split} split, {len(ds)} images from {folder}: JPEG q75 re-encoding of CIFAR-10; "
        "statistics not comparable with published CIFAR-10 FIDs"))


def eurosat_candidates(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for EuroSAT RGB, in order."""
    root = resolve_data_dir(data_dir)
    return [root / "eurosat" / "2750", root / "2750", root / "EuroSAT_RGB", root / "eurosat" / "EuroSAT_RGB"]


def check_eurosat_classes(folder: Path) -> None:
    """DataError naming the EuroSAT classes missing from `folder` (and any foreign folder)."""
    found = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    missing = [c for c in EUROSAT_CLASSES if c not in found]
    extra = [c for c in found if c not in EUROSAT_CLASSES]
    if not missing and not extra:
        return
    parts = []
    if missing:
        parts.append(f"lacks {len(missing)} of the {len(EUROSAT_CLASSES)} classes: {', '.join(missing)}")
    if extra:
        parts.append(f"has folders that are not EuroSAT classes: {', '.join(extra)}")
    raise DataError(f"EuroSAT RGB folder {folder} {' and '.join(parts)}; it must hold exactly the "
                    f"class folders {', '.join(EUROSAT_CLASSES)} (<Class>/<Class>_N.jpg): unzip "
                    "the complete EuroSAT RGB archive again (https://github.com/phelber/EuroSAT)"
                    + (" and move the other folders out" if extra else ""))


def load_eurosat(data_dir: str | os.PathLike | None = None, image_size: int | tuple[int, int] = 64,
                 limit_per_class: int | None = None) -> ArrayDataset:
    """Load EuroSAT RGB (``<Class>/<Class>_N.jpg``, 64x64, 10 land-use classes).

    EuroSAT is never downloaded automatically: unzip the EuroSAT RGB archive into
    one of the folders returned by ``eurosat_candidates``. The folder must hold exactly the
    10 class folders of ``EUROSAT_CLASSES`` (a DataError names missing or foreign ones).

    Args:
        data_dir: Data folder; see ``resolve_data_dir``.
        image_size: Output size (native 64).
        limit_per_class: Keep only the first N images of each class.

    Returns:
        ArrayDataset of RGB images with labels and class names.

    Example:
        >>> load_eurosat("/data", limit_per_class=10).images.shape  # doctest: +SKIP
        (100, 64, 64, 3)
    """
    tried = eurosat_candidates(data_dir)
    folder = next((p for p in tried if p.is_dir()), None)
    if folder is None:
        raise DataError(f"EuroSAT RGB not found (tried {', '.join(map(str, tried))}); it is not downloaded "
                        "automatically: download the EuroSAT RGB zip yourself "
                        "(https://github.com/phelber/EuroSAT) and unzip it so that one of these folders "
                        f"holds <Class>/<Class>_N.jpg, with {DATA_DIR_ENV} / --data-dir pointing at "
                        "its data folder")
    check_eurosat_classes(folder)
    ds = load_image_folder(folder, image_size=image_size, mode="RGB",
                           limit_per_class=limit_per_class, name="eurosat")
    return dataclasses.replace(ds, description=(
        f"EuroSAT RGB (Sentinel-2 land use), {len(ds)} images in {ds.num_classes} classes from {folder}"))
