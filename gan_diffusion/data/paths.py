"""Where datasets live on disk."""

from __future__ import annotations

import os
import pathlib

__all__ = ["DATA_DIR_ENV", "resolve_data_dir"]

DATA_DIR_ENV = "GAN_DIFFUSION_DATA_DIR"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Return the data directory to use; it is not created.

    Priority: the explicit ``data_dir`` argument, then the ``GAN_DIFFUSION_DATA_DIR``
    environment variable, then ``$XDG_CACHE_HOME/gan_diffusion/data`` (default
    ``~/.cache/gan_diffusion/data``).

    Args:
        data_dir: Explicit directory, or None to use the environment / default.

    Returns:
        The directory as an absolute-if-possible ``pathlib.Path`` (``~`` expanded).

    Example:
        >>> resolve_data_dir("/tmp/data")
        PosixPath('/tmp/data')
    """
    if data_dir is not None and str(data_dir) != "":
        return pathlib.Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV, "")
    if env:
        return pathlib.Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME", "")
    base = pathlib.Path(cache).expanduser() if cache else pathlib.Path.home() / ".cache"
    return base / "gan_diffusion" / "data"
