"""The DDPM U-Net in PyTorch (NCHW). Mirrors gan_diffusion/tf_backend/unet.py.

Both files build the blocks of `gan_diffusion.models.unet.unet_blocks` in the same order
with the same canonical weight names; only framework calls differ. Aligned with Keras:
GroupNorm epsilon (the config's norm_epsilon, torch's default 1e-5, in both), 3x3 convs
with padding 1 (Keras 'same' at stride 1), the stride-2 downsampling (padding=1: zero
padding 1 on every side, as the Keras side's explicit ZeroPadding2D(1) + 'valid'),
nearest-neighbour upsampling.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gan_diffusion.models.unet import Block, context_spec, unet_blocks, unet_params

PARAM_ATTRS = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
               "embeddings": "weight"}  # canonical param -> torch attribute


def silu(x: torch.Tensor) -> torch.Tensor:
    return F.silu(x)


def group_norm(cfg, channels: int) -> nn.Module:
    return nn.GroupNorm(cfg.norm_groups, channels, eps=cfg.norm_epsilon)


def conv(cfg, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int | None = None
         ) -> nn.Module:
    return nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2 if padding is None else padding)


def dense(cfg, in_ch: int, out_ch: int) -> nn.Module:
    return nn.Linear(in_ch, out_ch)


class InputConv(nn.Module):
    """conv_in: 3x3 conv from the image channels to base_channels."""

    def __init__(self, block: Block, cfg):
        super().__init__()
        self.conv = conv(cfg, block.in_ch, block.out_ch, 3)
        self.parts = {"": self.conv}

    def forward(self, x, temb):
        return self.conv(x)


class ResBlock(nn.Module):
    """h = conv1(SiLU(norm1(x))) + Dense(SiLU(temb)); h = conv2(dropout(SiLU(norm2(h))));
    out = skip(x) + h."""

    def __init__(self, block: Block, cfg):
        super().__init__()
        i, o, E = block.in_ch, block.out_ch, 4 * cfg.base_channels
        self.norm1, self.conv1 = group_norm(cfg, i), conv(cfg, i, o, 3)
        self.temb = dense(cfg, E, o)
        self.norm2, self.conv2 = group_norm(cfg, o), conv(cfg, o, o, 3)
        self.dropout = nn.Dropout(cfg.dropout)
        self.skip = conv(cfg, i, o, 1) if i != o else None
        self.parts = {"norm1": self.norm1, "conv1": self.conv1, "temb": self.temb,
                      "norm2": self.norm2, "conv2": self.conv2}
        if self.skip is not None:
            self.parts["skip"] = self.skip

    def forward(self, x, temb):
        h = self.conv1(silu(self.norm1(x)))                            # (N, out, H, W)
        h = h + self.temb(silu(temb))[:, :, None, None]                # + (N, out, 1, 1)
        h = self.conv2(self.dropout(silu(self.norm2(h))))
        return (x if self.skip is None else self.skip(x)) + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over the H*W positions, with a residual connection."""

    def __init__(self, block: Block, cfg):
        super().__init__()
        c = block.in_ch
        self.norm = group_norm(cfg, c)
        self.q, self.k, self.v, self.proj = (dense(cfg, c, c) for _ in range(4))
        self.scale = c ** -0.5
        self.parts = {"norm": self.norm, "q": self.q, "k": self.k, "v": self.v, "proj": self.proj}

    def forward(self, x, temb):
        n, c, h, w = x.shape                                           # (N, C, H, W)
        tokens = self.norm(x).reshape(n, c, h * w).transpose(1, 2)     # (N, HW, C)
        q, k, v = self.q(tokens), self.k(tokens), self.v(tokens)
        weights = torch.softmax(torch.einsum("nqc,nkc->nqk", q, k) * self.scale, dim=-1)  # (N, HW, HW)
        out = self.proj(torch.einsum("nqk,nkc->nqc", weights, v))                         # (N, HW, C)
        return x + out.transpose(1, 2).reshape(n, c, h, w)


