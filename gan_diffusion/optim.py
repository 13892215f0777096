"""Optimizer choice, written once: names, state layout, validation and a NumPy reference.

Each backend builds the optimizer named by a config (`optimizer`, `learning_rate`, ...) and
both run the same update rule, PyTorch's (docs/alignment.md, "Optimizers"):

    adam     m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
             p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
    sgd      buf = mu buf + g (buf = g at t = 1);  p -= lr * (g + mu buf if nesterov else buf)
             (mu = 0: p -= lr g, no state)
    rmsprop  v = rho v + (1-rho) g^2;  a = sqrt(v) + eps
             p -= lr g / a,  or with momentum: buf = mu buf + g / a;  p -= lr buf
    adagrad  s = s + g^2 (s starts at initial_accumulator);  p -= lr g / (sqrt(s) + eps)

Optimizer state is saved per network in a canonical layout: "<net>/step" and
"<net>/<slot>/<layer>/<param>" for the slots `optimizer_slots` names.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from gan_diffusion.errors import ConfigError

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adagrad")


def optimizer_slots(config: Any) -> tuple[str, ...]:
    """The state arrays kept per weight by the optimizer a config names.

    Example:
        >>> optimizer_slots(make_config("dcgan", optimizer="rmsprop", momentum=0.9))
        ('v', 'momentum')
    """
    name, momentum = config.optimizer, config.momentum
    if name == "adam":
        return ("m", "v")
    if name == "sgd":
        return ("momentum",) if momentum > 0 else ()
    if name == "rmsprop":
        return ("v", "momentum") if momentum > 0 else ("v",)
    if name == "adagrad":
        return ("sum",)
    raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def check_optimizer(config: Any) -> None:
    """ConfigError naming the field unless the optimizer settings of `config` are usable."""
    model = config.model
    if config.optimizer not in OPTIMIZERS:
        raise ConfigError(f"{model} config: unknown optimizer {config.optimizer!r}; "
                          f"choose one of {', '.join(OPTIMIZERS)}")
    for name in ("learning_rate", "epsilon"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{model} config field {name} must be a positive number, got {value!r}")
    for name in ("beta1", "beta2", "momentum", "rho"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ConfigError(f"{model} config field {name} must be in [0, 1), got {value!r}")
    if config.initial_accumulator < 0:
        raise ConfigError(f"{model} config field initial_accumulator must be >= 0, "
                          f"got {config.initial_accumulator!r}")
    if config.nesterov and not (config.optimizer == "sgd" and config.momentum > 0):
        raise ConfigError(f"{model} config: nesterov needs optimizer 'sgd' with momentum > 0 "
                          f"(got optimizer {config.optimizer!r}, momentum {config.momentum})")


def initial_slot(config: Any, slot: str) -> float:
    """The value a slot starts at (Adagrad's accumulator; zero otherwise)."""
    return float(config.initial_accumulator) if slot == "sum" else 0.0


def reference_step(config: Any, param: np.ndarray, grad: np.ndarray, state: dict[str, Any]
                   ) -> np.ndarray:
    """One update of `param` by the config's optimizer, in float64 NumPy (the rule above).

    Args:
        config: any config with the optimizer fields.
        param, grad: arrays of one shape.
        state: {"step": int, <slot>: array}, updated in place; start with {}.

    Returns:
        The updated parameter (float64).

    Example:
        >>> state = {}
        >>> p = reference_step(cfg, p, g, state)   # t = 1
    """
    p, g = np.asarray(param, np.float64), np.asarray(grad, np.float64)
    lr, eps, mu = config.learning_rate, config.epsilon, config.momentum
    for slot in optimizer_slots(config):
        state.setdefault(slot, np.full_like(p, initial_slot(config, slot)))
    t = state["step"] = state.get("step", 0) + 1
    name = config.optimizer
    if name == "adam":
        b1, b2 = config.beta1, config.beta2
        state["m"] = b1 * state["m"] + (1 - b1) * g
        state["v"] = b2 * state["v"] + (1 - b2) * g * g
        return p - lr / (1 - b1 ** t) * state["m"] / (np.sqrt(state["v"] / (1 - b2 ** t)) + eps)
    if name == "sgd":
        if mu == 0:
            return p - lr * g
        state["momentum"] = mu * state["momentum"] + g
        step = g + mu * state["momentum"] if config.nesterov else state["momentum"]
        return p - lr * step
    if name == "rmsprop":
        state["v"] = config.rho * state["v"] + (1 - config.rho) * g * g
        avg = np.sqrt(state["v"]) + eps
        if mu == 0:
            return p - lr * g / avg
        state["momentum"] = mu * state["momentum"] + g / avg
        return p - lr * state["momentum"]
    state["sum"] = state["sum"] + g * g
    return p - lr * g / (np.sqrt(state["sum"]) + eps)


def recovered_gradient(config: Any, before: dict[str, np.ndarray], after: dict[str, np.ndarray],
                       w_before: np.ndarray, w_after: np.ndarray, name: str) -> np.ndarray:
    """The gradient of one weight tensor in the step that took optimizer state `before` to
    `after`: signed for Adam and SGD, its magnitude for RMSprop and Adagrad (their state
    holds g^2). Used by the parity tests, which cannot read gradients inside a tf.function.

    `before`/`after` are one network's canonical optimizer states ("<slot>/<name>" keys).
    """
    opt, mu = config.optimizer, config.momentum
    if opt == "adam":
        return (after[f"m/{name}"] - config.beta1 * before[f"m/{name}"]) / (1 - config.beta1)
    if opt == "sgd":
        if mu == 0:
            return (w_before - w_after) / config.learning_rate
        return after[f"momentum/{name}"] - mu * before[f"momentum/{name}"]
    if opt == "rmsprop":
        v = (after[f"v/{name}"] - config.rho * before[f"v/{name}"]) / (1 - config.rho)
        return np.sqrt(np.maximum(v, 0.0))
    return np.sqrt(np.maximum(after[f"sum/{name}"] - before[f"sum/{name}"], 0.0))
