"""Canonical Stable Diffusion v1 weights <-> keras-cv's variables (NumPy only, no TensorFlow).

Canonical weights (gan_diffusion/sd/__init__.py) are the diffusers checkpoint's state-dict
keys prefixed by component, in torch shapes. keras-cv 0.9 builds SD v1 as four Keras models,
named here as keras-cv's `StableDiffusion` names its attributes:

    text_encoder     TextEncoder      <- "text_encoder/text_model.*"     (CLIP ViT-L/14 text)
    diffusion_model  DiffusionModel   <- "unet/*"
    image_encoder    ImageEncoder     <- "vae/encoder.*", "vae/quant_conv.*"
    decoder          Decoder          <- "vae/post_quant_conv.*", "vae/decoder.*"

`TABLE[model]` is the ordered list of `Entry(path, key, transform)`, one per keras-cv
variable. A path names a variable by structure, not by Keras' auto-generated names (those
carry global counters): its first segment "Class:n" is the n-th top-level layer of that class
in `model.layers` (same-class layers sit on the main chain, so n follows keras-cv's build
order); the next segments are attributes, or list indices when numeric:

    "ResBlock:3/entry_flow/2/conv2d/kernel"  = the 4th ResBlock's 3x3 conv kernel

Transforms (only transposes and reshapes: arrays stay bit-identical, both ways):

    conv     torch (out, in, kh, kw)  <-> Keras Conv2D kernel (kh, kw, in, out)
    linear   torch (out, in)          <-> Keras Dense kernel (in, out)
    linear1x1 torch Linear (out, in)  <-> Keras 1x1 Conv2D kernel (1, 1, in, out)
             (the VAE mid-block attention: Linear in diffusers, PaddedConv2D(1) in keras-cv)
    vector   bias / norm weight (gamma) / norm bias (beta): identity
    embed    Embedding (n, dim): identity

Going in, `normalize` accepts older spellings of the same weights: diffusers' legacy VAE
attention names (query/key/value/proj_attn), conv-shaped (out, in, 1, 1) VAE attention
weights, text-encoder keys without "text_model." (transformers >= 5 drops it in
`state_dict()`), and it drops "text_model.embeddings.position_ids" (a buffer, arange(77),
that transformers < 4.31 saved; keras-cv takes positions as an input). `check_keys` then
refuses any other key outside the table, and any missing one, listing them. `to_keras_cv`
refuses an array whose converted shape is not the keras-cv variable's, naming the canonical
key, the keras-cv model and variable path, and both shapes in both layouts (what a v2
checkpoint loaded as v1 hits first: its text embedding is 1024 wide).

`EPSILONS[model]`: the normalisation epsilons of the published model where they differ from
keras-cv's 1e-5 (the VAE's GroupNorms 1e-6, the U-Net's Transformer2D GroupNorms 1e-6).
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

import numpy as np

from gan_diffusion.errors import CheckpointError

MODELS = ("text_encoder", "diffusion_model", "image_encoder", "decoder")
KERAS_CV_CLASS = {"text_encoder": "TextEncoder", "diffusion_model": "DiffusionModel",
                  "image_encoder": "ImageEncoder", "decoder": "Decoder"}
TRANSFORMS = ("conv", "linear", "linear1x1", "vector", "embed")

# canonical keys that carry no weight: dropped by `normalize`
IGNORED_KEYS = ("text_encoder/text_model.embeddings.position_ids",)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One keras-cv variable: its structural path, its canonical key, the transform."""

    path: str
    key: str
    transform: str


# ---------------------------------------------------------------------------------------
# the table

