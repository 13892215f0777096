"""torch.optim optimizers from a config, and their state in the canonical layout.

torch.optim's rules are the reference (gan_diffusion/optim.py); the TF backend's optimizers
are written to run the same ones, see docs/alignment.md ("Optimizers").
Mirrors gan_diffusion/tf_backend/optimizers.py.
"""
from __future__ import annotations

import numpy as np
import torch

from gan_diffusion.optim import optimizer_slots
from gan_diffusion.torch_backend.layers import from_canonical, to_canonical

# canonical slot name -> torch.optim state key, per optimizer
STATE_KEYS = {"adam": {"m": "exp_avg", "v": "exp_avg_sq"},
              "sgd": {"momentum": "momentum_buffer"},
              "rmsprop": {"v": "square_avg", "momentum": "momentum_buffer"},
              "adagrad": {"sum": "sum"}}


def _count_steps(opt: torch.optim.Optimizer, args, kwargs) -> None:
    opt.steps_done += 1


def _prepare(opt: torch.optim.Optimizer, name: str, slots: tuple[str, ...]) -> torch.optim.Optimizer:
    """Record the optimizer's name and slots, and count its steps (SGD keeps no step)."""
    opt.name, opt.slots, opt.steps_done = name, slots, 0
    opt.register_step_post_hook(_count_steps)
    return opt


def make_optimizer(params, config) -> torch.optim.Optimizer:
    """The optimizer a config names (single-tensor implementations, deterministic).

    Example:
        >>> opt = make_optimizer(model.parameters(), config)   # config.optimizer == "sgd"
    """
    c, lr, params = config, config.learning_rate, list(params)
    if c.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, betas=(c.beta1, c.beta2), eps=c.epsilon, foreach=False)
    elif c.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=c.momentum, nesterov=c.nesterov, foreach=False)
    elif c.optimizer == "rmsprop":
        opt = torch.optim.RMSprop(params, lr=lr, alpha=c.rho, eps=c.epsilon, momentum=c.momentum,
                                  foreach=False)
    else:
        opt = torch.optim.Adagrad(params, lr=lr, eps=c.epsilon,
                                  initial_accumulator_value=c.initial_accumulator, foreach=False)
    return _prepare(opt, c.optimizer, optimizer_slots(c))


def make_adam(params, lr: float, beta1: float, beta2: float, eps: float) -> torch.optim.Adam:
    """Adam with explicit hyper-parameters."""
    opt = torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps, foreach=False)
    return _prepare(opt, "adam", ("m", "v"))


def optimizer_state(opt: torch.optim.Optimizer, tensors: dict[str, tuple[torch.Tensor, str]]) -> dict:
    """{"step", "<slot>/<name>"} in canonical layout for the trainable tensors."""
    keys, out = STATE_KEYS[opt.name], {}
    for name, (t, kind) in tensors.items():
        if not t.requires_grad:
            continue
        st = opt.state.get(t, {})
        for slot in opt.slots:
            value = st.get(keys[slot])
            out[f"{slot}/{name}"] = to_canonical(torch.zeros_like(t) if value is None else value, kind)
    out["step"] = np.array(opt.steps_done, np.int64)
    return out


def load_optimizer_state(opt: torch.optim.Optimizer, tensors: dict[str, tuple[torch.Tensor, str]],
                         state: dict) -> None:
    """Inverse of `optimizer_state`."""
    keys, step = STATE_KEYS[opt.name], int(state["step"])
    dtype = str(next(iter(tensors.values()))[0].dtype).removeprefix("torch.")
    for name, (t, kind) in tensors.items():
        if not t.requires_grad:
            continue
        if step == 0 and opt.name != "adagrad":  # no state yet: torch creates it on the first step
            opt.state.pop(t, None)
            continue
        st = {keys[slot]: from_canonical(state[f"{slot}/{name}"], kind, dtype).reshape(t.shape).clone()
              for slot in opt.slots}
        if opt.name != "sgd":
            st["step"] = torch.tensor(float(step), dtype=torch.float32)
        opt.state[t] = st
    opt.steps_done = step
