"""Print TF <-> PyTorch parity errors (max abs) in both directions, per model; for DDPM also
our schedules and samplers against diffusers.

The checks of the parity tests (tests/backends/test_parity_*.py, and for DDPM
tests/backends/test_diffusion_core.py and tests/backends/test_diffusers_adapter.py), printed as
numbers instead of asserted. Each model is built on one backend, its weights perturbed
(perturb_native), transferred to the other backend, and the two compared:

  dcgan, wgan-gp  forward outputs (eval and training mode, BatchNorm statistics), then `--steps`
                  training steps, each from the same state (weights + optimizer state) on the
                  same batch and noise: loss and weight differences, gradient difference
                  relative to the gradient's scale, and the count of ill-conditioned weights
                  (Adam first moment < 1e-6 in both) that differ by more than 1e-4. For WGAN-GP
                  every step is a critic step and a generator step (n_critic = 1).
                  Shapes 28x28x1, 32x32x1, 32x32x3 (DCGAN only), 64x64x3.
  vae             encoder outputs (z_mean, z_log_var), decoder outputs (sigmoid means), the
                  loss terms (neg. ELBO, reconstruction, KL: nats per image) and the worst of
                  `--steps` training steps (same state, batch and eps): loss and weight
                  differences, gradient difference relative to each tensor's largest gradient.
                  Shapes 28x28x1, 32x32x3, 64x64x3.
  ddpm            against diffusers: schedule coefficients, timesteps, DDPM/DDIM steps; then
                  (unless --skip-parity) TF <-> torch: U-Net output, one training step (loss,
                  weights, EMA, gradient relative), 10-step DDIM with guidance. Conditional
                  (10 classes), the default U-Net (base 32) for 28x28x1 (float32 and float64),
                  multipliers (1, 2, 2, 2) for 32x32x3 and 64x64x3.

    python -m benchmarks.parity_report [--model dcgan|wgan-gp|vae|ddpm|all] [--steps 2]
        [--batch 8] [--features N] [--dtype float32|float64] [--conditional]
        [--optimizer adam|sgd|rmsprop|adagrad] [--likelihood bernoulli|gaussian] [--skip-parity]

--features: g_features = d_features for the GANs (default 16), the first conv's channels for
the VAE (default 32). --optimizer applies to the GANs, --likelihood to the VAE; --dtype and
--conditional to the GANs and the VAE (DDPM reports both dtypes, always conditional);
--skip-parity to DDPM. Run from the repository root; HF_HUB_OFFLINE=1 is set by default.
"""
from __future__ import annotations

import argparse
import itertools
import os
from collections.abc import Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODELS = ("dcgan", "wgan-gp", "vae", "ddpm")
DIRECTIONS = (("tf", "torch"), ("torch", "tf"))


def transferred(model: str, shapes, scale: float | None = None, **kw) -> Iterator[tuple]:
    """For each direction and (shape, extra build kwargs): build `model` on the source backend,
    perturb its weights (seed 11), transfer it to the other; yield (src, dst, shape, a, b)."""
    import gan_diffusion
    from gan_diffusion.parity import perturb_native, transfer

    for (src, dst), (shape, extra) in itertools.product(DIRECTIONS, shapes):
        a = gan_diffusion.get_backend(src).build(model, image_shape=shape, **kw, **extra)
        perturb_native(a, seed=11, **({} if scale is None else {"scale": scale}))
        yield src, dst, shape, a, transfer(a, dst)


def errs(values) -> str:
    return " ".join(f"{v:9.1e}" for v in values)


def conditioning(args: argparse.Namespace) -> str:
    return "conditional" if args.conditional else "unconditional"


