"""The original CompVis / Stability single-file checkpoint, read into the canonical layout.

One file holds the whole LatentDiffusion model under the names of CompVis' code:

    model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight   (320, 768)
    first_stage_model.decoder.up.3.block.0.conv1.weight                             (128, 512, 3, 3)
    cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight         (3072, 768)
    (v2: cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight         (3072, 1024))
    model_ema.diffusion_modelinput_blocks11transformer_blocks0attn2to_kweight       (EMA copy)
    betas, alphas_cumprod, ..., global_step                                          (ignored)

as `.safetensors` (read with safetensors.numpy: no code runs, no torch tensors) or `.ckpt`
(a Lightning pickle, {"state_dict": {...}, "global_step": ...}: read only by
`weightfile.read_state_dict`, torch.load(weights_only=True); a pickle holding anything but
tensors and containers is refused, never unpickled another way).

The renaming is diffusers' own (diffusers.loaders.single_file_utils: convert_ldm_unet_checkpoint,
convert_ldm_vae_checkpoint, convert_ldm_clip_checkpoint, and convert_open_clip_checkpoint for
v2's OpenCLIP text encoder); those are plain dict and slicing code and run on NumPy arrays, so
the arrays come out bit-identical (views, float16 widened to float32). diffusers is imported
inside `read_single_file` only (it imports torch). The version is read from the shapes
(cross-attention key width 768: v1, CLIP ViT-L; 1024: v2, OpenCLIP ViT-H), and a file of the
other version is refused naming both. A v2 file is read as "sd-v2" (SD 2.x-base: epsilon
prediction, 512 px); 2.x-768-v files have the same shapes (v-prediction), which no shape tells.

Cost (full-size v1, 4.3 GB float32 .safetensors, 2 busy cores): reading ~7 s, sha256 ~6 s,
the conversion 0.03 s (no copies), importing diffusers ~15 s the first time; memory: one copy
of the arrays (plus, while safetensors reads, its memory-mapped pages).

Example:
    >>> w = read_single_file("v1-5-pruned-emaonly.safetensors", "sd-v1",
    ...                      tokenizer_dir="stable-diffusion-v1-5/tokenizer")
    >>> w.weights["unet/conv_in.weight"].shape
    (320, 4, 3, 3)
"""
from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from gan_diffusion.errors import CheckpointError
from gan_diffusion.sd.architectures import ARCHITECTURES, SDArchitecture
from gan_diffusion.sd.weightset import (IGNORED_KEYS, SDWeights, check_weights, sha256_file,
                                         normalise_keys, read_array_file)

UNET = "model.diffusion_model."
VAE = "first_stage_model."
CLIP = "cond_stage_model.transformer."        # v1: transformers' CLIPTextModel inside
OPEN_CLIP = "cond_stage_model.model."         # v2: open_clip's text tower
EMA = "model_ema."
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
VERSIONS = {768: "v1", 1024: "v2"}             # cross-attention key width -> SD version
TEXT_ENCODERS = {"v1": "CLIP ViT-L/14 text encoder, cond_stage_model.transformer.*",
                 "v2": "OpenCLIP ViT-H/14 text encoder, cond_stage_model.model.*"}
FEATURES = {"v1": "CLIP ViT-L/14 text features", "v2": "OpenCLIP ViT-H/14 text features"}
NEEDS_DIFFUSERS = ("reading a CompVis single file needs diffusers (pip install "
                   "'gan_diffusion[diffusers]'); or convert it once to a diffusers folder")
_ATTN2_K = re.compile(r"^model\.diffusion_model\..*\.attn2\.to_k\.weight$")


