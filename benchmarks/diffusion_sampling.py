"""Sampling time of DDPM (1000 ancestral steps) against DDIM (50 steps), per backend, and
the cost of running the sampler arithmetic in NumPy (the host round trip), and how DDIM-50
sampling throughput (images/s) scales with the batch size of one call.

Each backend runs in its own subprocess (one framework per process, threads pinned). Per
backend: build the DDPM (or load a trained run with --run), warm up, then time `--repeats`
full samplings of `--n` images per sampler and print the median with min/max. The round
trip is measured per step on the same model: converting x_t and the time features to
tensors, the network call on ready tensors, converting eps back, and the NumPy sampler step.

    python -m benchmarks.diffusion_sampling                       # both backends, 16 images
    python -m benchmarks.diffusion_sampling --batch-sizes 1,8,64      # the batch-size scaling
    python -m benchmarks.diffusion_sampling --run runs/ddpm-mnist-torch --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def measure(backend: str, args: argparse.Namespace) -> dict:
    import numpy as np

    import gan_diffusion
    from gan_diffusion.backends import load_model
    from gan_diffusion.models.unet import timestep_features

    be = gan_diffusion.get_backend(backend)
    threads = be.set_threads(args.threads)
    if args.run:
        model = load_model(os.path.join(args.run, "checkpoints", "latest.npz"), backend)
    else:
        model = be.build("ddpm", image_shape=tuple(args.shape))
    cfg = model.config
    y = np.arange(args.n) % cfg.num_classes if cfg.num_classes else None
    guidance = 1.0 if cfg.num_classes else None          # one network call per step in both
    model.sample(args.n, seed=0, labels=y, steps=5, guidance=guidance, progress=False)   # warm-up/tracing
    result = {"backend": backend, "threads": threads, "versions": be.versions(), "n": args.n,
              "config": {k: v for k, v in cfg.to_dict().items()
                         if k in ("image_shape", "base_channels", "channel_mults", "num_res_blocks",
                                  "num_classes")}}
    for name, sampler, steps, repeats in (("ddim50", "ddim", 50, args.repeats),
                                          ("ddpm1000", "ddpm", cfg.timesteps, args.ddpm_repeats)):
        images = []
        times = timed(lambda: images.append(model.sample(args.n, seed=1, labels=y, steps=steps,
                                                         sampler=sampler, guidance=guidance,
                                                         progress=False)), repeats)
        if args.save_grids:
            from gan_diffusion.utils.images import save_grid

            save_grid(os.path.join(args.save_grids, f"{backend}_{name}.png"), images[-1])
        result[name] = {"median": statistics.median(times), "min": min(times), "max": max(times),
                        "times": times, "per_step_ms": 1e3 * statistics.median(times) / steps}

    # batch-size scaling: DDIM-50 images/s for one sampling call of b images (best of 2,
    # after a short call that traces / warms that batch size)
    result["batch_scaling"] = []
    for b in args.batch_sizes:
        yb = np.arange(b) % cfg.num_classes if cfg.num_classes else None
        model.sample(b, seed=0, labels=yb, steps=2, sampler="ddim", guidance=guidance, progress=False)
        best = min(timed(lambda: model.sample(b, seed=1, labels=yb, steps=50, sampler="ddim",
                                              guidance=guidance, progress=False), 2))
        result["batch_scaling"].append({"batch": b, "seconds": best, "images_per_sec": b / best})

    # the host round trip of one step: NumPy -> tensors -> network -> NumPy, and the NumPy step
    x = model.initial_noise(args.n, 0)
    t = np.full(args.n, 500, np.int64)
    f = timestep_features(t, cfg.base_channels, cfg.dtype)
    xt, ft, yt = model.nhwc(x), model.tensor(f), model.labels(y)
    out = model.network_call(xt, ft, yt, True)
    scheduler = model.make_scheduler("ddim", 50)
    eps = model.to_numpy(out)
    reps = 20
    parts = {
        "to_tensors": timed(lambda: (model.nhwc(x), model.tensor(timestep_features(
            t, cfg.base_channels, cfg.dtype)), model.labels(y)), reps),
        "network": timed(lambda: model.network_call(xt, ft, yt, True), reps),
        "to_numpy": timed(lambda: model.to_numpy(out), reps),
        "numpy_step": timed(lambda: scheduler.step(eps, int(scheduler.timesteps[1]), x), reps),
    }
    result["step_parts_ms"] = {k: 1e3 * statistics.median(v) for k, v in parts.items()}
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", default="tf,torch")
    p.add_argument("--run", default=None, help="a trained ddpm run folder (default: a fresh model)")
    p.add_argument("--shape", type=int, nargs=3, default=(28, 28, 1))
    p.add_argument("--n", type=int, default=16, help="images per sampling")
    p.add_argument("--repeats", type=int, default=5, help="timed DDIM samplings")
    p.add_argument("--ddpm-repeats", type=int, default=3, help="timed DDPM samplings")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-sizes", type=lambda s: [int(v) for v in s.split(",")],
                   default=[1, 4, 16, 64], help="DDIM-50 throughput per batch size (comma-separated)")
    p.add_argument("--save-grids", default=None, metavar="DIR", help="save each sampler's images "
                   "as DIR/<backend>_<sampler>.png")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args)))
        return
    print(f"sampling {args.n} images: DDIM 50 steps ({args.repeats} runs) vs DDPM 1000 steps "
          f"({args.ddpm_repeats} runs) after warm-up, threads {args.threads}, cores {os.cpu_count()}")
    for backend in args.backends.split(","):
        cmd = [sys.executable, __file__, "--child", backend] + sys.argv[1:]
        out = subprocess.run(cmd, capture_output=True, text=True,
                             env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if out.returncode:
            print(f"{backend}: failed\n{out.stderr[-2000:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"\n{backend} {r['versions']} threads {r['threads']} model {r['config']}")
        for name in ("ddim50", "ddpm1000"):
            m = r[name]
            print(f"  {name:9s} median {m['median']:8.2f} s  (min {m['min']:.2f}, max {m['max']:.2f}, "
                  f"spread {100 * (m['max'] - m['min']) / m['median']:.0f} %)  {m['per_step_ms']:.1f} ms/step")
        print(f"  DDPM-1000 / DDIM-50 time: {r['ddpm1000']['median'] / r['ddim50']['median']:.1f}x")
        scaling = r["batch_scaling"]
        base = scaling[0]["images_per_sec"]
        print("  DDIM-50 images/s by batch size: " + ", ".join(
            f"{e['batch']}: {e['images_per_sec']:.2f} ({e['images_per_sec'] / base:.1f}x)" for e in scaling))
        s = r["step_parts_ms"]
        trip = s["to_tensors"] + s["to_numpy"] + s["numpy_step"]
        print("  one step (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in s.items())
              + f"; host round trip + NumPy step = {100 * trip / (trip + s['network']):.1f} % of the step")


if __name__ == "__main__":
    main()
