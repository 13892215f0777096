"""Framework timing per model: training step, sampling step, FID feature extraction; ours
beside each framework's idiomatic loop; achieved GFLOP/s against the fp32 GEMM peak.

Every (model, backend) runs in its own subprocess (one framework per process, threads pinned):
  1. fp32 GEMM peak of that framework and of NumPy (1024^3 matmul, best of 10);
  2. training step: our `train_step` on a fixed batch (framework tensor, as the data
     adapters deliver it) and the framework's idiomatic loop for the same architecture
     (benchmarks/idiomatic.py: a plain PyTorch loop; Keras `fit()` with an overridden
     `train_step`); warm-up, then `--repeats` timed runs of `--steps` steps, ours and the
     idiomatic loop alternating (a drift of the machine's speed reaches both); median, min, max;
  3. sampling step: one network forward pass of a batch (GANs: generator; VAE: decoder; DDPM:
     one U-Net call, the cost of one sampler step), ours (NumPy in/out) and the stock
     network's on ready tensors (DDPM: our U-Net module, there is no stock U-Net);
  4. FID feature extraction (per backend, once): our FID Inception-v3 with RANDOM weights
     (the seeded NumPy init; speed does not depend on the values), and for TF Keras'
     `keras.applications.InceptionV3(weights=None)`; the NumPy pixels-pca64 stand-in.
FLOPs of a training step are counted on our torch step with torch's own per-op formulas
(torch.utils.flop_counter.flop_registry: convolutions and matrix products, forward and
backward, the gradient penalty's double backward included; element-wise ops, BatchNorm and
the optimizer not counted) and applied to both backends, which compute the same function
(parity tests); WGAN-GP: averaged over an n_critic cycle; StyleGAN2 over a 16-step cycle (R1, path length). Achieved GFLOP/s is printed as a %
of the machine's fp32 GEMM peak: the best of NumPy's, torch's and TF's 1024^3 matmul.

    python -m benchmarks.frameworks                          # dcgan, wgan-gp, vae, ddpm, stylegan2; tf, torch
    python -m benchmarks.frameworks --models stylegan2 --steps 16   # a whole lazy-regularization cycle per run
    python -m benchmarks.frameworks --models dcgan --backends torch --steps 5 --repeats 3
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import time

import numpy as np

from ._bench import fmt_time, gemm_peak, run_child, timed, timed_interleaved


def child(model: str, backend: str, args: argparse.Namespace) -> dict:
    """measure_child's results, with the cores other processes used meanwhile ("load")."""
    from gan_diffusion.utils import cpuload

    start = cpuload.snapshot()
    res = measure_child(model, backend, args)
    return {**res, "load": cpuload.others(start, cpuload.snapshot())}   # others' cores meanwhile


