"""DDPM / DDIM with a U-Net noise predictor: the typed config (framework-free).

Defaults: Ho et al. (2020) where they fit a small CPU budget (linear schedule, T = 1000,
L_simple, clipped x_0 predictions, fixed_small variance), a smaller U-Net sized for 28x28
MNIST (base 32 channels, multipliers (1, 2, 2): 28 -> 14 -> 7, self-attention at 7x7),
classifier-free guidance of Ho & Salimans (2021) when num_classes > 0.
See docs/diffusion.md.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from gan_diffusion.configs import (Config, TrainConfig, check_choice, check_image_shape,
                                   check_num_classes, check_positive)
from gan_diffusion.errors import ConfigError
from gan_diffusion.schedulers import SAMPLERS, SCHEDULES, SPACINGS, VARIANCE_TYPES

SIZES = (16, 28, 32, 64)   # 16: tiny test models
MODEL_FILE, SCHEDULER_FILE = "model_config.json", "scheduler_config.json"


@dataclasses.dataclass
class UNetConfig(Config):
    """The U-Net noise predictor and its conditioning (the first part of `DDPMConfig`).

    Attributes:
        image_shape: (H, W, C); H = W in SIZES, C 1 or 3.
        base_channels: U-Net width at full resolution (ch).
        channel_mults: width multiplier per resolution level; one stride-2 downsampling
            between levels, so H must be divisible by 2^(levels - 1) (28: at most 3 levels,
            28 -> 14 -> 7).
        num_res_blocks: residual blocks per level on the way down (up: one more).
        attention_resolutions: spatial sizes with self-attention; () = the lowest only.
        dropout: dropout in the residual blocks (framework RNG: parity needs 0).
        norm_groups, norm_epsilon: GroupNorm groups (must divide every width) and epsilon
            (torch's 1e-5 in both backends; Keras' default is 1e-3).
        num_classes: 0, or the classes of a class-conditional model (plus one null class).
        label_dropout: probability of training on the null class (classifier-free guidance).
        guidance: default guidance weight w for conditional sampling (eps_u + w (eps_c - eps_u);
            1 = no guidance).
    """

    image_shape: tuple[int, int, int] = (28, 28, 1)
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attention_resolutions: tuple[int, ...] = ()
    dropout: float = 0.0
    norm_groups: int = 8
    norm_epsilon: float = 1e-5
    num_classes: int = 0
    label_dropout: float = 0.1
    guidance: float = 2.0

    def validate(self) -> None:
        super().validate()
        self.image_shape = check_image_shape(self.image_shape, SIZES)
        check_positive(self, "base_channels", "num_res_blocks", "norm_groups", "norm_epsilon")
        side = self.image_shape[0]
        mults = tuple(int(m) for m in self.channel_mults)
        if not mults or min(mults) < 1:
            raise ConfigError(f"ddpm config field channel_mults must be positive integers, got "
                              f"{self.channel_mults!r}")
        self.channel_mults = mults
        if self.base_channels % 2:
            raise ConfigError(f"ddpm base_channels must be even (sinusoidal time features come in "
                              f"sin/cos pairs), got {self.base_channels}")
        if side % 2 ** (len(mults) - 1):
            raise ConfigError(f"ddpm: {len(mults)} levels halve the image {len(mults) - 1} times, but "
                              f"{side} is not divisible by {2 ** (len(mults) - 1)}; use fewer "
                              "channel_mults (28x28: at most 3 levels, 28 -> 14 -> 7)")
        sizes = [side >> i for i in range(len(mults))]
        self.attention_resolutions = tuple(int(r) for r in self.attention_resolutions) or (sizes[-1],)
        bad = sorted(set(self.attention_resolutions) - set(sizes))
        if bad:
            raise ConfigError(f"ddpm attention_resolutions {bad} are not among the U-Net's sizes {sizes}")
        widths = {self.base_channels * m for m in mults}
        if any(w % self.norm_groups for w in widths):
            raise ConfigError(f"ddpm norm_groups {self.norm_groups} must divide every width "
                              f"{sorted(widths)} (base_channels x channel_mults)")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.label_dropout < 1.0:
            raise ConfigError("ddpm dropout and label_dropout must be in [0, 1)")
        check_num_classes(self)

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def null_label(self) -> int:
        """The label of the unconditional ("null") class: num_classes."""
        return self.num_classes


@dataclasses.dataclass
class DDPMSchedulerConfig(Config):
    """The noise schedule and the default sampler: what diffusers keeps in a scheduler's
    scheduler_config.json (the second part of `DDPMConfig`; docs/diffusion.md).

    Attributes:
        schedule, timesteps, beta_start, beta_end: noise schedule ("linear" or "cosine").
        variance_type, clip_sample, timestep_spacing: sampler settings.
        sampler, sample_steps: the default sampler and its steps for sample() and previews.
        eta: the default DDIM noise for sample() and previews: 0 deterministic, 1 as much
            noise as DDPM (added after 0.1.0; records without it load as 0, as they sampled).
    """

    model: ClassVar[str] = "ddpm-scheduler"

    schedule: str = "linear"
    timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    variance_type: str = "fixed_small"
    clip_sample: bool = True
    timestep_spacing: str = "leading"
    sampler: str = "ddim"
    sample_steps: int = 50
    eta: float = 0.0

    def validate(self) -> None:
        super().validate()
        check_positive(self, "timesteps", "sample_steps")
        if self.eta < 0.0:
            raise ConfigError(f"ddpm eta must be >= 0 (0: deterministic DDIM), got {self.eta!r}")
        if self.eta and self.sampler != "ddim":
            raise ConfigError(f"ddpm eta applies to the DDIM sampler only, not {self.sampler!r} "
                              "(DDPM's noise is fixed by variance_type)")
        for name, choices in (("schedule", SCHEDULES), ("variance_type", VARIANCE_TYPES),
                              ("timestep_spacing", SPACINGS), ("sampler", SAMPLERS)):
            check_choice(self, name, choices)
        if self.sample_steps > self.timesteps:
            raise ConfigError(f"ddpm sample_steps {self.sample_steps} exceeds timesteps {self.timesteps}")
        if not 0.0 < self.beta_start < self.beta_end < 1.0:
            raise ConfigError("ddpm needs 0 < beta_start < beta_end < 1")


@dataclasses.dataclass
class EMAConfig(Config):
    """EMA of the weights for sampling; with warmup the k-th update (k = 0, 1, ...) uses
    min(ema_decay, (1 + k) / (10 + k))."""

    ema_decay: float = 0.999
    ema_warmup: bool = True

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ddpm ema_decay must be in [0, 1), got {self.ema_decay!r}")


@dataclasses.dataclass
class DDPMConfig(TrainConfig, EMAConfig, DDPMSchedulerConfig, UNetConfig):
    """DDPM hyper-parameters, in four parts (fields in this order): `UNetConfig`,
    `DDPMSchedulerConfig`, `EMAConfig`, then `TrainConfig` (optimizer and loader; Adam
    with lr 5e-4).

    `save()` writes one JSON file (checkpoints and runs keep that); `save_parts()` writes a
    model config and a scheduler config as diffusers does, which `load_parts()` reads.
    """

    model: ClassVar[str] = "ddpm"

    learning_rate: float = 5e-4

    def scheduler_config(self) -> DDPMSchedulerConfig:
        """The schedule and sampler fields, as a config of their own."""
        return DDPMSchedulerConfig(**{f.name: getattr(self, f.name)
                                      for f in dataclasses.fields(DDPMSchedulerConfig)})

    def model_config(self) -> dict[str, Any]:
        """`to_dict()` without the scheduler's fields (the U-Net, EMA and training ones)."""
        scheduler = {f.name for f in dataclasses.fields(DDPMSchedulerConfig)}
        return {k: v for k, v in self.to_dict().items() if k not in scheduler}

    def save_parts(self, directory: str | os.PathLike) -> None:
        """Write `directory`/model_config.json and `directory`/scheduler_config.json."""
        from gan_diffusion.utils.io import atomic_write_json

        Path(directory).mkdir(parents=True, exist_ok=True)
        atomic_write_json(Path(directory) / MODEL_FILE, self.model_config())
        self.scheduler_config().save(Path(directory) / SCHEDULER_FILE)

    @classmethod
    def load_parts(cls, directory: str | os.PathLike) -> DDPMConfig:
        """Read the two files `save_parts` writes."""
        scheduler = DDPMSchedulerConfig.load(Path(directory) / SCHEDULER_FILE).to_dict()
        scheduler.pop("model")
        return cls.from_dict({**json.loads((Path(directory) / MODEL_FILE).read_text()), **scheduler})
