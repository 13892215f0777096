"""Error type raised by the data package."""

from __future__ import annotations

from gan_diffusion.errors import GanDiffusionError

__all__ = ["DataError"]


class DataError(GanDiffusionError, ValueError):
    """A dataset could not be found, read, verified or decoded.

    The message always names the file or folder involved and says how to fix it.
    It is both a ``ValueError`` and the library's ``GanDiffusionError``.

    Example:
        >>> raise DataError("/data/mnist/x.gz is truncated; delete it and re-download")
        Traceback (most recent call last):
        ...
        gan_diffusion.data.errors.DataError: /data/mnist/x.gz is truncated; delete it and re-download
    """