class _Builder:
    """Collects entries; `layer(cls)` numbers top-level layers of a class in build order."""

    def __init__(self):
        self.entries: list[Entry] = []
        self._count: dict[str, int] = {}

    def layer(self, cls: str) -> str:
        n = self._count.get(cls, 0)
        self._count[cls] = n + 1
        return f"{cls}:{n}"

    def add(self, path: str, key: str, transform: str):
        self.entries.append(Entry(path, key, transform))

    # keras layer kinds -> their variables
    def conv(self, path: str, key: str):          # PaddedConv2D <- torch Conv2d
        self.add(f"{path}/conv2d/kernel", f"{key}.weight", "conv")
        self.add(f"{path}/conv2d/bias", f"{key}.bias", "vector")

    def conv_from_linear(self, path: str, key: str):   # PaddedConv2D(1) <- torch Linear
        self.add(f"{path}/conv2d/kernel", f"{key}.weight", "linear1x1")
        self.add(f"{path}/conv2d/bias", f"{key}.bias", "vector")

    def dense(self, path: str, key: str, bias: bool = True):   # Dense <- torch Linear
        self.add(f"{path}/kernel", f"{key}.weight", "linear")
        if bias:
            self.add(f"{path}/bias", f"{key}.bias", "vector")

    def norm(self, path: str, key: str):           # Group/LayerNormalization <- torch norms
        self.add(f"{path}/gamma", f"{key}.weight", "vector")
        self.add(f"{path}/beta", f"{key}.bias", "vector")


def _text_encoder_table(layers: int = 12) -> list[Entry]:
    b, p = _Builder(), "text_encoder/text_model."
    emb = b.layer("CLIPEmbedding")
    b.add(f"{emb}/token_embedding/embeddings", p + "embeddings.token_embedding.weight", "embed")
    b.add(f"{emb}/position_embedding/embeddings", p + "embeddings.position_embedding.weight",
          "embed")
    for i in range(layers):
        lay, key = b.layer("CLIPEncoderLayer"), f"{p}encoder.layers.{i}."
        b.norm(f"{lay}/layer_norm1", key + "layer_norm1")
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            b.dense(f"{lay}/clip_attn/{proj}", f"{key}self_attn.{proj}")
        b.norm(f"{lay}/layer_norm2", key + "layer_norm2")
        b.dense(f"{lay}/fc1", key + "mlp.fc1")
        b.dense(f"{lay}/fc2", key + "mlp.fc2")
    b.norm(b.layer("LayerNormalization"), p + "final_layer_norm")
    return b.entries


def _unet_resblock(b: _Builder, key: str, shortcut: bool):
    """keras-cv ResBlock <- diffusers ResnetBlock2D (with a time embedding)."""
    lay = b.layer("ResBlock")
    b.norm(f"{lay}/entry_flow/0", key + "norm1")
    b.conv(f"{lay}/entry_flow/2", key + "conv1")
    b.dense(f"{lay}/embedding_flow/1", key + "time_emb_proj")
    b.norm(f"{lay}/exit_flow/0", key + "norm2")
    b.conv(f"{lay}/exit_flow/2", key + "conv2")
    if shortcut:
        b.conv(f"{lay}/residual_projection", key + "conv_shortcut")


def _unet_transformer(b: _Builder, key: str):
    """keras-cv SpatialTransformer <- diffusers Transformer2DModel (conv projections, v1)."""
    lay = b.layer("SpatialTransformer")
    b.norm(f"{lay}/norm", key + "norm")
    b.conv(f"{lay}/proj1", key + "proj_in")
    blk, tkey = f"{lay}/transformer_block", key + "transformer_blocks.0."
    for n in (1, 2):
        b.norm(f"{blk}/norm{n}", f"{tkey}norm{n}")
        for proj in ("to_q", "to_k", "to_v"):
            b.dense(f"{blk}/attn{n}/{proj}", f"{tkey}attn{n}.{proj}", bias=False)
        b.dense(f"{blk}/attn{n}/out_proj", f"{tkey}attn{n}.to_out.0")
    b.norm(f"{blk}/norm3", tkey + "norm3")
    b.dense(f"{blk}/geglu/dense", tkey + "ff.net.0.proj")
    b.dense(f"{blk}/dense", tkey + "ff.net.2")
    b.conv(f"{lay}/proj2", key + "proj_out")


