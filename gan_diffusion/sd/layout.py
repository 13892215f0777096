"""The canonical weight layout of Stable Diffusion, and seeded random weights in it.

Canonical names are the published checkpoint's own: the state-dict keys of the diffusers
folder's `unet/`, `vae/` and `text_encoder/` files, prefixed by the component, with torch's
shapes (conv (out, in, kh, kw), linear (out, in)):

    unet/down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight   (320, 768)
    vae/decoder.up_blocks.3.resnets.2.conv2.weight                           (128, 128, 3, 3)
    text_encoder/text_model.encoder.layers.11.mlp.fc1.weight                 (3072, 768)

`shapes(arch)` lists every key and shape from the architecture alone (no framework), following
diffusers' UNet2DConditionModel and AutoencoderKL and transformers' CLIPTextModel block by
block; tests check it against the real classes' state dicts. `random_weights(arch, seed)`
draws every array in NumPy from (seed, key), so both backends start from the same weights:
convolutions and linears N(0, 1/fan_in) (activations stay O(1) through the residual stacks),
norm scales 1 + N(0, 0.1^2), biases N(0, 0.1^2), embeddings N(0, 1), and the last layer of
each component scaled down (see `OUTPUT_SCALE`) so decoded images stay inside [-1, 1] mostly.
"""
from __future__ import annotations

import os
import zlib
from collections.abc import Iterator

import numpy as np

from gan_diffusion.sd.architectures import SDArchitecture

Shape = tuple[int, ...]
WEIGHTED = ("unet", "vae", "text_encoder")
# names the rule random_weights draws by; change it whenever the drawn arrays change, so a
# record's "random:SEED" always means the same arrays
RANDOM_WEIGHTS_VERSION = "gan_diffusion.sd.layout.random_weights/1"
# last layers whose random weights are scaled down so outputs sit in a useful range
OUTPUT_SCALE = {"unet/conv_out.weight": 0.5, "vae/decoder.conv_out.weight": 0.3,
                "vae/encoder.conv_out.weight": 0.5}


# -- shapes ---------------------------------------------------------------------------------
def _norm(prefix: str, c: int) -> Iterator[tuple[str, Shape]]:
    yield f"{prefix}.weight", (c,)
    yield f"{prefix}.bias", (c,)


def _conv(prefix: str, out: int, inp: int, k: int, bias: bool = True) -> Iterator[tuple[str, Shape]]:
    yield f"{prefix}.weight", (out, inp, k, k)
    if bias:
        yield f"{prefix}.bias", (out,)


def _linear(prefix: str, out: int, inp: int, bias: bool = True) -> Iterator[tuple[str, Shape]]:
    yield f"{prefix}.weight", (out, inp)
    if bias:
        yield f"{prefix}.bias", (out,)


def _resnet(prefix: str, inp: int, out: int, temb: int | None) -> Iterator[tuple[str, Shape]]:
    """diffusers' ResnetBlock2D: norm1, conv1, [time_emb_proj], norm2, conv2, [conv_shortcut]."""
    yield from _norm(f"{prefix}.norm1", inp)
    yield from _conv(f"{prefix}.conv1", out, inp, 3)
    if temb is not None:
        yield from _linear(f"{prefix}.time_emb_proj", out, temb)
    yield from _norm(f"{prefix}.norm2", out)
    yield from _conv(f"{prefix}.conv2", out, out, 3)
    if inp != out:
        yield from _conv(f"{prefix}.conv_shortcut", out, inp, 1)


def _transformer(prefix: str, c: int, cross: int, linear: bool) -> Iterator[tuple[str, Shape]]:
    """diffusers' Transformer2DModel with one BasicTransformerBlock (inner dim = c)."""
    yield from _norm(f"{prefix}.norm", c)
    proj = (lambda p: _linear(p, c, c)) if linear else (lambda p: _conv(p, c, c, 1))
    yield from proj(f"{prefix}.proj_in")
    b = f"{prefix}.transformer_blocks.0"
    for i, ctx in ((1, c), (2, cross)):
        yield from _norm(f"{b}.norm{i}", c)
        yield from _linear(f"{b}.attn{i}.to_q", c, c, bias=False)
        yield from _linear(f"{b}.attn{i}.to_k", c, ctx, bias=False)
        yield from _linear(f"{b}.attn{i}.to_v", c, ctx, bias=False)
        yield from _linear(f"{b}.attn{i}.to_out.0", c, c)
    yield from _norm(f"{b}.norm3", c)
    yield from _linear(f"{b}.ff.net.0.proj", 8 * c, c)   # GEGLU: value and gate, 4c each
    yield from _linear(f"{b}.ff.net.2", c, 4 * c)
    yield from proj(f"{prefix}.proj_out")


