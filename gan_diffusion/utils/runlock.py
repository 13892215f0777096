"""One writer per run folder: an exclusive `flock` on FOLDER/.lock.

The kernel drops a flock when its process dies however it dies (kill -9 included), so a
lock is never left held by a dead process. The file also records who holds it (pid, host,
start time, command): while held, that names the other writer in the error; when a new
writer finds a record but no lock, the previous writer died without releasing it, and
`RunLock.stale` says who that was. Re-entrant within a process (the compare worker holds the
lock across training and evaluation; `train_run` takes it again inside).

Example:
    >>> with run_lock("runs/a") as lock:
    ...     if lock.stale:
    ...         print("previous writer died:", lock.stale)
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import platform
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan_diffusion.errors import GanDiffusionError

LOCK_NAME = ".lock"


class RunFolderLocked(GanDiffusionError):
    """Another live process is writing the run folder."""


@dataclass
class RunLock:
    folder: Path
    fd: int
    stale: dict[str, Any] | None  # the record a dead writer left, None after a clean release
    depth: int = 1


_HELD: dict[str, RunLock] = {}  # realpath -> lock held by this process


def _read(fd: int) -> dict[str, Any] | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 65536)
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        return {"unreadable": raw[:200].decode(errors="replace")}


def describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "an unknown process"
    return (f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')} "
            f"({' '.join(holder.get('argv', []))[:200]})")


def _folder(folder: str | os.PathLike) -> Path:
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise GanDiffusionError(f"--out {path} is an existing file, not a folder; choose a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GanDiffusionError(f"cannot create the run folder {path} ({exc.strerror}); "
                                "choose a writable --out") from None
    return path


def acquire(folder: str | os.PathLike) -> RunLock:
    """Take the folder's lock (creating the folder), or raise RunFolderLocked naming the holder."""
    path = _folder(folder)
    key = os.path.realpath(path)
    if key in _HELD:
        _HELD[key].depth += 1
        return _HELD[key]
    try:
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise GanDiffusionError(f"cannot write in the run folder {path} ({exc.strerror}); "
                                "choose a writable --out") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read(fd)
        os.close(fd)
        raise RunFolderLocked(f"{path} is being written by another process ({describe(holder)}); "
                              "wait for it to finish, or choose another --out") from None
    stale = _read(fd)
    me = {"pid": os.getpid(), "host": platform.node(), "argv": sys.argv,
          "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
    os.fsync(fd)
    _HELD[key] = lock = RunLock(path, fd, stale)
    return lock


def release(lock: RunLock) -> None:
    """Give the lock up (the record is cleared, so the next writer sees a clean release)."""
    lock.depth -= 1
    if lock.depth:
        return
    _HELD.pop(os.path.realpath(lock.folder), None)
    with contextlib.suppress(OSError):
        os.ftruncate(lock.fd, 0)
    fcntl.flock(lock.fd, fcntl.LOCK_UN)
    os.close(lock.fd)


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike) -> Iterator[RunLock]:
    """`acquire` ... `release`, on any exit of the block."""
    lock = acquire(folder)
    try:
        yield lock
    finally:
        release(lock)


def holder(folder: str | os.PathLike) -> dict[str, Any] | None:
    """Who holds the folder's lock now (None: nobody, or no lock file), without taking it."""
    path = Path(folder) / LOCK_NAME
    if not path.is_file() or os.path.realpath(path.parent) in _HELD:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read(fd) or {}
    finally:
        os.close(fd)
    return None
