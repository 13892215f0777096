"""Print TF <-> PyTorch parity errors (max abs) in both directions, for DCGAN or WGAN-GP.

The same checks as the parity tests, printed as numbers instead of asserted:
forward outputs (eval and training mode, BatchNorm statistics), then `--steps` training
steps, each from the same state (weights + Adam state) on the same batch and noise:
loss and weight differences, gradient difference relative to the gradient's scale, and
the count of ill-conditioned weights (Adam first moment < 1e-6 in both) that differ by
more than 1e-4.

    python benchmarks/parity_report.py [--model dcgan|wgan-gp] [--features 16] [--steps 2]
        [--dtype float32|float64] [--optimizer adam|sgd|rmsprop|adagrad] [--conditional]

For WGAN-GP every step is a critic step and a generator step (n_critic = 1).
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    import numpy as np

    import gan_diffusion
    from gan_diffusion.parity import forward_errors, one_step, perturb_native, transfer

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--features", type=int, default=16, help="g_features = d_features")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--model", default="dcgan", choices=["dcgan", "wgan-gp"])
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--optimizer", default=None, help="default: the model's (Adam)")
    p.add_argument("--conditional", action="store_true", help="10 classes, random labels")
    args = p.parse_args()
    kw = dict(batch_size=args.batch, dtype=args.dtype, d_features=args.features)
    kw.update(g_features=args.features) if args.model == "dcgan" else kw.update(n_critic=1)
    if args.optimizer:
        kw["optimizer"] = args.optimizer
    if args.conditional:
        kw["num_classes"] = 10
    print(f"{args.model}, {args.dtype}, optimizer {args.optimizer or 'adam'}, "
          f"{'conditional' if args.conditional else 'unconditional'}")
    print(f"{'direction':12s} {'shape':12s} {'G eval':>9s} {'G train':>9s} {'D eval':>9s} "
          f"{'D train':>9s} {'BN stats':>9s} | step {'losses':>9s} {'weights':>9s} {'grad rel':>9s}"
          f" {'ill-cond.':>12s}  (batch {args.batch})")
    for src, dst in (("tf", "torch"), ("torch", "tf")):
        for shape in ((28, 28, 1), (32, 32, 1), (32, 32, 3), (64, 64, 3)):
            if args.model == "wgan-gp" and shape == (32, 32, 3):
                continue
            a = gan_diffusion.get_backend(src).build(args.model, image_shape=shape, **kw)
            perturb_native(a, seed=11)
            b = transfer(a, dst)
            rng = np.random.default_rng(0)
            batches = [(rng.uniform(-1, 1, (args.batch, *shape)).astype(np.float32),
                        rng.standard_normal((args.batch, 100)).astype(np.float32))
                       for _ in range(args.steps + 1)]
            y = rng.integers(0, 10, args.batch) if args.conditional else None
            extra = dict(eps=rng.random(args.batch), z_g=batches[0][1]) if args.model == "wgan-gp" else {}
            fwd = forward_errors(a, b, batches[0][1], batches[0][0], y)
            head = f"{src + '->' + dst:12s} {str(shape):12s} " + " ".join(
                f"{fwd[k]:9.1e}" for k in ("generator/eval", "generator/train",
                                           "discriminator/eval", "discriminator/train",
                                           "bn_statistics"))
            for t, (x, z) in enumerate(batches[1:], start=1):
                r = one_step(a, b, x, z, labels=y, **extra)
                ill = f"{r['ill_conditioned']}/{r['total']}"
                print(f"{head if t == 1 else ' ' * len(head)} | {t:4d} {r['losses']:9.1e} "
                      f"{r['weights']:9.1e} {r['gradients']:9.1e} {ill:>12s}"
                      + (f" (max {r['ill_conditioned_max']:.1e})" if r["ill_conditioned"] else "")
                      + (f" UNEXPLAINED {r['unexplained']}" if r["unexplained"] else ""), flush=True)


if __name__ == "__main__":
    main()
