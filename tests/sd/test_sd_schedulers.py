"""The schedulers with Stable Diffusion's configs, against diffusers' own schedulers (0.42.1,
offline) and keras-cv's own DDIM loop (StableDiffusion.generate_image with fake networks).

Every loop runs a fixed fake "model", m = 0.1 x_in + sin(t) (x_in = scale_model_input(x, t)),
through whole set_timesteps / step loops on both sides and compares every step's output,
relative error = max |ours - theirs| / max |theirs|:
- against diffusers with float64 coefficients (its betas recomputed by its own formula in
  float64, as test_diffusion_core.py does): DDIM, DDPM and PNDM within 1e-12 (the same
  formulas); Euler within 1e-6 (diffusers' Euler keeps sigmas and the sample in float32);
- against stock diffusers (float32 coefficients): within 1e-6 for all.
Measured (float64 inputs, 1/3/25/50 steps): float64 reference <= 1.3e-15 (DDIM, PNDM, DDPM),
4.1e-7 (Euler); stock float32 <= 4.4e-7 (DDIM), 3.9e-7 (PNDM), 7.0e-7 (Euler), 1.1e-6 (DDPM).
keras-cv's loop: 0 on its own alphas, <= 2.8e-8 on our scaled_linear schedule.
"""
import logging
import math
import types

import numpy as np
import pytest
import torch
import diffusers

from gan_diffusion.errors import ConfigError
from gan_diffusion.schedulers import (DDIMScheduler, EulerDiscreteScheduler, NoiseSchedule, PNDMScheduler,
                                      denoise, guided_noise, make_schedule, scaled_linear_betas,
                                      scheduler_from_config, strength_timesteps)

logging.getLogger("diffusers").setLevel(logging.ERROR)   # Euler's "call scale_model_input" warning
# diffusers' Euler calls np.array on a torch tensor (NumPy 2 copy-keyword notice); harmless
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SD14 = {"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
        "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": False,
        "skip_prk_steps": True, "steps_offset": 1, "clip_sample": False}
CLASSES = ["DDIMScheduler", "PNDMScheduler", "EulerDiscreteScheduler"]
STEPS = [1, 3, 25, 50]
TOL64 = {"DDIMScheduler": 1e-12, "PNDMScheduler": 1e-12, "DDPMScheduler": 1e-12,
         "EulerDiscreteScheduler": 1e-6}
TOL32 = 1e-6


def fake_model(x, t):
    return 0.1 * x + np.sin(t)


def rel(a, b) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


def reference(cls: str, config=SD14, float64: bool = True, **kw):
    """diffusers' `cls.from_config(config, **kw)`; float64: its coefficients recomputed in float64."""
    d = getattr(diffusers, cls).from_config(config, **kw)
    if float64:
        c = d.config
        assert c.beta_schedule == "scaled_linear"
        d.betas = torch.linspace(c.beta_start ** 0.5, c.beta_end ** 0.5, c.num_train_timesteps,
                                 dtype=torch.float64) ** 2
        d.alphas = 1.0 - d.betas
        d.alphas_cumprod = torch.cumprod(d.alphas, 0)
        if hasattr(d, "final_alpha_cumprod"):
            d.final_alpha_cumprod = (torch.tensor(1.0, dtype=torch.float64) if c.set_alpha_to_one
                                     else d.alphas_cumprod[0])
    return d