def _unet_table(channels=(320, 640, 1280, 1280), layers_per_block: int = 2) -> list[Entry]:
    """SD v1's UNet2DConditionModel: cross-attention in the first three down blocks and the
    last three up blocks; a 1x1 shortcut wherever a resnet changes its channel count."""
    b, p = _Builder(), "unet/"
    b.dense(b.layer("Dense"), p + "time_embedding.linear_1")
    b.dense(b.layer("Dense"), p + "time_embedding.linear_2")
    b.conv(b.layer("PaddedConv2D"), p + "conv_in")
    last = len(channels) - 1
    for i, out in enumerate(channels):                 # down: resnet, attention; downsample
        cin = channels[max(i - 1, 0)]
        for j in range(layers_per_block):
            key = f"{p}down_blocks.{i}."
            _unet_resblock(b, f"{key}resnets.{j}.", shortcut=(cin if j == 0 else out) != out)
            if i < last:
                _unet_transformer(b, f"{key}attentions.{j}.")
        if i < last:
            b.conv(b.layer("PaddedConv2D"), f"{p}down_blocks.{i}.downsamplers.0.conv")
    _unet_resblock(b, p + "mid_block.resnets.0.", shortcut=False)
    _unet_transformer(b, p + "mid_block.attentions.0.")
    _unet_resblock(b, p + "mid_block.resnets.1.", shortcut=False)
    rev = list(reversed(channels))                     # up: resnet on concat, attention; upsample
    for i, out in enumerate(rev):
        key = f"{p}up_blocks.{i}."
        for j in range(layers_per_block + 1):
            _unet_resblock(b, f"{key}resnets.{j}.", shortcut=True)   # concat input: in != out
            if i > 0:
                _unet_transformer(b, f"{key}attentions.{j}.")
        if i < last:
            b.conv(f"{b.layer('Upsample')}/conv", f"{key}upsamplers.0.conv")
    b.norm(b.layer("GroupNormalization"), p + "conv_norm_out")
    b.conv(b.layer("PaddedConv2D"), p + "conv_out")
    return b.entries


def _vae_resnet(b: _Builder, key: str, shortcut: bool):
    """keras-cv ResnetBlock <- diffusers ResnetBlock2D (no time embedding)."""
    lay = b.layer("ResnetBlock")
    b.norm(f"{lay}/norm1", key + "norm1")
    b.conv(f"{lay}/conv1", key + "conv1")
    b.norm(f"{lay}/norm2", key + "norm2")
    b.conv(f"{lay}/conv2", key + "conv2")
    if shortcut:
        b.conv(f"{lay}/residual_projection", key + "conv_shortcut")


def _vae_mid(b: _Builder, key: str):
    """UNetMidBlock2D: resnet, single-head attention (Linear projections), resnet."""
    _vae_resnet(b, key + "resnets.0.", False)
    lay, akey = b.layer("AttentionBlock"), key + "attentions.0."
    b.norm(f"{lay}/norm", akey + "group_norm")
    for kcv, name in (("q", "to_q"), ("k", "to_k"), ("v", "to_v"), ("proj_out", "to_out.0")):
        b.conv_from_linear(f"{lay}/{kcv}", akey + name)
    _vae_resnet(b, key + "resnets.1.", False)


def _image_encoder_table(channels=(128, 256, 512, 512), layers_per_block: int = 2) -> list[Entry]:
    b, p = _Builder(), "vae/encoder."
    b.conv(b.layer("PaddedConv2D"), p + "conv_in")
    for i, out in enumerate(channels):
        cin = channels[max(i - 1, 0)]
        for j in range(layers_per_block):
            _vae_resnet(b, f"{p}down_blocks.{i}.resnets.{j}.", (cin if j == 0 else out) != out)
        if i < len(channels) - 1:
            b.conv(b.layer("PaddedConv2D"), f"{p}down_blocks.{i}.downsamplers.0.conv")
    _vae_mid(b, p + "mid_block.")
    b.norm(b.layer("GroupNormalization"), p + "conv_norm_out")
    b.conv(b.layer("PaddedConv2D"), p + "conv_out")
    b.conv(b.layer("PaddedConv2D"), "vae/quant_conv")
    return b.entries