class CrossAttentionBlock(nn.Module):
    """Single-head cross-attention of the H*W positions (queries) over the T context tokens
    (keys, values of width D), with a residual connection; called as block(x, context)."""

    def __init__(self, block: Block, cfg):
        super().__init__()
        c, d = block.in_ch, context_spec(cfg)[1]
        self.norm = group_norm(cfg, c)
        self.q, self.k, self.v, self.proj = dense(cfg, c, c), dense(cfg, d, c), dense(cfg, d, c), dense(cfg, c, c)
        self.scale = c ** -0.5
        self.parts = {"norm": self.norm, "q": self.q, "k": self.k, "v": self.v, "proj": self.proj}

    def forward(self, x, context):
        n, c, h, w = x.shape                                           # (N, C, H, W)
        tokens = self.norm(x).reshape(n, c, h * w).transpose(1, 2)     # (N, HW, C)
        q, k, v = self.q(tokens), self.k(context), self.v(context)    # (N, HW, C), (N, T, C) x2
        weights = torch.softmax(torch.einsum("nqc,nkc->nqk", q, k) * self.scale, dim=-1)  # (N, HW, T)
        out = self.proj(torch.einsum("nqk,nkc->nqc", weights, v))                         # (N, HW, C)
        return x + out.transpose(1, 2).reshape(n, c, h, w)


class Downsample(nn.Module):
    """3x3 conv, stride 2, after zero padding 1 on every side (padding=1)."""

    def __init__(self, block: Block, cfg):
        super().__init__()
        self.conv = conv(cfg, block.in_ch, block.out_ch, 3, stride=2, padding=1)
        self.parts = {"": self.conv}

    def forward(self, x, temb):
        return self.conv(x)                                            # (N, C, H/2, W/2)


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv."""

    def __init__(self, block: Block, cfg):
        super().__init__()
        self.conv = conv(cfg, block.in_ch, block.out_ch, 3)
        self.parts = {"": self.conv}

    def forward(self, x, temb):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))  # (N, C, 2H, 2W)


class OutputBlock(nn.Module):
    """GroupNorm -> SiLU -> 3x3 conv to the image channels."""

    def __init__(self, block: Block, cfg):
        super().__init__()
        self.norm, self.conv = group_norm(cfg, block.in_ch), conv(cfg, block.in_ch, block.out_ch, 3)
        self.parts = {"norm": self.norm, "conv": self.conv}

    def forward(self, x, temb):
        return self.conv(silu(self.norm(x)))


BLOCKS = {"conv_in": InputConv, "res": ResBlock, "attn": AttentionBlock, "xattn": CrossAttentionBlock,
          "down": Downsample, "up": Upsample, "out": OutputBlock}


class UNet(nn.Module):
    """Noise predictor eps(x_t, t[, y]): x (N, C, H, W), sinusoidal features (N, ch),
    labels (N,) int for a conditional model (class embedding, or the cross-attention
    context when the config has one) -> (N, C, H, W)."""

    def __init__(self, cfg, name: str = "unet"):
        super().__init__()
        self.cfg, self.specs = cfg, unet_blocks(cfg)
        ch, E = cfg.base_channels, 4 * cfg.base_channels
        self.time_dense0, self.time_dense1 = dense(cfg, ch, E), dense(cfg, E, E)
        self.label = nn.Embedding(cfg.num_classes + 1, E) if cfg.num_classes else None
        k, d, tokens = context_spec(cfg)
        self.context_shape = (tokens, d)
        self.context = nn.Embedding(k + 1, tokens * d) if k else None
        self.blocks = nn.ModuleList(BLOCKS[spec.kind](spec, cfg) for spec in self.specs)
        self.to(getattr(torch, cfg.dtype))

    def forward(self, x, features, labels=None):
        temb = self.time_dense1(silu(self.time_dense0(features)))     # (N, E)
        if self.label is not None:
            temb = temb + self.label(labels)                           # + class embedding (N, E)
        context = None
        if self.context is not None:                                   # label tokens (N, T, D)
            context = self.context(labels).reshape(-1, *self.context_shape)
        skips, h = [], x
        for spec, block in zip(self.specs, self.blocks):
            if spec.concat:
                h = torch.cat([h, skips.pop()], dim=1)                 # channels first
            h = block(h, context if spec.kind == "xattn" else temb)
            if spec.push:
                skips.append(h)
        return h

    def canonical_tensors(self) -> dict[str, tuple[torch.Tensor, str]]:
        """{"<layer>/<param>": (tensor, kind)} for every canonical weight (models/unet.py)."""
        layers = {"time.dense0": self.time_dense0, "time.dense1": self.time_dense1, "label": self.label,
                  "context": self.context}
        for spec, block in zip(self.specs, self.blocks):
            layers.update({f"{spec.name}.{p}" if p else spec.name: m for p, m in block.parts.items()})
        out = {}
        for name, (kind, shape) in unet_params(self.cfg).items():
            path, param = name.rsplit("/", 1)
            tensor = getattr(layers[path], PARAM_ATTRS[param])
            assert tensor.numel() == int(torch.Size(shape).numel()), (name, tensor.shape, shape)
            out[name] = (tensor, kind)
        return out