def run_loops(cls, steps, float64=True, eta=0.0, config=SD14, x=None, timesteps=None, **kw):
    """Both loops side by side (our scheduler from scheduler_from_config, diffusers' from its
    from_config); returns (worst relative error over every step's model input, x_{t'} and x_0^,
    our scheduler, our final sample). With `x`/`timesteps` given (img2img), the loops start there."""
    d = reference(cls, config, float64, **kw)
    d.set_timesteps(steps)
    ours = scheduler_from_config(config, class_name=cls, eta=eta, **kw)
    ours.set_timesteps(steps)
    np.testing.assert_array_equal(ours.timesteps, d.timesteps.numpy())
    rng = np.random.default_rng(steps)
    if x is None:
        x = rng.standard_normal((2, 8, 8, 4)) * ours.init_noise_sigma
    ts = ours.timesteps if timesteps is None else timesteps
    xa, xb = x.copy(), torch.from_numpy(x.copy())
    worst = 0.0
    for i, t in enumerate(ts):
        t = t.item()
        td = d.timesteps[len(d.timesteps) - len(ts) + i]
        assert td.item() == t
        ina, inb = ours.scale_model_input(xa, t), d.scale_model_input(xb, td).numpy()
        worst = max(worst, rel(ina, inb))
        z, extra = rng.standard_normal(x.shape), {}
        if cls == "DDIMScheduler":
            extra = dict(eta=eta, variance_noise=torch.from_numpy(z) if eta > 0 else None)
        elif cls == "DDPMScheduler":          # diffusers draws the noise itself: draw it alike
            extra = dict(generator=torch.Generator().manual_seed(i))
            z = torch.randn(x.shape, generator=torch.Generator().manual_seed(i), dtype=torch.float64).numpy()
        out = ours.step(fake_model(ina, t), t, xa, variance_noise=z if ours.needs_noise(t) else None)
        ref = d.step(torch.from_numpy(fake_model(inb, t)), td, xb, **extra)
        xa, xb = out.prev_sample, ref.prev_sample
        worst = max(worst, rel(xa, xb))
        if cls != "PNDMScheduler":    # diffusers' PNDM returns no x_0
            worst = max(worst, rel(out.pred_original_sample, ref.pred_original_sample))
    return worst, ours, xa


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("steps", STEPS)
def test_sd14_loops_match_diffusers(cls, steps):
    worst, ours, _ = run_loops(cls, steps)
    assert worst < TOL64[cls], worst
    worst32, _, _ = run_loops(cls, steps, float64=False)
    assert worst32 < TOL32, worst32
    assert ours.num_inference_steps == steps
    assert len(ours.timesteps) == steps + (cls == "PNDMScheduler" and steps > 1)


@pytest.mark.parametrize("steps", STEPS)
def test_ddim_eta1_matches_diffusers_with_the_same_noise(steps):
    worst, ours, x = run_loops("DDIMScheduler", steps, eta=1.0)
    assert worst < 1e-12, worst
    assert run_loops("DDIMScheduler", steps, float64=False, eta=1.0)[0] < TOL32
    assert ours.needs_noise(int(ours.timesteps[0]))
    # the noise really enters: eta = 0 ends elsewhere
    assert rel(run_loops("DDIMScheduler", steps)[2], x) > 1e-2


@pytest.mark.parametrize("cls,prediction", [("DDIMScheduler", "v_prediction"), ("DDIMScheduler", "sample"),
                                            ("EulerDiscreteScheduler", "v_prediction"),
                                            ("EulerDiscreteScheduler", "sample"),
                                            ("PNDMScheduler", "v_prediction")])
@pytest.mark.parametrize("steps", STEPS)
def test_prediction_types_match_diffusers(cls, prediction, steps):
    worst, ours, x = run_loops(cls, steps, prediction_type=prediction)
    assert ours.prediction_type == prediction
    assert worst < TOL64[cls], worst
    # the prediction type really changes the result (least at 1 step, t = 1: 5e-4 for v)
    assert rel(run_loops(cls, steps)[2], x) > 1e-4


@pytest.mark.parametrize("steps", [10, 25, 50])
def test_pndm_with_runge_kutta_steps_matches_diffusers(steps):
    worst, ours, x = run_loops("PNDMScheduler", steps, skip_prk_steps=False)
    assert len(ours.prk_timesteps) == 12 and not ours.skip_prk_steps
    assert worst < 1e-12, worst
    assert rel(run_loops("PNDMScheduler", steps)[2], x) > 1e-3     # PRK != PLMS