def _decoder_table(channels=(128, 256, 512, 512), layers_per_block: int = 2) -> list[Entry]:
    b, p = _Builder(), "vae/decoder."
    b.conv(b.layer("PaddedConv2D"), "vae/post_quant_conv")
    b.conv(b.layer("PaddedConv2D"), p + "conv_in")
    _vae_mid(b, p + "mid_block.")
    rev = list(reversed(channels))
    for i, out in enumerate(rev):
        cin = rev[max(i - 1, 0)]
        for j in range(layers_per_block + 1):
            _vae_resnet(b, f"{p}up_blocks.{i}.resnets.{j}.", (cin if j == 0 else out) != out)
        if i < len(rev) - 1:
            b.conv(b.layer("PaddedConv2D"), f"{p}up_blocks.{i}.upsamplers.0.conv")
    b.norm(b.layer("GroupNormalization"), p + "conv_norm_out")
    b.conv(b.layer("PaddedConv2D"), p + "conv_out")
    return b.entries


TABLE: dict[str, list[Entry]] = {
    "text_encoder": _text_encoder_table(),
    "diffusion_model": _unet_table(),
    "image_encoder": _image_encoder_table(),
    "decoder": _decoder_table(),
}

# Normalisation layers whose epsilon differs from keras-cv's 1e-5 in the published model:
# diffusers' AutoencoderKL uses GroupNorm eps 1e-6 everywhere (resnets, attention, norm_out);
# the U-Net's Transformer2DModel GroupNorm uses 1e-6 (its resnets, LayerNorms and
# conv_norm_out keep 1e-5, as keras-cv has them). Paths name layers, as in the table.
EPSILONS: dict[str, dict[str, float]] = {
    "text_encoder": {},
    "diffusion_model": {e.path.rsplit("/", 1)[0]: 1e-6 for e in TABLE["diffusion_model"]
                        if re.fullmatch(r"SpatialTransformer:\d+/norm/gamma", e.path)},
    "image_encoder": {e.path.rsplit("/", 1)[0]: 1e-6 for e in TABLE["image_encoder"]
                      if e.path.endswith("/gamma")},
    "decoder": {e.path.rsplit("/", 1)[0]: 1e-6 for e in TABLE["decoder"]
                if e.path.endswith("/gamma")},
}


def canonical_keys() -> list[str]:
    """Every canonical key the four keras-cv models use, in table order."""
    return [e.key for model in MODELS for e in TABLE[model]]


def split_path(path: str) -> tuple[str, int, list[str | int]]:
    """"ResBlock:3/entry_flow/2/conv2d/kernel" -> ("ResBlock", 3, ["entry_flow", 2, ...])."""
    head, *rest = path.split("/")
    cls, n = head.split(":")
    return cls, int(n), [int(s) if s.isdigit() else s for s in rest]


# ---------------------------------------------------------------------------------------
# transforms

def _shape_error(entry: Entry, model: str, got, want) -> CheckpointError:
    return CheckpointError(
        f"weight {entry.key!r} has shape {tuple(got)} (keras-cv layout "
        f"{_kcv_shape_or_none(entry.transform, got)}), but keras-cv's {KERAS_CV_CLASS[model]} "
        f"variable {entry.path!r} has shape {tuple(want)} (torch layout "
        f"{_torch_shape(entry.transform, want)}); the checkpoint is not Stable Diffusion v1 "
        "(a v2 checkpoint has 1024-wide text features and Linear proj_in/proj_out)")


def _kcv_shape_or_none(transform: str, shape) -> tuple | str:
    shape = tuple(shape)
    if transform == "conv" and len(shape) == 4:
        return (shape[2], shape[3], shape[1], shape[0])
    if transform in ("linear", "linear1x1") and len(shape) == 2:
        return (shape[1], shape[0]) if transform == "linear" else (1, 1, shape[1], shape[0])
    if transform in ("vector", "embed"):
        return shape
    return "n/a"


def _torch_shape(transform: str, kcv_shape) -> tuple:
    s = tuple(kcv_shape)
    if transform in ("conv", "linear1x1") and len(s) == 4:
        return (s[3], s[2], s[0], s[1]) if transform == "conv" else (s[3], s[2])
    if transform == "linear" and len(s) == 2:
        return (s[1], s[0])
    return s


