"""Peer checks of the torch path against code nobody here wrote: diffusers' own
StableDiffusionPipeline and StableDiffusionImg2ImgPipeline, given the same components (a tiny
random SD-shaped checkpoint folder written by our `save_folder` and read by both), the same
DDIMScheduler and the same initial noise. Tolerance 1e-5 absolute on images in [0, 1]."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gan_diffusion.sd import architectures, layout
from gan_diffusion.sd.checkpoint import save_folder

diffusers = pytest.importorskip("diffusers")
TOL = 1e-5
PROMPTS = ["a photo of an astronaut riding a horse", "a watercolor of a lighthouse at dusk"]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    arch = architectures.tiny()
    return save_folder(tmp_path_factory.mktemp("sd") / "tiny", arch, layout.random_weights(arch, 3))


@pytest.fixture(scope="module")
def ours(tiny_folder):
    import gan_diffusion

    return gan_diffusion.get_backend("torch").build("sd-v1", weights=str(tiny_folder))


SCHEDULERS = {"ddim": "DDIMScheduler", "pndm": "PNDMScheduler", "euler": "EulerDiscreteScheduler"}


def reference(cls, ours, tiny_folder, scheduler="ddim"):
    """A diffusers pipeline of class `cls` on our torch model's own networks, transformers'
    tokenizer from the folder and diffusers' scheduler (DDIM by default) from the folder's
    config (SD v1-4's PNDM config, as `DDIMScheduler.from_config(pipe.scheduler.config)`)."""
    from transformers import CLIPTokenizer

    m = ours.components.models
    sched = getattr(diffusers, SCHEDULERS[scheduler]).from_pretrained(tiny_folder / "scheduler")
    return cls(vae=m["vae"], text_encoder=m["text_encoder"], unet=m["unet"],
               tokenizer=CLIPTokenizer.from_pretrained(tiny_folder / "tokenizer"),
               scheduler=sched, safety_checker=None, feature_extractor=None,
               requires_safety_checker=False)


def nchw_to_nhwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("scheduler,guidance", [("ddim", 7.5), ("ddim", 1.0), ("pndm", 7.5),
                                                ("euler", 7.5)])
def test_txt2img_equals_diffusers_pipeline(ours, tiny_folder, scheduler, guidance):
    pipe = reference(diffusers.StableDiffusionPipeline, ours, tiny_folder, scheduler)
    size, lat = 32, 32 // ours.arch.vae_scale_factor
    z = torch.randn((2, 4, lat, lat), generator=torch.Generator().manual_seed(0))
    ref = pipe(PROMPTS, negative_prompt=["blurry", ""], height=size, width=size,
               num_inference_steps=4, guidance_scale=guidance, latents=z, output_type="np").images
    got = ours.sample(2, prompt=PROMPTS, negative_prompt=["blurry", ""], steps=4, guidance=guidance,
                      size=size, scheduler=scheduler,
                      noise_fn=lambda kind, step, shape: nchw_to_nhwc(z))
    decoded = np.clip(ours.last_result.decoded / 2 + 0.5, 0, 1)
    assert decoded.shape == ref.shape == (2, size, size, 3)
    err = np.abs(decoded - ref).max()
    print(f"max |ours - diffusers| = {err:.2e}")
    assert err < TOL, err
    assert np.abs(got.astype(int) - np.round(ref * 255)).max() <= 1
    assert 0.05 < ref.std()   # not a blank image


def test_img2img_equals_diffusers_pipeline(ours, tiny_folder):
    pipe = reference(diffusers.StableDiffusionImg2ImgPipeline, ours, tiny_folder)
    rng = np.random.default_rng(1)
    init = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    g = torch.Generator().manual_seed(7)
    ref = pipe(PROMPTS[0], image=Image.fromarray(init), strength=0.6, num_inference_steps=5,
               guidance_scale=5.0, generator=g, output_type="np").images
    # what the pipeline drew from its generator, in order: the VAE posterior sample, the noise
    g = torch.Generator().manual_seed(7)
    lat = 32 // ours.arch.vae_scale_factor
    draws = {"encode": torch.randn((1, 4, lat, lat), generator=g),
             "latents": torch.randn((1, 4, lat, lat), generator=g)}
    ours.sample(1, prompt=PROMPTS[0], init_image=init, strength=0.6, steps=5, guidance=5.0,
                size=32, noise_fn=lambda kind, step, shape: nchw_to_nhwc(draws[kind]))
    decoded = np.clip(ours.last_result.decoded / 2 + 0.5, 0, 1)
    err = np.abs(decoded - ref).max()
    print(f"max |ours - diffusers| = {err:.2e}")
    assert err < TOL, err
    assert ours.last_result.timesteps == pipe.scheduler.timesteps[-3:].tolist()  # int(5 * 0.6) = 3


def test_our_folder_loads_in_diffusers(tiny_folder, ours):
    """save_folder writes what diffusers' from_pretrained reads, with the same arrays."""
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(tiny_folder, safety_checker=None)
    ref = {f"unet/{k}": v for k, v in pipe.unet.state_dict().items()}
    ref.update({f"vae/{k}": v for k, v in pipe.vae.state_dict().items()})
    ref.update({f"text_encoder/text_model.{k}": v for k, v in pipe.text_encoder.state_dict().items()})
    mine = ours.get_weights()
    assert set(ref) == set(mine)
    assert all(np.array_equal(ref[k].numpy(), mine[k]) for k in mine)


def test_v2_shaped_checkpoint_equals_diffusers(tmp_path):
    """An SD 2.x-shaped checkpoint (linear projections, per-block head counts, GELU text
    encoder), tiny, built as sd-v2: txt2img equals diffusers' pipeline."""
    import gan_diffusion

    arch = architectures.tiny("v2")
    folder = save_folder(tmp_path / "v2", arch, layout.random_weights(arch, 4))
    model = gan_diffusion.get_backend("torch").build("sd-v2", weights=str(folder))
    assert model.arch.unet["use_linear_projection"] and model.arch.text_encoder["hidden_act"] == "gelu"
    pipe = reference(diffusers.StableDiffusionPipeline, model, folder)
    z = torch.randn((1, 4, 16, 16), generator=torch.Generator().manual_seed(1))
    ref = pipe(PROMPTS[0], height=32, width=32, num_inference_steps=3, guidance_scale=7.5,
               latents=z, output_type="np").images
    model.sample(1, prompt=PROMPTS[0], steps=3, size=32, noise_fn=lambda k, s, sh: nchw_to_nhwc(z))
    err = np.abs(np.clip(model.last_result.decoded / 2 + 0.5, 0, 1) - ref).max()
    assert err < TOL, err


@pytest.mark.parametrize("dtype,tol", [("bfloat16", 0.05), ("float16", 0.01)])
def test_half_precision_runs_close_to_float32(ours, tiny_folder, dtype, tol):
    """--dtype: the networks in half precision (NumPy in and out stays float32); measured
    max |decoded - float32| 0.012 (bfloat16) and 0.0024 (float16) on this tiny model."""
    import gan_diffusion

    half = gan_diffusion.get_backend("torch").build("sd-v1", weights=str(tiny_folder), dtype=dtype)
    assert next(half.components.models["unet"].parameters()).dtype == getattr(torch, dtype)
    ours.sample(1, prompt=PROMPTS[0], steps=3, size=32)
    half.sample(1, prompt=PROMPTS[0], steps=3, size=32)
    a, b = ours.last_result.decoded, half.last_result.decoded
    assert b.dtype == np.float32 and 0 < np.abs(a - b).max() < tol


def test_prompts_seeds_and_batches(ours):
    """A batch of prompts and seeds: image i depends on its own prompt and seed only."""
    from gan_diffusion.errors import ConfigError

    batch = ours.sample(3, seed=[7, 8, 9], prompt=[PROMPTS[0], PROMPTS[1], PROMPTS[0]], steps=2, size=32)
    alone = ours.sample(1, seed=8, prompt=PROMPTS[1], steps=2, size=32)
    assert np.abs(batch[1].astype(int) - alone[0]).max() <= 1      # BLAS batch rounding only
    assert not np.array_equal(batch[0], batch[2])                    # same prompt, other seed
    with pytest.raises(ConfigError, match="the prompt list is empty"):
        ours.sample(1, prompt=[])
    with pytest.raises(ConfigError, match="prompt must be one string or 2 strings"):
        ours.sample(2, prompt=["a", "b", "c"])
    with pytest.raises(ConfigError, match="give one seed or 2 seeds"):
        ours.sample(2, seed=[1])
    with pytest.raises(ConfigError, match="not a multiple of 2"):     # the tiny VAE's factor
        ours.sample(1, prompt="a", size=31)
    with pytest.raises(ConfigError, match=r"strength must be in \(0, 1\]"):
        ours.sample(1, prompt="a", init_image=np.zeros((32, 32, 3), np.uint8), strength=0, size=32)
    with pytest.raises(ConfigError, match="conditioned on text"):
        ours.sample(1, labels=[3])
