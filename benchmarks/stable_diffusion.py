"""Stable Diffusion v1 per backend: one guided U-Net denoising step (batch 1, so the U-Net runs
on 2 latents), text encoding (prompt + negative prompt), VAE decoding (1 image), model build
time and peak RSS, at each --sizes, for keras-cv with and without jit_compile (XLA) and torch
eager and with torch.compile. Full-size `random:0` weights unless --weights names a checkpoint
(the timing does not depend on the values).

Each variant runs in its own process (one framework per process, threads pinned, its own
peak RSS), one after the other, so the ratios printed come from one run of this script on one
machine; the machine's load average before and after each child is printed with it (timings
taken while other processes use the cores are not comparable: docs/benchmarks.md).

    python -m benchmarks.stable_diffusion                         # 256 and 512 px, 2 threads
    python -m benchmarks.stable_diffusion --sizes 512 --dtype float16 --device cuda --variants torch
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

from benchmarks._bench import run_child, timed

VARIANTS = {"tf": ("tf", False), "tf-xla": ("tf", True), "torch": ("torch", False),
            "torch-compile": ("torch", True)}


def measure(args: argparse.Namespace) -> dict:
    import numpy as np

    import gan_diffusion
    from gan_diffusion.sd.pipeline import tokenize

    backend, jit = VARIANTS[args.child]
    be = gan_diffusion.get_backend(backend)
    threads = be.set_threads(args.threads)
    t0 = time.perf_counter()
    model = be.build("sd-v1", weights=args.weights, dtype=args.dtype, jit_compile=jit,
                     device=args.device if backend == "torch" else "cpu")
    build = time.perf_counter() - t0
    comps = model.components
    ids, _ = tokenize(model.tokenizer, ["a photograph of an astronaut riding a horse", ""])
    out = {"variant": args.child, "backend": backend, "jit_compile": jit, "threads": threads,
           "versions": be.versions(), "dtype": args.dtype, "device": args.device,
           "build_s": build, "sizes": {}}
    text = timed(lambda: comps.encode_text(ids), args.warmup, args.repeats)
    out["text_ms"] = 1e3 * text["median"]
    context = comps.encode_text(ids)
    rng = np.random.default_rng(0)
    for size in args.sizes:
        lat = rng.standard_normal((2, size // 8, size // 8, 4), dtype=np.float32)
        t = np.full(2, 500, np.int64)
        unet = timed(lambda: comps.unet(lat, t, context), args.warmup, args.repeats)
        dec = timed(lambda: comps.vae_decode(lat[:1]), args.warmup, max(1, args.repeats // 2))
        out["sizes"][str(size)] = {"unet_step_ms": 1e3 * unet["median"],
                                   "unet_spread_pct": unet["spread_pct"],
                                   "decode_ms": 1e3 * dec["median"]}
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"of {', '.join(VARIANTS)}")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--weights", default="random:0")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--device", default="cpu", help="torch: cpu or cuda")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args)))
        return
    argv = [a for a in sys.argv[1:]]
    results = []
    print(f"Stable Diffusion v1 ({args.weights}, {args.dtype}, {args.device}), threads "
          f"{args.threads}, cores {os.cpu_count()}, {args.repeats} timed calls after {args.warmup} warm-up")
    for name in args.variants.split(","):
        load = os.getloadavg()[0]
        r = run_child("benchmarks.stable_diffusion", [*argv, "--child", name], threads=args.threads)
        if r is None:
            continue
        r["load_before"], r["load_after"] = load, os.getloadavg()[0]
        results.append(r)
    if not results:
        return
    sizes = [str(s) for s in args.sizes]
    head = ["variant", "build s", "text ms"] + [f"{s}px {k}" for s in sizes for k in ("U-Net step ms", "decode ms")]
    print("\n| " + " | ".join(head + ["peak RSS GB", "load before/after"]) + " |")
    print("|" + "---|" * (len(head) + 2))
    for r in results:
        cells = [r["variant"], f"{r['build_s']:.1f}", f"{r['text_ms']:.0f}"]
        for s in sizes:
            cells += [f"{r['sizes'][s]['unet_step_ms']:.0f}", f"{r['sizes'][s]['decode_ms']:.0f}"]
        cells += [f"{r['peak_rss_gb']:.1f}", f"{r['load_before']:.1f}/{r['load_after']:.1f}"]
        print("| " + " | ".join(cells) + " |")
    by = {r["variant"]: r for r in results}
    for a, b in (("tf-xla", "tf"), ("torch-compile", "torch"), ("tf", "torch"), ("tf-xla", "torch-compile")):
        if a in by and b in by:
            ratios = ", ".join(f"{s}px U-Net {by[a]['sizes'][s]['unet_step_ms'] / by[b]['sizes'][s]['unet_step_ms']:.2f}"
                               for s in sizes)
            print(f"{a} / {b}: {ratios}, text {by[a]['text_ms'] / by[b]['text_ms']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
