"""MNIST from the four official gzip IDX files."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from .dataset import ArrayDataset
from .download import download_file, verify_file
from .errors import DataError
from .paths import DATA_DIR_ENV, resolve_data_dir

__all__ = ["MNIST_FILES", "MNIST_MIRRORS", "read_idx", "load_mnist"]

# split -> part -> (official filename, sha256)
MNIST_FILES: dict[str, dict[str, tuple[str, str]]] = {
    "train": {
        "images": ("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "labels": ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    },
    "test": {
        "images": ("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "labels": ("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    },
}

MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

# IDX type code -> big-endian numpy dtype
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (gzipped or not) into a NumPy array.

    Args:
        path: The ``.idx*-ubyte`` or ``.gz`` file.

    Returns:
        Array with the file's dimensions, native byte order (uint8 for MNIST).

    Example:
        >>> read_idx("mnist/t10k-labels-idx1-ubyte.gz").shape  # doctest: +SKIP
        (10000,)
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read IDX file {path} ({exc}); delete it and re-download it") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()}); "
                        "delete it and re-download it")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated (incomplete IDX header); delete it and re-download it")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(f"{path} is {problem} ({len(raw)} bytes, expected {expected}); "
                        "delete it and re-download it")
    data = np.frombuffer(raw, dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def _missing_error(split: str, search: list[Path], missing: list[str]) -> DataError:
    tried = " or ".join(str(d) for d in search)
    return DataError(
        f"MNIST {split} files not found: {', '.join(missing)} are missing from {tried}; "
        f"set {DATA_DIR_ENV} / --data-dir to a folder containing mnist/{missing[0]} (and the other "
        "official files), or pass download=True / --download to fetch them")


def load_mnist(split: str = "train", data_dir: str | os.PathLike | None = None, download: bool = False,
               verify: bool = True, checksums: dict[str, str] | None = None) -> ArrayDataset:
    """Load an MNIST split from ``<data_dir>/mnist/`` (or directly ``<data_dir>``).

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        data_dir: Data folder; see ``resolve_data_dir``.
        download: Fetch missing files into ``<data_dir>/mnist/`` (checksummed).
        verify: Check each file's SHA-256 before reading it.
        checksums: Optional ``{filename: sha256}`` overriding the official hashes.

    Returns:
        ArrayDataset with images (N, 28, 28, 1) uint8 and int64 labels 0..9.

    Example:
        >>> ds = load_mnist("test", data_dir="/data")  # doctest: +SKIP
        >>> ds.images.shape  # doctest: +SKIP
        (10000, 28, 28, 1)
    """
    if split not in MNIST_FILES:
        raise DataError(f"unknown MNIST split {split!r}; use one of {sorted(MNIST_FILES)}")
    root = resolve_data_dir(data_dir)
    search = [root / "mnist", root]
    overrides = checksums or {}
    paths: dict[str, Path] = {}
    missing = []
    for part, (filename, official_sha) in MNIST_FILES[split].items():
        found = next((d / filename for d in search if (d / filename).is_file()), None)
        if found is None and download:
            urls = [mirror + filename for mirror in MNIST_MIRRORS]
            found = download_file(urls, root / "mnist" / filename, overrides.get(filename, official_sha))
        if found is None:
            missing.append(filename)
        else:
            paths[part] = found
    if missing:
        raise _missing_error(split, search, missing)
    if verify:
        for part, (filename, official_sha) in MNIST_FILES[split].items():
            verify_file(paths[part], overrides.get(filename, official_sha))
    images, labels = read_idx(paths["images"]), read_idx(paths["labels"])
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(f"{paths['images']} holds {images.dtype} data of shape {images.shape}, expected "
                        "uint8 (N, 28, 28) images; delete it and re-download it")
    if labels.shape != (len(images),) or (len(labels) and labels.max() > 9):
        raise DataError(f"{paths['labels']} holds labels of shape {labels.shape} (max "
                        f"{labels.max() if len(labels) else None}), expected {len(images)} digits 0..9; "
                        "delete it and re-download it")
    return ArrayDataset(
        images=np.ascontiguousarray(images[..., None]),
        labels=labels.astype(np.int64),
        name="mnist",
        description=f"MNIST {split} split: {len(images)} real 28x28 grey handwritten digits "
                    f"(official IDX files from {paths['images'].parent})",
        class_names=[str(i) for i in range(10)],
    )
