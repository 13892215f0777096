"""Training speed when another process shares the cores, per thread setting (issue 18).

DCGAN training images/s (benchmarks/throughput.py's child: 28x28x1, the config's batch,
all cores) per backend, under three loads, for each OpenMP wait policy:

    quiet      nothing else running;
    spin       one other process spinning on one core (a pure-Python loop);
    matmul     one other process running NumPy matrix products on all cores (another job).

OMP_WAIT_POLICY: "default" (the OpenMP runtime's: GNU libgomp spins about 300,000 times
before it sleeps), PASSIVE (threads sleep at once when they wait), and spin10k
(GOMP_SPINCOUNT=10000: a short spin, then sleep). torch's intra-op pool is OpenMP,
so the setting reaches it; TF uses its own (Eigen) pool and is measured as a control. The
ratio "PASSIVE / default" > 1 means PASSIVE is faster.

    python -m benchmarks.contention                     # both backends, ~5 minutes
    python -m benchmarks.contention --backends torch --steps 5 --repeats 3
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from ._bench import run_child

LOADS = {
    "quiet": None,
    "spin": "while True: pass",
    "matmul": ("import numpy as np\na = np.random.default_rng(0).standard_normal((1024, 1024), "
               "dtype=np.float32)\nwhile True: a @ a"),
}
POLICIES = {"default": {}, "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
            "spin10k": {"GOMP_SPINCOUNT": "10000"}}


def measure(backend: str, load: str, policy: str, args: argparse.Namespace) -> float | None:
    """Median images/s of one throughput child while `load` runs beside it."""
    rival = None
    if LOADS[load]:
        rival = subprocess.Popen([sys.executable, "-c", LOADS[load]])
        time.sleep(1.0)                                           # let it reach full speed
    try:
        argv = ["--child", backend, "--steps", str(args.steps), "--repeats", str(args.repeats),
                "--warmup", str(args.warmup)]
        r = run_child("benchmarks.throughput", argv, os.cpu_count(), POLICIES[policy])
    finally:
        if rival is not None:
            rival.kill()
            rival.wait()
    return None if r is None else r["median"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", default="torch,tf")
    p.add_argument("--loads", default=",".join(LOADS))
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()
    start = time.perf_counter()
    loads = args.loads.split(",")
    print(f"DCGAN training images/s (median of {args.repeats} x {args.steps} steps), "
          f"{os.cpu_count()} cores, threads = cores; load average at start "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'backend':8s} {'load':8s} " + " ".join(f"{k:>10s}" for k in POLICIES)
          + f" {'PASSIVE/default':>16s}")
    for backend in args.backends.split(","):
        for load in loads:
            rates = {pol: measure(backend, load, pol, args) for pol in POLICIES}
            cells = " ".join(f"{v:10.1f}" if v else f"{'failed':>10s}" for v in rates.values())
            ratio = (f"{rates['PASSIVE'] / rates['default']:16.2f}"
                     if rates["PASSIVE"] and rates["default"] else "")
            print(f"{backend:8s} {load:8s} {cells} {ratio}", flush=True)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
