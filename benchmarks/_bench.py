"""Shared helpers of the benchmark scripts: timing with warm-up, child processes (one
framework per process), and the machine's fp32 GEMM peak."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def timed(fn: Callable[[], object], warmup: int, repeats: int) -> dict:
    """Call fn `warmup` times untimed, then `repeats` times timed.

    Returns:
        {"median", "min", "max" (seconds per call), "spread_pct" ((max - min) / median), "times"}.
    """
    return timed_interleaved({"fn": fn}, warmup, repeats)["fn"]


def _summary(times: list[float]) -> dict:
    med = statistics.median(times)
    return {"median": med, "min": min(times), "max": max(times),
            "spread_pct": (max(times) - min(times)) / med * 100 if med > 0 else 0.0, "times": times}


def timed_interleaved(fns: dict[str, Callable[[], object]], warmup: int, repeats: int) -> dict:
    """`timed` for several callables whose repeats alternate (a, b, a, b, ...), so a drift in
    the machine's speed during the measurement reaches all of them alike: their ratio is
    then fair even where the absolute times move. Returns {name: timed-style dict}."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: _summary(ts) for name, ts in times.items()}


def run_child(module: str, argv: list[str], threads: int | None = None,
              extra_env: dict[str, str] | None = None) -> dict | None:
    """Run `python -m module argv...` from the repository root in a subprocess (OpenMP/BLAS
    pools pinned to `threads`, `extra_env` added) and parse the JSON on its last stdout line."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(extra_env or {})}
    if threads:
        env.update({k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                              "OPENBLAS_NUM_THREADS")})
    out = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True,
                         env=env, cwd=Path(__file__).resolve().parent.parent)
    if out.returncode:
        print(f"child {' '.join(argv)} failed:\n{out.stderr[-3000:]}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def gemm_peak(library: str, n: int = 1024, repeats: int = 10) -> dict:
    """fp32 GEMM throughput of an n x n x n matrix product (2 n^3 FLOPs) in `library`
    ("numpy", "torch" or "tf"): best and median GFLOP/s of `repeats` timed products after
    two warm-ups. The best is the peak the training step is compared with."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    if library == "numpy":
        fn = lambda: a @ b
    elif library == "torch":
        import torch
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        fn = lambda: torch.mm(ta, tb)
    elif library == "tf":
        import tensorflow as tf
        ta, tb = tf.constant(a), tf.constant(b)
        fn = lambda: tf.reduce_sum(tf.linalg.matmul(ta, tb)).numpy()  # forces completion
    else:
        raise ValueError(f"unknown GEMM library {library!r}")
    t = timed(fn, 2, repeats)
    flops = 2.0 * n ** 3
    return {"library": library, "n": n, "gflops_peak": flops / t["min"] / 1e9,
            "gflops_median": flops / t["median"] / 1e9}


def fmt_time(t: dict, scale: float = 1e3, unit: str = "ms") -> str:
    """"median [min - max] unit (spread %)"."""
    return (f"{t['median'] * scale:8.2f} {unit} [{t['min'] * scale:.2f} - {t['max'] * scale:.2f}] "
            f"spread {t['spread_pct']:4.1f}%")