@pytest.mark.parametrize("steps", STEPS)
def test_ddpm_loop_matches_diffusers(steps):
    worst, ours, _ = run_loops("DDPMScheduler", steps)
    assert worst < 1e-12, worst
    # stock float32 diffusers: 1 - abar_t / abar_{t'} in float32 loses digits (measured 1.1e-6)
    assert run_loops("DDPMScheduler", steps, float64=False)[0] < 2e-6


def test_churned_euler_loop_matches_diffusers():
    """Euler with s_churn > 0: the caller's noise, drawn here as diffusers draws its own."""
    for steps in (25, 50):
        d = reference("EulerDiscreteScheduler")
        d.set_timesteps(steps)
        ours = EulerDiscreteScheduler(make_schedule("scaled_linear"), s_churn=1.0)
        ours.set_timesteps(steps)
        x = np.random.default_rng(1).standard_normal((2, 8, 8, 4)) * ours.init_noise_sigma
        xa, xb = x.copy(), torch.from_numpy(x.copy())
        for i, t in enumerate(ours.timesteps):
            z = torch.randn(x.shape, generator=torch.Generator().manual_seed(i), dtype=torch.float64)
            m = fake_model(ours.scale_model_input(xa, t), t)
            xa = ours.step(m, t, xa, variance_noise=z.numpy()).prev_sample
            m = torch.from_numpy(fake_model(d.scale_model_input(xb, d.timesteps[i]).numpy(), t))
            xb = d.step(m, d.timesteps[i], xb, s_churn=1.0,
                        generator=torch.Generator().manual_seed(i)).prev_sample
        assert rel(xa, xb) < 1e-6, rel(xa, xb)
        assert ours.needs_noise(ours.timesteps[0].item())
        assert rel(xa, run_loops("EulerDiscreteScheduler", steps, x=x)[2]) > 1e-2   # churn matters
    with pytest.raises(ValueError, match="pass variance_noise"):
        ours.step(x, ours.timesteps[0].item(), x)


@pytest.mark.parametrize("cls", CLASSES + ["DDPMScheduler"])
@pytest.mark.parametrize("spacing", ["leading", "linspace", "trailing"])
@pytest.mark.parametrize("steps", [1, 3, 7, 25, 50, 1000])
def test_timesteps_and_init_noise_sigma_match_diffusers(cls, spacing, steps):
    """Timesteps identical; sigmas within float32 storage of diffusers' (its sigmas from float64
    alphas_cumprod: from its float32 ones sigma at t = 1 is 1.6e-6 off, a float32 cancellation)."""
    d = reference(cls, timestep_spacing=spacing)
    d.set_timesteps(steps)
    ours = scheduler_from_config(SD14, class_name=cls, timestep_spacing=spacing)
    ours.set_timesteps(steps)
    np.testing.assert_array_equal(ours.timesteps, d.timesteps.numpy())
    assert ours.init_noise_sigma == pytest.approx(float(d.init_noise_sigma), rel=1e-6)
    if cls == "EulerDiscreteScheduler":
        assert rel(ours.sigmas, d.sigmas.numpy()) < 1e-6
        assert ours.timesteps.dtype == np.float64
    else:
        assert ours.timesteps.dtype == np.int64


def test_euler_from_the_sd14_config_takes_linspace_as_diffusers_does():
    ours = scheduler_from_config(SD14, class_name="EulerDiscreteScheduler")
    assert ours.timestep_spacing == "linspace"
    assert diffusers.EulerDiscreteScheduler.from_config(SD14).config.timestep_spacing == "linspace"
    # a loaded diffusers scheduler's config: its filled-in defaults count as absent, as in diffusers
    loaded = dict(diffusers.PNDMScheduler.from_config(SD14).config)
    assert loaded["timestep_spacing"] == "leading"
    assert scheduler_from_config(loaded, class_name="EulerDiscreteScheduler").timestep_spacing == "linspace"
    ours.set_timesteps(25)
    assert ours.timesteps[1] != round(ours.timesteps[1])                 # fractional timesteps