def gan_report(model: str, args: argparse.Namespace) -> None:
    import numpy as np

    from gan_diffusion.parity import forward_errors, one_step

    features = args.features or 16
    kw = dict(batch_size=args.batch, dtype=args.dtype, d_features=features)
    kw.update(g_features=features) if model == "dcgan" else kw.update(n_critic=1)
    if args.optimizer:
        kw["optimizer"] = args.optimizer
    if args.conditional:
        kw["num_classes"] = 10
    print(f"{model}, {args.dtype}, optimizer {args.optimizer or 'adam'}, {conditioning(args)}")
    print(f"{'direction':12s} {'shape':12s} {'G eval':>9s} {'G train':>9s} {'D eval':>9s} "
          f"{'D train':>9s} {'BN stats':>9s} | step {'losses':>9s} {'weights':>9s} {'grad rel':>9s}"
          f" {'ill-cond.':>12s}  (batch {args.batch})")
    shapes = [(s, {}) for s in ((28, 28, 1), (32, 32, 1), (32, 32, 3), (64, 64, 3))
              if not (model == "wgan-gp" and s == (32, 32, 3))]
    for src, dst, shape, a, b in transferred(model, shapes, **kw):
        rng = np.random.default_rng(0)
        batches = [(rng.uniform(-1, 1, (args.batch, *shape)).astype(np.float32),
                    rng.standard_normal((args.batch, 100)).astype(np.float32))
                   for _ in range(args.steps + 1)]
        y = rng.integers(0, 10, args.batch) if args.conditional else None
        extra = dict(eps=rng.random(args.batch), z_g=batches[0][1]) if model == "wgan-gp" else {}
        fwd = forward_errors(a, b, batches[0][1], batches[0][0], y)
        head = f"{src + '->' + dst:12s} {str(shape):12s} " + errs(
            fwd[k] for k in ("generator/eval", "generator/train", "discriminator/eval",
                             "discriminator/train", "bn_statistics"))
        for t, (x, z) in enumerate(batches[1:], start=1):
            r = one_step(a, b, x, z, labels=y, **extra)
            ill = f"{r['ill_conditioned']}/{r['total']}"
            print(f"{head if t == 1 else ' ' * len(head)} | {t:4d} "
                  + errs((r['losses'], r['weights'], r['gradients'])) + f" {ill:>12s}"
                  + (f" (max {r['ill_conditioned_max']:.1e})" if r["ill_conditioned"] else "")
                  + (f" UNEXPLAINED {r['unexplained']}" if r["unexplained"] else ""), flush=True)


def vae_report(args: argparse.Namespace) -> None:
    import numpy as np

    from gan_diffusion.parity import one_step

    features = args.features or 32
    kw = dict(features=features, batch_size=args.batch, dtype=args.dtype,
              likelihood=args.likelihood, num_classes=10 if args.conditional else 0)
    print(f"vae, {args.dtype}, {args.likelihood}, features {features}, {conditioning(args)}, "
          f"batch {args.batch}")
    print(f"{'direction':12s} {'shape':12s} {'z_mean':>9s} {'z_logvar':>9s} {'decoder':>9s} "
          f"{'neg_elbo':>9s} {'recon':>9s} {'kl':>9s} | step {'losses':>9s} {'weights':>9s} "
          f"{'grad rel':>9s} {'unexpl.':>7s}")
    shapes = [(s, {}) for s in ((28, 28, 1), (32, 32, 3), (64, 64, 3))]
    for src, dst, shape, a, b in transferred("vae", shapes, **kw):
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
        for _ in range(args.steps):
            xs = rng.integers(0, 256, (args.batch, *shape)).astype(np.uint8)
            r = one_step(a, b, xs, None, labels=y, eps=rng.standard_normal(eps.shape))
            worst = {k: max(worst[k], r[k]) for k in worst}
        print(f"{src + '->' + dst:12s} {str(shape):12s} {errs(row)} |      "
              f"{errs((worst['losses'], worst['weights'], worst['gradients']))} "
              f"{worst['unexplained']:7d}", flush=True)


