"""A Stable Diffusion weight set in the canonical layout (`SDWeights`) and what every reader
shares: reading one array file safely, normalising a component's keys, checking keys and
shapes against an architecture, file digests. The readers are sd/checkpoint.py (diffusers
folders, random weights) and sd/single_file.py (CompVis single files).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gan_diffusion.errors import CheckpointError
from gan_diffusion.sd import layout
from gan_diffusion.sd.architectures import ARCHITECTURES, SDArchitecture

# keys some published files carry that are not weights (buffers rebuilt by the models)
IGNORED_KEYS = {"text_encoder/text_model.embeddings.position_ids"}
# legacy names of the VAE mid-block attention (diffusers < 0.14 and CompVis), renamed on load
_LEGACY_VAE_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


@dataclasses.dataclass
class SDWeights:
    """A weight set in the canonical layout, with what it came from.

    Attributes:
        arch: the architecture (config dicts) the weights fit.
        weights: {"unet/conv_in.weight": float32 array, ...}.
        tokenizer_dir: the folder holding vocab.json and merges.txt (None: random weights,
            which use the byte-level stand-in vocabulary, sd/tokenizer.py).
        source: JSON-able record: {"kind": "random" | "diffusers" | "single-file", "spec",
            "path", "seed", "files": {relative path: sha256}}.
    """

    arch: SDArchitecture
    weights: dict[str, np.ndarray]
    tokenizer_dir: Path | None
    source: dict[str, Any]

    @property
    def id(self) -> str:
        """What a record names the weights by: "random:0", or the folder's digest."""
        if self.source["kind"] == "random":   # with source["generator"], the drawing rule
            return f"random:{self.source['seed']}"
        digest = hashlib.sha256(json.dumps(self.source["files"], sort_keys=True).encode())
        return f"sha256:{digest.hexdigest()[:16]}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def read_array_file(path: Path) -> dict[str, np.ndarray]:
    """A .safetensors (safetensors, NumPy; bfloat16 too) or a torch pickle (.bin / .ckpt, weights_only)."""
    from gan_diffusion.weightfile import read_safetensors, read_state_dict

    if path.suffix == ".safetensors":
        return read_safetensors(path, error=CheckpointError)   # bfloat16 widened to float32

    return read_state_dict(path, error=CheckpointError,
                           fix="re-download it or convert it to .safetensors")


def normalise_keys(component: str, state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One component's state dict as canonical {"<component>/<key>": float32 array}.

    Renames legacy names (the VAE attention's query/key/value/proj_attn, and
    transformers-5 text-encoder keys without "text_model."), reshapes conv-shaped (c, c, 1, 1)
    VAE attention weights to linear (c, c), widens half precision to float32.
    """
    out = {}
    for key, value in state.items():
        if component == "vae" and ".attentions." in key:
            head, name, param = key.rsplit(".", 2)
            if name in _LEGACY_VAE_ATTENTION:
                key = f"{head}.{_LEGACY_VAE_ATTENTION[name]}.{param}"
            if value.ndim == 4 and key.endswith(".weight"):
                value = value[:, :, 0, 0]
        if component == "text_encoder" and not key.startswith("text_model."):
            key = f"text_model.{key}"
        value = np.asarray(value)
        if value.dtype.kind == "f" and value.dtype != np.float32:
            value = value.astype(np.float32)   # float16 / bfloat16 / float64 files
        out[f"{component}/{key}"] = value
    return out


def check_weights(weights: Mapping[str, np.ndarray], arch: SDArchitecture, where: str,
                  model: str = "sd-v1", components: tuple[str, ...] = layout.WEIGHTED) -> None:
    """CheckpointError unless `weights` holds exactly the keys and shapes of `arch`.

    The message names the first layer whose shape differs (with both shapes), else the first
    few missing or unexpected keys; weights that fit another registered model say so.
    """
    expected = layout.shapes(arch, components)
    present = {k for k in weights if k not in IGNORED_KEYS}
    for key, shape in expected.items():
        got = tuple(weights[key].shape) if key in present else shape
        if got != shape:
            raise CheckpointError(f"{where}: layer {key} has shape {got}, {model} expects {shape}"
                                  f"{_other_model_hint(weights, model, components)}")
    missing = [k for k in expected if k not in present]
    extra = sorted(present - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if extra:
            parts.append(f"{len(extra)} unexpected (e.g. {', '.join(extra[:3])})")
        raise CheckpointError(f"{where}: the weights do not fit the {model} architecture of its "
                              f"config.json: {'; '.join(parts)}"
                              f"{_other_model_hint(weights, model, components)}")


def _other_model_hint(weights: Mapping[str, np.ndarray], model: str,
                      components: tuple[str, ...]) -> str:
    """"; this looks like an sd-v2 checkpoint: build it as sd-v2" when every key and shape
    fits another registered model's architecture."""
    present = {k: tuple(v.shape) for k, v in weights.items() if k not in IGNORED_KEYS}
    for name, arch in ARCHITECTURES.items():
        if name != model and layout.shapes(arch, components) == present:
            return f"; this looks like an {name} checkpoint: build it as {name}"
    return ""