@pytest.mark.parametrize("cls", CLASSES + ["DDPMScheduler"])
@pytest.mark.parametrize("strength", [0.3, 0.6, 1.0])
def test_img2img_start_and_add_noise_match_diffusers(cls, strength):
    """diffusers' StableDiffusionImg2ImgPipeline: get_timesteps, add_noise at the first of them,
    then the loop from there (Euler with set_begin_index, PNDM's history from its first step)."""
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import (
        StableDiffusionImg2ImgPipeline as Img2Img)
    steps, n = 25, 2
    d = reference(cls)
    d.set_timesteps(steps)
    ref_ts, _ = Img2Img.get_timesteps(types.SimpleNamespace(scheduler=d), steps, strength, "cpu")
    ours = scheduler_from_config(SD14, class_name=cls)
    ours.set_timesteps(steps)
    ts = strength_timesteps(ours, strength)
    np.testing.assert_array_equal(ts, ref_ts.numpy())
    rng = np.random.default_rng(3)
    x0, noise = rng.standard_normal((n, 8, 8, 4)), rng.standard_normal((n, 8, 8, 4))
    xa = ours.add_noise(x0, noise, np.full(n, ts[0]))
    xb = d.add_noise(torch.from_numpy(x0), torch.from_numpy(noise), ref_ts[:1].repeat(n))
    assert rel(xa, xb.numpy()) < TOL64[cls]
    worst, _, _ = run_loops(cls, steps, x=xa, timesteps=ts)
    assert worst < TOL64[cls], worst
    if strength == 1.0:
        assert len(ts) == len(ours.timesteps)


def test_add_noise_is_the_forward_process_and_float32_matches_stock_diffusers():
    x0, noise = (np.random.default_rng(4).standard_normal((3, 4, 4, 4)).astype(np.float32) for _ in range(2))
    t = np.array([1, 500, 981])
    for cls in ("DDIMScheduler", "PNDMScheduler", "DDPMScheduler"):
        d = getattr(diffusers, cls).from_config(SD14)
        ours = scheduler_from_config(SD14, class_name=cls)
        got = ours.add_noise(x0, noise, t)
        assert got.dtype == np.float32
        ref = d.add_noise(torch.from_numpy(x0), torch.from_numpy(noise), torch.from_numpy(t)).numpy()
        assert rel(got, ref) < TOL32
    abar = make_schedule("scaled_linear").alphas_cumprod[500]
    np.testing.assert_allclose(ours.add_noise(x0, noise, 500), abar ** 0.5 * x0 + (1 - abar) ** 0.5 * noise,
                               rtol=1e-6)


def test_scaled_linear_schedule_matches_diffusers():
    ours = make_schedule("scaled_linear")
    assert ours.betas.dtype == np.float64 and ours.num_timesteps == 1000
    np.testing.assert_allclose(ours.betas[[0, -1]], [0.00085, 0.012], rtol=1e-12)
    d = diffusers.DDIMScheduler.from_config(SD14)
    assert np.abs(ours.betas / d.betas.numpy() - 1).max() < 5e-7     # float32 linspace and square
    assert np.abs(ours.alphas_cumprod - d.alphas_cumprod.numpy()).max() < 1e-6  # float32 cumprod: 4.8e-7
    f64 = reference("DDIMScheduler")
    np.testing.assert_allclose(ours.alphas_cumprod, f64.alphas_cumprod.numpy(), rtol=1e-13)
    np.testing.assert_array_equal(scaled_linear_betas(), ours.betas)


def test_set_alpha_to_one():
    s = make_schedule("scaled_linear")
    ddim = DDIMScheduler(s, clip_sample=False)                  # diffusers' DDIM default: True
    sd = DDIMScheduler(s, clip_sample=False, set_alpha_to_one=False)
    assert ddim.final_alpha_cumprod == 1.0 and sd.final_alpha_cumprod == s.alphas_cumprod[0]
    assert PNDMScheduler(s).final_alpha_cumprod == s.alphas_cumprod[0]   # diffusers' PNDM default: False
    for sched in (ddim, sd):
        sched.set_timesteps(10)
    x = np.random.default_rng(5).standard_normal((1, 4, 4, 4))
    last = int(ddim.timesteps[-1])
    assert ddim.alphas(last)[1] == 1.0 and sd.alphas(last)[1] == s.alphas_cumprod[0]
    # after the last step, set_alpha_to_one=True returns x_0^ itself
    out = ddim.step(fake_model(x, last), last, x)
    np.testing.assert_allclose(out.prev_sample, out.pred_original_sample, rtol=1e-12)
    assert rel(sd.step(fake_model(x, last), last, x).prev_sample, out.prev_sample) > 1e-3