def diffusers_agreement() -> None:
    import numpy as np
    import torch
    from diffusers import DDIMScheduler, DDPMScheduler

    from gan_diffusion.schedulers import DDIMScheduler as OurDDIM
    from gan_diffusion.schedulers import DDPMScheduler as OurDDPM
    from gan_diffusion.schedulers import NoiseSchedule, inference_timesteps, make_schedule

    names = {"linear": "linear", "cosine": "squaredcos_cap_v2"}
    print("== against diffusers 0.42.1 ==")
    for sched in names:
        ours, d = make_schedule(sched), DDPMScheduler(beta_schedule=names[sched])
        var = torch.stack([d._get_variance(t) for t in range(1, 1000)]).numpy()
        print(f"{sched:7s} coefficients vs diffusers (float32): betas {np.abs(ours.betas - d.betas.numpy()).max():.1e}"
              f"  alphas_cumprod {np.abs(ours.alphas_cumprod - d.alphas_cumprod.numpy()).max():.1e}"
              f"  posterior variance {np.abs(ours.posterior_variance[1:] - var).max():.1e}")
    same = all(np.array_equal(inference_timesteps(1000, n, sp), (lambda s: (s.set_timesteps(n), s.timesteps.numpy())[1])(
        cls(timestep_spacing=sp))) for cls in (DDPMScheduler, DDIMScheduler)
        for sp in ("leading", "trailing", "linspace") for n in (1, 7, 10, 50, 333, 1000))
    print(f"timesteps, 3 spacings x 6 step counts x 2 schedulers: {'identical' if same else 'DIFFERENT'}")

    def ref(cls, sched, steps, **kw):
        d = cls(beta_schedule=names[sched], **kw)
        d.betas = d.betas.double()
        d.alphas = 1.0 - d.betas
        d.alphas_cumprod = torch.cumprod(d.alphas, 0)
        if cls is DDIMScheduler:
            d.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
        d.set_timesteps(steps)
        return d, NoiseSchedule(sched, d.betas.numpy())

    rng = np.random.default_rng(0)

    def pair(dtype=np.float64):
        """(x, eps): a random sample (scale 1.5 in float64) and a random noise prediction."""
        x, e = rng.standard_normal((2, 1, 4, 4)), rng.standard_normal((2, 1, 4, 4))
        return (x * 1.5, e) if dtype == np.float64 else (x.astype(dtype), e.astype(dtype))

    def seeded(t, **kw):
        return torch.Generator().manual_seed(t), torch.randn((2, 1, 4, 4), generator=torch.Generator().manual_seed(t), **kw)

    worst = {"ddpm": 0.0, "ddim": 0.0}
    for sched, vt, clip, steps in itertools.product(names, ("fixed_small", "fixed_large"), (True, False), (1000, 50)):
        d, s = ref(DDPMScheduler, sched, steps, variance_type=vt, clip_sample=clip)
        ours = OurDDPM(s, vt, clip_sample=clip)
        ours.set_timesteps(steps)
        for t in map(int, ours.timesteps):
            x, e = pair()
            gen, z = seeded(t, dtype=torch.float64)
            r = d.step(torch.from_numpy(e), t, torch.from_numpy(x), generator=gen)
            o = ours.step(e, t, x, variance_noise=z.numpy() if t > 0 else None)
            worst["ddpm"] = max(worst["ddpm"], np.abs(o.prev_sample - r.prev_sample.numpy()).max())
    for sched, eta, clip, spacing in itertools.product(names, (0.0, 0.5, 1.0), (True, False), ("leading", "trailing")):
        d, s = ref(DDIMScheduler, sched, 50, clip_sample=clip, timestep_spacing=spacing)
        ours = OurDDIM(s, eta, clip_sample=clip, timestep_spacing=spacing)
        ours.set_timesteps(50)
        for t in map(int, ours.timesteps):
            x, e = pair()
            z = rng.standard_normal(x.shape)
            r = d.step(torch.from_numpy(e), t, torch.from_numpy(x), eta=eta,
                       variance_noise=torch.from_numpy(z) if eta else None)
            o = ours.step(e, t, x, variance_noise=z if eta else None)
            worst["ddim"] = max(worst["ddim"], np.abs(o.prev_sample - r.prev_sample.numpy()).max())
    print(f"step, every visited t, same float64 betas: DDPM (2 schedules x 2 variances x clip on/off x "
          f"1000/50 steps) {worst['ddpm']:.1e}; DDIM (2 x eta 0/0.5/1 x clip x leading/trailing) {worst['ddim']:.1e}")

    def stock_deviation(d, ours, noisy: bool) -> tuple[float, int]:
        """Largest error relative to max(1, |x|) over every t, and where: stock float32 diffusers
        against ours, float32 images, no clip."""
        dev, where = 0.0, 0
        for t in range(1000):
            x, e = pair(np.float32)
            gen, z = seeded(t) if noisy else (None, None)
            r = d.step(torch.from_numpy(e), t, torch.from_numpy(x),
                       **({"generator": gen} if noisy else {})).prev_sample.numpy()
            o = ours.step(e, t, x, **({"variance_noise": z.numpy()} if noisy else {})).prev_sample
            dev, where = max((dev, where), (np.abs(o - r).max() / max(1.0, np.abs(r).max()), t))
        return dev, where

    for sched in names:
        d = DDIMScheduler(beta_schedule=names[sched], clip_sample=False)
        d.set_timesteps(1000)
        dev, where = stock_deviation(d, OurDDIM(make_schedule(sched), clip_sample=False), noisy=False)
        dev2, where2 = stock_deviation(DDPMScheduler(beta_schedule=names[sched], clip_sample=False),
                                       OurDDPM(make_schedule(sched), clip_sample=False), noisy=True)
        print(f"{sched:7s} stock float32 diffusers vs ours (float32 images, every t, no clip), relative to "
              f"max(1, |x|): DDIM {dev:.1e} (at t = {where}), DDPM {dev2:.1e} (at t = {where2})")


