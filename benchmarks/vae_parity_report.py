"""Print VAE TF <-> PyTorch parity errors (max abs) in both directions.

The checks of tests/test_parity_vae.py, printed instead of asserted, for 28x28x1, 32x32x3 and
64x64x3: encoder outputs (z_mean, z_log_var), decoder outputs (sigmoid means), the loss
terms (neg. ELBO, reconstruction, KL: nats per image) and `--steps` training steps, each from
the same state (weights + optimizer state) with the same batch and eps: loss and weight
differences and the gradient difference relative to each tensor's largest gradient.

    python benchmarks/vae_parity_report.py [--dtype float32|float64] [--conditional]
        [--likelihood bernoulli|gaussian] [--features 32] [--steps 2] [--batch 8]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    import numpy as np

    import gan_diffusion
    from gan_diffusion.parity import one_step, perturb_native, transfer

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--features", type=int, default=32, help="first conv's channels (Keras: 32)")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--likelihood", default="bernoulli", choices=["bernoulli", "gaussian"])
    p.add_argument("--conditional", action="store_true", help="10 classes, random labels")
    args = p.parse_args()
    kw = dict(features=args.features, batch_size=args.batch, dtype=args.dtype,
              likelihood=args.likelihood, num_classes=10 if args.conditional else 0)
    print(f"vae, {args.dtype}, {args.likelihood}, features {args.features}, "
          f"{'conditional' if args.conditional else 'unconditional'}, batch {args.batch}")
    print(f"{'direction':12s} {'shape':12s} {'z_mean':>9s} {'z_logvar':>9s} {'decoder':>9s} "
          f"{'neg_elbo':>9s} {'recon':>9s} {'kl':>9s} | step {'losses':>9s} {'weights':>9s} "
          f"{'grad rel':>9s} {'unexpl.':>7s}")
    for src, dst in (("tf", "torch"), ("torch", "tf")):
        for shape in ((28, 28, 1), (32, 32, 3), (64, 64, 3)):
            a = gan_diffusion.get_backend(src).build("vae", image_shape=shape, **kw)
            perturb_native(a, seed=11)
            b = transfer(a, dst)
            rng = np.random.default_rng(0)
            x = rng.integers(0, 256, (args.batch, *shape)).astype(np.uint8)
            eps = rng.standard_normal((args.batch, a.config.latent_dim))
            y = rng.integers(0, 10, args.batch) if args.conditional else None
            (ma, va), (mb, vb) = a.encode(x, y), b.encode(x, y)
            dec = np.abs(a.decode(eps, y) - b.decode(eps, y)).max()
            ta, tb = a.loss_terms(x, y, eps=eps), b.loss_terms(x, y, eps=eps)
            row = [np.abs(ma - mb).max(), np.abs(va - vb).max(), dec,
                   *(abs(ta[k] - tb[k]) for k in ("neg_elbo", "recon", "kl"))]
            worst = {"losses": 0.0, "weights": 0.0, "gradients": 0.0, "unexplained": 0}
            for step in range(args.steps):
                xs = rng.integers(0, 256, (args.batch, *shape)).astype(np.uint8)
                r = one_step(a, b, xs, None, labels=y, eps=rng.standard_normal(eps.shape))
                worst = {k: max(worst[k], r[k]) for k in worst}
            print(f"{src + '->' + dst:12s} {str(shape):12s} "
                  + " ".join(f"{v:9.1e}" for v in row)
                  + f" |      {worst['losses']:9.1e} {worst['weights']:9.1e} "
                    f"{worst['gradients']:9.1e} {worst['unexplained']:7d}")


if __name__ == "__main__":
    main()
