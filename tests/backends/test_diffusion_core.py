"""Schedules, the DDPM/DDIM schedulers and classifier-free guidance (NumPy core) against
diffusers' DDPMScheduler and DDIMScheduler (0.42.1, imported only here; nothing is downloaded).

Two separate claims, each within 1e-5:
- coefficients: our float64 schedules equal diffusers' (float32) betas, alphas_cumprod and
  timesteps for every spacing;
- step: from the same betas, inputs and variance noise, our `step` returns diffusers' output.
  The step comparison runs diffusers on float64 copies of its own betas, so it compares the
  formulas, not float32 rounding: diffusers computes 1 - abar_t / abar_{t-1} in float32,
  which at small t loses 3-4 digits (test_float32_diffusers_deviation_is_its_rounding
  measures that and shows our float64 values are the accurate ones).
"""
import numpy as np
import pytest
import torch
import diffusers

from gan_diffusion.schedulers import (DDIMScheduler, DDPMScheduler, NoiseSchedule, denoise,
                                      guided_noise, guided_predictor, inference_timesteps,
                                      make_schedule, make_scheduler)
from gan_diffusion.schedulers.guidance import drop_labels
from gan_diffusion.errors import ConfigError

TOL = 1e-5
DIFFUSERS_NAME = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


def reference(cls, schedule: str, steps: int | None = None, **kw):
    """A diffusers scheduler whose coefficients are float64 copies of its own betas, and our
    schedule built from the same float64 betas."""
    d = cls(beta_schedule=DIFFUSERS_NAME[schedule], **kw)
    d.betas = d.betas.double()
    d.alphas = 1.0 - d.betas
    d.alphas_cumprod = torch.cumprod(d.alphas, dim=0)
    if cls is diffusers.DDIMScheduler:
        d.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    if steps is not None:
        d.set_timesteps(steps)
    return d, NoiseSchedule(schedule, d.betas.numpy())


def inputs(shape=(2, 3, 5, 5), seed=0, scale=1.5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) * scale, rng.standard_normal(shape)   # x_t, eps (float64)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_schedule_coefficients_match_diffusers(schedule):
    ours = make_schedule(schedule)
    d = diffusers.DDPMScheduler(beta_schedule=DIFFUSERS_NAME[schedule])
    assert np.abs(ours.betas - d.betas.numpy()).max() < TOL
    assert np.abs(ours.alphas - d.alphas.numpy()).max() < TOL
    assert np.abs(ours.alphas_cumprod - d.alphas_cumprod.numpy()).max() < TOL
    # the posterior variance diffusers uses for fixed_small, at every t > 0 (t = 0 is clamped)
    var = torch.stack([d._get_variance(t) for t in range(1, 1000)]).numpy()
    assert np.abs(ours.posterior_variance[1:] - var).max() < TOL
    if schedule == "cosine":
        assert ours.betas.max() == 0.999 and ours.betas[-1] == 0.999   # the Nichol & Dhariwal clip
        assert ours.alphas_cumprod[-1] < 1e-8
    else:
        assert ours.betas[0] == 1e-4 and ours.betas[-1] == 0.02