def to_keras_cv(entry: Entry, array: np.ndarray, target_shape: Iterable[int],
                model: str = "diffusion_model") -> np.ndarray:
    """A canonical array -> keras-cv's layout (a view where NumPy allows).

    Raises:
        CheckpointError: the result would not have `target_shape` (the keras-cv variable's),
            naming the canonical key, the keras-cv model and variable, and both shapes.
    """
    target = tuple(int(d) for d in target_shape)
    a = np.asarray(array)
    t = entry.transform
    if t == "conv" and a.ndim == 4:
        out = a.transpose(2, 3, 1, 0)
    elif t == "linear" and a.ndim == 2:
        out = a.T
    elif t == "linear1x1" and a.ndim == 2:
        out = a.T.reshape(1, 1, a.shape[1], a.shape[0])
    elif t in ("vector", "embed"):
        out = a
    else:
        raise _shape_error(entry, model, a.shape, target)
    if out.shape != target:
        raise _shape_error(entry, model, a.shape, target)
    return out


def from_keras_cv(entry: Entry, array: np.ndarray) -> np.ndarray:
    """A keras-cv variable's value -> the canonical layout (contiguous, float32 kept)."""
    a = np.asarray(array)
    t = entry.transform
    if t == "conv":
        out = a.transpose(3, 2, 0, 1)
    elif t == "linear":
        out = a.T
    elif t == "linear1x1":
        out = a.reshape(a.shape[2], a.shape[3]).T
    else:
        out = a
    return np.ascontiguousarray(out)


# ---------------------------------------------------------------------------------------
# going in: older spellings, missing and unexpected keys

_VAE_ATTN = re.compile(
    r"^vae/(encoder|decoder)\.mid_block\.attentions\.0\.(\w+(?:\.0)?)\.(weight|bias)$")
_VAE_LEGACY = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}
_VAE_LINEAR = {"to_q", "to_k", "to_v", "to_out.0"}


def normalize(weights: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Older spellings -> the table's keys; returns (weights, notes on what was changed).

    No array is copied (reshapes of contiguous arrays are views). Keys are not checked
    here (see `check_keys`), so that shape errors, which say more, can come first.

    Raises:
        CheckpointError: two spellings of one weight.
    """
    out: dict[str, np.ndarray] = {}
    renamed, dropped, reshaped = 0, [], 0
    for key, value in weights.items():
        new = key
        if key.startswith("text_encoder/") and not key.startswith("text_encoder/text_model."):
            new = "text_encoder/text_model." + key[len("text_encoder/"):]
        m = _VAE_ATTN.match(new)
        if m and m.group(2) in _VAE_LEGACY:
            new = (f"vae/{m.group(1)}.mid_block.attentions.0."
                   f"{_VAE_LEGACY[m.group(2)]}.{m.group(3)}")
        if new in IGNORED_KEYS:
            dropped.append(new)
            continue
        m = _VAE_ATTN.match(new)
        if m and m.group(2) in _VAE_LINEAR and m.group(3) == "weight":
            a = np.asarray(value)
            if a.ndim == 4 and a.shape[2:] == (1, 1):   # conv-shaped Linear (older converters)
                value = a.reshape(a.shape[0], a.shape[1])
                reshaped += 1
        if new in out:
            raise CheckpointError(f"the weights hold two spellings of {new!r} (one is {key!r}); "
                                  "keep one")
        renamed += new != key
        out[new] = value
    notes = []
    if renamed:
        notes.append(f"{renamed} keys renamed from older spellings")
    if reshaped:
        notes.append(f"{reshaped} conv-shaped VAE attention weights read as Linear")
    if dropped:
        notes.append("ignored " + ", ".join(dropped))
    return out, notes


def check_keys(weights: Mapping[str, np.ndarray]) -> None:
    """Every table key present, nothing else (after `normalize`).

    Raises:
        CheckpointError: listing the missing and the unexpected keys (the first few of each)
            and the expected layout.
    """
    expected = canonical_keys()
    missing = [k for k in expected if k not in weights]
    unexpected = sorted(set(weights) - set(expected))
    if not missing and not unexpected:
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:5])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:5])})")
    raise CheckpointError(
        "these are not Stable Diffusion v1 weights in the diffusers layout: "
        + "; ".join(parts) + ". Expected keys 'unet/<UNet2DConditionModel key>', "
        "'vae/<AutoencoderKL key>', 'text_encoder/text_model.<CLIPTextModel key>'")
