"""The DDPM U-Net, framework-free: the block list both backends walk, canonical weight names
and shapes, the seeded NumPy initialisation and the sinusoidal time features.

Architecture (Ho et al. 2020, as in diffusers' UNet2DModel), ch = base_channels, E = 4 ch:

    t -> sinusoidal features (ch) -> Dense(E) -> SiLU -> Dense(E) = temb   [+ Embedding(K+1, E)(y)]
    x -> conv_in 3x3 (C -> ch)                                            -> skip
    per level i (width ch * mult_i, side s_i):
        num_res_blocks x [ResBlock (+ Attention if s_i in attention_resolutions)] -> skip each
        Downsample (3x3 conv, stride 2, explicit zero padding 1 on every side)  -> skip (not last level)
    middle: ResBlock, Attention, ResBlock
    per level, reversed: (num_res_blocks + 1) x [concat(h, skip.pop()) -> ResBlock (+ Attention)]
        Upsample (nearest x2, then 3x3 conv) (not level 0)
    out: GroupNorm -> SiLU -> conv 3x3 (ch -> C)       predicted noise, the image's shape

    ResBlock(x, temb): h = conv1(SiLU(norm1(x))) + Dense(SiLU(temb))[:, None, None, :]
                       h = conv2(dropout(SiLU(norm2(h))));  return skip(x) + h
                       (skip: 1x1 conv when the width changes, else identity)
    Attention(x):      single head over the H*W positions: x + proj(softmax(q k^T / sqrt(C)) v),
                       q, k, v, proj Dense(C -> C) applied to GroupNorm(x)

Optional cross-attention (off unless the config has `context_classes` > 0; DDPM configs have
no such field, so a DDPM's blocks, weight names and numerics are unchanged): the labels
become a context of T tokens, context = Embedding(K + 1, T * D)(y) reshaped to (N, T, D)
(canonical unet/context/embeddings (K + 1, T * D); row K is the null label of classifier-free
guidance), and every Attention block is followed by a CrossAttention block
("<level>.xattn<j>", "mid.xattn"):

    CrossAttention(x, context): x + proj(softmax(q k^T / sqrt(C)) v), q = Dense(C -> C) of
                       GroupNorm(x) over the H*W positions, k, v = Dense(D -> C) of the T tokens

Padding, all exactly the same in both frameworks: 3x3 stride-1 convs pad 1 on every side
(Keras 'same' is symmetric for odd kernels at stride 1); the stride-2 downsampling pads 1 on
every side explicitly, then a 'valid' conv (torch's padding=1; Keras' 'same' would pad 0
before and 1 after on even inputs, shifting the grid by one pixel). Sizes: 28 -> 14 -> 7
(7 is odd, so 28x28 images allow at most three levels), 32 -> 16 -> 8 -> 4, 64 -> ... -> 8.

Canonical weights "unet/<block>.<part>/<param>" (channels-last, docs/weights.md), e.g.
unet/down0.res0.conv1/kernel (3, 3, in, out), unet/mid.attn.q/kernel (C, C),
unet/time.dense0/kernel (ch, E), unet/down0.res0.norm1/gamma (in,), unet/label/embeddings
(K + 1, E). The EMA copy has the same names under "ema/".
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from gan_diffusion.models.plan import check_weights

NETWORKS = ("unet", "ema")   # the trained weights and their exponential moving average


@dataclasses.dataclass(frozen=True)
class Block:
    """One step of the U-Net walk.

    Attributes:
        name: canonical block name, e.g. "down1.res0", "mid.attn", "up0.upsample".
        kind: "conv_in", "res", "attn", "xattn" (cross-attention), "down", "up" or "out".
        in_ch, out_ch: widths (a "res" block's in_ch includes a concatenated skip).
        size: spatial side of the block's input.
        push: the output is kept as a skip connection.
        concat: pop a skip connection and concatenate it (channels last) before the block.
    """

    name: str
    kind: str
    in_ch: int
    out_ch: int
    size: int
    push: bool = False
    concat: bool = False


def context_spec(cfg: Any) -> tuple[int, int, int]:
    """(K, D, T) of the optional cross-attention context: label classes, token width, tokens
    per label; K = 0 (no `context_classes` field, e.g. a DDPMConfig) turns it off."""
    k = int(getattr(cfg, "context_classes", 0))
    return (k, int(cfg.context_dim), int(cfg.context_tokens)) if k else (0, 0, 0)


def unet_blocks(cfg: Any) -> list[Block]:
    """The U-Net as a list of blocks (see the module docstring), from a DDPMConfig (or any
    object with its U-Net fields, e.g. models/ldm.py's latent U-Net)."""
    side, _, channels = cfg.image_shape
    ch, mults, n_res = cfg.base_channels, cfg.channel_mults, cfg.num_res_blocks
    attn = set(cfg.attention_resolutions)
    cross = context_spec(cfg)[0] > 0

    def attention(name: str, width: int, size: int) -> list[Block]:
        out = [Block(name, "attn", width, width, size)]
        if cross:                                                       # "down0.attn0" -> "down0.xattn0"
            out.append(Block(name.replace("attn", "xattn"), "xattn", width, width, size))
        return out

    blocks = [Block("conv_in", "conv_in", channels, ch, side, push=True)]
    skips, width, size = [ch], ch, side
    for i, mult in enumerate(mults):                                   # down
        for j in range(n_res):
            blocks.append(Block(f"down{i}.res{j}", "res", width, ch * mult, size))
            width = ch * mult
            if size in attn:
                blocks += attention(f"down{i}.attn{j}", width, size)
            blocks[-1] = dataclasses.replace(blocks[-1], push=True)
            skips.append(width)
        if i < len(mults) - 1:
            blocks.append(Block(f"down{i}.downsample", "down", width, width, size, push=True))
            skips.append(width)
            size //= 2
    blocks += [Block("mid.res0", "res", width, width, size), *attention("mid.attn", width, size),
               Block("mid.res1", "res", width, width, size)]
    for i in reversed(range(len(mults))):                              # up
        for j in range(n_res + 1):
            skip = skips.pop()
            blocks.append(Block(f"up{i}.res{j}", "res", width + skip, ch * mults[i], size, concat=True))
            width = ch * mults[i]
            if size in attn:
                blocks += attention(f"up{i}.attn{j}", width, size)
        if i > 0:
            blocks.append(Block(f"up{i}.upsample", "up", width, width, size))
            size *= 2
    blocks.append(Block("out", "out", width, channels, size))
    assert not skips
    return blocks


def block_params(block: Block, temb_dim: int, context_dim: int = 0
                 ) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{"<part>/<param>": (kind, shape)} of one block; kind is the layout family
    ("conv", "dense", "norm", "bias") that backends map to and from canonical arrays.
    `context_dim`: the token width D of an "xattn" block's keys and values."""
    i, o = block.in_ch, block.out_ch

    def conv(k, a, b):
        return {"kernel": ("conv", (k, k, a, b)), "bias": ("bias", (b,))}

    def dense(a, b):
        return {"kernel": ("dense", (a, b)), "bias": ("bias", (b,))}

    def norm(c):
        return {"gamma": ("norm", (c,)), "beta": ("norm", (c,))}

    parts: dict[str, dict] = {}
    if block.kind == "conv_in":
        parts[""] = conv(3, i, o)
    elif block.kind == "res":
        parts = {"norm1": norm(i), "conv1": conv(3, i, o), "temb": dense(temb_dim, o),
                 "norm2": norm(o), "conv2": conv(3, o, o)}
        if i != o:
            parts["skip"] = conv(1, i, o)
    elif block.kind == "attn":
        parts = {"norm": norm(i), **{p: dense(i, i) for p in ("q", "k", "v", "proj")}}
    elif block.kind == "xattn":
        parts = {"norm": norm(i), "q": dense(i, i), "k": dense(context_dim, i),
                 "v": dense(context_dim, i), "proj": dense(i, i)}
    elif block.kind in ("down", "up"):
        parts[""] = conv(3, i, o)
    elif block.kind == "out":
        parts = {"norm": norm(i), "conv": conv(3, i, o)}
    else:
        raise ValueError(f"unknown block kind {block.kind!r}")
    return {f"{block.name}{'.' + part if part else ''}/{param}": spec
            for part, params in parts.items() for param, spec in params.items()}


def unet_params(cfg: Any) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Every weight of one U-Net: {"<layer>/<param>": (kind, shape)}, in walk order."""
    ch, E = cfg.base_channels, 4 * cfg.base_channels
    out = {"time.dense0/kernel": ("dense", (ch, E)), "time.dense0/bias": ("bias", (E,)),
           "time.dense1/kernel": ("dense", (E, E)), "time.dense1/bias": ("bias", (E,))}
    if cfg.num_classes:
        out["label/embeddings"] = ("embed", (cfg.num_classes + 1, E))
    k, d, tokens = context_spec(cfg)
    if k:
        out["context/embeddings"] = ("embed", (k + 1, tokens * d))
    for block in unet_blocks(cfg):
        out.update(block_params(block, E, d))
    return out


def ddpm_weight_shapes(cfg: Any) -> dict[str, tuple[int, ...]]:
    """Canonical weight names and shapes of a DDPM: the U-Net and its EMA copy."""
    return {f"{net}/{name}": shape for net in NETWORKS
            for name, (_, shape) in unet_params(cfg).items()}


# the last layer of every residual branch starts at zero (Ho et al. 2020), so each block
# starts as the identity and the initial prediction is 0
ZERO_INIT = (".conv2/kernel", ".proj/kernel", "out.conv/kernel")


def init_unet(cfg: Any, seed: int, rng: Any = None) -> dict[str, np.ndarray]:
    """Initial weights drawn once in NumPy, so both backends start identical; EMA = weights.

    Kernels Glorot-uniform (fans include the receptive field), zero for the last layer of each
    residual branch (ZERO_INIT); biases and GroupNorm beta 0, gamma 1; label embeddings N(0, 1).
    `rng`: another generator with NumPy's `normal`/`uniform` signatures (a framework's own,
    for --native-rng runs); default: NumPy seeded with `seed`.
    """
    rng = np.random.default_rng([seed, 0x1417, 5]) if rng is None else rng  # stream id: weight init, DDPM
    dtype = getattr(cfg, "dtype", "float32")
    weights = {}
    for name, (kind, shape) in unet_params(cfg).items():
        if name.endswith(ZERO_INIT):
            value = np.zeros(shape)
        elif name.endswith("/kernel"):
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            limit = math.sqrt(6.0 / (receptive * (shape[-2] + shape[-1])))
            value = rng.uniform(-limit, limit, shape)
        elif name.endswith("/embeddings"):
            value = rng.normal(0.0, 1.0, shape)
        elif name.endswith("/gamma"):
            value = np.ones(shape)
        else:  # bias, beta
            value = np.zeros(shape)
        weights[name] = value.astype(dtype)
    return {f"{net}/{k}": v.copy() for net in NETWORKS for k, v in weights.items()}


def timestep_features(t: np.ndarray, dim: int, dtype: str = "float32") -> np.ndarray:
    """Sinusoidal features of integer timesteps (Ho et al. 2020; Vaswani et al. 2017).

    features = [sin(t f_0), ..., sin(t f_{h-1}), cos(t f_0), ..., cos(t f_{h-1})],
    f_k = exp(-ln(10000) k / (h - 1)), h = dim // 2. Computed once here in float64 and fed
    to either framework, so the U-Net's input is identical in both.

    Args:
        t: timesteps (N,), integers in [0, T).
        dim: feature size (even; the U-Net uses base_channels).

    Returns:
        (N, dim) array of `dtype`.
    """
    half = dim // 2
    freqs = np.exp(-math.log(10000.0) * np.arange(half, dtype=np.float64) / max(half - 1, 1))
    args = np.asarray(t, dtype=np.float64)[:, None] * freqs[None]
    return np.concatenate([np.sin(args), np.cos(args)], axis=1).astype(dtype)


def check_unet_weights(weights: dict[str, np.ndarray], cfg: Any) -> None:
    """ValueError naming a missing/unexpected key or a wrong shape (see plan.check_weights)."""
    check_weights(weights, ddpm_weight_shapes(cfg), "ddpm")
