"""Stable Diffusion v1 in TensorFlow (keras-cv's models, gan_diffusion/tf_backend/
stable_diffusion.py) against PyTorch (diffusers' and transformers' models,
torch_backend/stable_diffusion.py), one weight set, and the exact converter
(gan_diffusion/sd/keras_cv_layout.py).

Fast tests: the mapping table against the canonical layout, the transforms' bit-exactness,
older spellings, key and shape errors. Slow tests (full size, 1.07 B parameters, `random:0`,
float32, built once for the module: the weights are drawn once, torch shares them, keras-cv
holds one copy; ~10 GB peak RSS):
- the canonical -> keras-cv -> canonical round trip, bit for bit;
- each component against the torch networks: text-encoder hidden states, U-Net eps at 8x8
  and 16x16 latents, VAE encode moments and decode at 64 px;
- the whole loop, each backend's networks under our one NumPy loop: a 3-step DDIM
  text-to-image and a 3-step DDIM image-to-image at 64 px with guidance 7.5;
- peer check: our TensorFlow path against keras-cv's own `StableDiffusion.generate_image`
  loop (its timestep spacing, its alphas constants), driven with the same models and noise.

Parity is measured as rel = max |tf - torch| / max |torch|; the tolerances below are ~5x
what this machine measures (text 8e-7, U-Net 4e-6, VAE encode 2e-6, decode 4e-6). The last
test puts keras-cv's own numerics back (tanh GELU, eps 1e-5) and checks that each fix is
what brings the error down.
"""
import gc
import re

import numpy as np
import pytest

from gan_diffusion.errors import CheckpointError, ConfigError
from gan_diffusion.sd import keras_cv_layout as kl
from gan_diffusion.sd.architectures import V1, V2_BASE
from gan_diffusion.sd import pipeline
from gan_diffusion.sd.layout import random_weights, shapes

TOL = {"text": 5e-6, "unet": 2e-5, "vae_encode": 1e-5, "vae_decode": 2e-5}


