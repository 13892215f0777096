"""Print the DDPM agreement numbers: our schedules and samplers against diffusers, and
TF <-> PyTorch parity in both directions (the checks of tests/test_diffusion_core.py,
tests/test_parity_ddpm.py and tests/test_diffusers_adapter.py, printed as max abs errors
instead of asserted).

    HF_HUB_OFFLINE=1 python benchmarks/ddpm_report.py [--batch 8] [--skip-parity]

Parity uses the default U-Net (base 32, the MNIST config) for 28x28x1, and base 32 with
multipliers (1, 2, 2, 2) for 32x32x3 and 64x64x3.
"""
from __future__ import annotations

import argparse
import itertools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def diffusers_agreement() -> None:
    import numpy as np
    import torch
    import diffusers

    from gan_diffusion.schedulers import DDIMScheduler, DDPMScheduler, NoiseSchedule, inference_timesteps, make_schedule

    names = {"linear": "linear", "cosine": "squaredcos_cap_v2"}
    print("== against diffusers 0.42.1 ==")
    for sched in names:
        ours, d = make_schedule(sched), diffusers.DDPMScheduler(beta_schedule=names[sched])
        var = torch.stack([d._get_variance(t) for t in range(1, 1000)]).numpy()
        print(f"{sched:7s} coefficients vs diffusers (float32): betas {np.abs(ours.betas - d.betas.numpy()).max():.1e}"
              f"  alphas_cumprod {np.abs(ours.alphas_cumprod - d.alphas_cumprod.numpy()).max():.1e}"
              f"  posterior variance {np.abs(ours.posterior_variance[1:] - var).max():.1e}")
    same = all(np.array_equal(inference_timesteps(1000, n, sp), (lambda s: (s.set_timesteps(n), s.timesteps.numpy())[1])(
        cls(timestep_spacing=sp))) for cls in (diffusers.DDPMScheduler, diffusers.DDIMScheduler)
        for sp in ("leading", "trailing", "linspace") for n in (1, 7, 10, 50, 333, 1000))
    print(f"timesteps, 3 spacings x 6 step counts x 2 schedulers: {'identical' if same else 'DIFFERENT'}")

    def ref(cls, sched, steps, **kw):
        d = cls(beta_schedule=names[sched], **kw)
        d.betas = d.betas.double()
        d.alphas = 1.0 - d.betas
        d.alphas_cumprod = torch.cumprod(d.alphas, 0)
        if cls is diffusers.DDIMScheduler:
            d.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
        d.set_timesteps(steps)
        return d, NoiseSchedule(sched, d.betas.numpy())

    rng = np.random.default_rng(0)
    worst = {"ddpm": 0.0, "ddim": 0.0}
    for sched, vt, clip, steps in itertools.product(names, ("fixed_small", "fixed_large"), (True, False), (1000, 50)):
        d, s = ref(diffusers.DDPMScheduler, sched, steps, variance_type=vt, clip_sample=clip)
        ours = DDPMScheduler(s, vt, clip_sample=clip)
        ours.set_timesteps(steps)
        for t in ours.timesteps:
            t = int(t)
            x, e = rng.standard_normal((2, 1, 4, 4)) * 1.5, rng.standard_normal((2, 1, 4, 4))
            z = torch.randn(x.shape, generator=torch.Generator().manual_seed(t), dtype=torch.float64)
            r = d.step(torch.from_numpy(e), t, torch.from_numpy(x), generator=torch.Generator().manual_seed(t))
            o = ours.step(e, t, x, variance_noise=z.numpy() if t > 0 else None)
            worst["ddpm"] = max(worst["ddpm"], np.abs(o.prev_sample - r.prev_sample.numpy()).max())
    for sched, eta, clip, spacing in itertools.product(names, (0.0, 0.5, 1.0), (True, False), ("leading", "trailing")):
        d, s = ref(diffusers.DDIMScheduler, sched, 50, clip_sample=clip, timestep_spacing=spacing)
        ours = DDIMScheduler(s, eta, clip_sample=clip, timestep_spacing=spacing)
        ours.set_timesteps(50)
        for t in ours.timesteps:
            t = int(t)
            x, e = rng.standard_normal((2, 1, 4, 4)) * 1.5, rng.standard_normal((2, 1, 4, 4))
            z = rng.standard_normal(x.shape)
            r = d.step(torch.from_numpy(e), t, torch.from_numpy(x), eta=eta,
                       variance_noise=torch.from_numpy(z) if eta else None)
            o = ours.step(e, t, x, variance_noise=z if eta else None)
            worst["ddim"] = max(worst["ddim"], np.abs(o.prev_sample - r.prev_sample.numpy()).max())
    print(f"step, every visited t, same float64 betas: DDPM (2 schedules x 2 variances x clip on/off x "
          f"1000/50 steps) {worst['ddpm']:.1e}; DDIM (2 x eta 0/0.5/1 x clip x leading/trailing) {worst['ddim']:.1e}")
    for sched in names:   # stock float32 diffusers against ours, float32 images, DDIM all steps
        d = diffusers.DDIMScheduler(beta_schedule=names[sched], clip_sample=False)
        d.set_timesteps(1000)
        ours = DDIMScheduler(make_schedule(sched), clip_sample=False)
        dev, where = 0.0, 0
        for t in range(1000):
            x, e = (a.astype(np.float32) for a in (rng.standard_normal((2, 1, 4, 4)), rng.standard_normal((2, 1, 4, 4))))
            r = d.step(torch.from_numpy(e), t, torch.from_numpy(x)).prev_sample.numpy()
            err = np.abs(ours.step(e, t, x).prev_sample - r).max() / max(1.0, np.abs(r).max())
            dev, where = max((dev, where), (err, t))
        d = diffusers.DDPMScheduler(beta_schedule=names[sched], clip_sample=False)
        ours = DDPMScheduler(make_schedule(sched), clip_sample=False)
        dev2, where2 = 0.0, 0
        for t in range(1000):
            x, e = (a.astype(np.float32) for a in (rng.standard_normal((2, 1, 4, 4)), rng.standard_normal((2, 1, 4, 4))))
            z = torch.randn(x.shape, generator=torch.Generator().manual_seed(t))
            r = d.step(torch.from_numpy(e), t, torch.from_numpy(x),
                       generator=torch.Generator().manual_seed(t)).prev_sample.numpy()
            err = np.abs(ours.step(e, t, x, variance_noise=z.numpy()).prev_sample - r).max() / max(1.0, np.abs(r).max())
            dev2, where2 = max((dev2, where2), (err, t))
        print(f"{sched:7s} stock float32 diffusers vs ours (float32 images, every t, no clip), relative to "
              f"max(1, |x|): DDIM {dev:.1e} (at t = {where}), DDPM {dev2:.1e} (at t = {where2})")


