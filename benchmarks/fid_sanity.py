"""Print the FID sanity figures (real vs real, noise, blur, a class removed) as a markdown table.

Uses gan_diffusion.metrics.sanity.fid_sanity, the function tests/metrics/test_fid_sanity.py
asserts on.

    python -m benchmarks.fid_sanity --data-dir DATA [--extractor lenet-mnist] [--backend tf]
    python -m benchmarks.fid_sanity --data-dir DATA --extractor cnn-cifar10 --dataset cifar10
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    from gan_diffusion.data import load_dataset
    from gan_diffusion.metrics.sanity import fid_sanity

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--extractor", default="lenet-mnist")
    p.add_argument("--backend", default=None)
    p.add_argument("--n-reference", type=int, default=10000, help="training images for the reference")
    p.add_argument("--n", type=int, default=2000, help="test images per compared sample")
    p.add_argument("--seeds", type=int, default=1, help="repeat with seeds 0..S-1")
    args = p.parse_args()

    train = load_dataset(args.dataset, "train", data_dir=args.data_dir, limit=args.n_reference)
    test = load_dataset(args.dataset, "test", data_dir=args.data_dir)
    runs = []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        runs.append(fid_sanity(train.images, test.images, test.labels, n=args.n,
                               extractor=args.extractor, backend=args.backend, seed=seed))
        print(f"seed {seed}: {time.perf_counter() - t0:.1f} s")
    first = runs[0]
    print(f"\n{first['name']}, extractor {first['extractor']}, backend {first['backend']}; reference "
          f"{first['n_reference']} {args.dataset} train images, samples of {first['n']} test images; "
          f"seeds 0..{args.seeds - 1}\n")
    print("| compared sample | " + " | ".join(f"seed {r_i}" for r_i in range(args.seeds)) + " |")
    print("|---|" + "---|" * args.seeds)

    def row(label, values):
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in values) + " |")

    row("real test images (real vs real)", [r["real"] for r in runs])
    for i, (sigma, _) in enumerate(first["noise"]):
        row(f"+ Gaussian noise, std {sigma:g}/255", [r["noise"][i][1] for r in runs])
    for i, (sigma, _) in enumerate(first["blur"]):
        row(f"Gaussian blur, std {sigma:g} px", [r["blur"][i][1] for r in runs])
    row("another full test sample", [r["full"] for r in runs])
    row(f"test sample without class {first['drop_class']}", [r["dropped"] for r in runs])


if __name__ == "__main__":
    main()