def test_keras_cv_alphas_cumprod_are_the_scaled_linear_schedule():
    from keras_cv.src.models.stable_diffusion.constants import _ALPHAS_CUMPROD

    kcv = np.array(_ALPHAS_CUMPROD, dtype=np.float64)
    ours = make_schedule("scaled_linear").alphas_cumprod
    assert kcv.shape == (1000,)
    diff = np.abs(kcv - ours).max()
    assert diff < 1e-7, diff                  # measured 5.2e-8 (keras-cv prints ~7 digits)
    assert np.abs(kcv / ours - 1).max() < 2e-7


KERAS_CV_DDIM = dict(class_name="DDIMScheduler", timestep_spacing="linspace", set_alpha_to_one=True,
                     steps_offset=0)   # clip_sample False comes from SD14


def keras_cv_generate(steps: int, noise: np.ndarray, guidance: float):
    """keras-cv's own StableDiffusion.generate_image loop, with fake networks: the U-Net returns
    fake_model(latent, t) + mean(context), t read back from keras-cv's timestep embedding; the
    decoder records the final latent. Returns (final latent, the timesteps visited)."""
    from keras_cv.src.models.stable_diffusion import stable_diffusion as ksd

    lowest = math.exp(-math.log(10000) * 159 / 160)          # frequency of the last embedding entry

    class UNet:
        def __init__(self):
            self.ts = []

        def predict_on_batch(self, inputs):
            x, emb = np.asarray(inputs["latent"]), np.asarray(inputs["timestep_embedding"])
            t = int(round(math.asin(float(emb[0, -1])) / lowest))
            self.ts.append(t)
            return fake_model(x, t) + np.asarray(inputs["context"]).mean()

    class TextEncoder:           # the unconditional context: zeros
        def predict_on_batch(self, inputs):
            return np.zeros((1, 3, 4))

    class Decoder:
        def predict_on_batch(self, latent):
            self.latent = np.asarray(latent)
            return np.zeros((len(self.latent), 8, 8, 3))

    sd = object.__new__(ksd.StableDiffusion)               # no weights, nothing downloaded
    sd._diffusion_model, sd._text_encoder, sd._decoder = UNet(), TextEncoder(), Decoder()
    sd.img_height = sd.img_width = 64
    sd.generate_image(np.full((3, 4), 0.5), batch_size=len(noise), num_steps=steps,
                      unconditional_guidance_scale=guidance, diffusion_noise=noise)
    return sd._decoder.latent, sd._diffusion_model.ts[::2]


def our_keras_cv_loop(scheduler, steps, noise, guidance):
    scheduler.set_timesteps(steps)

    def predict(x, t):              # guided: conditional context mean 0.5, unconditional 0
        t = t[0]
        return guided_noise(fake_model(x, t) + 0.5, fake_model(x, t), guidance)

    return denoise(predict, scheduler, noise.copy(), progress=False)


