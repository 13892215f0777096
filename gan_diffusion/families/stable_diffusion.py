"""Stable Diffusion as a library model: a `Generator` and `Sampler` (protocols.py), not a
trainer. Framework-free: a backend's `build(config)` reads the weight set (sd/checkpoint.py),
builds its networks as an `SDComponents` object and wraps them here; sampling is the one NumPy
loop of sd/pipeline.py, so both backends run the same arithmetic around their networks.

Example:
    >>> sd = gan_diffusion.get_backend("torch").build("sd-v1", weights="random:0")
    >>> images = sd.sample(2, seed=0, prompt="a photo of a cat", steps=25, size=512)
    >>> edited = sd.sample(1, seed=0, prompt="a painting", init_image="photo.png", strength=0.6)
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gan_diffusion.errors import ConfigError
from gan_diffusion.sd import pipeline
from gan_diffusion.sd.weightset import SDWeights
from gan_diffusion.sd.config import SCHEDULERS, SDConfig

ImageInput = Any   # a path, a PIL image, a uint8 (H, W, 3) / (B, H, W, 3) array, or a list of them


class StableDiffusionModel:
    """One Stable Diffusion weight set on one backend.

    Attributes:
        config: the SDConfig it was built from.
        arch: the architecture (sd/architectures.py) of the weights.
        components: the backend's networks (NumPy in and out).
        tokenizer: the CLIP tokenizer of the weights (sd/tokenizer.py).
        weights_id: "random:SEED" or the checkpoint's digest, for records.
        notes: what the last `sample` changed about its inputs (resized or converted images,
            truncated prompts), one line each.
    """

    backend_name = ""

    def __init__(self, config: SDConfig, weight_set: SDWeights, components: Any):
        from gan_diffusion.sd.tokenizer import CLIPTokenizer

        self.config, self.arch, self.components = config, weight_set.arch, components
        self.source = weight_set.source
        self.weights_id = weight_set.id
        self.tokenizer = (CLIPTokenizer.stand_in() if weight_set.tokenizer_dir is None
                          else CLIPTokenizer.from_folder(weight_set.tokenizer_dir))
        self.notes: list[str] = []
        self.last_result: pipeline.SDResult | None = None

    # -- Generator ----------------------------------------------------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        """The canonical weights (the checkpoint's own keys and torch shapes)."""
        return self.components.get_weights()

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        from gan_diffusion.sd.weightset import check_weights

        check_weights(weights, self.arch, "set_weights", self.config.model)
        self.components.set_weights(weights)

    # -- the scheduler ------------------------------------------------------------------
    def make_scheduler(self, name: str | None = None, eta: float | None = None) -> Any:
        """Our NumPy scheduler `name` (default: the config's) on the checkpoint's schedule."""
        from gan_diffusion.schedulers import scheduler_from_config

        name = name or self.config.scheduler
        if name not in SCHEDULERS:
            raise ConfigError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
        eta = self.config.eta if eta is None else eta
        return scheduler_from_config(self.arch.scheduler, class_name=SCHEDULERS[name],
                                     **({"eta": eta} if eta else {}))

    # -- Sampler ------------------------------------------------------------------------
    def sample(self, n: int = 1, seed: int | Sequence[int] = 0, labels: Any = None,
               prompt: str | Sequence[str] = "", negative_prompt: str | Sequence[str] = "",
               init_image: ImageInput = None, strength: float = 0.8, steps: int = 25,
               guidance: float = 7.5, size: int | tuple[int, int] = 512,
               scheduler: str | None = None, progress: bool | None = None,
               noise_fn: pipeline.NoiseFn | None = None) -> np.ndarray:
        """n images (uint8 (n, H, W, 3)) for the prompt(s); img2img when init_image is given.

        Args:
            n: images to make (a list of prompts or seeds of length n, or one of each for all).
            seed: one seed (image i takes seed + i) or n seeds.
            labels: not used (Stable Diffusion is conditioned on text); must be None.
            prompt, negative_prompt: one string for all images or n strings.
            init_image: image-to-image input (file, PIL image, uint8 array, or n of them);
                resized to `size` and converted to RGB where needed (said in `notes`).
            strength: image-to-image: the fraction of the steps to run, in (0, 1].
            steps: scheduler steps; guidance: classifier-free guidance weight (1: none).
            size: pixels, one side or (height, width); a multiple of 8.
            scheduler: override the config's scheduler name for this call.
            noise_fn: injected noise (sd/pipeline.py), e.g. to match another implementation.
        """
        if labels is not None:
            raise ConfigError("Stable Diffusion is conditioned on text: pass prompt=, not labels=")
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ConfigError(f"n must be a positive integer, got {n!r}")
        hw = (size, size) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
        self.notes = []
        prompts = _per_image(prompt, n, "prompt")
        request = pipeline.SDRequest(
            prompts=prompts, negative_prompts=_per_image(negative_prompt, n, "negative_prompt"),
            seeds=_seeds(seed, n), size=hw, steps=steps, guidance=float(guidance),
            init_images=None if init_image is None else self._init_images(init_image, n, hw),
            strength=float(strength))
        result = pipeline.generate(self.components, self.tokenizer, self.make_scheduler(scheduler),
                                   request, scaling=self.arch.scaling_factor,
                                   vae_scale=self.arch.vae_scale_factor,
                                   latent_channels=self.arch.latent_channels,
                                   noise_fn=noise_fn, progress=progress)
        self.notes += [f"prompt {i}: truncated to {self.tokenizer.max_length} tokens, dropped: "
                       f"{cut!r}" for i, cut in enumerate(result.truncated) if cut]
        self.notes += [f"negative prompt {i}: truncated to {self.tokenizer.max_length} tokens, "
                       f"dropped: {cut!r}" for i, cut in enumerate(result.negative_truncated) if cut]
        self.last_result = result
        return result.images

    def _init_images(self, image: ImageInput, n: int, size: tuple[int, int]) -> np.ndarray:
        """Init images as float32 (n, H, W, 3) in [-1, 1] at `size` (noted when changed)."""
        from gan_diffusion.utils.images import load_init_images

        images, notes = load_init_images(image, n, size)
        self.notes += notes
        return pipeline.to_model_images(images)


def _per_image(value: str | Sequence[str], n: int, name: str) -> list[str]:
    if isinstance(value, str):
        return [value] * n
    values = list(value)
    if not values:
        raise ConfigError(f"the {name} list is empty: give one {name} for all images or one "
                          f"per image ({n})")
    if len(values) == 1:
        return values * n
    if len(values) != n or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{name} must be one string or {n} strings (one per image), got "
                          f"{len(values)} values")
    return values


def _seeds(seed: int | Sequence[int], n: int) -> list[int]:
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return [int(seed) + i for i in range(n)]
    seeds = [int(s) for s in seed]
    if len(seeds) != n:
        raise ConfigError(f"give one seed or {n} seeds, got {len(seeds)}")
    return seeds