def rel_err(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def zeros_like_shapes(arch):
    """{key: zero array} without memory: broadcast views of one float32 zero."""
    zero = np.zeros((), np.float32)
    return {k: np.broadcast_to(zero, s) for k, s in shapes(arch).items()}


# ---------------------------------------------------------------------------------------
# the table (no TensorFlow)

def test_table_uses_every_canonical_key_once():
    keys = kl.canonical_keys()
    assert len(keys) == len(set(keys)) == 1130
    assert set(keys) == set(shapes(V1))
    # keras-cv 0.9's variable counts: TextEncoder 196, DiffusionModel 686, ImageEncoder 108,
    # Decoder 140 (each model's table must name each of its variables once; the slow tests
    # check that against the built models)
    assert {m: len(kl.TABLE[m]) for m in kl.MODELS} == {
        "text_encoder": 196, "diffusion_model": 686, "image_encoder": 108, "decoder": 140}
    for model in kl.MODELS:
        paths = [e.path for e in kl.TABLE[model]]
        assert len(paths) == len(set(paths))


def test_transforms_are_bit_exact_both_ways():
    """Random bit patterns (NaNs, infinities, denormals included) survive to_keras_cv and
    from_keras_cv unchanged, for every transform."""
    rng = np.random.default_rng(0)
    cases = {"conv": ((6, 5, 3, 3), (3, 3, 5, 6)), "linear": ((6, 5), (5, 6)),
             "linear1x1": ((6, 5), (1, 1, 5, 6)), "vector": ((7,), (7,)),
             "embed": ((9, 4), (9, 4))}
    for transform, (torch_shape, kcv_shape) in cases.items():
        bits = rng.integers(0, 2 ** 32, size=torch_shape, dtype=np.uint32)
        a = bits.view(np.float32)
        e = kl.Entry("X:0/kernel", "unet/x.weight", transform)
        k = kl.to_keras_cv(e, a, kcv_shape)
        assert k.shape == kcv_shape
        back = kl.from_keras_cv(e, np.ascontiguousarray(k))
        assert back.dtype == np.float32 and back.shape == torch_shape
        assert np.array_equal(back.view(np.uint32), bits), transform
    # what they do: conv (o, i, kh, kw) -> (kh, kw, i, o); linear1x1 (o, i) -> (1, 1, i, o)
    w = np.arange(6 * 5 * 3 * 2, dtype=np.float32).reshape(6, 5, 3, 2)
    k = kl.to_keras_cv(kl.Entry("p", "k", "conv"), w, (3, 2, 5, 6))
    assert k[2, 1, 4, 5] == w[5, 4, 2, 1]
    lin = np.arange(30, dtype=np.float32).reshape(6, 5)
    k = kl.to_keras_cv(kl.Entry("p", "k", "linear1x1"), lin, (1, 1, 5, 6))
    assert k[0, 0, 4, 5] == lin[5, 4]


def test_older_spellings_are_normalised():
    """diffusers' legacy VAE attention names with conv-shaped weights, transformers-5-style
    text-encoder keys (no "text_model."), and the position_ids buffer."""
    w = dict(zeros_like_shapes(V1))
    for part in ("encoder", "decoder"):
        p = f"vae/{part}.mid_block.attentions.0."
        for new, old in (("to_q", "query"), ("to_k", "key"), ("to_v", "value"),
                         ("to_out.0", "proj_attn")):
            w[p + old + ".weight"] = w.pop(p + new + ".weight")[:, :, None, None]
            w[p + old + ".bias"] = w.pop(p + new + ".bias")
    for key in [k for k in w if k.startswith("text_encoder/text_model.")]:
        w[key.replace("text_model.", "")] = w.pop(key)
    w["text_encoder/embeddings.position_ids"] = np.arange(77)[None]
    out, notes = kl.normalize(w)
    kl.check_keys(out)
    assert set(out) == set(shapes(V1))
    assert all(out[k].shape == s for k, s in shapes(V1).items())
    assert any("ignored text_encoder/text_model.embeddings.position_ids" in n for n in notes)
    assert any("8 conv-shaped" in n for n in notes)
    # both spellings of one weight: refused
    p = "vae/encoder.mid_block.attentions.0."
    w[p + "to_q.bias"] = w[p + "query.bias"]
    with pytest.raises(CheckpointError, match="two spellings"):
        kl.normalize(w)


def test_missing_and_unexpected_keys_are_named():
    w = dict(zeros_like_shapes(V1))
    del w["unet/conv_in.bias"]
    w["unet/extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError, match=r"1 missing \(e\.g\. unet/conv_in\.bias\); "
                                              r"1 unexpected \(e\.g\. unet/extra\.weight\)"):
        kl.check_keys(kl.normalize(w)[0])


def test_shape_mismatch_names_key_layer_and_both_shapes():
    """What a v2 checkpoint hits: its cross-attention reads 1024-wide text features."""
    entry = next(e for e in kl.TABLE["diffusion_model"] if e.key.endswith("attn2.to_k.weight"))
    v2 = np.zeros(shapes(V2_BASE)[entry.key], np.float32)              # (320, 1024)
    with pytest.raises(CheckpointError) as err:
        kl.to_keras_cv(entry, v2, (768, 320), "diffusion_model")
    msg = str(err.value)
    for part in (entry.key, entry.path, "DiffusionModel", "(320, 1024)", "(768, 320)",
                 "(320, 768)"):
        assert part in msg, (part, msg)
    # a Linear proj_in (v2) where v1 has a 1x1 conv: a rank mismatch, the same error
    conv = next(e for e in kl.TABLE["diffusion_model"] if e.key.endswith("proj_in.weight"))
    with pytest.raises(CheckpointError, match=re.escape(conv.key)):
        kl.to_keras_cv(conv, np.zeros((320, 320), np.float32), (1, 1, 320, 320))


def test_timestep_embedding_is_diffusers():
    torch = pytest.importorskip("torch")
    from diffusers.models.embeddings import get_timestep_embedding

    from gan_diffusion.tf_backend.stable_diffusion import timestep_embedding
    t = np.arange(1000)
    ref = get_timestep_embedding(torch.from_numpy(t), 320, flip_sin_to_cos=True,
                                 downscale_freq_shift=0).numpy()
    ours = timestep_embedding(t)
    assert ours.dtype == np.float32 and ours.shape == (1000, 320)
    # the frequencies agree to an ulp (float32 exp of NumPy-in-float64 vs torch), which the
    # argument t * f scales by t: |error| <= 2e-7 + 1.2e-7 t (about 1e-4 at t = 999)
    bound = 2e-7 + 1.2e-7 * t[:, None]
    assert np.all(np.abs(ours - ref) <= bound)
    assert np.mean(ours == ref) > 0.9           # 94% bit-identical here


def test_bad_dtype_and_size_are_config_errors():
    from gan_diffusion.tf_backend.stable_diffusion import TFSDComponents
    with pytest.raises(ConfigError, match="float64.*float32, bfloat16, float16"):
        TFSDComponents(dtype="float64")
    with pytest.raises(ConfigError, match="100x100 is not a positive multiple of 64"):
        TFSDComponents(image_size=100)


def test_a_dtype_without_kernels_is_a_config_error(monkeypatch):
    """On a device without bfloat16 kernels the error says so and names what works."""
    import tensorflow as tf

    from gan_diffusion.tf_backend import stable_diffusion as sd
    monkeypatch.setattr(sd, "_dtype_failure", lambda d: tf.errors.NotFoundError(
        None, None, "no kernel") if d == "bfloat16" else None)
    with pytest.raises(ConfigError, match="'bfloat16' does not run on this device.*"
                                          "NotFoundError.*work here: float32, float16"):
        sd.TFSDComponents(dtype="bfloat16")


# ---------------------------------------------------------------------------------------
# full size: one canonical weight set, keras-cv's models and diffusers' / transformers'

@pytest.fixture(scope="module")
def weights():
    w = random_weights(V1, seed=0)            # 1.07 B float32 parameters, 4.3 GB
    yield w
    del w
    gc.collect()


@pytest.fixture(scope="module")
def tf_sd(weights):
    from gan_diffusion.tf_backend.stable_diffusion import TFSDComponents
    sd = TFSDComponents(weights, image_size=64)   # keras-cv graphs built for 64 px
    yield sd
    del sd
    gc.collect()


@pytest.fixture(scope="module")
def torch_components(weights):
    """The torch side (gan_diffusion/torch_backend/stable_diffusion.py): diffusers'
    UNet2DConditionModel and AutoencoderKL and transformers' CLIPTextModel with SD v1-4's
    configs, their parameters sharing the canonical arrays' memory (no copy)."""
    from gan_diffusion.torch_backend.stable_diffusion import TorchSDComponents

    comps = TorchSDComponents(V1, weights)
    yield comps
    del comps
    gc.collect()


@pytest.fixture(scope="module")
def torch_sd(torch_components):
    """The reference networks themselves: {"unet", "vae", "text_encoder"} torch modules."""
    return torch_components.models


def nchw(x):
    import torch
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


@pytest.fixture(scope="module")
def token_ids():
    """Two prompts' worth: BOS, random tokens, EOS padding (as the CLIP tokenizer pads)."""
    rng = np.random.default_rng(1)
    ids = np.full((2, 77), 49407, np.int64)
    ids[:, 0] = 49406
    ids[0, 1:12] = rng.integers(0, 49406, 11)
    ids[1, 1:40] = rng.integers(0, 49406, 39)
    return ids


@pytest.fixture(scope="module")
def context(tf_sd, token_ids):
    return tf_sd.encode_text(token_ids)


@pytest.mark.slow
def test_round_trip_is_bit_exact(tf_sd, weights):
    """canonical -> keras-cv variables -> canonical: every array equal, bit for bit; every
    canonical key read once, every keras-cv variable set once."""
    seen = []
    for key, array in tf_sd.iter_weights():      # one array at a time: no second 4.3 GB dict
        ref = weights[key]
        assert array.dtype == np.float32 and array.shape == ref.shape, key
        assert np.array_equal(array.view(np.uint32), ref.view(np.uint32)), key
        seen.append(key)
    assert len(seen) == len(set(seen)) == len(weights)
    for name in kl.MODELS:
        model = getattr(tf_sd, name)
        bound = [id(v) for v in tf_sd._variables[name]]
        assert len(bound) == len(set(bound)) == len(model.weights)
        assert set(bound) == {id(v) for v in model.weights}


@pytest.mark.slow
def test_text_encoder_matches_transformers(tf_sd, torch_sd, token_ids, context):
    import torch
    with torch.no_grad():
        ref = torch_sd["text_encoder"](torch.from_numpy(token_ids)).last_hidden_state.numpy()
    assert context.shape == (2, 77, 768) and context.dtype == np.float32
    err = rel_err(context, ref)
    print(f"text encoder: max abs {np.abs(context - ref).max():.2e}, rel {err:.2e}")
    assert err < TOL["text"]


@pytest.mark.slow
@pytest.mark.parametrize("side", [8, 16])
def test_unet_matches_diffusers(tf_sd, torch_sd, context, side):
    """eps at an 8x8 latent (the size keras-cv's graph was built for) and at 16x16 (the same
    layers, traced again: any multiple of 8 runs without rebuilding)."""
    import torch
    rng = np.random.default_rng(side)
    latents = rng.standard_normal((2, side, side, 4)).astype(np.float32)
    t = np.array([999, 37])
    eps = tf_sd.unet(latents, t, context)
    with torch.no_grad():
        ref = nhwc(torch_sd["unet"](nchw(latents), torch.from_numpy(t),
                                    encoder_hidden_states=torch.from_numpy(context)).sample)
    assert eps.shape == latents.shape
    err = rel_err(eps, ref)
    print(f"unet {side}x{side}: max abs {np.abs(eps - ref).max():.2e}, rel {err:.2e}, "
          f"max |eps| {np.abs(ref).max():.2f}")
    assert err < TOL["unet"]


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(2)
    x = np.linspace(-1, 1, 64, dtype=np.float32)
    smooth = np.stack([np.add.outer(x, x) / 2, np.multiply.outer(x, x),
                       np.add.outer(x, -x) / 2], -1)                      # (64, 64, 3)
    noisy = smooth[None] + 0.2 * rng.standard_normal((2, 64, 64, 3))
    return np.clip(noisy, -1, 1).astype(np.float32)


@pytest.mark.slow
def test_vae_encode_matches_diffusers(tf_sd, torch_sd, images):
    """moments = quant_conv(encoder(x)): [mean | logvar], unscaled, 8 channels."""
    import torch
    moments = tf_sd.vae_encode(images)
    vae = torch_sd["vae"]
    with torch.no_grad():
        ref = nhwc(vae.quant_conv(vae.encoder(nchw(images))))
        dist = vae.encode(nchw(images)).latent_dist
    assert moments.shape == (2, 8, 8, 8)
    assert np.array_equal(ref[..., :4], nhwc(dist.mean))    # what the reference is
    err = rel_err(moments, ref)
    print(f"vae encode: max abs {np.abs(moments - ref).max():.2e}, rel {err:.2e}")
    assert err < TOL["vae_encode"]


@pytest.mark.slow
def test_vae_decode_matches_diffusers(tf_sd, torch_sd):
    import torch
    latents = np.random.default_rng(3).standard_normal((2, 8, 8, 4)).astype(np.float32)
    out = tf_sd.vae_decode(latents)                 # unscaled latents in
    with torch.no_grad():
        ref = nhwc(torch_sd["vae"].decode(nchw(latents)).sample)
    assert out.shape == (2, 64, 64, 3)
    err = rel_err(out, ref)
    print(f"vae decode: max abs {np.abs(out - ref).max():.2e}, rel {err:.2e}")
    assert err < TOL["vae_decode"]


@pytest.mark.slow
def test_sizes_and_bad_weights_are_refused(tf_sd, context, weights):
    with pytest.raises(ConfigError,
                       match=r"latent size 12x16 is not a multiple of 8 .*96x128.*64 px"):
        tf_sd.unet(np.zeros((1, 12, 16, 4), np.float32), np.array([1]), context[:1])
    with pytest.raises(ConfigError, match="image size 60x64 is not a multiple of 8"):
        tf_sd.vae_encode(np.zeros((1, 60, 64, 3), np.float32))
    with pytest.raises(ConfigError, match=r"token ids must lie in \[0, 49408\)"):
        tf_sd.encode_text(np.full((1, 77), 49408))
    # a v2 checkpoint loaded as v1: the first differing layer, both shapes; nothing assigned
    before = tf_sd._variables["text_encoder"][0].numpy()[:2].copy()
    with pytest.raises(CheckpointError, match=re.escape(
            "weight 'text_encoder/text_model.embeddings.token_embedding.weight' has shape "
            "(49408, 1024)") + ".*TextEncoder variable 'CLIPEmbedding:0/token_embedding/"
            r"embeddings' has shape \(49408, 768\)"):
        tf_sd.set_weights(zeros_like_shapes(V2_BASE))
    assert np.array_equal(tf_sd._variables["text_encoder"][0].numpy()[:2], before)


@pytest.mark.slow
def test_keras_cv_numerics_are_what_the_fixes_remove(tf_sd, torch_sd, context):
    """keras-cv's tanh GELU back: the U-Net's error grows 10x or more and leaves its
    tolerance; keras-cv's eps 1e-5 back: the VAE decoder's error grows 2x or more.
    (Restores the published numerics after.)"""
    import torch
    latents = np.random.default_rng(8).standard_normal((2, 8, 8, 4)).astype(np.float32)
    t = np.array([999, 37])
    with torch.no_grad():
        ref_eps = nhwc(torch_sd["unet"](nchw(latents), torch.from_numpy(t),
                                        encoder_hidden_states=torch.from_numpy(context)).sample)
        ref_img = nhwc(torch_sd["vae"].decode(nchw(latents)).sample)
    unet_fixed = rel_err(tf_sd.unet(latents, t, context), ref_eps)
    vae_fixed = rel_err(tf_sd.vae_decode(latents), ref_img)
    try:
        tf_sd.set_published_numerics(epsilons=True, exact_gelu=False)
        unet_tanh = rel_err(tf_sd.unet(latents, t, context), ref_eps)
        tf_sd.set_published_numerics(epsilons=False, exact_gelu=True)
        vae_eps = rel_err(tf_sd.vae_decode(latents), ref_img)
    finally:
        tf_sd.set_published_numerics()
    print(f"unet rel: exact GELU {unet_fixed:.2e}, keras-cv's tanh GELU {unet_tanh:.2e}; "
          f"vae decode rel: eps 1e-6 {vae_fixed:.2e}, keras-cv's eps 1e-5 {vae_eps:.2e}")
    assert unet_fixed < TOL["unet"] < unet_tanh and unet_tanh > 10 * unet_fixed
    assert vae_fixed < TOL["vae_decode"] and vae_eps > 2 * vae_fixed


# ---------------------------------------------------------------------------------------
# the whole sampling loop on each backend's networks

REL = 1e-4
PROMPT = "a photograph of an astronaut riding a horse on the moon"


@pytest.fixture(scope="module")
def tokenizer():
    from gan_diffusion.sd.tokenizer import CLIPTokenizer

    return CLIPTokenizer.stand_in()


# keras-cv's generate_image loop as our DDIM: linspace timesteps, abar 1 after the last step
KERAS_CV_DDIM = {"timestep_spacing": "linspace", "set_alpha_to_one": True, "steps_offset": 0,
                 "clip_sample": False}


def _run(components, tokenizer, scheduler: dict, noise_fn=None, steps=3, **kw):
    """Our loop, DDIM at 64 px, guidance 7.5 (SD v1-4's scheduler config as DDIM, with
    `scheduler` overrides)."""
    from gan_diffusion.schedulers import scheduler_from_config

    s = scheduler_from_config(V1.scheduler, class_name="DDIMScheduler", **scheduler)
    request = pipeline.SDRequest(prompts=[PROMPT], negative_prompts=[""], seeds=[0], size=(64, 64),
                                 steps=steps, guidance=7.5, **kw)
    return pipeline.generate(components, tokenizer, s, request, noise_fn=noise_fn, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["txt2img", "img2img"])
def test_the_whole_loop(tf_sd, torch_components, tokenizer, mode):
    kw, visited = {"steps": 3}, [667, 334, 1]
    if mode == "img2img":   # the last int(5 * 0.6) = 3 of 5 steps
        init = np.random.default_rng(2).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
        kw = {"init_images": pipeline.to_model_images(init), "strength": 0.6, "steps": 5}
        visited = [401, 201, 1]
    a, b = (_run(c, tokenizer, {}, **kw) for c in (tf_sd, torch_components))
    print(f"3-step DDIM {mode}: latents rel {rel_err(a.latents, b.latents):.2e}, decoded rel "
          f"{rel_err(a.decoded, b.decoded):.2e}, uint8 max diff "
          f"{np.abs(a.images.astype(int) - b.images).max()}")
    assert a.timesteps == b.timesteps == visited
    assert rel_err(a.latents, b.latents) < REL and rel_err(a.decoded, b.decoded) < REL


@pytest.mark.slow
def test_tf_path_equals_keras_cv_generate_image(tf_sd, tokenizer):
    """keras-cv's own loop (linspace timesteps round(i * 999 / (n - 1)), its _ALPHAS_CUMPROD,
    alpha 1 after the last step, no clipping) on our keras-cv models, with our x_T: our loop
    with the DDIM settings that describe it gives the same final latents and image."""
    from keras_cv.models import StableDiffusion

    tf_c = tf_sd

    class Recorder:           # keras-cv's decoder call, keeping its input and output
        def predict_on_batch(self, x):
            self.latents = np.asarray(x)
            self.decoded = np.asarray(tf_c.decoder.predict_on_batch(x))
            return self.decoded

    sd = StableDiffusion(img_height=64, img_width=64, jit_compile=False)
    sd._text_encoder, sd._diffusion_model, rec = tf_c.text_encoder, tf_c.diffusion_model, Recorder()
    sd._decoder = rec
    context = tf_c.encode_text(tokenizer([PROMPT]).ids)
    x_t = np.random.default_rng(3).standard_normal((1, 8, 8, 4), dtype=np.float32)
    theirs = sd.generate_image(context, batch_size=1, num_steps=3, unconditional_guidance_scale=7.5,
                               diffusion_noise=x_t)
    ours = _run(tf_c, tokenizer, KERAS_CV_DDIM, noise_fn=lambda kind, step, shape: x_t)
    print(f"ours vs keras-cv generate_image: latents rel {rel_err(ours.latents, rec.latents):.2e}, "
          f"decoded rel {rel_err(ours.decoded, rec.decoded):.2e}")
    assert ours.timesteps == [999, 500, 0]
    assert rel_err(ours.latents, rec.latents) < REL and rel_err(ours.decoded, rec.decoded) < REL
    keras_uint8 = np.clip((rec.decoded + 1) / 2 * 255, 0, 255).astype(np.uint8)   # its rounding
    assert np.array_equal(theirs, keras_uint8)

