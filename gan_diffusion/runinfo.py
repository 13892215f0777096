"""What a run records about itself: versions, machine, threads, command line."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from gan_diffusion._version import __version__


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    """Platform, processor and core count of this machine."""
    return {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "hostname": platform.node()}


def run_info(backend: Any = None, threads: dict | None = None) -> dict[str, Any]:
    """Versions (library, Python, NumPy, framework), machine, threads, time and command.

    Args:
        backend: a `Backend` whose framework versions to include.
        threads: thread counts in force, as returned by `Backend.set_threads`.
    """
    versions = {"gan_diffusion": __version__, "python": sys.version.split()[0],
                "numpy": np.__version__}
    if backend is not None:
        versions.update(backend.versions())
    return {"versions": versions, "machine": machine_info(), "threads": threads or {},
            "git_commit": _git_commit(), "argv": sys.argv,
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "env": {k: v for k, v in os.environ.items()
                    if k.startswith(("GAN_DIFFUSION_", "OMP_", "MKL_", "TF_", "KERAS_"))}}
