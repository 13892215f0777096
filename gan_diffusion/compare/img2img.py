"""`sd-img2img`: Stable Diffusion image-to-image as an evaluation-only model of `compare`.

It trains nothing. Each run builds a Stable Diffusion weight set on its backend (the
registry's "sd-v1" or "sd-v2", gan_diffusion/families/stable_diffusion.py). It then edits n_eval
real images of the evaluation split, with one prompt per image made from the image's class.
The outputs are resized back to the comparison's image size and scored like any model's
samples. This is the EuroSAT study's "SD" column (docs/compare.md):

    gan-diffusion compare --models wgan-gp,sd-img2img --dataset eurosat \
        --set sd-img2img.weights=models/stable-diffusion-v1-5 --set sd-img2img.strength=0.6

The inputs are real images that the reference set (OUT/reference.npz) does not hold when the
split is large enough: positions n_eval .. 2 n_eval - 1 of the reference's seeded permutation.
Otherwise they wrap around, and that is recorded as `overlap` in the run's record. Image i
of seed k is drawn with seed EVAL_SEED + k * n_eval + i, so seeds differ only by the
diffusion noise.

Settings (`--set sd-img2img.FIELD=VALUE`; the defaults are those of `gan-diffusion sd img2img`):
    sd_model         "sd-v1" or "sd-v2"
    weights          a diffusers folder, a single file (with tokenizer), or random:SEED
    tokenizer        the CLIP BPE folder for a single file
    prompt           template; "{class}" is the class name in words ("AnnualCrop" -> "annual crop")
    negative_prompt  one string for every image
    strength, steps, guidance, scheduler   as `gan-diffusion sd img2img`
    size             SD's working side in pixels (inputs are upscaled to it, outputs are
                     downscaled back with PIL BICUBIC)
    batch_size       images per `sample()` call
"""
from __future__ import annotations

import dataclasses
import re
import string
from typing import Any, ClassVar

import numpy as np

from gan_diffusion.configs import Config, check_choice, check_positive
from gan_diffusion.errors import ConfigError

NAME = "sd-img2img"
SD_MODELS = ("sd-v1", "sd-v2")


@dataclasses.dataclass
class Img2ImgConfig(Config):
    """The settings of the `sd-img2img` evaluation model (see the module docstring)."""

    model: ClassVar[str] = NAME

    sd_model: str = "sd-v1"
    weights: str = "random:0"
    tokenizer: str = ""
    prompt: str = "a satellite image of {class}"
    negative_prompt: str = ""
    strength: float = 0.8
    steps: int = 25
    guidance: float = 7.5
    scheduler: str = "ddim"
    size: int = 512
    batch_size: int = 4

    def validate(self) -> None:
        from gan_diffusion.sd.config import SCHEDULERS

        check_choice(self, "sd_model", SD_MODELS)
        check_choice(self, "scheduler", SCHEDULERS)
        check_positive(self, "steps", "size", "batch_size")
        if not 0.0 < self.strength <= 1.0:
            raise ConfigError(f"sd-img2img strength must be in (0, 1], got {self.strength}")
        if self.size % 8:
            raise ConfigError(f"sd-img2img size must be a multiple of 8 (the VAE's factor), got "
                              f"{self.size}")
        if not self.weights:
            raise ConfigError("sd-img2img weights must name a checkpoint folder, a single file or "
                              "random:SEED")
        fields = {f for _, f, _, _ in string.Formatter().parse(self.prompt) if f is not None}
        if fields - {"class"}:
            raise ConfigError(f"sd-img2img prompt {self.prompt!r} has placeholder(s) "
                              f"{sorted(fields - {'class'})}; only {{class}} is filled in")


    def check(self) -> "Img2ImgConfig":
        """Refuse, before any run starts, weights that are missing or partial (the messages
        of `gan-diffusion sd`, sd/checkpoint.check_weight_spec). Reads no weight array."""
        from gan_diffusion.sd.checkpoint import check_weight_spec

        check_weight_spec(self.weights, self.sd_model, self.tokenizer or None)
        return self


