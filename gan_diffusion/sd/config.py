"""The typed config of the Stable Diffusion models ("sd-v1", "sd-v2") in the registry.

Unlike the trainable models, Stable Diffusion's architecture is not chosen by config fields:
it is the one its weights were trained with, read from the checkpoint folder's config.json
files (sd/architectures.py; random weights take the published architecture of the model).
The config says which weights, in which dtype, with which scheduler.

Example:
    >>> be.build("sd-v1", weights="random:0")                       # seeded, full size
    >>> be.build("sd-v1", weights="models/stable-diffusion-v1-4", scheduler="pndm")
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from gan_diffusion.configs import Config, check_choice
from gan_diffusion.errors import ConfigError

SD_DTYPES = ("float32", "bfloat16", "float16")
# image sides must be multiples of these: the VAE's 8, and for keras-cv's U-Net (whose skip
# concatenations need latents divisible by 8) 64
SIZE_MULTIPLE = {"torch": 8, "tf": 64}
# sampler names -> diffusers scheduler classes; "checkpoint": the folder's own scheduler
SCHEDULERS = {"ddim": "DDIMScheduler", "pndm": "PNDMScheduler", "euler": "EulerDiscreteScheduler",
              "ddpm": "DDPMScheduler", "checkpoint": None}


@dataclasses.dataclass
class SDConfig(Config):
    """Stable Diffusion v1.x (CLIP ViT-L/14 text encoder, 860 M-parameter U-Net).

    Fields:
        weights: "random:SEED" (the full-size architecture with seeded random weights,
            sd/layout.py), a diffusers checkpoint folder, or a CompVis single file.
        tokenizer: for a single file only (which holds none): a folder with the CLIP BPE
            files vocab.json and merges.txt; "" otherwise.
        dtype: the networks' dtype (float16 where the backend and device run it).
        scheduler: ddim (default, deterministic with eta 0), pndm (SD v1's own default),
            euler, ddpm, or "checkpoint" (the folder's scheduler_config.json class); the
            noise schedule always comes from the checkpoint's scheduler config.
        eta: DDIM's eta (0: deterministic).
        jit_compile: XLA for the TensorFlow models, torch.compile for the U-Net.
        device: torch: "cpu", "cuda" or "cuda:N"; TensorFlow places its ops itself (a visible
            GPU is used when the GPU build of TensorFlow is installed), so it takes "cpu" only.
    """

    model: ClassVar[str] = "sd-v1"

    weights: str = "random:0"
    tokenizer: str = ""
    dtype: str = "float32"
    scheduler: str = "ddim"
    eta: float = 0.0
    jit_compile: bool = False
    device: str = "cpu"

    def validate(self) -> None:
        if not (self.device == "cpu" or self.device == "cuda" or
                (self.device.startswith("cuda:") and self.device[5:].isdigit())):
            raise ConfigError(f"device must be cpu, cuda or cuda:N, got {self.device!r}")
        check_choice(self, "dtype", SD_DTYPES)
        check_choice(self, "scheduler", SCHEDULERS)
        if not self.eta >= 0:
            raise ConfigError(f"eta must be >= 0, got {self.eta!r}")
        if self.eta and self.scheduler != "ddim":
            raise ConfigError("eta applies to the ddim scheduler only")
        if not self.weights:
            raise ConfigError("weights must name a checkpoint folder, a .ckpt/.safetensors "
                              "file or random:SEED")


@dataclasses.dataclass
class SDV2Config(SDConfig):
    """Stable Diffusion 2.x-base (OpenCLIP ViT-H/14 text encoder, linear projections)."""

    model: ClassVar[str] = "sd-v2"
