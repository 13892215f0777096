"""Thread pools and versions of PyTorch."""
from __future__ import annotations

import os

import torch


def set_threads(intra_op: int | None = None, inter_op: int | None = None) -> dict:
    """Pin torch's intra-op and inter-op pools (default: all cores / 1); returns them."""
    intra = int(intra_op or os.cpu_count() or 1)
    torch.set_num_threads(intra)
    try:
        torch.set_num_interop_threads(int(inter_op or 1))
    except RuntimeError:  # only settable before the first parallel op; keep what is in force
        pass
    return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}


def versions() -> dict:
    return {"torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available(),
            "cuda": torch.version.cuda}