def read_single_file(path: str | os.PathLike, model: str = "sd-v1", *,
                     tokenizer_dir: str | os.PathLike | None = None, extract_ema: bool = False,
                     arch: SDArchitecture | None = None) -> SDWeights:
    """Read a CompVis single-file checkpoint (.safetensors or .ckpt) for `model`.

    Args:
        path: the file (see the module docstring for the layout).
        model: the registered model ("sd-v1" / "sd-v2") whose architecture the file must fit.
        tokenizer_dir: a folder with the CLIP BPE files vocab.json and merges.txt. A single
            file holds no tokenizer; SD v1's is CLIP ViT-L/14's, e.g. the tokenizer/ folder of
            any diffusers SD v1 checkpoint. None: tokenizer_dir=None in the result, i.e. the
            byte-level stand-in vocabulary (sd/vocab.py), which spells prompts letter by
            letter: the model runs, but real prompts need the real vocabulary.
        extract_ema: take the EMA copy of the U-Net (model_ema.*) where the file has one;
            False (diffusers' default) takes model.diffusion_model.* (the non-EMA weights of
            a training checkpoint; "pruned-emaonly" files hold the EMA weights there).
        arch: the architecture to fit instead of `model`'s (tests' tiny ones).

    Returns:
        SDWeights with source {"kind": "single-file", "spec", "path", "files": {name: sha256},
        "version": "v1" | "v2", "ema": {"in_file": bool, "used": bool}}.

    Raises:
        CheckpointError: a missing, damaged or truncated file; a pickle holding more than
            tensors; no diffusers; a file of another version (naming its key width and the
            model to build); missing or unexpected keys or a wrong shape (check_weights).
    """
    path = Path(path).expanduser()
    if model not in ARCHITECTURES:
        raise CheckpointError(f"unknown Stable Diffusion model {model!r}; valid: "
                              f"{', '.join(sorted(ARCHITECTURES))}")
    arch = arch or ARCHITECTURES[model]
    tok_files = _tokenizer_files(tokenizer_dir)
    state = read_raw(path)
    version = detect_version(state, path)
    want = int(arch.unet["cross_attention_dim"])
    if VERSIONS.get(want, f"custom ({want})") != version:
        raise CheckpointError(
            f"{path} is a Stable Diffusion {version} single file (cross-attention key width "
            f"{_width(state)}{': ' + FEATURES[version] if version in FEATURES else ''}), "
            f"not {model} (width {want}); build it as "
            f"{'sd-' + version if 'sd-' + version in ARCHITECTURES else 'another model'}")
    weights, ema = convert(state, arch, extract_ema)
    del state
    check_weights(weights, arch, str(path), model)
    files = {path.name: sha256_file(path), **tok_files}
    return SDWeights(arch, weights, Path(tokenizer_dir) if tokenizer_dir is not None else None,
                     {"kind": "single-file", "spec": str(path), "path": str(path.resolve()),
                      "files": files, "version": version, "ema": ema})


def read_raw(path: Path) -> dict[str, np.ndarray]:
    """The file's flat {CompVis key: array} (a .ckpt's nested "state_dict" unwrapped)."""
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist: pass a CompVis .ckpt/.safetensors file, "
                              "a diffusers Stable Diffusion folder or random:SEED")
    if path.suffix == ".safetensors":
        return read_array_file(path)
    if path.suffix not in PICKLE_SUFFIXES:
        raise CheckpointError(f"{path}: a single-file checkpoint is a .safetensors or a "
                              f"{'/'.join(PICKLE_SUFFIXES)} pickle, not {path.suffix or 'no suffix'}")
    from gan_diffusion.weightfile import read_state_dict

    return read_state_dict(path, error=CheckpointError, fix=(
        "a .ckpt is a pickle and is read only with torch.load(weights_only=True): tensors and "
        "containers only, nothing else is ever unpickled (training checkpoints such as "
        "sd-v1-4.ckpt also pickle a pytorch_lightning ModelCheckpoint callback); use the "
        "model's .safetensors release or a diffusers folder instead"))


def _width(state: Mapping[str, np.ndarray]) -> int | None:
    """The U-Net's cross-attention key width (its to_k input size), None without one."""
    widths = {int(v.shape[-1]) for k, v in state.items() if _ATTN2_K.match(k) and v.ndim == 2}
    return widths.pop() if len(widths) == 1 else (None if not widths else -1)


def detect_version(state: Mapping[str, np.ndarray], path: Path) -> str:
    """"v1" / "v2" (or "custom (width)") from the cross-attention key width."""
    if not any(k.startswith(UNET) for k in state):
        some = ", ".join(sorted(state)[:3]) or "no arrays"
        kind = ("an SDXL single file (conditioner.embedders.*), which this library does not "
                "implement" if any(k.startswith("conditioner.") for k in state)
                else f"not a CompVis Stable Diffusion file (e.g. {some})")
        raise CheckpointError(f"{path} has no U-Net ({UNET}* keys): {kind}")
    width = _width(state)
    if width is None or width < 0:
        raise CheckpointError(f"{path}: {UNET}*.attn2.to_k.weight is "
                              f"{'missing' if width is None else 'of several widths'}: "
                              "not a text-conditioned Stable Diffusion U-Net")
    return VERSIONS.get(width, f"custom ({width})")