@pytest.mark.parametrize("steps", STEPS)
def test_keras_cv_ddim_loop_is_ddim_linspace_alpha_one_no_clip(steps):
    """keras-cv's loop = our DDIM with timestep_spacing "linspace", set_alpha_to_one True,
    clip_sample False, steps_offset 0 (eta 0): on keras-cv's own alphas within 1e-12; on our
    float64 scaled_linear schedule within 1e-6 (the constants' 7 printed digits; measured 2.8e-8)."""
    noise = np.random.default_rng(steps).standard_normal((2, 8, 8, 4))
    guidance = 7.5
    ref, visited = keras_cv_generate(steps, noise, guidance)
    ours = scheduler_from_config(SD14, **KERAS_CV_DDIM)
    ours.set_timesteps(steps)
    assert visited == ours.timesteps.tolist()
    from keras_cv.src.models.stable_diffusion.constants import _ALPHAS_CUMPROD
    abar = np.array(_ALPHAS_CUMPROD, np.float64)
    on_kcv = DDIMScheduler(NoiseSchedule("keras-cv", 1 - abar / np.append(1.0, abar[:-1])), clip_sample=False,
                           timestep_spacing="linspace", set_alpha_to_one=True)
    assert rel(our_keras_cv_loop(on_kcv, steps, noise, guidance), ref) < 1e-12
    err = rel(our_keras_cv_loop(ours, steps, noise, guidance), ref)
    assert err < 1e-6, err
    if steps > 1:   # diffusers' DDIM on linspace steps to t - T // n instead: far off
        d = diffusers.DDIMScheduler.from_config(SD14, timestep_spacing="linspace", set_alpha_to_one=True)
        d.set_timesteps(steps)
        x = torch.from_numpy(noise.copy())
        for t in d.timesteps:
            m = fake_model(x.numpy(), int(t))
            x = d.step(torch.from_numpy(guided_noise(m + 0.5, m, guidance)), t, x).prev_sample
        assert rel(x.numpy(), ref) > 1e-3


def test_keras_cv_timesteps_for_every_step_count():
    """round(arange(n) * 999 / (n - 1)) (keras-cv; n = 1: [0]) = our linspace spacing, n = 1..1000."""
    ours = scheduler_from_config(SD14, **KERAS_CV_DDIM)
    for n in range(1, 1001):
        ratio = 999 / (n - 1) if n > 1 else 1000
        kcv = (np.arange(0, n) * ratio).round().astype(np.int64)[::-1]
        np.testing.assert_array_equal(ours.set_timesteps(n), kcv)


def test_factory_builds_each_class_with_diffusers_defaults():
    s = scheduler_from_config(SD14)
    assert isinstance(s, PNDMScheduler) and s.skip_prk_steps and s.steps_offset == 1
    ddim = scheduler_from_config(SD14, class_name="DDIMScheduler")
    assert (ddim.clip_sample, ddim.set_alpha_to_one, ddim.steps_offset) == (False, False, 1)
    plain = scheduler_from_config({"_class_name": "DDIMScheduler"})     # diffusers' DDIM defaults
    assert (plain.clip_sample, plain.set_alpha_to_one, plain.schedule.name) == (True, True, "linear")
    assert scheduler_from_config(SD14, prediction_type="v_prediction").prediction_type == "v_prediction"
    cos = scheduler_from_config({"_class_name": "DDPMScheduler", "beta_schedule": "squaredcos_cap_v2"})
    d_cos = diffusers.DDPMScheduler(beta_schedule="squaredcos_cap_v2").betas.numpy()
    assert np.abs(cos.schedule.betas - d_cos).max() < 1e-6
    betas = np.linspace(1e-4, 0.02, 1000)
    trained = scheduler_from_config({"_class_name": "DDIMScheduler", "trained_betas": betas.tolist()})
    np.testing.assert_array_equal(trained.schedule.betas, betas)
    # fields that do not change the maths are ignored
    scheduler_from_config({**SD14, "_diffusers_version": "0.7.0", "sample_max_value": 3.0,
                           "solver_order": 2}, class_name="DDIMScheduler")


