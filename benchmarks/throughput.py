"""DCGAN training throughput (images/s) per backend on MNIST-sized input.

Each backend runs in its own subprocess (one framework per process, threads pinned).
Per backend: build, warm up, then time `--repeats` runs of `--steps` steps each and print
the median images/s with min/max. Input is random data of MNIST's shape, so no dataset is
needed; the step is the same full D+G step that `fit` runs.

    python -m benchmarks.throughput                      # both backends, 28x28x1, batch 128
    python -m benchmarks.throughput --backends torch --compile

benchmarks/frameworks.py measures more (every model, ours against idiomatic loops, sampling,
FID extraction, GFLOP/s); both share benchmarks/_bench.py.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from ._bench import run_child, timed


def measure(backend: str, args: argparse.Namespace) -> dict:
    import numpy as np

    import gan_diffusion

    be = gan_diffusion.get_backend(backend)
    threads = be.set_threads(args.threads, args.inter_op)
    shape = tuple(args.shape)
    overrides = {} if args.batch_size is None else {"batch_size": args.batch_size}
    model = be.build("dcgan", image_shape=shape, compile=args.compile, **overrides)
    args.batch_size = model.config.batch_size
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (args.batch_size, *shape), dtype=np.uint8)
    if backend == "torch":
        from gan_diffusion.torch_backend.layers import images_to_input
    else:
        from gan_diffusion.tf_backend.layers import images_to_input
    x = images_to_input(data, shape)  # framework tensor, as the data adapters deliver it

    def run():
        for _ in range(args.steps):
            model.train_step(x)
    rates = [args.steps * args.batch_size / t for t in timed(run, args.warmup, args.repeats)["times"]]
    return {"backend": backend, "threads": threads, "versions": be.versions(),
            "median": statistics.median(rates), "min": min(rates), "max": max(rates),
            "rates": rates}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", default="tf,torch")
    p.add_argument("--shape", type=int, nargs=3, default=(28, 28, 1))
    p.add_argument("--batch-size", type=int, default=None, help="default: the DCGAN config's")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--inter-op", type=int, default=None)
    p.add_argument("--compile", action="store_true", help="torch.compile (torch only)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args)))
        return
    from gan_diffusion.models.dcgan import DCGANConfig

    batch = args.batch_size or DCGANConfig.batch_size
    print(f"DCGAN train step, input {tuple(args.shape)}, batch {batch}, "
          f"{args.repeats} x {args.steps} steps after {args.warmup} warm-up, cores {os.cpu_count()}")
    results = []
    for backend in args.backends.split(","):
        r = run_child(__spec__.name, ["--child", backend] + sys.argv[1:], args.threads)
        if r is None:
            continue
        results.append(r)
        spread = (r["max"] - r["min"]) / r["median"] * 100
        print(f"{backend:6s} {r['median']:8.1f} img/s  (min {r['min']:.1f}, max {r['max']:.1f}, "
              f"spread {spread:.1f}%)  threads {r['threads']}  {r['versions']}")
    if len(results) == 2:
        print(f"ratio {results[0]['backend']}/{results[1]['backend']}: "
              f"{results[0]['median'] / results[1]['median']:.2f}")


if __name__ == "__main__":
    main()
