"""The Stable Diffusion sampling loop, once, in NumPy: text-to-image and image-to-image on
either backend's networks (the `SDComponents` calls of gan_diffusion/sd/__init__.py).

It follows diffusers' StableDiffusionPipeline and StableDiffusionImg2ImgPipeline step for step
(tests/sd/test_sd_pipelines.py checks it against them):

    context  = encode_text(tokens(prompts))                       (B, 77, D)
    uncond   = encode_text(tokens(negative prompts or ""))        when guidance > 1
    txt2img: x_T = init_noise_sigma * z,  z ~ N(0, I)  (B, h, w, 4), h = H / 8
    img2img: z_0 = scaling * (mean + exp(logvar / 2) n)   from vae_encode(init images)
             k = min(int(steps * strength), steps);  start at the (steps - k)-th timestep t_s
             x_{t_s} = add_noise(z_0, z, t_s)
    each t:  eps_u, eps_c = unet(scale_model_input([x, x]), t, [uncond, context])
             eps = eps_u + guidance (eps_c - eps_u);  x = step(eps, t, x)
    images   = vae_decode(x / scaling)  -> (images / 2 + 0.5) clipped to [0, 1] -> uint8 (rounded)

Noise is injected: `noise_fn(kind, step, shape)` returns the batch's standard normal draws for
"latents" (z), "encode" (n) and "step" (a scheduler's variance noise at step i). The default
draws image i's noise from the counter-based stream of its own seed (gan_diffusion/noise.py),
so an image depends on its prompt and seed only, never on what else is in the batch; a test
passes diffusers' torch-generator draws instead.
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from gan_diffusion import noise
from gan_diffusion.errors import ConfigError
from gan_diffusion.schedulers import guided_noise, strength_timesteps

# noise_fn(kind, step, shape of the whole batch) -> float32 standard normal draws
NoiseFn = Callable[[str, int, tuple[int, ...]], np.ndarray]
NOISE_STREAMS = {"latents": "sd_latents", "encode": "sd_encode", "step": "sd_step"}


class SDComponents(Protocol):
    def encode_text(self, ids: np.ndarray) -> np.ndarray: ...
    def unet(self, latents: np.ndarray, t: np.ndarray, context: np.ndarray) -> np.ndarray: ...
    def vae_encode(self, images: np.ndarray) -> np.ndarray: ...
    def vae_decode(self, latents: np.ndarray) -> np.ndarray: ...


@dataclasses.dataclass
class SDRequest:
    """One batch to generate: B prompts (one per image), their seeds, and the settings.

    Attributes:
        prompts, negative_prompts: B strings each ("" is no negative prompt).
        seeds: B integers; image i's noise comes from seeds[i].
        size: (height, width) in pixels.
        steps: scheduler steps (img2img runs int(steps * strength) of them).
        guidance: classifier-free guidance weight (diffusers' guidance_scale; <= 1: none).
        init_images: img2img only: (B, H, W, 3) float32 in [-1, 1] at `size`.
        strength: img2img only: how much noise to add, in (0, 1].
    """

    prompts: list[str]
    negative_prompts: list[str]
    seeds: list[int]
    size: tuple[int, int] = (512, 512)
    steps: int = 25
    guidance: float = 7.5
    init_images: np.ndarray | None = None
    strength: float = 0.8

    def __post_init__(self) -> None:
        b = len(self.prompts)
        if b == 0:
            raise ConfigError("no prompt given: pass at least one prompt (an empty string "
                              "\"\" is an unconditional prompt)")
        if len(self.negative_prompts) != b or len(self.seeds) != b:
            raise ConfigError(f"{b} prompts need {b} negative prompts and {b} seeds, got "
                              f"{len(self.negative_prompts)} and {len(self.seeds)}")
        if not isinstance(self.steps, (int, np.integer)) or self.steps < 1:
            raise ConfigError(f"steps must be a positive integer, got {self.steps!r}")
        if self.init_images is not None:
            if not 0 < self.strength <= 1:
                raise ConfigError(f"strength must be in (0, 1] (the fraction of the steps "
                                  f"image-to-image runs), got {self.strength!r}")
            if self.init_images.shape != (b, *self.size, 3):
                raise ConfigError(f"init images must be {(b, *self.size, 3)} (B, H, W, 3), got "
                                  f"{self.init_images.shape}")


@dataclasses.dataclass
class SDResult:
    """What a generation made and cost."""

    images: np.ndarray                 # (B, H, W, 3) uint8
    latents: np.ndarray                # (B, h, w, 4) the final (scaled) latents
    decoded: np.ndarray                # (B, H, W, 3) float32, the decoder's output
    timesteps: list[float]             # the timesteps visited (ints but for Euler)
    seconds: dict[str, float]          # text, encode, unet (all steps), decode, total
    truncated: list[str]               # prompt text cut off at 77 tokens, per prompt ("" if none)
    negative_truncated: list[str] = dataclasses.field(default_factory=list)  # the same, negatives


def seeded_noise(seeds: Sequence[int]) -> NoiseFn:
    """The default noise: image i's draws from the counter-based streams of seeds[i]."""
    def draw(kind: str, step: int, shape: tuple[int, ...]) -> np.ndarray:
        one = tuple(shape[1:])
        return np.stack([noise.normal(int(s), NOISE_STREAMS[kind], step, one) for s in seeds])

    return draw


def img2img_timesteps(scheduler: Any, steps: int, strength: float) -> np.ndarray:
    """diffusers' image-to-image timesteps: the last min(int(steps * strength), steps) of the
    scheduler's `steps` (schedulers.strength_timesteps; set_timesteps is called here)."""
    scheduler.set_timesteps(steps)
    timesteps = np.asarray(strength_timesteps(scheduler, strength))
    if len(timesteps) == 0:
        raise ConfigError(f"strength {strength} with {steps} steps leaves no step to run "
                          f"(int(steps * strength) = 0): raise --strength or --steps")
    return timesteps


def tokenize(tokenizer: Any, prompts: list[str]) -> tuple[np.ndarray, list[str]]:
    """Token ids (B, 77) and the text each prompt lost to truncation (with diffusers' warning)."""
    out = tokenizer(prompts)
    cut = [t or "" for t in out.truncated_text]
    for text in cut:
        if text:
            warnings.warn("The following part of your input was truncated because CLIP can only "
                          f"handle sequences up to {tokenizer.max_length} tokens: {text}",
                          stacklevel=3)
    return np.asarray(out.ids, np.int64), cut


def generate(components: SDComponents, tokenizer: Any, scheduler: Any, request: SDRequest,
             scaling: float = 0.18215, vae_scale: int = 8, latent_channels: int = 4,
             noise_fn: NoiseFn | None = None, progress: bool | None = None,
             callback: Callable[[int, int, np.ndarray], None] | None = None) -> SDResult:
    """Run one text-to-image (init_images None) or image-to-image batch.

    Args:
        components: a backend's networks (encode_text, unet, vae_encode, vae_decode).
        tokenizer: sd.tokenizer.CLIPTokenizer of the weights.
        scheduler: a NumPy scheduler (gan_diffusion.schedulers) built from the checkpoint's
            scheduler config.
        request: prompts, seeds, size, steps, guidance, init images and strength.
        scaling: the VAE latent scaling factor (0.18215 for SD 1.x/2.x).
        noise_fn: injected noise (default: `seeded_noise(request.seeds)`).
        progress: a tqdm bar over the steps (None: only on a terminal).
        callback: callback(i, t, latents) after each step.
    """
    from tqdm.auto import tqdm

    r = request
    b, (h, w) = len(r.prompts), r.size
    for side in (h, w):
        if side % vae_scale:
            raise ConfigError(f"image size {h}x{w} is not a multiple of {vae_scale}: use e.g. "
                              f"{max(vae_scale, side // vae_scale * vae_scale)}")
    shape = (b, h // vae_scale, w // vae_scale, latent_channels)
    noise_fn = noise_fn or seeded_noise(r.seeds)
    seconds = dict.fromkeys(("text", "encode", "unet", "decode"), 0.0)
    start = time.perf_counter()

    ids, truncated = tokenize(tokenizer, r.prompts)
    guided = r.guidance > 1
    t0 = time.perf_counter()
    context = components.encode_text(ids)                                   # (B, 77, D)
    neg_truncated: list[str] = []
    if guided:
        neg_ids, neg_truncated = tokenize(tokenizer, r.negative_prompts)
        context = np.concatenate([components.encode_text(neg_ids), context])   # [uncond, cond]
    seconds["text"] = time.perf_counter() - t0

    if r.init_images is None:
        scheduler.set_timesteps(r.steps)
        timesteps = np.asarray(scheduler.timesteps)
        x = (noise_fn("latents", 0, shape) * np.float32(scheduler.init_noise_sigma)).astype(np.float32)
    else:
        timesteps = img2img_timesteps(scheduler, r.steps, r.strength)
        t0 = time.perf_counter()
        moments = components.vae_encode(np.asarray(r.init_images, np.float32))   # (B, h, w, 8)
        seconds["encode"] = time.perf_counter() - t0
        mean, logvar = np.split(moments, 2, axis=-1)
        std = np.exp(0.5 * np.clip(logvar, -30.0, 20.0))
        z0 = np.float32(scaling) * (mean + std * noise_fn("encode", 0, mean.shape))
        x = np.asarray(scheduler.add_noise(z0.astype(np.float32), noise_fn("latents", 0, shape),
                                           timesteps[0].item()), np.float32)

    bar = tqdm(timesteps, desc="sd sampling", leave=False,
               disable=None if progress is None else not progress)
    for i, t in enumerate(bar):
        t = t.item()       # int, or float for Euler's interpolated timesteps
        x_in = np.concatenate([x, x]) if guided else x
        x_in = np.asarray(scheduler.scale_model_input(x_in, t), np.float32)
        t0 = time.perf_counter()
        eps = components.unet(x_in, np.full(len(x_in), t), context)
        seconds["unet"] += time.perf_counter() - t0
        if guided:
            eps_u, eps_c = np.split(eps, 2)
            eps = guided_noise(eps_c, eps_u, np.float32(r.guidance))   # eps_u + w (eps_c - eps_u)
        var = noise_fn("step", i, shape) if scheduler.needs_noise(t) else None
        x = np.asarray(scheduler.step(eps, t, x, variance_noise=var).prev_sample, np.float32)
        if callback is not None:
            callback(i, t, x)

    t0 = time.perf_counter()
    decoded = components.vae_decode(x / np.float32(scaling))
    seconds["decode"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - start
    images = np.round(np.clip(decoded / 2 + 0.5, 0, 1) * 255).astype(np.uint8)
    return SDResult(images, x, decoded, timesteps.tolist(), seconds, truncated, neg_truncated)


def to_model_images(images: np.ndarray) -> np.ndarray:
    """uint8 (B, H, W, 3) -> float32 in [-1, 1], as diffusers' VaeImageProcessor does it
    (x / 255, then 2x - 1, in float32)."""
    return np.float32(2.0) * (np.asarray(images, np.float32) / np.float32(255.0)) - np.float32(1.0)