def unet_shapes(cfg: dict) -> Iterator[tuple[str, Shape]]:
    """UNet2DConditionModel's state dict (the block types of SD 1.x/2.x)."""
    ch, L = list(cfg["block_out_channels"]), int(cfg["layers_per_block"])
    cross, linear, temb = int(cfg["cross_attention_dim"]), bool(cfg["use_linear_projection"]), 4 * ch[0]
    yield from _conv("conv_in", ch[0], cfg["in_channels"], cfg["conv_in_kernel"])
    yield from _linear("time_embedding.linear_1", temb, ch[0])
    yield from _linear("time_embedding.linear_2", temb, temb)
    for i, kind in enumerate(cfg["down_block_types"]):
        inp, out = (ch[i - 1] if i else ch[0]), ch[i]
        for j in range(L):
            yield from _resnet(f"down_blocks.{i}.resnets.{j}", inp if j == 0 else out, out, temb)
        if kind == "CrossAttnDownBlock2D":
            for j in range(L):
                yield from _transformer(f"down_blocks.{i}.attentions.{j}", out, cross, linear)
        if i < len(ch) - 1:
            yield from _conv(f"down_blocks.{i}.downsamplers.0.conv", out, out, 3)
    yield from _resnet("mid_block.resnets.0", ch[-1], ch[-1], temb)
    yield from _transformer("mid_block.attentions.0", ch[-1], cross, linear)
    yield from _resnet("mid_block.resnets.1", ch[-1], ch[-1], temb)
    rev, out = ch[::-1], ch[-1]
    for i, kind in enumerate(cfg["up_block_types"]):
        prev, out = out, rev[i]
        inp = rev[min(i + 1, len(ch) - 1)]
        for j in range(L + 1):
            skip = inp if j == L else out
            yield from _resnet(f"up_blocks.{i}.resnets.{j}", (prev if j == 0 else out) + skip, out, temb)
        if kind == "CrossAttnUpBlock2D":
            for j in range(L + 1):
                yield from _transformer(f"up_blocks.{i}.attentions.{j}", out, cross, linear)
        if i < len(ch) - 1:
            yield from _conv(f"up_blocks.{i}.upsamplers.0.conv", out, out, 3)
    yield from _norm("conv_norm_out", ch[0])
    yield from _conv("conv_out", cfg["out_channels"], ch[0], cfg["conv_out_kernel"])


def _vae_attention(prefix: str, c: int) -> Iterator[tuple[str, Shape]]:
    yield from _norm(f"{prefix}.group_norm", c)
    for name in ("to_q", "to_k", "to_v", "to_out.0"):
        yield from _linear(f"{prefix}.{name}", c, c)


def _vae_mid(prefix: str, c: int) -> Iterator[tuple[str, Shape]]:
    yield from _resnet(f"{prefix}.resnets.0", c, c, None)
    yield from _vae_attention(f"{prefix}.attentions.0", c)
    yield from _resnet(f"{prefix}.resnets.1", c, c, None)


def vae_shapes(cfg: dict) -> Iterator[tuple[str, Shape]]:
    """AutoencoderKL's state dict: encoder, quant convs, decoder."""
    ch, L, lat = list(cfg["block_out_channels"]), int(cfg["layers_per_block"]), int(cfg["latent_channels"])
    yield from _conv("encoder.conv_in", ch[0], cfg["in_channels"], 3)
    for i, out in enumerate(ch):
        inp = ch[i - 1] if i else ch[0]
        for j in range(L):
            yield from _resnet(f"encoder.down_blocks.{i}.resnets.{j}", inp if j == 0 else out, out, None)
        if i < len(ch) - 1:
            yield from _conv(f"encoder.down_blocks.{i}.downsamplers.0.conv", out, out, 3)
    yield from _vae_mid("encoder.mid_block", ch[-1])
    yield from _norm("encoder.conv_norm_out", ch[-1])
    yield from _conv("encoder.conv_out", 2 * lat, ch[-1], 3)
    yield from _conv("decoder.conv_in", ch[-1], lat, 3)
    yield from _vae_mid("decoder.mid_block", ch[-1])
    rev, out = ch[::-1], ch[-1]
    for i in range(len(ch)):
        prev, out = out, rev[i]
        for j in range(L + 1):
            yield from _resnet(f"decoder.up_blocks.{i}.resnets.{j}", prev if j == 0 else out, out, None)
        if i < len(ch) - 1:
            yield from _conv(f"decoder.up_blocks.{i}.upsamplers.0.conv", out, out, 3)
    yield from _norm("decoder.conv_norm_out", ch[0])
    yield from _conv("decoder.conv_out", cfg["out_channels"], ch[0], 3)
    yield from _conv("quant_conv", 2 * lat, 2 * lat, 1)
    yield from _conv("post_quant_conv", lat, lat, 1)


