"""Safe weight and array files, framework-free: `.npz` with JSON metadata, and torch `.pth`.

One reader and one writer for every `.npz` the library keeps (checkpoints, canonical FID
Inception and classifier weights, feature statistics, sample images):

    arrays   name -> np.ndarray (no object arrays: nothing is ever pickled)
    __meta__ a 0-d string array holding one JSON object (format tag, ids, config, ...)

`read_npz` loads with allow_pickle=False, so reading a file never runs code, and turns every
way a file can be bad (missing, truncated, not an archive, no or broken metadata) into one
library error naming the file. `write_npz` writes atomically (utils.io.atomic_open).

`read_state_dict` reads a torch `.pth` state_dict; it is the only place that imports torch,
inside the function (torch.load(weights_only=True): tensors and containers only).
`read_safetensors` reads a `.safetensors` file with safetensors' NumPy reader, bfloat16
tensors included (widened to float32 from their raw bytes: NumPy has no bfloat16).

Example:
    >>> write_npz("ckpt.npz", {"weights/g/fc/kernel": w}, {"format": "gan_diffusion.checkpoint/1"})
    >>> arrays, meta = read_npz("ckpt.npz", what="checkpoint", format="gan_diffusion.checkpoint/1")
"""
from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gan_diffusion.errors import CheckpointError, GanDiffusionError
from gan_diffusion.utils.io import atomic_open

META_KEY = "__meta__"   # the entry that holds the JSON metadata


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any],
              *, compress: bool = False, json_default: Callable[[Any], Any] | None = None) -> Path:
    """Write `arrays` and the JSON object `meta` as one .npz, atomically.

    Args:
        path: target file; an existing file is replaced only once the new one is complete.
        arrays: name -> array (any shape and numeric/str dtype; object arrays are refused).
        meta: JSON-able metadata, stored sorted by key under "__meta__".
        compress: np.savez_compressed instead of np.savez (e.g. uint8 images).
        json_default: `json.dumps(default=...)` for values JSON cannot hold (e.g. `str`).

    Returns:
        The path.

    Raises:
        ValueError: an array named "__meta__", or an object array (it would need pickle).
        TypeError: metadata that JSON cannot hold (without `json_default`).
    """
    out = {}
    for name, value in arrays.items():
        a = np.asarray(value)
        if name == META_KEY or a.dtype.hasobject:
            raise ValueError(f"{path}: array {name!r} ({a.dtype}) cannot be stored; the name "
                             f"{META_KEY!r} is reserved and object arrays would need pickle")
        out[name] = a
    out[META_KEY] = np.array(json.dumps(dict(meta), sort_keys=True, default=json_default))
    with atomic_open(path, "wb") as f:
        (np.savez_compressed if compress else np.savez)(f, **out)
    return Path(path)


