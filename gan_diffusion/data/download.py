"""Checksummed, atomic file downloads (standard library only)."""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.request
from pathlib import Path

from .errors import DataError

__all__ = ["NO_DOWNLOAD_ENV", "downloads_disabled", "sha256_file", "verify_file", "download_file"]

NO_DOWNLOAD_ENV = "GAN_DIFFUSION_NO_DOWNLOAD"
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks.

    Args:
        path: File to hash.

    Returns:
        64-character lowercase hex digest.

    Example:
        >>> sha256_file("train-labels-idx1-ubyte.gz")  # doctest: +SKIP
        '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: str | os.PathLike, sha256: str) -> None:
    """Raise DataError unless ``path`` exists and has the expected SHA-256.

    Args:
        path: File to check.
        sha256: Expected hex digest.

    Returns:
        None.

    Example:
        >>> verify_file("mnist/t10k-labels-idx1-ubyte.gz", MNIST_SHA)  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; place the file there or re-download it")
    actual = sha256_file(path)
    if actual != sha256.lower():
        raise DataError(f"{path} has the wrong checksum (expected sha256 {sha256.lower()}, got {actual}); "
                        "the file is corrupt or a different version: delete it and re-download it")


def downloads_disabled() -> bool:
    """True when ``GAN_DIFFUSION_NO_DOWNLOAD`` is set to a true value (e.g. 1)."""
    return os.environ.get(NO_DOWNLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _fetch(url: str, dest: Path, sha256: str, timeout: float) -> str | None:
    """Download one URL to ``dest`` atomically; return an error string or None."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256.lower():
            return f"{url}: wrong checksum (expected {sha256.lower()}, got {digest.hexdigest()})"
        os.replace(tmp, dest)
        return None
    except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError/timeouts are OSErrors
        return f"{url}: {exc}"
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def download_file(url: str | list[str], dest: str | os.PathLike, sha256: str, timeout: float = 30) -> Path:
    """Download a file, trying each mirror, and verify its SHA-256.

    Data go to a temporary file next to ``dest`` that is checked and then moved in
    place with ``os.replace``, so ``dest`` is never left half-written. Setting
    ``GAN_DIFFUSION_NO_DOWNLOAD=1`` makes this fail at once without any network use.

    Args:
        url: One URL or a list of mirror URLs, tried in order.
        dest: Final path of the file; its folder is created if needed.
        sha256: Expected hex digest.
        timeout: Socket timeout in seconds for each attempt.

    Returns:
        ``dest`` as a Path.

    Example:
        >>> download_file(["https://mirror/a.gz"], Path("data/a.gz"), "ab12...")  # doctest: +SKIP
        PosixPath('data/a.gz')
    """
    dest = Path(dest)
    urls = [url] if isinstance(url, str) else list(url)
    if downloads_disabled():
        raise DataError(f"downloads are disabled ({NO_DOWNLOAD_ENV}=1), so {dest} cannot be fetched; "
                        f"place the file at {dest} yourself or unset {NO_DOWNLOAD_ENV}")
    if not urls:
        raise DataError(f"no URL given for {dest}; place the file there manually")
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for u in urls:
        error = _fetch(u, dest, sha256, timeout)
        if error is None:
            return dest
        failures.append(error)
    raise DataError(f"could not download {dest.name} ({'; '.join(failures)}); the machine may be offline: "
                    f"download it yourself and place it at {dest}")
