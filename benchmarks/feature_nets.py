"""Accuracy, TF-vs-torch agreement and speed of the shipped offline feature networks.

For each network: load the shipped weights (sha256-verified) in torch and in TF, classify the
real test set in both, compare features and logits (max |tf - torch| / max |torch| over the
whole test set), then move weights torch -> TF and TF -> torch (random weights too) and compare.

    python -m benchmarks.feature_nets --data-dir DATA [--nets lenet-mnist cnn-cifar10]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def rel_err(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b)))


def main() -> None:
    from gan_diffusion.data import load_dataset
    from gan_diffusion.models import classifiers as spec_mod
    from gan_diffusion.tf_backend import classifiers as tfc
    from gan_diffusion.torch_backend import classifiers as ptc

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--nets", nargs="+", default=list(spec_mod.CLASSIFIERS))
    args = p.parse_args()
    for name in args.nets:
        spec = spec_mod.get_classifier(name)
        t0 = time.perf_counter()
        test = load_dataset(spec.dataset, "test", data_dir=args.data_dir)
        load_s = time.perf_counter() - t0
        nets = {"torch": ptc.build(name), "tf": tfc.build(name)}
        out = {}
        for be, clf in nets.items():
            clf.features_and_logits(test.images[:10])                  # warm-up / tracing
            t0 = time.perf_counter()
            f, l = clf.features_and_logits(test.images)
            out[be] = (f, l, time.perf_counter() - t0)
        n_params = sum(int(np.prod(s)) for s in spec.weight_shapes().values())
        print(f"\n{name} ({spec.label}): {n_params} parameters, features {spec.feature_dim}, "
              f"extractor id {nets['torch'].extractor_id}; {len(test)} test images loaded in "
              f"{load_s:.1f} s")
        for be, (f, l, dt) in out.items():
            acc = float((l.argmax(1) == test.labels).mean())
            print(f"  {be:5s} test accuracy {acc:.4f}  ({dt:.1f} s, {len(test) / dt:.0f} img/s)")
        (f_t, l_t, _), (f_k, l_k, _) = out["torch"], out["tf"]
        flips = int((l_t.argmax(1) != l_k.argmax(1)).sum())
        print(f"  shipped weights, tf vs torch on the test set: features {rel_err(f_k, f_t):.2e}, "
              f"logits {rel_err(l_k, l_t):.2e} relative; {flips} predictions differ")
        x = test.images[:256]
        for src, dst, weights in (("torch", "tf", "shipped"), ("tf", "torch", "shipped"),
                                  ("torch", "tf", "random"), ("tf", "torch", "random")):
            a, b = nets[src], nets[dst]
            if weights == "random":
                a.init_random(7)
            else:
                a.load_weights()
            b.set_weights(a.get_weights())
            (fa, la), (fb, lb) = a.features_and_logits(x), b.features_and_logits(x)
            exact = all(np.array_equal(v, b.get_weights()[k]) for k, v in a.get_weights().items())
            print(f"  {weights:7s} {src:5s} -> {dst:5s}: weights exact {exact}, features "
                  f"{rel_err(fb, fa):.2e}, logits {rel_err(lb, la):.2e} relative (256 images)")


if __name__ == "__main__":
    main()
