"""The KL autoencoder of latent diffusion, framework-free: the block lists both backends walk,
canonical weight names and shapes, the seeded NumPy initialisation and the loss in NumPy.

Architecture: Stable Diffusion's AutoencoderKL (Rombach et al. 2022; diffusers' Encoder /
Decoder) at small widths. W = (w_0, ..., w_{L-1}) = ae_channels, factor f = 2^(L-1), C image
channels, c = latent_channels, n = ae_res_blocks:

    encoder  x (N, H, W, C) in [-1, 1] -> conv_in 3x3 (C -> w_0)
             per level i: n x ResBlock (-> w_i); Downsample (not the last level)
             mid: ResBlock, Attention (ae_attention), ResBlock           (N, H/f, W/f, w_{L-1})
             out: GroupNorm -> SiLU -> conv 3x3 (-> 2c); quant_conv 1x1 (2c -> 2c)
             = the moments: mean = [..., :c], log_var = [..., c:] (N, H/f, W/f, c) each
    decoder  z (N, H/f, W/f, c) -> post_quant_conv 1x1 (c -> c) -> conv_in 3x3 (-> w_{L-1})
             mid: ResBlock, Attention, ResBlock
             per level i, reversed: (n + 1) x ResBlock (-> w_i); Upsample (not level 0)
             out: GroupNorm -> SiLU -> conv 3x3 (w_0 -> C)        (N, H, W, C), no tanh (as SD)

    ResBlock(x):  h = conv1(SiLU(norm1(x))); h = conv2(SiLU(norm2(h))); skip(x) + h
                  (skip: 1x1 conv when the width changes); no time embedding
    Attention:    the U-Net's single-head self-attention block (models/unet.py)
    Downsample:   zero padding (0 before, 1 after) on both spatial axes, then a 3x3 stride-2
                  'valid' conv (SD's asymmetric padding; H -> H/2 for even H)
    Upsample:     nearest x2, then a 3x3 conv

Sizes: 16 -> 8 -> 4, 28 -> 14 -> 7, 32 -> 16 -> 8 (-> 4 with f = 8), 64 -> 32 -> 16 (-> 8).

Canonical weights "ae/<block>.<part>/<param>" (channels-last, docs/weights.md), e.g.
ae/encoder.down0.res0.conv1/kernel (3, 3, in, out), ae/encoder.mid.attn.q/kernel (C, C),
ae/quant_conv/kernel (1, 1, 2c, 2c), ae/decoder.out.conv/kernel (3, 3, w_0, C).

Loss per image (as SD's LPIPSWithDiscriminator without the discriminator, its logvar fixed at
0): posterior N(mean, exp(log_var)), log_var clipped to [-30, 20]; z = mean + exp(log_var / 2)
eps (eps from the "reparam" stream); x^ = decoder(z);

    recon = sum over pixels of |x - x^| ("l1") or (x - x^)^2 ("l2")
    kl    = 1/2 sum over latent elements of (mean^2 + exp(log_var) - 1 - log_var)
    loss  = recon + kl_weight * kl                (batch means; SD's kl_weight 1e-6)
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from gan_diffusion.models.unet import Block

LOGVAR_RANGE = (-30.0, 20.0)   # SD's DiagonalGaussianDistribution clamp
RECON_LOSSES = ("l1", "l2")


@dataclasses.dataclass(frozen=True)
class AutoencoderSpec:
    """What the autoencoder's networks need (from an LDMConfig: `models.ldm.autoencoder_spec`).

    Attributes:
        image_shape: (H, W, C) of the images.
        widths: ae_channels, one width per level (f = 2^(levels - 1)).
        res_blocks: residual blocks per level in the encoder (decoder: one more).
        attention: self-attention in the middle of encoder and decoder.
        latent_channels: c.
        norm_groups, norm_epsilon: GroupNorm.
        dtype: "float32" or "float64".
    """

    image_shape: tuple[int, int, int]
    widths: tuple[int, ...]
    res_blocks: int
    attention: bool
    latent_channels: int
    norm_groups: int
    norm_epsilon: float
    dtype: str = "float32"

    @property
    def factor(self) -> int:
        return 2 ** (len(self.widths) - 1)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        side = self.image_shape[0] // self.factor
        return (side, side, self.latent_channels)


def encoder_blocks(spec: AutoencoderSpec) -> list[Block]:
    """The encoder as a list of blocks, x -> moments (see the module docstring)."""
    side, _, channels = spec.image_shape
    w, c = spec.widths, spec.latent_channels
    blocks = [Block("encoder.conv_in", "conv_in", channels, w[0], side)]
    width, size = w[0], side
    for i, out in enumerate(w):
        for j in range(spec.res_blocks):
            blocks.append(Block(f"encoder.down{i}.res{j}", "res", width, out, size))
            width = out
        if i < len(w) - 1:
            blocks.append(Block(f"encoder.down{i}.downsample", "down", width, width, size))
            size //= 2
    blocks += _middle("encoder", width, size, spec.attention)
    return blocks + [Block("encoder.out", "out", width, 2 * c, size),
                     Block("quant_conv", "quant", 2 * c, 2 * c, size)]


def decoder_blocks(spec: AutoencoderSpec) -> list[Block]:
    """The decoder as a list of blocks, z -> image (see the module docstring)."""
    w, c = spec.widths, spec.latent_channels
    size = spec.latent_shape[0]
    blocks = [Block("post_quant_conv", "quant", c, c, size),
              Block("decoder.conv_in", "conv_in", c, w[-1], size)]
    width = w[-1]
    blocks += _middle("decoder", width, size, spec.attention)
    for i in reversed(range(len(w))):
        for j in range(spec.res_blocks + 1):
            blocks.append(Block(f"decoder.up{i}.res{j}", "res", width, w[i], size))
            width = w[i]
        if i > 0:
            blocks.append(Block(f"decoder.up{i}.upsample", "up", width, width, size))
            size *= 2
    return blocks + [Block("decoder.out", "out", width, spec.image_shape[2], size)]


def _middle(net: str, width: int, size: int, attention: bool) -> list[Block]:
    mid = [Block(f"{net}.mid.res0", "res", width, width, size)]
    if attention:
        mid.append(Block(f"{net}.mid.attn", "attn", width, width, size))
    return mid + [Block(f"{net}.mid.res1", "res", width, width, size)]


def block_params(block: Block) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{"<part>/<param>": (kind, shape)} of one autoencoder block (layout kinds as
    models/unet.py's)."""
    i, o = block.in_ch, block.out_ch

    def conv(k, a, b):
        return {"kernel": ("conv", (k, k, a, b)), "bias": ("bias", (b,))}

    def norm(ch):
        return {"gamma": ("norm", (ch,)), "beta": ("norm", (ch,))}

    if block.kind in ("conv_in", "down", "up"):
        parts = {"": conv(3, i, o)}
    elif block.kind == "quant":
        parts = {"": conv(1, i, o)}
    elif block.kind == "res":
        parts = {"norm1": norm(i), "conv1": conv(3, i, o), "norm2": norm(o), "conv2": conv(3, o, o)}
        if i != o:
            parts["skip"] = conv(1, i, o)
    elif block.kind == "attn":
        parts = {"norm": norm(i), **{p: {"kernel": ("dense", (i, i)), "bias": ("bias", (i,))}
                                     for p in ("q", "k", "v", "proj")}}
    elif block.kind == "out":
        parts = {"norm": norm(i), "conv": conv(3, i, o)}
    else:
        raise ValueError(f"unknown autoencoder block kind {block.kind!r}")
    return {f"{block.name}{'.' + part if part else ''}/{param}": kind_shape
            for part, params in parts.items() for param, kind_shape in params.items()}


