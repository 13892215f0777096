"""Latent diffusion (Rombach et al. 2022) at small sizes: the typed config, the two networks'
specs and the canonical weights per stage (framework-free). See docs/ldm.md.

Two stages, one model family ("ldm"), the stage a config field:

    autoencoder  a KL autoencoder (models/kl_autoencoder.py) trained on the images:
                 weights "ae/..."; optimizer "ae" (Adam, ae_learning_rate)
    diffusion    a latent U-Net (models/unet.py, with cross-attention on label tokens when
                 num_classes > 0) trained on the frozen autoencoder's scaled latents
                 z = latent_scale * mean(q(z | x)), with DDPM's L_simple, EMA and schedulers:
                 weights "ae/..." (frozen, copied from the autoencoder stage), "unet/...",
                 "ema/..."; optimizer "unet" (learning_rate)

latent_scale = 1 / std of the autoencoder's latent means over the training images, computed
once when the diffusion stage starts and recorded in the config with the sha256 of the
autoencoder's weights (autoencoder_sha256, gan_diffusion.checkpoint.weights_digest).

Shapes for the defaults on 28x28x1 (f = 4): images (N, 28, 28, 1) -> latents (N, 7, 7, 4);
the U-Net on 7x7x4 has one level (7 is odd); on 32x32 images latents are 8x8x4 and the
U-Net has two levels (8 -> 4).
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from gan_diffusion.configs import (Config, TrainConfig, check_choice, check_image_shape,
                                   check_num_classes, check_positive)
from gan_diffusion.errors import ConfigError
from gan_diffusion.models.ddpm import DDPMSchedulerConfig, EMAConfig
from gan_diffusion.models.kl_autoencoder import (RECON_LOSSES, AutoencoderSpec, autoencoder_params,
                                                 init_autoencoder)
from gan_diffusion.models.unet import NETWORKS, init_unet, unet_params

SIZES = (16, 28, 32, 64)
STAGES = ("autoencoder", "diffusion")
AE_NET = "ae"
# the fields that build the autoencoder: a diffusion stage's must equal its autoencoder's
AUTOENCODER_FIELDS = ("image_shape", "ae_channels", "ae_res_blocks", "ae_attention",
                      "latent_channels", "norm_groups", "norm_epsilon", "dtype")
# what a diffusion run's config copies from its autoencoder run's (gan_diffusion/stages.py)
AUTOENCODER_RECORD = AUTOENCODER_FIELDS + ("recon_loss", "kl_weight", "ae_learning_rate", "ae_epochs")


@dataclasses.dataclass
class AutoencoderConfig(Config):
    """The KL autoencoder and its training (the first part of `LDMConfig`).

    Attributes:
        image_shape: (H, W, C); H = W in SIZES, divisible by the factor.
        ae_channels: width per level; factor f = 2^(levels - 1): (32, 64, 64) -> 4,
            (32, 64, 64, 64) -> 8.
        ae_res_blocks: residual blocks per level (decoder: one more).
        ae_attention: self-attention in the middle of encoder and decoder (as SD).
        latent_channels: c, the latent's channels (4, as SD).
        recon_loss: "l1" (SD's) or "l2", summed over pixels.
        kl_weight: weight of the KL term (SD: 1e-6).
        ae_learning_rate: Adam's learning rate in the autoencoder stage.
        ae_epochs: epochs of the autoencoder stage in `train --stage both` (a lone
            `--stage autoencoder` run trains --epochs).
    """

    image_shape: tuple[int, int, int] = (28, 28, 1)
    ae_channels: tuple[int, ...] = (32, 64, 64)
    ae_res_blocks: int = 1
    ae_attention: bool = True
    latent_channels: int = 4
    recon_loss: str = "l1"
    kl_weight: float = 1e-6
    ae_learning_rate: float = 1e-3
    ae_epochs: int = 5

    def validate(self) -> None:
        super().validate()
        self.image_shape = check_image_shape(self.image_shape, SIZES)
        check_positive(self, "ae_res_blocks", "latent_channels", "ae_learning_rate", "ae_epochs")
        widths = tuple(int(w) for w in self.ae_channels)
        if len(widths) < 2 or min(widths) < 1:
            raise ConfigError(f"ldm ae_channels must be two or more positive widths (one per level; "
                              f"factor 2^(levels - 1)), got {self.ae_channels!r}")
        self.ae_channels = widths
        factor = 2 ** (len(widths) - 1)
        if self.image_shape[0] % factor:
            raise ConfigError(f"ldm: {len(widths)} autoencoder levels downsample by {factor}, but the "
                              f"image side {self.image_shape[0]} is not divisible by {factor}; use "
                              "fewer ae_channels (28x28: 3 levels, factor 4)")
        check_choice(self, "recon_loss", RECON_LOSSES)
        if not self.kl_weight >= 0:
            raise ConfigError(f"ldm kl_weight must be >= 0, got {self.kl_weight!r}")

    @property
    def factor(self) -> int:
        return 2 ** (len(self.ae_channels) - 1)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(H/f, W/f, c): the shape the U-Net works on."""
        side = self.image_shape[0] // self.factor
        return (side, side, self.latent_channels)


@dataclasses.dataclass
class LatentUNetConfig(Config):
    """The latent U-Net and its conditioning (the second part of `LDMConfig`): DDPM's U-Net
    fields (models/ddpm.py UNetConfig) on the latent shape, plus the cross-attention context.

    Attributes:
        base_channels, num_res_blocks, dropout: as DDPM's.
        channel_mults: width multiplier per level; () = automatic: (1, 2) when the latent side
            is even, else (1,) (7x7 latents of 28x28 images cannot be halved).
        attention_resolutions: latent sizes with self- (and cross-) attention; () = the lowest.
        norm_groups, norm_epsilon: GroupNorm of the U-Net and the autoencoder (groups divide
            every width of both).
        num_classes: 0, or the classes the U-Net is conditioned on through cross-attention.
        context_dim, context_tokens: the label context, Embedding(K + 1, T * D) reshaped to T
            tokens of width D.
        label_dropout, guidance: classifier-free guidance, as DDPM's.
    """

    base_channels: int = 64
    channel_mults: tuple[int, ...] = ()
    num_res_blocks: int = 1
    attention_resolutions: tuple[int, ...] = ()
    dropout: float = 0.0
    norm_groups: int = 8
    norm_epsilon: float = 1e-5
    num_classes: int = 0
    context_dim: int = 64
    context_tokens: int = 4
    label_dropout: float = 0.1
    guidance: float = 2.0

    def validate(self) -> None:
        super().validate()
        check_positive(self, "base_channels", "num_res_blocks", "norm_groups", "norm_epsilon",
                       "context_dim", "context_tokens")
        if self.base_channels % 2:
            raise ConfigError(f"ldm base_channels must be even (sinusoidal time features come in "
                              f"sin/cos pairs), got {self.base_channels}")
        side = self.latent_shape[0]
        mults = tuple(int(m) for m in self.channel_mults) or ((1, 2) if side % 2 == 0 else (1,))
        if min(mults) < 1:
            raise ConfigError(f"ldm channel_mults must be positive integers, got {self.channel_mults!r}")
        if side % 2 ** (len(mults) - 1):
            raise ConfigError(f"ldm: {len(mults)} U-Net levels halve the {side}x{side} latent "
                              f"{len(mults) - 1} times, but {side} is not divisible by "
                              f"{2 ** (len(mults) - 1)}; use fewer channel_mults")
        self.channel_mults = mults
        sizes = [side >> i for i in range(len(mults))]
        self.attention_resolutions = tuple(int(r) for r in self.attention_resolutions) or (sizes[-1],)
        bad = sorted(set(self.attention_resolutions) - set(sizes))
        if bad:
            raise ConfigError(f"ldm attention_resolutions {bad} are not among the latent U-Net's "
                              f"sizes {sizes}")
        widths = {self.base_channels * m for m in mults} | set(self.ae_channels)
        if any(w % self.norm_groups for w in widths):
            raise ConfigError(f"ldm norm_groups {self.norm_groups} must divide every width "
                              f"{sorted(widths)} (ae_channels, base_channels x channel_mults)")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.label_dropout < 1.0:
            raise ConfigError("ldm dropout and label_dropout must be in [0, 1)")
        check_num_classes(self)


@dataclasses.dataclass
class StageConfig(Config):
    """Which stage a model trains, and what the diffusion stage records of its autoencoder
    (the third part of `LDMConfig`).

    Attributes:
        stage: "autoencoder" or "diffusion".
        latent_scale: 1 / std of the training latents (0: not computed yet; the diffusion
            stage computes it when its autoencoder is attached).
        autoencoder_sha256: sha256 of the autoencoder's canonical weights
            (gan_diffusion.checkpoint.weights_digest); "" until one is attached.
    """

    stage: str = "autoencoder"
    latent_scale: float = 0.0
    autoencoder_sha256: str = ""

    def validate(self) -> None:
        super().validate()
        check_choice(self, "stage", STAGES)
        if not self.latent_scale >= 0:
            raise ConfigError(f"ldm latent_scale must be >= 0 (0: computed from the data), got "
                              f"{self.latent_scale!r}")


@dataclasses.dataclass
class LDMConfig(TrainConfig, EMAConfig, DDPMSchedulerConfig, StageConfig, LatentUNetConfig,
                AutoencoderConfig):
    """Latent diffusion hyper-parameters, in six parts (fields in this order):
    `AutoencoderConfig`, `LatentUNetConfig`, `StageConfig`, DDPM's scheduler and EMA parts,
    then `TrainConfig` (Adam; learning_rate is the diffusion stage's, 5e-4 as DDPM's).

    Scheduler defaults are Stable Diffusion's where latents need them: scaled_linear betas
    0.00085 ... 0.012 and no clipping of x_0 predictions (latents are not bounded by 1).
    """

    model: ClassVar[str] = "ldm"

    schedule: str = "scaled_linear"
    beta_start: float = 0.00085
    beta_end: float = 0.012
    clip_sample: bool = False
    learning_rate: float = 5e-4

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def null_label(self) -> int:
        return self.num_classes


def autoencoder_spec(cfg: LDMConfig) -> AutoencoderSpec:
    """What the backends' autoencoder networks are built from."""
    return AutoencoderSpec(tuple(cfg.image_shape), tuple(cfg.ae_channels), cfg.ae_res_blocks,
                           cfg.ae_attention, cfg.latent_channels, cfg.norm_groups, cfg.norm_epsilon,
                           cfg.dtype)


@dataclasses.dataclass(frozen=True)
class LatentUNetSpec:
    """What the backends' U-Net (tf_backend/unet.py, torch_backend/unet.py) is built from: the
    U-Net fields of a DDPMConfig on the latent shape, the class embedding off (num_classes 0)
    and the cross-attention context on for a conditional model (context_classes K)."""

    image_shape: tuple[int, int, int]
    base_channels: int
    channel_mults: tuple[int, ...]
    num_res_blocks: int
    attention_resolutions: tuple[int, ...]
    dropout: float
    norm_groups: int
    norm_epsilon: float
    context_classes: int
    context_dim: int
    context_tokens: int
    dtype: str
    num_classes: int = 0


def unet_spec(cfg: LDMConfig) -> LatentUNetSpec:
    return LatentUNetSpec(cfg.latent_shape, cfg.base_channels, tuple(cfg.channel_mults),
                          cfg.num_res_blocks, tuple(cfg.attention_resolutions), cfg.dropout,
                          cfg.norm_groups, cfg.norm_epsilon, cfg.num_classes, cfg.context_dim,
                          cfg.context_tokens, cfg.dtype)


def autoencoder_part(weights: dict[str, Any]) -> dict[str, Any]:
    """The autoencoder's ("ae/...") entries of an ldm stage's canonical weights."""
    return {k: v for k, v in weights.items() if k.startswith(f"{AE_NET}/")}


def networks(cfg: LDMConfig) -> tuple[str, ...]:
    """The weight groups of the config's stage: ("ae",) or ("ae", "unet", "ema")."""
    return (AE_NET,) if cfg.stage == "autoencoder" else (AE_NET, *NETWORKS)


def ldm_weight_shapes(cfg: LDMConfig) -> dict[str, tuple[int, ...]]:
    """Canonical weight names and shapes of the config's stage."""
    out = {f"{AE_NET}/{k}": shape for k, (_, shape) in autoencoder_params(autoencoder_spec(cfg)).items()}
    if cfg.stage == "diffusion":
        out.update({f"{net}/{k}": shape for net in NETWORKS
                    for k, (_, shape) in unet_params(unet_spec(cfg)).items()})
    return out


def init_ldm(config: LDMConfig, seed: int, rng: Any = None) -> dict[str, np.ndarray]:
    """Initial canonical weights of the config's stage, drawn once in NumPy (the native_init of
    the comparison harness passes a framework generator as `rng`, drawn autoencoder first).

    The autoencoder: models/kl_autoencoder.py's init; the U-Net (diffusion stage): DDPM's
    (init_unet: zero last layers, EMA = weights). A diffusion stage's "ae/" weights are then
    replaced by its trained autoencoder's (LDMBase.set_autoencoder).
    """
    out = {f"{AE_NET}/{k}": v for k, v in init_autoencoder(autoencoder_spec(config), seed, rng).items()}
    if config.stage == "diffusion":
        out.update(init_unet(unet_spec(config), seed, rng))
    return out


def check_autoencoder_match(ours: LDMConfig, theirs: LDMConfig, source: str) -> None:
    """ConfigError naming `source` unless `theirs` (an autoencoder's config) builds the same
    autoencoder as `ours`."""
    differ = [f"{k} {getattr(theirs, k)!r} (this run: {getattr(ours, k)!r})"
              for k in AUTOENCODER_FIELDS if getattr(theirs, k) != getattr(ours, k)]
    if differ:
        raise ConfigError(f"the autoencoder {source} does not fit this ldm: {'; '.join(differ)}; "
                          "train an autoencoder for these images (--stage autoencoder) or use a "
                          "matching one")
