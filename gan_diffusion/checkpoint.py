"""Backend-neutral checkpoints: one `.npz` of canonical arrays plus JSON metadata.

A checkpoint holds the weights in the canonical layout (docs/weights.md), the optimizer
state in the same layout, and metadata (model, config, epoch, step, writer backend). It is
read with `allow_pickle=False`, so loading never runs code, and either backend can load
what the other wrote: converting is just the canonical-layout mapping each backend does.

Keys:  weights/<net>/<layer>/<param>
       optimizer/<net>/step, optimizer/<net>/m/<weight name>, optimizer/<net>/v/<weight name>
       __meta__  (a JSON string)
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from gan_diffusion.weightfile import read_npz, write_npz

FORMAT = "gan_diffusion.checkpoint/1"


def save_checkpoint(path: str | os.PathLike, weights: dict[str, np.ndarray],
                    optimizer: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write a checkpoint atomically (temporary file, fsync, rename).

    Args:
        path: target `.npz` file; an existing file is replaced only once the new one is complete.
        weights: canonical weights.
        optimizer: canonical optimizer state.
        meta: JSON-able metadata (model, config, epoch, global_step, backend, ...).
    """
    arrays = {f"weights/{k}": np.asarray(v) for k, v in weights.items()}
    arrays.update({f"optimizer/{k}": np.asarray(v) for k, v in optimizer.items()})
    write_npz(path, arrays, {"format": FORMAT, **meta})


def load_checkpoint(path: str | os.PathLike
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """Read a checkpoint written by `save_checkpoint` (no pickle is ever loaded).

    Returns:
        (weights, optimizer_state, meta)

    Raises:
        CheckpointError: missing, truncated or foreign file.
    """
    arrays, meta = read_npz(path, what="checkpoint", format=FORMAT,
                            fix="pass the .npz file that training wrote (e.g. RUN/checkpoints/"
                                "latest.npz), or restore an earlier one")
    weights = {k[len("weights/"):]: v for k, v in arrays.items() if k.startswith("weights/")}
    optimizer = {k[len("optimizer/"):]: v for k, v in arrays.items() if k.startswith("optimizer/")}
    return weights, optimizer, meta


def weights_digest(weights: dict[str, np.ndarray]) -> str:
    """sha256 over canonical weights (sorted names, dtype, shape, bytes): equal digests mean
    bit-identical weights, whichever backend they came from.

    Example:
        >>> weights_digest(tf_model.get_weights()) == weights_digest(torch_model.get_weights())
        True
    """
    import hashlib

    h = hashlib.sha256()
    for name in sorted(weights):
        a = np.ascontiguousarray(weights[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()