def test_derived_coefficients_are_consistent():
    s = make_schedule("linear")
    x0, eps = inputs()
    t = np.array([0, 999])
    xt = s.q_sample(x0, t, eps)
    a, b = s.sqrt_alphas_cumprod[t].reshape(-1, 1, 1, 1), s.sqrt_one_minus_alphas_cumprod[t].reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(xt, a * x0 + b * eps, rtol=1e-12)
    recovered = (s.sqrt_recip_alphas_cumprod[t].reshape(-1, 1, 1, 1) * xt
                 - s.sqrt_recipm1_alphas_cumprod[t].reshape(-1, 1, 1, 1) * eps)
    np.testing.assert_allclose(recovered, x0, atol=1e-9)
    assert s.posterior_variance[0] == 0 and np.isfinite(s.posterior_log_variance_clipped).all()
    assert s.posterior_log_variance_clipped[0] == s.posterior_log_variance_clipped[1]
    # the posterior mean coefficients are Ho et al.'s eq. 7
    t = 500
    np.testing.assert_allclose(s.posterior_mean_coef1[t], s.betas[t] * np.sqrt(s.alphas_cumprod[t - 1])
                               / (1 - s.alphas_cumprod[t]))


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("steps", [1, 7, 10, 50, 333, 1000])
def test_timesteps_match_diffusers(spacing, steps):
    for cls in (diffusers.DDPMScheduler, diffusers.DDIMScheduler):
        d = cls(timestep_spacing=spacing)
        d.set_timesteps(steps)
        np.testing.assert_array_equal(inference_timesteps(1000, steps, spacing), d.timesteps.numpy())


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("variance_type", ["fixed_small", "fixed_large"])
@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("steps", [1000, 50])
def test_ddpm_step_matches_diffusers(schedule, variance_type, clip, steps):
    d, sched = reference(diffusers.DDPMScheduler, schedule, steps, variance_type=variance_type, clip_sample=clip)
    ours = DDPMScheduler(sched, variance_type, clip_sample=clip)
    ours.set_timesteps(steps)
    worst = 0.0
    for t in [int(v) for v in ours.timesteps[[0, 1, len(ours.timesteps) // 2, -2, -1]]]:
        x, eps = inputs(seed=t)
        z = torch.randn(x.shape, generator=torch.Generator().manual_seed(t), dtype=torch.float64)
        ref = d.step(torch.from_numpy(eps), t, torch.from_numpy(x),
                     generator=torch.Generator().manual_seed(t))      # draws z again, identically
        out = ours.step(eps, t, x, variance_noise=z.numpy() if ours.needs_noise(t) else None)
        worst = max(worst, np.abs(out.prev_sample - ref.prev_sample.numpy()).max(),
                    np.abs(out.pred_original_sample - ref.pred_original_sample.numpy()).max())
        if t > 0:  # the noise really enters: without it the output differs
            plain = ours.step(eps, t, x, variance_noise=np.zeros_like(x)).prev_sample
            assert np.abs(plain - ref.prev_sample.numpy()).max() > 1e-3
    assert worst < TOL, worst


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("clip", [True, False])
@pytest.mark.parametrize("spacing,steps,clipped_eps", [("leading", 50, False), ("trailing", 10, True),
                                                        ("leading", 1000, False)])
def test_ddim_step_matches_diffusers(schedule, eta, clip, spacing, steps, clipped_eps):
    d, sched = reference(diffusers.DDIMScheduler, schedule, steps, clip_sample=clip, timestep_spacing=spacing)
    ours = DDIMScheduler(sched, eta, use_clipped_model_output=clipped_eps, clip_sample=clip,
                       timestep_spacing=spacing)
    ours.set_timesteps(steps)
    worst = 0.0
    for t in [int(v) for v in ours.timesteps[[0, 1, len(ours.timesteps) // 2, -1]]]:
        x, eps = inputs(seed=t)
        z = np.random.default_rng(t + 1).standard_normal(x.shape)
        ref = d.step(torch.from_numpy(eps), t, torch.from_numpy(x), eta=eta,
                     use_clipped_model_output=clipped_eps,
                     variance_noise=torch.from_numpy(z) if eta > 0 else None)
        out = ours.step(eps, t, x, variance_noise=z if eta > 0 else None)
        worst = max(worst, np.abs(out.prev_sample - ref.prev_sample.numpy()).max(),
                    np.abs(out.pred_original_sample - ref.pred_original_sample.numpy()).max())
    assert worst < TOL, worst


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_sampling_loop_matches_diffusers_loop(sampler):
    """Ten steps of set_timesteps + step with a fixed toy predictor, float64."""
    cls = diffusers.DDPMScheduler if sampler == "ddpm" else diffusers.DDIMScheduler
    d, sched = reference(cls, "linear", 10)
    ours = make_scheduler(sampler, sched, steps=10, eta=0.3 if sampler == "ddim" else 0.0)

    def predict(x, t):
        return np.tanh(x) * (t[:, None, None, None] / 1000.0)

    x_T, _ = inputs(scale=1.0)
    noises = [np.random.default_rng(i).standard_normal(x_T.shape) for i in range(10)]
    x = torch.from_numpy(x_T)
    for i, t in enumerate(d.timesteps):
        eps = torch.from_numpy(predict(x.numpy(), np.full(len(x), int(t))))
        if sampler == "ddim":
            x = d.step(eps, t, x, eta=0.3, variance_noise=torch.from_numpy(noises[i])).prev_sample
        else:
            g = torch.Generator().manual_seed(i)
            noises[i] = torch.randn(x.shape, generator=torch.Generator().manual_seed(i),
                                    dtype=torch.float64).numpy()
            x = d.step(eps, t, x, generator=g).prev_sample
    got = denoise(predict, ours, x_T, noise_fn=lambda i, shape: noises[i], progress=False)
    assert np.abs(got - x.numpy()).max() < TOL


def test_float32_diffusers_deviation_is_its_rounding():
    """Stock diffusers (float32 coefficients) vs ours (float64), float32 images, deterministic
    DDIM over all 1000 steps: they differ at small t, where 1 - abar_t and abar_t / abar_{t'}
    lose digits in float32; against the float64 reference ours is accurate to float32
    storage and diffusers' float32 is the one that is off."""
    d32 = diffusers.DDIMScheduler(beta_schedule="squaredcos_cap_v2", clip_sample=False)
    d32.set_timesteps(1000)
    d64, _ = reference(diffusers.DDIMScheduler, "cosine", 1000, clip_sample=False)
    ours = DDIMScheduler(make_schedule("cosine"), clip_sample=False)
    stock_err = ours_err = 0.0
    for t in (1, 2, 10):
        x, eps = (a.astype(np.float32) for a in inputs(seed=t))
        ref64 = d64.step(torch.from_numpy(eps).double(), t, torch.from_numpy(x).double()).prev_sample.numpy()
        stock = d32.step(torch.from_numpy(eps), t, torch.from_numpy(x)).prev_sample.numpy()
        got = ours.step(eps, t, x).prev_sample
        assert got.dtype == np.float32
        ours_err = max(ours_err, np.abs(got - ref64).max())
        stock_err = max(stock_err, np.abs(stock - ref64).max())
    assert ours_err < 2e-6, ours_err                                 # float32 storage only
    assert stock_err > 5 * ours_err, (stock_err, ours_err)


def test_full_chain_coefficients_are_the_posterior():
    s = make_schedule("cosine")
    ddpm = DDPMScheduler(s)
    ddim = DDIMScheduler(s, eta=1.0)
    for t in (1, 2, 500, 999):
        c0, c1, var = ddpm.coefficients(t)
        assert c0 == pytest.approx(s.posterior_mean_coef1[t], rel=1e-9)
        assert c1 == pytest.approx(s.posterior_mean_coef2[t], rel=1e-9)
        assert var == pytest.approx(s.posterior_variance[t], rel=1e-9)
        assert ddim.sigma(t) ** 2 == pytest.approx(var, rel=1e-9)      # DDIM eta = 1 = DDPM's variance
    assert DDPMScheduler(s, "fixed_large").coefficients(500)[2] == pytest.approx(s.betas[500], rel=1e-9)


def test_sampler_errors_are_clear():
    s = make_schedule("linear")
    with pytest.raises(ConfigError, match=r"steps must be an integer in \[1, 1000\]"):
        make_scheduler("ddim", s, steps=1001)
    with pytest.raises(ConfigError, match="unknown sampler 'euler'"):
        make_scheduler("euler", s)
    with pytest.raises(ConfigError, match="unknown timestep_spacing"):
        inference_timesteps(1000, 10, "uniform")
    with pytest.raises(ConfigError, match="eta applies to the DDIM sampler only"):
        make_scheduler("ddpm", s, eta=0.5)
    x, eps = inputs()
    with pytest.raises(ValueError, match="pass variance_noise"):
        DDPMScheduler(s).step(eps, 999, x)
    with pytest.raises(ValueError, match="not one of this scheduler's timesteps"):
        make_scheduler("ddim", s, steps=10).step(eps, 998, x)
    with pytest.raises(ConfigError, match="unknown noise schedule 'quadratic'"):
        make_schedule("quadratic")


def test_guidance_convention():
    c, u = np.array([2.0, 4.0]), np.array([1.0, 1.0])
    np.testing.assert_array_equal(guided_noise(c, u, 0.0), u)          # w = 0: unconditional
    np.testing.assert_array_equal(guided_noise(c, u, 1.0), c)          # w = 1: conditional
    np.testing.assert_array_equal(guided_noise(c, u, 3.0), u + 3 * (c - u))
    calls = []

    def predict(x, t, y):   # a toy conditional predictor: eps = x * (label + 1)
        calls.append(len(x))
        return x * (y[:, None, None, None] + 1.0)

    x, t, y = np.ones((2, 1, 1, 1)), np.array([5, 5]), np.array([1, 2])
    null = 10
    out = guided_predictor(predict, y, null, 2.0)(x, t)
    np.testing.assert_allclose(out, guided_noise(x * (y[:, None, None, None] + 1), x * (null + 1), 2.0))
    assert calls == [4]                                                 # one batch of 2N
    np.testing.assert_allclose(guided_predictor(predict, y, null, 1.0)(x, t), predict(x, t, y))
    np.testing.assert_allclose(guided_predictor(predict, y, null, 0.0)(x, t), x * (null + 1))
    np.testing.assert_array_equal(drop_labels(np.array([3, 4, 5]), np.array([0, 1, 0]), 10), [3, 10, 5])


@pytest.mark.parametrize("shape,mults,sizes", [((28, 28, 1), (1, 2, 2), [28, 14, 7]),
                                               ((32, 32, 1), (1, 2, 2), [32, 16, 8]),
                                               ((32, 32, 3), (1, 2, 2, 2), [32, 16, 8, 4]),
                                               ((64, 64, 3), (1, 2, 2, 2), [64, 32, 16, 8])])
def test_unet_sizes_and_padding(shape, mults, sizes):
    """The U-Net's levels, skip bookkeeping and padding facts the backends rely on."""
    from gan_diffusion.models.plan import same_pads
    from gan_diffusion.models.unet import unet_blocks
    from gan_diffusion.registry import make_config

    cfg = make_config("ddpm", image_shape=shape, channel_mults=mults)
    blocks = unet_blocks(cfg)
    assert sorted({b.size for b in blocks}, reverse=True) == sizes
    assert sum(b.push for b in blocks) == sum(b.concat for b in blocks)   # every skip is used once
    assert {b.size for b in blocks if b.kind == "attn"} == {sizes[-1]}      # default: the lowest only
    assert blocks[-1].out_ch == shape[2]
    for size in sizes:
        assert same_pads(size, 3, 1) == (1, 1)       # 3x3 stride 1: Keras 'same' = torch padding=1
    assert same_pads(28, 3, 2) == (0, 1)             # why the stride-2 conv pads (1, 1) explicitly
