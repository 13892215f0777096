"""Stable Diffusion weight sets: a diffusers checkpoint folder, a CompVis single file, or
seeded random weights ("random:SEED"), read into the canonical layout (sd/layout.py).

The diffusers folder (what `StableDiffusionPipeline.save_pretrained` writes):

    model_index.json
    unet/config.json            unet/diffusion_pytorch_model.safetensors   (or .bin)
    vae/config.json             vae/diffusion_pytorch_model.safetensors    (or .bin)
    text_encoder/config.json    text_encoder/model.safetensors             (or pytorch_model.bin)
    tokenizer/vocab.json        tokenizer/merges.txt   (special_tokens_map.json, tokenizer_config.json)
    scheduler/scheduler_config.json

`.safetensors` files are read with safetensors (no code runs); `.bin` and CompVis `.ckpt` are
pickles and are read only by `weightfile.read_state_dict` (torch.load(weights_only=True)).
Half-precision files are widened to float32. Every array is checked against the shapes the
architecture implies before any model is built, so a wrong or partial checkpoint fails with one
message naming the file, the layer and the shapes, and nothing is written.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gan_diffusion.errors import CheckpointError
from gan_diffusion.sd import layout
from gan_diffusion.sd.architectures import ARCHITECTURES, COMPONENTS, SDArchitecture
from gan_diffusion.sd.weightset import (IGNORED_KEYS, SDWeights, check_weights, normalise_keys,
                                        read_array_file, sha256_file)

__all__ = ["load_weights", "read_folder", "save_folder", "parse_random", "SDWeights",
           "check_weights", "read_array_file", "LAYOUT"]

LAYOUT = """\
expected a diffusers Stable Diffusion folder:
  model_index.json
  unet/config.json, unet/diffusion_pytorch_model.safetensors (or .bin)
  vae/config.json, vae/diffusion_pytorch_model.safetensors (or .bin)
  text_encoder/config.json, text_encoder/model.safetensors (or pytorch_model.bin)
  tokenizer/vocab.json, tokenizer/merges.txt
  scheduler/scheduler_config.json"""

# weight file names per component, preferred first (diffusers' and transformers' names)
WEIGHT_FILES = {
    "unet": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
    "vae": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
    "text_encoder": ("model.safetensors", "pytorch_model.bin"),
}
CONFIG_FILES = {"unet": "config.json", "vae": "config.json", "text_encoder": "config.json",
                "scheduler": "scheduler_config.json"}


def parse_random(spec: str) -> int | None:
    """The seed of "random:SEED", None for any other spec; a bad seed is a CheckpointError."""
    if not spec.startswith("random:"):
        return None
    text = spec.split(":", 1)[1]
    if not text.isdigit():
        raise CheckpointError(f"weights {spec!r}: random weights are 'random:SEED' with a "
                              "non-negative integer seed, e.g. random:0")
    return int(text)


def load_weights(spec: str | os.PathLike, model: str = "sd-v1",
                 tokenizer: str | os.PathLike | None = None) -> SDWeights:
    """Read the weight set `spec` for the registered model `model` ("sd-v1" / "sd-v2").

    Args:
        spec: "random:SEED", a diffusers checkpoint folder, or a CompVis single file
            (.ckpt / .safetensors).
        tokenizer: a folder with the CLIP BPE files (vocab.json, merges.txt). Required for a
            single file, which holds none; a folder and random weights bring their own.

    Raises:
        CheckpointError: a missing file (named, with the expected layout), a damaged file, a
            key or shape that does not fit, or another version's checkpoint.
    """
    spec = str(spec)
    seed = parse_random(spec)
    path = Path(spec).expanduser()
    single = seed is None and path.is_file()
    if tokenizer and not single:
        raise CheckpointError(f"a tokenizer folder applies to single-file checkpoints only; "
                              f"{spec} brings its own: drop --tokenizer")
    if single and not tokenizer:
        raise CheckpointError(f"{spec} is a single file and holds no tokenizer: pass --tokenizer "
                              "DIR (tokenizer= in the API), a folder with vocab.json and merges.txt, "
                              "e.g. the tokenizer/ folder of any diffusers SD checkpoint of this version")
    if seed is not None:
        arch = ARCHITECTURES[model]
        return SDWeights(arch, layout.random_weights(arch, seed), None,
                         {"kind": "random", "spec": spec, "seed": seed,
                          "generator": layout.RANDOM_WEIGHTS_VERSION})
    if path.is_dir():
        return read_folder(path, model)
    if single:
        from gan_diffusion.sd.single_file import read_single_file

        return read_single_file(path, model, tokenizer_dir=tokenizer)
    raise CheckpointError(f"weights {spec!r}: no such folder or file; pass a diffusers Stable "
                          f"Diffusion folder, a CompVis .ckpt/.safetensors file or random:SEED\n{LAYOUT}")


def check_weight_spec(spec: str | os.PathLike, model: str = "sd-v1",
                      tokenizer: str | os.PathLike | None = None) -> None:
    """The checks of `load_weights` that need no weight array read: a random seed, a folder's
    configs, tokenizer and every weight file (and shard) present, a single file present with
    its tokenizer. What a caller runs before long work that will load the weights later
    (e.g. compare's sd-img2img runs).

    Raises:
        CheckpointError: the same messages as `load_weights` for these problems.
    """
    spec = str(spec)
    if parse_random(spec) is not None:
        if tokenizer:
            raise CheckpointError(f"a tokenizer folder applies to single-file checkpoints only; "
                                  f"{spec} brings its own: drop --tokenizer")
        return
    path = Path(spec).expanduser()
    if path.is_dir():
        if tokenizer:
            raise CheckpointError(f"a tokenizer folder applies to single-file checkpoints only; "
                                  f"{spec} brings its own: drop --tokenizer")
        read_folder(path, model, components=())          # configs, tokenizer, version
        for c in layout.WEIGHTED:
            _component_files(_weight_file(path, c))
        return
    if path.is_file():
        if not tokenizer:
            raise CheckpointError(f"{spec} is a single file and holds no tokenizer: pass --tokenizer "
                                  "DIR (tokenizer= in the API), a folder with vocab.json and merges.txt")
        for name in ("vocab.json", "merges.txt"):
            if not (Path(tokenizer) / name).is_file():
                raise CheckpointError(f"{Path(tokenizer) / name} is missing: the tokenizer folder "
                                      "holds vocab.json and merges.txt")
        return
    raise CheckpointError(f"weights {spec!r}: no such folder or file; pass a diffusers Stable "
                          f"Diffusion folder, a CompVis .ckpt/.safetensors file or random:SEED\n{LAYOUT}")


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing\n{LAYOUT}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} holds a JSON {type(data).__name__}, not an object")
    return data


def _weight_file(folder: Path, component: str) -> Path:
    for name in WEIGHT_FILES[component]:
        if (folder / component / name).is_file():
            return folder / component / name
    index = folder / component / (WEIGHT_FILES[component][0] + ".index.json")
    if index.is_file():
        return index
    raise CheckpointError(f"{folder / component / WEIGHT_FILES[component][0]} is missing "
                          f"(nor {WEIGHT_FILES[component][1]})\n{LAYOUT}")


def _component_files(path: Path) -> list[Path]:
    """The weight file, or the index and every shard it names (each inside its folder)."""
    if not path.name.endswith(".index.json"):
        return [path]
    shards = sorted(set(_read_json(path).get("weight_map", {}).values()))
    if not shards:
        raise CheckpointError(f"{path} names no shards (its weight_map is empty or missing)\n{LAYOUT}")
    for shard in shards:
        if Path(shard).name != shard or not (path.parent / shard).is_file():
            raise CheckpointError(f"{path} names the shard {shard!r}, which is not a file in "
                                  f"{path.parent}\n{LAYOUT}")
    return [path] + [path.parent / s for s in shards]


def _read_component(files: list[Path]) -> dict[str, np.ndarray]:
    """The arrays of _component_files(...): every file but an index."""
    state: dict[str, np.ndarray] = {}
    for f in files:
        if not f.name.endswith(".index.json"):
            state.update(read_array_file(f))
    return state


def read_folder(folder: str | os.PathLike, model: str = "sd-v1",
                components: tuple[str, ...] = layout.WEIGHTED) -> SDWeights:
    """Read a diffusers checkpoint folder (see the module docstring) for `model`."""
    folder = Path(folder)
    index = _read_json(folder / "model_index.json")
    for part in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        if part not in index:
            raise CheckpointError(f"{folder / 'model_index.json'} names no {part!r} component; "
                                  f"it is not a Stable Diffusion pipeline\n{LAYOUT}")
    configs = {c: _read_json(folder / c / CONFIG_FILES[c]) for c in COMPONENTS}
    for name in ("vocab.json", "merges.txt"):
        if not (folder / "tokenizer" / name).is_file():
            raise CheckpointError(f"{folder / 'tokenizer' / name} is missing\n{LAYOUT}")
    arch = SDArchitecture.from_dicts(**configs)
    want = ARCHITECTURES[model].version
    known = {a.version for a in ARCHITECTURES.values()}
    if arch.version != want and arch.version in known:   # custom sizes (tests' tiny) load as is
        raise CheckpointError(
            f"{folder} is a Stable Diffusion {arch.version} checkpoint (unet cross_attention_dim "
            f"{arch.unet['cross_attention_dim']}, text encoder hidden_size "
            f"{arch.text_encoder['hidden_size']}), not {model} ({want}); build it as "
            f"{'sd-' + arch.version if ('sd-' + arch.version) in ARCHITECTURES else 'another model'}")
    files = {c: _component_files(_weight_file(folder, c)) for c in components}   # all present first
    weights: dict[str, np.ndarray] = {}
    digests = {}
    for c, paths in files.items():
        weights.update(normalise_keys(c, _read_component(paths)))
        for path in paths:                     # a sharded component: the index and every shard
            digests[str(path.relative_to(folder))] = sha256_file(path)
    for c in COMPONENTS:
        digests[f"{c}/{CONFIG_FILES[c]}"] = sha256_file(folder / c / CONFIG_FILES[c])
    for name in ("vocab.json", "merges.txt"):
        digests[f"tokenizer/{name}"] = sha256_file(folder / "tokenizer" / name)
    check_weights(weights, arch, str(folder), model, components)
    for key in IGNORED_KEYS:
        weights.pop(key, None)
    return SDWeights(arch, weights, folder / "tokenizer",
                     {"kind": "diffusers", "spec": str(folder), "path": str(folder.resolve()),
                      "files": digests})


def save_folder(folder: str | os.PathLike, arch: SDArchitecture, weights: Mapping[str, np.ndarray],
                tokenizer_dir: str | os.PathLike | None = None) -> Path:
    """Write a diffusers checkpoint folder (safetensors) that `read_folder` and diffusers'
    `StableDiffusionPipeline.from_pretrained` both read.

    Args:
        tokenizer_dir: a folder with vocab.json and merges.txt to copy; None writes the
            byte-level stand-in vocabulary of random weights (sd/vocab.py).

    The folder is written beside its final name and renamed into place, so a failure leaves
    nothing behind; an existing non-empty folder is refused.
    """
    from gan_diffusion.utils.io import atomic_folder

    check_weights(weights, arch, "save_folder")
    try:
        with atomic_folder(folder) as tmp:
            _write_folder(tmp, arch, weights, tokenizer_dir)
    except FileExistsError as exc:
        raise CheckpointError(f"{exc}: choose a new folder") from None
    return Path(folder)


def _write_folder(folder: Path, arch: SDArchitecture, weights: Mapping[str, np.ndarray],
                  tokenizer_dir: str | os.PathLike | None) -> None:
    from safetensors.numpy import save_file

    from gan_diffusion.sd.vocab import write_stand_in_vocabulary
    from gan_diffusion.utils.io import atomic_write_json

    for c in layout.WEIGHTED:
        (folder / c).mkdir(parents=True, exist_ok=True)
        state = {k.split("/", 1)[1]: np.ascontiguousarray(v) for k, v in weights.items()
                 if k.startswith(c + "/")}
        save_file(state, str(folder / c / WEIGHT_FILES[c][0]), metadata={"format": "pt"})
    classes = {"unet": "UNet2DConditionModel", "vae": "AutoencoderKL"}
    for c in COMPONENTS:
        config = dict(getattr(arch, c))
        if c in classes:
            config["_class_name"] = classes[c]
        if c == "text_encoder":
            config.update(architectures=["CLIPTextModel"], model_type="clip_text_model")
        atomic_write_json(folder / c / CONFIG_FILES[c], config)
    tok = folder / "tokenizer"
    tok.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir is None:
        write_stand_in_vocabulary(tok)
    else:
        for name in ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json"):
            src = Path(tokenizer_dir) / name
            if src.is_file():
                (tok / name).write_bytes(src.read_bytes())
    atomic_write_json(folder / "model_index.json", {
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1",
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "scheduler": ["diffusers", arch.scheduler.get("_class_name", "PNDMScheduler")],
        "safety_checker": [None, None], "feature_extractor": [None, None],
        "requires_safety_checker": False})