def read_npz(path: str | os.PathLike, *, what: str = "checkpoint",
             error: type[GanDiffusionError] = CheckpointError, fix: str = "",
             format: str | None = None, require_meta: bool = True
             ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by `write_npz` (np.load with allow_pickle=False).

    Args:
        path: the .npz file.
        what: what the file should be, for messages ("checkpoint", "FID Inception weights").
        error: the exception raised for any bad file (CheckpointError by default).
        fix: what to do about a bad file, appended to every message.
        format: if given, meta["format"] must equal it.
        require_meta: False: a file without "__meta__" gives meta {} instead of an error.

    Returns:
        (arrays, meta): every entry but "__meta__", and the metadata dict.

    Raises:
        `error`: the file is missing, corrupt, truncated or not an .npz archive; it has no
            metadata (require_meta), metadata that is not JSON or not a JSON object, or
            another format.
    """
    path = Path(path)
    end = f"; {fix}" if fix else ""
    if not path.is_file():
        raise error(f"{what} {path} does not exist{end}")
    try:
        if not zipfile.is_zipfile(path):  # also a truncated archive, a lone .npy, a pickle
            raise ValueError("not a complete zip (.npz) archive")
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("not an .npz archive")
        with data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, zlib.error, ValueError, KeyError, OSError, EOFError) as exc:
        raise error(f"{what} {path} is corrupt, truncated or not a gan_diffusion .npz "
                    f"({type(exc).__name__}: {str(exc)[:200]}){end}") from None
    if META_KEY not in arrays:
        if require_meta:
            raise error(f"{what} {path} has no {META_KEY!r} metadata entry: not a {what} "
                        f"written by gan_diffusion{end}")
        return arrays, {}
    meta = _parse_meta(arrays.pop(META_KEY), f"{what} {path}", error, end)
    if format is not None and meta.get("format") != format:
        raise error(f"{what} {path} has format {meta.get('format')!r}; this version reads "
                    f"{format!r}{end}")
    return arrays, meta


def _parse_meta(raw: np.ndarray, where: str, error: type[GanDiffusionError], end: str
                ) -> dict[str, Any]:
    """The JSON object in a 0-d string array, or `error` naming `where`."""
    try:
        meta = json.loads(str(raw[()]))
    except (ValueError, TypeError) as exc:   # json.JSONDecodeError is a ValueError
        raise error(f"{where} has metadata that is not valid JSON ({exc}){end}") from None
    if not isinstance(meta, dict):
        raise error(f"{where} has metadata that is a JSON {type(meta).__name__}, not an "
                    f"object{end}")
    return meta


def read_state_dict(path: str | os.PathLike, *, error: type[GanDiffusionError] = GanDiffusionError,
                    fix: str = "") -> dict[str, np.ndarray]:
    """A torch .pth state_dict as NumPy arrays (imports torch here, and only here).

    torch.load(map_location="cpu", weights_only=True): tensors and containers only, nothing
    else is unpickled. A Lightning checkpoint's nested {"state_dict": {...}, "global_step": ..}
    gives its "state_dict". Non-tensor entries are dropped; bfloat16 is widened to float32
    (NumPy has no bfloat16).

    Raises:
        `error`: torch is not installed, the file is missing or unreadable (for a pickle of
            other objects, the message names the class torch refused), or it holds something
            other than a dict.
    """
    path = Path(path)
    end = f"; {fix}" if fix else ""
    try:
        import torch
    except ImportError:
        raise error(f"reading {path} (a torch .pth) needs torch, which is not installed{end}") from None
    if not path.is_file():
        raise error(f"{path} does not exist{end}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError (bad zip), OSError, ...
        raise error(f"{path} could not be read as a torch state_dict ({type(exc).__name__}: "
                    f"{_reason(str(exc))}){end}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise error(f"{path} holds a {type(state).__name__}, not a state_dict")
    return {k: (v.float() if v.dtype == torch.bfloat16 else v).detach().cpu().numpy()
            for k, v in state.items() if isinstance(v, torch.Tensor)}


def read_safetensors(path: str | os.PathLike, *, error: type[GanDiffusionError] = GanDiffusionError
                     ) -> dict[str, np.ndarray]:
    """A .safetensors file as {name: np.ndarray}; bfloat16 tensors become float32 (exactly).

    safetensors.numpy cannot return bfloat16 (NumPy has no such dtype), so those tensors are
    taken from the file's raw bytes: a bfloat16 is the upper 16 bits of a float32.

    Raises:
        `error`: the file is missing, truncated or not a safetensors file.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy") as f:
            names = list(f.keys())
            bf16 = {n for n in names if f.get_slice(n).get_dtype() == "BF16"}
            out = {n: f.get_tensor(n) for n in names if n not in bf16}
        if bf16:
            with open(path, "rb") as fh:
                header_len = int.from_bytes(fh.read(8), "little")
                header = json.loads(fh.read(header_len))
            body = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_len)
            for n in bf16:
                start, end = header[n]["data_offsets"]
                half = np.frombuffer(body[start:end], dtype="<u2")        # (prod(shape),)
                out[n] = (half.astype(np.uint32) << 16).view(np.float32).reshape(header[n]["shape"])
            del body
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise error(f"{path} could not be read as safetensors ({exc})") from None
    return {n: out[n] for n in names}


def _reason(message: str) -> str:
    """torch's refusal in a few words: the line naming the refused GLOBAL, not its advice."""
    lines = [ln.strip().split(". Please use", 1)[0] for ln in message.splitlines() if "GLOBAL" in ln]
    return (lines[0] if lines else message.strip())[:300]