def ddpm_parity(batch: int) -> None:
    import numpy as np

    from gan_diffusion.optim import recovered_gradient
    from gan_diffusion.parity import max_abs_diff, one_step

    print("\n== TF <-> PyTorch (max abs; grad rel: relative to each tensor's largest gradient) ==")
    shapes = [((28, 28, 1), {}), ((32, 32, 3), dict(channel_mults=(1, 2, 2, 2))),
              ((64, 64, 3), dict(channel_mults=(1, 2, 2, 2), attention_resolutions=(8,))),
              ((28, 28, 1), dict(dtype="float64"))]

    def net(s):
        return {k[5:]: v for k, v in s.items() if k.startswith("unet/")}

    for src, dst, shape, a, b in transferred("ddpm", shapes, scale=0.02, batch_size=batch, num_classes=10):
        rng = np.random.default_rng(0)
        x = rng.uniform(-1, 1, (batch, *shape)).astype(a.config.dtype)
        z = rng.standard_normal((batch, *shape)).astype(a.config.dtype)
        t, y = rng.integers(0, 1000, batch), rng.integers(0, 10, batch)
        fwd = max(np.abs(a.predict_noise(x, t, y, ema) - b.predict_noise(x, t, y, ema)).max() for ema in (False, True))
        x_T = a.initial_noise(batch, 1)
        ddim = np.abs(a.denoise(x_T, y, 1, steps=10, sampler="ddim", guidance=2.0)
                      - b.denoise(x_T, y, 1, steps=10, sampler="ddim", guidance=2.0)).max()
        state0, before = a.optimizer_state(), a.get_weights()
        r = one_step(a, b, x, z, labels=y, t=t, drop=rng.uniform(size=batch) < 0.1)
        wa, wb, sa, sb = a.get_weights(), b.get_weights(), a.optimizer_state(), b.optimizer_state()
        grad = 0.0
        for k in (k for k in wa if k.startswith("unet/") and not k.endswith(".k/bias")):
            ga = recovered_gradient(a.config, net(state0), net(sa), before[k], wa[k], k[5:])
            gb = recovered_gradient(a.config, net(state0), net(sb), before[k], wb[k], k[5:])
            grad = max(grad, np.abs(ga - gb).max() / np.abs(ga).max())
        ema = max_abs_diff({k: v for k, v in wa.items() if k.startswith("ema/")},
                           {k: v for k, v in wb.items() if k.startswith("ema/")})[0]
        print(f"{src:>5s} -> {dst:5s} {str(shape):12s} {a.config.dtype} U-Net {fwd:.1e}  step: loss {r['losses']:.1e} "
              f"weights {r['weights']:.1e} EMA {ema:.1e} grad rel {grad:.1e} ill-cond {r['ill_conditioned']}"
              f"/{r['total']}  10-step DDIM (w = 2) {ddim:.1e}", flush=True)


def ddpm_report(args: argparse.Namespace) -> None:
    diffusers_agreement()
    if not args.skip_parity:
        ddpm_parity(args.batch)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="dcgan", choices=[*MODELS, "all"])
    p.add_argument("--steps", type=int, default=2, help="training steps compared (GANs, VAE)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--features", type=int, default=None,
                   help="GANs: g_features = d_features (default 16); VAE: first conv's channels (32)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="GANs, VAE")
    p.add_argument("--conditional", action="store_true", help="GANs, VAE: 10 classes, random labels")
    p.add_argument("--optimizer", default=None, help="GANs: adam|sgd|rmsprop|adagrad (default: Adam)")
    p.add_argument("--likelihood", default="bernoulli", choices=["bernoulli", "gaussian"], help="VAE")
    p.add_argument("--skip-parity", action="store_true",
                   help="DDPM: only the diffusers agreement, no TF <-> torch parity")
    args = p.parse_args(argv)
    for i, model in enumerate(MODELS if args.model == "all" else (args.model,)):
        if i:
            print()
        if model == "vae":
            vae_report(args)
        elif model == "ddpm":
            ddpm_report(args)
        else:
            gan_report(model, args)


if __name__ == "__main__":
    main()
