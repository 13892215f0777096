"""Atomic file writes: a crash never leaves a half-written file in place of a good one."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from gan_diffusion.utils import faults

TMP_SUFFIX = ".tmp"  # what an interrupted atomic write leaves behind: .<name>.<random>.tmp


def _umask() -> int:
    """The process umask (os.umask can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed atomic writes left under `folder`.

    Call it only while holding the folder's run lock (gan_diffusion/utils/runlock.py): a
    live writer's temporary file looks the same. Returns the files removed.
    """
    stale = [p for p in Path(folder).rglob(f".*{TMP_SUFFIX}") if p.is_file()]
    for p in stale:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    return stale


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success fsync it and rename it over `path`.

    If the body raises, the temporary file is removed and `path` is left untouched.

    Example:
        >>> with atomic_open("ckpt.npz") as f:
        ...     np.savez(f, a=np.zeros(3))
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # as open() would create it (mkstemp makes 0600)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        faults.point(f"rename:{path.name}")  # crash tests: killed with the new file unrenamed
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write text to `path` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON (indented, sorted keys) to `path` atomically."""
    atomic_write_text(path, _json_text(data))


def write_json_if_changed(path: str | os.PathLike, data: Any) -> bool:
    """`atomic_write_json`, unless `path` already holds exactly that text (then the file is
    not touched: same inode, same mtime). Returns whether it was written."""
    text = _json_text(data)
    try:
        if Path(path).read_text() == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)
    return True


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Build a folder beside `path` (`.<name>.<random>.tmp`) and rename it into place when
    the body succeeds; on any failure it is removed, so `path` never holds a half-written
    folder. `path` must not exist or be an empty folder (it is replaced).

    Raises:
        FileExistsError: `path` exists and is not an empty folder.

    Example:
        >>> with atomic_folder("out/images") as tmp:
        ...     save_png(tmp / "a.png", image)
    """
    import shutil

    final = Path(path)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise FileExistsError(f"{final} exists and is not an empty folder")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=TMP_SUFFIX, dir=final.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())   # as mkdir would make it (mkdtemp makes 0700)
        yield tmp
        if final.exists():
            final.rmdir()
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