def class_words(name: str) -> str:
    """A class folder name in words: "AnnualCrop" -> "annual crop", "sea_lake" -> "sea lake"."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name.replace("_", " ").replace("-", " "))
    return " ".join(spaced.lower().split())


def prompts(config: Img2ImgConfig, labels: np.ndarray | None, class_names: list[str] | None
            ) -> list[str]:
    """One prompt per image. Without class names, "{class}" is refused."""
    if "{class}" not in config.prompt:
        return [config.prompt] * (0 if labels is None else len(labels))
    if labels is None or not class_names:
        raise ConfigError(f"sd-img2img prompt {config.prompt!r} names the class, but the "
                          "evaluation data have no class names; give a prompt without {class} "
                          "(--set sd-img2img.prompt=...)")
    return [config.prompt.replace("{class}", class_words(class_names[int(y)])) for y in labels]


def input_indices(n_total: int, n_eval: int) -> tuple[np.ndarray, bool]:
    """Indices of the images to edit, disjoint from the reference subset where possible.

    The reference set is permutation(n_total)[:n_eval] of default_rng(0) (compare/runner.py).
    The inputs are the next n_eval positions, wrapping around. Returns (indices, overlap).
    """
    perm = np.random.default_rng(0).permutation(n_total)
    pos = (n_eval + np.arange(n_eval)) % n_total
    return np.sort(perm[pos]), 2 * n_eval > n_total


def run_img2img(config: Img2ImgConfig, backend_name: str, data: Any, n_eval: int, seed: int,
                threads: int | None, out_size: tuple[int, int], seed_base: int
                ) -> tuple[np.ndarray, dict[str, Any]]:
    """Edit `n_eval` images of `data` (an ArrayDataset) with SD on `backend_name`.

    Returns:
        (uint8 (n_eval, H, W, C) at out_size with data's channels, the record: settings,
        weights id, inputs, timings, versions, machine, load and threads).
    """
    import time
    import warnings

    import gan_diffusion
    from PIL import Image

    from gan_diffusion.data.folders import resize_image
    from gan_diffusion.runinfo import run_info

    idx, overlap = input_indices(len(data), n_eval)
    images = data.images[idx]                                     # (n, h, w, C) uint8
    labels = None if data.labels is None else data.labels[idx]
    texts = prompts(config, labels, data.class_names) or [config.prompt] * len(idx)
    backend = gan_diffusion.get_backend(backend_name)
    thread_info = backend.set_threads(threads) if threads else None
    t0 = time.perf_counter()
    sd = backend.build(config.sd_model, weights=config.weights, tokenizer=config.tokenizer,
                       scheduler=config.scheduler)
    build_s = time.perf_counter() - t0
    rgb = images if images.shape[-1] == 3 else np.repeat(images, 3, axis=-1)
    outs, notes, t1 = [], [], time.perf_counter()
    for s in range(0, len(idx), config.batch_size):
        e = min(s + config.batch_size, len(idx))
        with warnings.catch_warnings():      # truncated prompts are kept in sd.notes
            warnings.simplefilter("ignore", UserWarning)
            outs.append(sd.sample(e - s, seed=[seed_base + seed * n_eval + i for i in range(s, e)],
                                  prompt=texts[s:e], negative_prompt=config.negative_prompt,
                                  init_image=list(rgb[s:e]), strength=config.strength,
                                  steps=config.steps, guidance=config.guidance, size=config.size,
                                  progress=False))
        notes += sd.notes
    sample_s = time.perf_counter() - t1
    edited = np.concatenate(outs)                                 # (n, size, size, 3) uint8
    h, w = out_size
    back = np.stack([np.asarray(resize_image(Image.fromarray(im), (h, w))) for im in edited])
    if images.shape[-1] == 1:                                     # PIL's L: ITU-R 601-2 luma
        back = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in back])[..., None]
    record = {"config": config.to_dict(), "weights_id": sd.weights_id, "weights": sd.source,
              "inputs": {"indices": idx.tolist(), "overlap_with_reference": bool(overlap),
                         "prompts": sorted(set(texts))},
              "seconds": {"build": build_s, "sample": sample_s},
              "notes": sorted(set(notes)), **run_info(backend, thread_info)}
    return back.astype(np.uint8), record