def measure_child(model: str, backend: str, args: argparse.Namespace) -> dict:
    import gan_diffusion
    from gan_diffusion.registry import make_config

    be = gan_diffusion.get_backend(backend)
    threads = be.set_threads(args.threads, 1)
    res = {"model": model, "backend": backend, "threads": threads, "versions": be.versions(),
           "gemm": gemm_peak(backend), "gemm_numpy": gemm_peak("numpy")}  # threads pinned here
    rng = np.random.default_rng(0)
    if model == "fid":
        return {**res, **fid_child(backend, args, rng)}
    from .idiomatic import IDIOMATIC

    shape = model_shape(model, args)
    overrides = {"batch_size": args.batch_size} if args.batch_size else {}
    cfg = make_config(model, image_shape=shape, **overrides)
    b = cfg.batch_size
    batch = rng.integers(0, 256, (b, *shape), dtype=np.uint8)
    ours = be.build(model, config=cfg)
    layers = importlib.import_module(f"gan_diffusion.{backend}_backend.layers")
    x = layers.images_to_input(batch, shape)                # framework tensor
    res["config"] = {"batch_size": b, "image_shape": shape}

    steps = -(-args.steps // cycle(cfg)) * cycle(cfg)      # whole update cycles per timed run
    res["steps"] = steps

    def ours_run(n=steps):
        for _ in range(n):
            ours.train_step(x)
    idiom = IDIOMATIC[model][0 if backend == "torch" else 1](cfg, batch)
    pair = timed_interleaved({"ours": ours_run, "idiomatic": lambda: idiom(steps)},
                             args.warmup, args.repeats)    # alternating repeats: a fair ratio
    res["train_ours"], res["train_idiomatic"] = pair["ours"], pair["idiomatic"]
    if backend == "torch":
        res["flops_per_step"] = torch_flops(lambda: ours_run(cycle(cfg)), cycle(cfg))
        res["flops_idiomatic"] = torch_flops(lambda: idiom(cycle(cfg)), cycle(cfg))

    # sampling: one network forward of a batch in inference mode (GANs: the generator; VAE:
    # the decoder; DDPM: one U-Net call, i.e. one sampler step)
    ours_sample, stock_sample = sampling_step(model, backend, cfg, ours, rng)
    pair = timed_interleaved({"ours": ours_sample, "stock": stock_sample}, 2, args.repeats)
    res["sample_ours"], res["sample_idiomatic"] = pair["ours"], pair["stock"]
    return res


def model_shape(model: str, args: argparse.Namespace) -> tuple[int, int, int]:
    """--shape, else 28x28x1 (StyleGAN2: its config's 32x32x3, a power-of-two side)."""
    if args.shape:
        return tuple(args.shape)
    return (32, 32, 3) if model == "stylegan2" else (28, 28, 1)


def sampling_step(model: str, backend: str, cfg, ours, rng):
    """(ours, stock) callables of one sampling forward pass: ours NumPy in / NumPy out, the
    stock one on ready framework tensors (stock-layer nets for GANs and VAE, our U-Net module
    for DDPM, which has no stock counterpart)."""
    from .idiomatic import VAE_BN, plans_of, vae_plans
    from .stock import keras_net, torch_net

    b = cfg.batch_size
    if model == "ddpm":
        from gan_diffusion.models.unet import timestep_features

        x = rng.standard_normal((b, *cfg.image_shape), dtype=np.float32)     # NHWC
        t = np.full(b, cfg.timesteps // 2)
        f = timestep_features(t, cfg.base_channels)
        ours_fn = lambda: ours.predict_noise(x, t)
        if backend == "torch":
            import torch
            from gan_diffusion.torch_backend.unet import UNet
            net, tx, tf_ = UNet(cfg, "unet").eval(), torch.from_numpy(x.transpose(0, 3, 1, 2)), torch.from_numpy(f)

            def stock():
                with torch.no_grad():
                    return net(tx, tf_, None)
        else:
            import tensorflow as tf
            from gan_diffusion.tf_backend.unet import UNet
            net, tx, tf_ = UNet(cfg, "unet"), tf.constant(x), tf.constant(f)
            stock = tf.function(lambda: net(tx, tf_, None, training=False))
        return ours_fn, stock
    z = rng.standard_normal((b, cfg.latent_dim), dtype=np.float32)
    if model == "stylegan2":               # ours: the EMA generator; stock: its generator module
        from . import idiomatic_stylegan2 as sg2
        if backend == "torch":
            import torch
            sample, tz = sg2.torch_generator(cfg), torch.from_numpy(z)
        else:
            import tensorflow as tf
            sample, tz = sg2.keras_generator(cfg), tf.constant(z)
        return (lambda: ours.generate(z)), (lambda: sample(tz))
    sigmoid = model == "vae"  # VAE: the decoder, whose stock twin ends with ours' sigmoid
    if sigmoid:
        plan, ours_fn, bn = vae_plans(cfg)[1], (lambda: ours.decode(z)), VAE_BN
    else:
        plan, ours_fn = plans_of(model, cfg)[0], (lambda: ours.generate(z))
        bn = (cfg.bn_momentum, cfg.bn_epsilon)
    if backend == "torch":
        import torch
        G, tz = torch_net(plan, *bn).eval(), torch.from_numpy(z)
        act = torch.sigmoid if sigmoid else (lambda v: v)

        def stock():
            with torch.no_grad():
                return act(G(tz))
    else:
        import tensorflow as tf
        G, tz = keras_net(plan, *bn, (cfg.latent_dim,)), tf.constant(z)
        act = tf.sigmoid if sigmoid else (lambda v: v)
        stock = lambda: act(G(tz, training=False))
    return ours_fn, stock


def cycle(cfg) -> int:
    """Steps of one full update cycle: n_critic for WGAN-GP, the lcm of the lazy R1 and
    path-length intervals for StyleGAN2 (16 by default), else 1."""
    if hasattr(cfg, "r1_interval"):
        return math.lcm(cfg.r1_interval, cfg.pl_interval)
    return int(getattr(cfg, "n_critic", 1))


def torch_flops(fn, steps: int) -> float:
    """FLOPs per step of fn() (running `steps` steps), counted per dispatched aten op with
    torch's own formulas (torch.utils.flop_counter.flop_registry: convolutions, matrix
    products, their backward ops). A minimal dispatch mode: FlopCounterMode's module tracker
    does not support the penalty's autograd.grad(create_graph=True)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.total += formula(*args, **kwargs, out_val=out)
            return out

    with Count() as counter:
        fn()
    return counter.total / steps


def fid_child(backend: str, args: argparse.Namespace, rng) -> dict:
    n = args.fid_batch
    images = rng.integers(0, 256, (n, *(args.shape or (28, 28, 1))), dtype=np.uint8)
    ext = importlib.import_module(f"gan_diffusion.{backend}_backend.inception").build("random")
    out = {"fid_batch": n, "fid_ours": timed(lambda: ext.features(images, batch_size=n), 1, 3)}
    if backend == "tf":
        import keras
        import tensorflow as tf
        net = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                             input_shape=(299, 299, 3))
        x = tf.image.resize(tf.image.grayscale_to_rgb(tf.constant(images, tf.float32))
                            if images.shape[-1] == 1 else tf.constant(images, tf.float32), (299, 299))
        infer = tf.function(lambda v: net(v, training=False))
        out["fid_idiomatic"] = timed(lambda: infer(x / 127.5 - 1).numpy(), 1, 3)
    return out


def report(results: list[dict], pca: dict, args: argparse.Namespace) -> None:
    first = {}  # backend -> its first child's result (GEMM peak, threads, versions)
    for r in results:
        first.setdefault(r["backend"], r)
    gemms = {"numpy": max(r["gemm_numpy"]["gflops_peak"] for r in results),
             **{b: max(r["gemm"]["gflops_peak"] for r in results if r["backend"] == b) for b in first}}
    best = max(gemms, key=gemms.get)
    peak = gemms[best]
    print(f"\nfp32 GEMM (1024x1024x1024 matmul, best of 10, {args.threads or os.cpu_count()} threads): "
          + ", ".join(f"{k} {v:.1f}" for k, v in gemms.items())
          + f" GFLOP/s; machine peak = the best, {best} {peak:.1f} GFLOP/s")
    flops = {r["model"]: r["flops_per_step"] for r in results if "flops_per_step" in r}
    for model in dict.fromkeys(r["model"] for r in results if r["model"] != "fid"):
        rs = [r for r in results if r["model"] == model]
        cfg = rs[0]["config"]
        f = flops.get(model)
        fi = next((r["flops_idiomatic"] for r in rs if "flops_idiomatic" in r), None)
        print(f"\n== {model}: input {tuple(cfg['image_shape'])}, batch {cfg['batch_size']}, "
              f"{args.repeats} x {rs[0]['steps']} steps after {args.warmup} warm-up")
        if f:
            print(f"FLOPs per step (counted on torch): ours {f / 1e9:.3f} G, plain PyTorch loop "
                  f"{fi / 1e9:.3f} G; TF uses ours' count (its graph may prune work torch's eager "
                  "autograd does, so its GFLOP/s is an upper estimate)")
        print(f"{'backend':7s} {'loop':22s} {'time per step: median [min - max]':44s} {'img/s':>8s} "
              f"{'ours/idiomatic':>14s} {'GFLOP/s':>8s} {'% peak':>7s}")
        for r in rs:
            b = cfg["batch_size"]
            idiom_name = "plain PyTorch loop" if r["backend"] == "torch" else "Keras fit(train_step)"
            for key, name in (("train_ours", "ours (train_step)"), ("train_idiomatic", idiom_name)):
                t = {k: v / r["steps"] if k != "spread_pct" and k != "times" else v
                     for k, v in r[key].items()}
                ratio = r["train_ours"]["median"] / r["train_idiomatic"]["median"]
                gf = f / t["median"] / 1e9 if f and key == "train_ours" else None
                print(f"{r['backend']:7s} {name:22s} {fmt_time(t):44s} {b / t['median']:8.1f} "
                      f"{(f'{ratio:.2f}' if key == 'train_ours' else ''):>14s} "
                      f"{(f'{gf:.1f}' if gf else ''):>8s} {(f'{100 * gf / peak:.1f}%' if gf else ''):>7s}")
        what = {"vae": "decoder", "ddpm": "U-Net call = one sampler step"}.get(model, "generator")
        print(f"sampling step (one {what} forward of the batch, inference mode):")
        for r in rs:
            ratio = r["sample_ours"]["median"] / r["sample_idiomatic"]["median"]
            print(f"{r['backend']:7s} ours (NumPy in/out)    {fmt_time(r['sample_ours'])}  "
                  f"stock net {fmt_time(r['sample_idiomatic'])}  ours/stock {ratio:.2f}")
    fids = [r for r in results if r["model"] == "fid"]
    if fids:
        n = fids[0]["fid_batch"]
        print(f"\n== FID feature extraction: {n} images {tuple(args.shape or (28, 28, 1))} -> 299x299x3, one batch "
              "(Inception-v3 with RANDOM weights: speed only)")
        for r in fids:
            line = f"{r['backend']:7s} ours (FID Inception)  {fmt_time(r['fid_ours'], 1e3 / n, 'ms/img')}"
            if "fid_idiomatic" in r:
                ratio = r["fid_ours"]["median"] / r["fid_idiomatic"]["median"]
                line += (f"  keras.applications.InceptionV3 {fmt_time(r['fid_idiomatic'], 1e3 / n, 'ms/img')}"
                         f"  ours/keras {ratio:.2f}")
            print(line)
        print(f"numpy   pixels-pca64 stand-in (FID+KID of {pca['n']} vs {pca['n']} images) "
              f"{fmt_time(pca['time'], 1.0, 's')}")
    busy = [r for r in results if r.get("load", {}).get("quiet") is False]
    print("\nload: other processes used " + ", ".join(
        f"{r['model']}/{r['backend']} {r['load']['other_cores']:.2f}" for r in results
        if r.get("load", {}).get("other_cores") is not None) + " cores on average during each child; "
        + ("quiet (all under 0.25)" if not busy else "NOT QUIET: " + ", ".join(
            f"{r['model']}/{r['backend']}" for r in busy) + " timed on a busy machine, rerun them"))
    print(f"\nmachine: {os.cpu_count()} cores; threads per child: "
          + "; ".join(f"{b} {r['threads']}" for b, r in first.items())
          + "; versions: " + "; ".join(f"{r['versions']}" for r in first.values()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="dcgan,wgan-gp,vae,ddpm,stylegan2")
    p.add_argument("--backends", default="tf,torch")
    p.add_argument("--shape", type=int, nargs=3, default=None,
                   help="H W C (default 28 28 1; stylegan2 32 32 3)")
    p.add_argument("--batch-size", type=int, default=None, help="default: each model's config")
    p.add_argument("--steps", type=int, default=10, help="steps per timed run (WGAN-GP: critic "
                   "steps), rounded up to whole update cycles (StyleGAN2: 16)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2, help="untimed runs of --steps steps")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    p.add_argument("--fid-batch", type=int, default=16)
    p.add_argument("--no-fid", action="store_true")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args)))
        return
    from gan_diffusion.compare.quality import score_samples
    backends = args.backends.split(",")
    jobs = [(m, b) for m in args.models.split(",") for b in sorted(backends, key=lambda b: b != "torch")]
    jobs += [] if args.no_fid else [("fid", b) for b in backends]
    start = time.perf_counter()
    results = []
    for model, backend in jobs:
        print(f"running {model} / {backend} ...", flush=True)
        r = run_child(__spec__.name, ["--child", model, backend] + sys.argv[1:], args.threads or os.cpu_count())
        if r is not None:
            results.append(r)
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (2, 500, *(args.shape or (28, 28, 1))), dtype=np.uint8)
    pca = {"n": 500, "time": timed(lambda: score_samples(imgs[0], imgs[1], extractor="pixels-pca64"), 0, 3)}
    report(results, pca, args)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
