"""Speed and agreement of our Frechet distance vs the SciPy-sqrtm (pytorch-fid) formula.

Builds Gaussian statistics at Inception's pool dimension (D=2048) from random features with
a power-law spectrum (like real CNN features, the covariance is ill-conditioned), then times
`frechet_distance` (symmetric eigendecompositions) and `frechet_distance_sqrtm_reference`
(scipy.linalg.sqrtm of S1 S2), alternating the two so both see the same machine load. Prints
the median of each, the speed ratio, their relative difference, and each one's error against
an exact value (nuclear norm of X Y^T via QR).

    python -m benchmarks.frechet_speed                      # D=2048 from 4096 samples
    python -m benchmarks.frechet_speed --dim 512 --samples 256 --repeats 5   # singular case
    OPENBLAS_NUM_THREADS=1 python -m benchmarks.frechet_speed   # steadier on a shared machine
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np

from gan_diffusion.metrics import (FewSamplesWarning, feature_statistics, frechet_distance,
                                   frechet_distance_sqrtm_reference)


def make_features(rng: np.random.Generator, n: int, d: int, shift: float) -> np.ndarray:
    """(n, d) features with eigenvalues ~ 1/i (power law) in a random basis."""
    basis, _ = np.linalg.qr(rng.normal(size=(d, d)))
    scales = 1.0 / np.sqrt(np.arange(1, d + 1))
    return (rng.normal(size=(n, d)) * scales) @ basis.T + shift


def exact_fd(a: np.ndarray, b: np.ndarray) -> float:
    """FD of the fitted Gaussians with tr sqrt(S1 S2) = ||X Y^T||_* = ||R1 R2^T||_*."""
    x = (a - a.mean(0)) / np.sqrt(len(a) - 1)
    y = (b - b.mean(0)) / np.sqrt(len(b) - 1)
    r1, r2 = np.linalg.qr(x, mode="r"), np.linalg.qr(y, mode="r")
    nuclear = np.linalg.svd(r1 @ r2.T, compute_uv=False).sum()
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + (x * x).sum() + (y * y).sum() - 2 * nuclear)


def timed_interleaved(fns, stats, repeats: int) -> tuple[list[float], list[list[float]]]:
    """Run each fn on stats `repeats` times, alternating fns so that both see the same machine
    load; return the last values and the times per fn."""
    values, times = [None] * len(fns), [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            values[i] = fn(*stats)
            times[i].append(time.perf_counter() - t0)
    return values, times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--samples", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    real = make_features(rng, args.samples, args.dim, 0.0)
    fake = make_features(rng, args.samples, args.dim, 0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        mu1, s1 = feature_statistics(real)
        mu2, s2 = feature_statistics(fake)
    stats = (mu1, s1, mu2, s2)

    (ours, ref), (t_ours, t_ref) = timed_interleaved(
        (frechet_distance, frechet_distance_sqrtm_reference), stats, args.repeats)
    exact = exact_fd(real, fake)
    med_ours, med_ref = statistics.median(t_ours), statistics.median(t_ref)

    print(f"D={args.dim}, n={args.samples} per set, repeats={args.repeats}, "
          f"cpus={os.cpu_count()}, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, numpy {np.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"eigh (ours)     : median {med_ours:8.3f} s  (min {min(t_ours):.3f}, "
          f"max {max(t_ours):.3f})  FD = {ours:.12g}")
    print(f"sqrtm reference : median {med_ref:8.3f} s  (min {min(t_ref):.3f}, "
          f"max {max(t_ref):.3f})  FD = {ref:.12g}")
    print(f"speed ratio (reference / ours): {med_ref / med_ours:.1f}x on medians, "
          f"{min(t_ref) / min(t_ours):.1f}x on minima")
    print(f"relative difference |ours - ref| / |ref|: {abs(ours - ref) / abs(ref):.2e}")
    print(f"relative error vs exact (nuclear norm): ours {abs(ours - exact) / abs(exact):.2e}, "
          f"reference {abs(ref - exact) / abs(exact):.2e}")


if __name__ == "__main__":
    main()