class _Tensorish(np.ndarray):
    """An ndarray view with the .clone().detach() that convert_open_clip_checkpoint calls
    on its q/k/v slices (no copy is needed: nothing writes to the arrays)."""

    def clone(self) -> "_Tensorish":
        return self

    def detach(self) -> np.ndarray:
        return self.view(np.ndarray)


def convert(state: Mapping[str, np.ndarray], arch: SDArchitecture, extract_ema: bool = False
            ) -> tuple[dict[str, np.ndarray], dict[str, bool]]:
    """CompVis keys -> canonical weights with diffusers' converters, and the EMA record."""
    try:
        from diffusers.loaders import single_file_utils as sfu
    except ImportError:
        raise CheckpointError(NEEDS_DIFFUSERS) from None
    ema_in_file = sum(k.startswith(EMA) for k in state) > 100    # diffusers' own test
    if extract_ema and not ema_in_file:
        warnings.warn("extract_ema=True, but the file holds no EMA weights (model_ema.*): "
                      "using model.diffusion_model.*", stacklevel=3)
    if any(k.startswith(CLIP) for k in state):
        text = lambda: sfu.convert_ldm_clip_checkpoint(state)   # noqa: E731
    elif any(k.startswith(OPEN_CLIP) for k in state):
        text = lambda: _open_clip(sfu, state, arch)             # noqa: E731
    else:
        raise CheckpointError(f"the file has no text encoder ({TEXT_ENCODERS['v1']}; "
                              f"v2: {TEXT_ENCODERS['v2']})")
    steps = {"unet": lambda: sfu.convert_ldm_unet_checkpoint(state, arch.unet, extract_ema=extract_ema),
             "vae": lambda: sfu.convert_ldm_vae_checkpoint(state, arch.vae), "text_encoder": text}
    parts = {}
    for c, step in steps.items():
        try:
            parts[c] = step()
        except (KeyError, IndexError, AttributeError, TypeError, ValueError) as exc:
            import diffusers

            raise CheckpointError(
                f"diffusers {diffusers.__version__} could not convert the file's {c} "
                f"({type(exc).__name__}: {str(exc)[:200]}): a partial file, or a layout this "
                "reader does not know") from None
    weights = {}
    for c, sd in parts.items():
        weights.update(normalise_keys(c, {k: v for k, v in sd.items() if v is not None}))
    for key in IGNORED_KEYS:
        weights.pop(key, None)
    return weights, {"in_file": ema_in_file, "used": bool(extract_ema and ema_in_file)}


def _open_clip(sfu, state: Mapping[str, np.ndarray], arch: SDArchitecture) -> dict[str, np.ndarray]:
    """v2's OpenCLIP text tower as CLIPTextModel keys: diffusers' converter (which splits the
    fused in_proj into q/k/v), given only the layers the architecture uses (SD 2 conditions on
    the penultimate layer: diffusers' text encoder has 23 of OpenCLIP's 24) and no
    text_projection (CLIPTextModel has none)."""
    n = int(arch.text_encoder["num_hidden_layers"])
    layer = re.compile(re.escape(OPEN_CLIP) + r"transformer\.resblocks\.(\d+)\.")
    keep = {}
    for k, v in state.items():
        if not k.startswith(OPEN_CLIP) or k == OPEN_CLIP + "text_projection":
            continue
        m = layer.match(k)
        if m is None or int(m.group(1)) < n:
            keep[k] = v.view(_Tensorish)
    stub = SimpleNamespace(config=SimpleNamespace(hidden_size=int(arch.text_encoder["hidden_size"])))
    out = sfu.convert_open_clip_checkpoint(stub, keep, prefix=OPEN_CLIP)
    return {k: np.asarray(v).view(np.ndarray) for k, v in out.items()}


def _tokenizer_files(folder: str | os.PathLike | None) -> dict[str, str]:
    """{"tokenizer/vocab.json": sha256, "tokenizer/merges.txt": sha256}, checked up front."""
    if folder is None:
        return {}
    out = {}
    for name in ("vocab.json", "merges.txt"):
        f = Path(folder) / name
        if not f.is_file():
            raise CheckpointError(f"tokenizer_dir {folder}: {name} is missing; pass a folder "
                                  "with CLIP's vocab.json and merges.txt (the tokenizer/ folder "
                                  "of a diffusers SD checkpoint)")
        out[f"tokenizer/{name}"] = sha256_file(f)
    return out
