"""Optimizers and their state in the canonical layout.

torch.optim.Adam follows Kingma & Ba's Algorithm 1 (epsilon added to sqrt(v_hat)); the TF
backend's Adam is written to do the same, see docs/alignment.md.
"""
from __future__ import annotations

import numpy as np
import torch

from gan_diffusion.torch_backend.layers import from_canonical, to_canonical


def make_adam(params, lr: float, beta1: float, beta2: float, eps: float) -> torch.optim.Adam:
    """Adam with explicit hyper-parameters (single-tensor implementation, deterministic)."""
    return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps, foreach=False)


def adam_state(opt: torch.optim.Adam, tensors: dict[str, tuple[torch.Tensor, str]]) -> dict:
    """{"step", "m/<name>", "v/<name>"} in canonical layout for the trainable tensors."""
    out, step = {}, 0
    for name, (t, kind) in tensors.items():
        if not t.requires_grad:
            continue
        st = opt.state.get(t, {})
        if st:
            step = int(st["step"])
            out[f"m/{name}"] = to_canonical(st["exp_avg"], kind)
            out[f"v/{name}"] = to_canonical(st["exp_avg_sq"], kind)
        else:
            out[f"m/{name}"] = out[f"v/{name}"] = to_canonical(torch.zeros_like(t), kind)
    out["step"] = np.array(step, np.int64)
    return out


def load_adam_state(opt: torch.optim.Adam, tensors: dict[str, tuple[torch.Tensor, str]],
                    state: dict) -> None:
    """Inverse of `adam_state`."""
    step = int(state["step"])
    for name, (t, kind) in tensors.items():
        if not t.requires_grad:
            continue
        if step == 0:
            opt.state.pop(t, None)
            continue
        opt.state[t] = {"step": torch.tensor(float(step)),
                        "exp_avg": from_canonical(state[f"m/{name}"], kind).reshape(t.shape).clone(),
                        "exp_avg_sq": from_canonical(state[f"v/{name}"], kind).reshape(t.shape).clone()}