def backend_parity(batch: int) -> None:
    import numpy as np

    import gan_diffusion
    from gan_diffusion.optim import recovered_gradient
    from gan_diffusion.parity import max_abs_diff, one_step, perturb_native, transfer

    print("\n== TF <-> PyTorch (max abs; grad rel: relative to each tensor's largest gradient) ==")
    shapes = [((28, 28, 1), {}), ((32, 32, 3), dict(channel_mults=(1, 2, 2, 2))),
              ((64, 64, 3), dict(channel_mults=(1, 2, 2, 2), attention_resolutions=(8,))),
              ((28, 28, 1), dict(dtype="float64"))]
    for (src, dst), (shape, kw) in itertools.product((("tf", "torch"), ("torch", "tf")), shapes):
        a = gan_diffusion.get_backend(src).build("ddpm", image_shape=shape, batch_size=batch, num_classes=10, **kw)
        perturb_native(a, seed=11, scale=0.02)
        b = transfer(a, dst)
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

        def net(s):
            return {k[5:]: v for k, v in s.items() if k.startswith("unet/")}

        grad = 0.0
        for k in (k for k in wa if k.startswith("unet/") and not k.endswith(".k/bias")):
            ga = recovered_gradient(a.config, net(state0), net(sa), before[k], wa[k], k[5:])
            gb = recovered_gradient(a.config, net(state0), net(sb), before[k], wb[k], k[5:])
            grad = max(grad, np.abs(ga - gb).max() / np.abs(ga).max())
        ema = max_abs_diff({k: v for k, v in wa.items() if k.startswith("ema/")},
                           {k: v for k, v in wb.items() if k.startswith("ema/")})[0]
        print(f"{src:>5s} -> {dst:5s} {str(shape):12s} {a.config.dtype} U-Net {fwd:.1e}  step: loss {r['losses']:.1e} "
              f"weights {r['weights']:.1e} EMA {ema:.1e} grad rel {grad:.1e} ill-cond {r['ill_conditioned']}"
              f"/{r['total']}  10-step DDIM (w = 2) {ddim:.1e}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--skip-parity", action="store_true")
    args = p.parse_args()
    diffusers_agreement()
    if not args.skip_parity:
        backend_parity(args.batch)


if __name__ == "__main__":
    main()