def autoencoder_params(spec: AutoencoderSpec) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Every autoencoder weight: {"<layer>/<param>": (kind, shape)}, encoder then decoder."""
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for block in encoder_blocks(spec) + decoder_blocks(spec):
        out.update(block_params(block))
    return out


def init_autoencoder(spec: AutoencoderSpec, seed: int, rng: Any = None) -> dict[str, np.ndarray]:
    """Initial weights {"<layer>/<param>": array} drawn once in NumPy, so both backends start
    identical: Glorot-uniform kernels (fans include the receptive field), zero biases and
    GroupNorm beta, gamma 1. `rng`: another generator with NumPy's `uniform` signature (a
    framework's own, for --native-rng runs); default: NumPy seeded with `seed`."""
    rng = np.random.default_rng([seed, 0x1417, 6]) if rng is None else rng  # stream id: init, KL AE
    out = {}
    for name, (_, shape) in autoencoder_params(spec).items():
        if name.endswith("/kernel"):
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            limit = math.sqrt(6.0 / (receptive * (shape[-2] + shape[-1])))
            value = rng.uniform(-limit, limit, shape)
        elif name.endswith("/gamma"):
            value = np.ones(shape)
        else:  # bias, beta
            value = np.zeros(shape)
        out[name] = np.asarray(value).astype(spec.dtype)
    return out


def split_moments(moments: np.ndarray, latent_channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The encoder's (N, h, w, 2c) moments -> (mean, log_var clipped to LOGVAR_RANGE)."""
    mean, log_var = moments[..., :latent_channels], moments[..., latent_channels:]
    return mean, np.clip(log_var, *LOGVAR_RANGE)


def autoencoder_loss(x: np.ndarray, recon: np.ndarray, mean: np.ndarray, log_var: np.ndarray,
                     recon_loss: str, kl_weight: float) -> dict[str, float]:
    """The loss of the module docstring in float64 NumPy (a reference for the backends):
    {"loss", "recon", "kl"}, batch means of the per-image sums."""
    x, recon, mean, log_var = (np.asarray(a, np.float64) for a in (x, recon, mean, log_var))
    err = np.abs(x - recon) if recon_loss == "l1" else np.square(x - recon)
    r = err.reshape(len(x), -1).sum(1)
    kl = 0.5 * (np.square(mean) + np.exp(log_var) - 1.0 - log_var).reshape(len(x), -1).sum(1)
    return {"loss": float((r + kl_weight * kl).mean()), "recon": float(r.mean()), "kl": float(kl.mean())}