@pytest.mark.parametrize("config,kw,match", [
    ({"_class_name": "LMSDiscreteScheduler"}, {}, "scheduler class 'LMSDiscreteScheduler' is not supported"),
    ({}, {}, "scheduler class None is not supported"),
    (SD14, dict(prediction_type="sample"), "prediction_type='sample' is not supported; supported: 'epsilon'"),
    ({**SD14, "_class_name": "DDIMScheduler", "thresholding": True}, {},
     "thresholding=True is not supported"),
    ({**SD14, "_class_name": "DDIMScheduler", "rescale_betas_zero_snr": True}, {}, "rescale_betas_zero_snr"),
    ({**SD14, "_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": True}, {}, "use_karras_sigmas"),
    ({**SD14, "_class_name": "EulerDiscreteScheduler", "interpolation_type": "log_linear"}, {},
     "interpolation_type"),
    ({**SD14, "_class_name": "EulerDiscreteScheduler", "timestep_type": "continuous"},
     dict(prediction_type="v_prediction"), "timestep_type='continuous'"),
    ({**SD14, "_class_name": "DDPMScheduler", "variance_type": "learned_range"}, {},
     "variance_type='learned_range'"),
    ({**SD14, "beta_schedule": "sigmoid"}, {}, "beta_schedule='sigmoid' is not supported"),
    ({**SD14, "timestep_spacing": "uniform"}, {}, "timestep_spacing='uniform'"),
    ({**SD14, "trained_betas": [0.1, 0.2]}, {}, r"trained_betas has shape \(2,\), expected \(1000,\)"),
    (SD14, dict(eta=0.5), "eta applies to DDIMScheduler only"),
    (SD14, dict(clip_sample=True), "'clip_sample' is not a PNDMScheduler config field"),
])
def test_factory_errors_name_the_field(config, kw, match):
    with pytest.raises(ConfigError, match=match):
        scheduler_from_config(config, **kw)


def test_scheduler_errors_are_clear():
    s = make_schedule("scaled_linear")
    with pytest.raises(ConfigError, match="PNDMScheduler supports prediction_type 'epsilon' or 'v_"):
        PNDMScheduler(s, prediction_type="sample")
    with pytest.raises(ConfigError, match="unknown prediction_type 'x0'"):
        DDIMScheduler(s, prediction_type="x0")
    with pytest.raises(ConfigError, match="final_sigmas_type"):
        EulerDiscreteScheduler(s, final_sigmas_type="one")
    e = EulerDiscreteScheduler(s)
    e.set_timesteps(10)
    with pytest.raises(ValueError, match="not one of this scheduler's timesteps"):
        e.scale_model_input(np.ones(2), 500.0)
    with pytest.raises(TypeError, match="sigma space"):
        e.alphas(999.0)
    p = PNDMScheduler(s, skip_prk_steps=False)
    p.set_timesteps(10)
    p.counter = 12          # as if the PRK steps had run without their history
    with pytest.raises(ValueError, match="only after its 12 Runge-Kutta ones"):
        p.step(np.ones(2), int(p.timesteps[12]), np.ones(2))


def test_pndm_history_resets_in_set_timesteps():
    s = scheduler_from_config(SD14)
    s.set_timesteps(10)
    x = np.random.default_rng(6).standard_normal((1, 4, 4, 4))
    first = denoise(fake_model_batched, s, x, progress=False)
    assert s.counter == len(s.timesteps) and len(s.ets) == 4
    s.set_timesteps(10)
    assert s.counter == 0 and s.ets == []
    np.testing.assert_array_equal(denoise(fake_model_batched, s, x, progress=False), first)


def fake_model_batched(x, t):
    return fake_model(x, t[0])


@pytest.mark.parametrize("cls", CLASSES)
def test_denoise_drives_every_scheduler(cls):
    """The generic `denoise` loop (scale_model_input, float timesteps for Euler) = the loop above."""
    s = scheduler_from_config(SD14, class_name=cls)
    s.set_timesteps(25)
    x = np.random.default_rng(7).standard_normal((2, 8, 8, 4)) * s.init_noise_sigma
    seen = []
    got = denoise(lambda x, t: (seen.append(t.dtype), fake_model_batched(x, t))[1], s, x, progress=False)
    worst, _, ref = run_loops(cls, 25, x=x)
    assert worst < TOL64[cls] and rel(got, ref) < 1e-12
    assert set(seen) == {np.dtype(np.float64 if cls == "EulerDiscreteScheduler" else np.int64)}
