"""What a run records about itself: versions, machine, load, threads, command line, environment."""
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
            "load": load_info(), "env": relevant_env()}


# What a run records of its environment: the project's own variables and those that change
# what a framework computes or how fast (threads, oneDNN, determinism, devices, offline hub).
# TensorFlow's are named one by one: "TF_" alone also matches other tools' (Terraform's
# TF_CLI_CONFIG_FILE, TF_VAR_*, ...).
ENV_PREFIXES = ("GAN_DIFFUSION_", "OMP_", "GOMP_", "MKL_", "OPENBLAS_", "KMP_", "KERAS_", "TORCH_",
                "PYTORCH_", "CUDA_", "CUBLAS_", "XLA_")
ENV_NAMES = ("PYTHONHASHSEED", "HF_HUB_OFFLINE", "NVIDIA_TF32_OVERRIDE", "TF_CPP_MIN_LOG_LEVEL",
             "TF_CPP_MAX_VLOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS",
             "TF_NUM_INTEROP_THREADS", "TF_DETERMINISTIC_OPS", "TF_CUDNN_DETERMINISTIC",
             "TF_XLA_FLAGS", "TF_FORCE_GPU_ALLOW_GROWTH", "TF_GPU_ALLOCATOR",
             "TF_ENABLE_AUTO_MIXED_PRECISION", "TF_USE_LEGACY_KERAS")


def relevant_env() -> dict[str, str]:
    """The environment variables a run record keeps (ENV_PREFIXES, ENV_NAMES); never the
    rest, which may hold unrelated or private values."""
    return {k: v for k, v in sorted(os.environ.items())
            if k.startswith(ENV_PREFIXES) or k in ENV_NAMES}


def load_info() -> dict[str, Any]:
    """How busy the machine was when the run started: load averages over 1, 5 and 15
    minutes against the core count (timings taken under load are not comparable)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return {"loadavg": None, "cpu_count": os.cpu_count()}
    return {"loadavg": [round(one, 2), round(five, 2), round(fifteen, 2)], "cpu_count": os.cpu_count()}