def text_encoder_shapes(cfg: dict) -> Iterator[tuple[str, Shape]]:
    """CLIPTextModel's state dict as published (the "text_model." prefix of transformers 4)."""
    d, inner = int(cfg["hidden_size"]), int(cfg["intermediate_size"])
    yield "text_model.embeddings.token_embedding.weight", (int(cfg["vocab_size"]), d)
    yield "text_model.embeddings.position_embedding.weight", (int(cfg["max_position_embeddings"]), d)
    for i in range(int(cfg["num_hidden_layers"])):
        p = f"text_model.encoder.layers.{i}"
        for name in ("k_proj", "v_proj", "q_proj", "out_proj"):
            yield from _linear(f"{p}.self_attn.{name}", d, d)
        yield from _norm(f"{p}.layer_norm1", d)
        yield from _linear(f"{p}.mlp.fc1", inner, d)
        yield from _linear(f"{p}.mlp.fc2", d, inner)
        yield from _norm(f"{p}.layer_norm2", d)
    yield from _norm("text_model.final_layer_norm", d)


_SHAPES = {"unet": unet_shapes, "vae": vae_shapes, "text_encoder": text_encoder_shapes}


def shapes(arch: SDArchitecture, components: tuple[str, ...] = WEIGHTED) -> dict[str, Shape]:
    """{"<component>/<state-dict key>": shape} of every weight, in state-dict order.

    Example:
        >>> shapes(V1)["unet/conv_in.weight"]
        (320, 4, 3, 3)
    """
    return {f"{c}/{k}": tuple(int(v) for v in s) for c in components
            for k, s in _SHAPES[c](getattr(arch, c))}


def num_parameters(arch: SDArchitecture) -> dict[str, int]:
    """Parameters per component, e.g. {"unet": 859520964, ...} for V1."""
    out = dict.fromkeys(WEIGHTED, 0)
    for key, shape in shapes(arch).items():
        out[key.split("/", 1)[0]] += int(np.prod(shape))
    return out


def same_networks(a: SDArchitecture, b: SDArchitecture) -> bool:
    """Whether two architectures describe the same networks: every weight shape and every
    field that changes what they compute (norms, activations, attention heads, projections),
    whatever else their config files hold (sample sizes, bookkeeping, the scheduler)."""
    fields = {"unet": ("norm_num_groups", "norm_eps", "act_fn", "attention_head_dim",
                       "use_linear_projection", "upcast_attention", "flip_sin_to_cos",
                       "freq_shift", "mid_block_scale_factor"),
              "vae": ("norm_num_groups", "act_fn", "scaling_factor"),
              "text_encoder": ("hidden_act", "layer_norm_eps", "num_attention_heads")}
    return shapes(a) == shapes(b) and all(getattr(a, c).get(f) == getattr(b, c).get(f)
                                          for c, names in fields.items() for f in names)


# -- seeded random weights ------------------------------------------------------------------
def _std(key: str, shape: Shape) -> tuple[float, float]:
    """(mean, std) of one random array: see the module docstring."""
    name = key.rsplit(".", 1)[-1]
    if "embedding" in key:
        return 0.0, 1.0
    if len(shape) >= 2:
        return 0.0, OUTPUT_SCALE.get(key, 1.0) / float(np.prod(shape[1:])) ** 0.5
    if name == "weight":      # 1-d weights are the norms' scales
        return 1.0, 0.1
    return 0.0, 0.1          # biases


def random_array(seed: int, key: str, shape: Shape) -> np.ndarray:
    """The float32 array `key` of the weight set "random:<seed>": a pure function of
    (seed, key), whatever else is drawn."""
    rng = np.random.default_rng([int(seed), zlib.crc32(key.encode())])
    mean, std = _std(key, shape)
    x = rng.standard_normal(shape, dtype=np.float32)
    x *= np.float32(std)
    if mean:
        x += np.float32(mean)
    return x


def random_weights(arch: SDArchitecture, seed: int = 0,
                   components: tuple[str, ...] = WEIGHTED) -> dict[str, np.ndarray]:
    """Every canonical weight of `arch`, drawn from (seed, key) (see `random_array`).

    Example:
        >>> w = random_weights(tiny(), seed=0)
        >>> w["unet/conv_in.weight"].shape
        (32, 4, 3, 3)
    """
    from concurrent.futures import ThreadPoolExecutor

    todo = shapes(arch, components)
    # NumPy fills arrays without the GIL: one thread per core draws ~2x faster on 2 cores
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        arrays = pool.map(lambda item: random_array(seed, *item), todo.items())
        return dict(zip(todo, arrays))
