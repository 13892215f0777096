"""Weight-transfer parity helpers, shared by the parity tests and benchmarks/parity_report.py.

Example:
    >>> a = get_backend("tf").build("dcgan", image_shape=(28, 28, 1))
    >>> perturb_native(a, seed=1)
    >>> b = transfer(a, "torch")
    >>> forward_errors(a, b, z, x)   # {"generator/eval": 6e-8, ...}
"""
from __future__ import annotations

import importlib
from typing import Any

import numpy as np


def max_abs_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> tuple[float, str]:
    """Largest elementwise |a - b| over two dicts with the same keys, and where it is."""
    if set(a) != set(b):
        raise ValueError(f"different keys: {sorted(set(a) ^ set(b))[:5]}")
    return max((float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)))), k)
               for k in a)


def perturb_native(model: Any, seed: int, scale: float = 0.05) -> None:
    """Add noise from the model's own framework RNG to every weight, and give BatchNorm
    running variances random values in [0.5, 1.5), so a transfer reads native state.
    The work is the backend's: `perturb` in gan_diffusion/<backend>_backend/rng.py."""
    from gan_diffusion.backends import get_backend

    pkg = get_backend(model.backend_name).package.__name__
    importlib.import_module(f"{pkg}.rng").perturb(model, seed, scale)


def transfer(model: Any, backend: str) -> Any:
    """A model of the same config on `backend`, holding `model`'s weights."""
    from gan_diffusion.backends import get_backend

    other = get_backend(backend).build(model.config.model, config=model.config)
    other.set_weights(model.get_weights())
    return other


def forward_errors(a: Any, b: Any, z: np.ndarray, x: np.ndarray,
                   labels: np.ndarray | None = None) -> dict[str, float]:
    """Max abs differences of generator and discriminator outputs, eval and training mode.
    (Training-mode passes update BatchNorm statistics in both models alike.) `labels`: for
    conditional models, one per row of z and x."""
    out = {}
    for training in (False, True):
        mode = "train" if training else "eval"
        out[f"generator/{mode}"] = float(np.abs(a.forward_generator(z, training, labels)
                                                - b.forward_generator(z, training, labels)).max())
        out[f"discriminator/{mode}"] = float(np.abs(a.forward_discriminator(x, training, labels)
                                                    - b.forward_discriminator(x, training, labels)).max())
    out["bn_statistics"] = max_abs_diff(a.get_weights(), b.get_weights())[0]
    return out


def step_errors(a: Any, b: Any, batches: list[tuple]) -> dict[str, float]:
    """Train both models on the same (images, z[, labels]) batches; max abs differences of
    the losses, the weights and the optimizer state afterwards."""
    loss_err = 0.0
    for x, z, *labels in batches:
        y = labels[0] if labels else None
        la, lb = a.train_step(x, y, z=z), b.train_step(x, y, z=z)
        loss_err = max(loss_err, max(abs(la[k] - lb[k]) for k in la))
    return {"losses": loss_err,
            "weights": max_abs_diff(a.get_weights(), b.get_weights())[0],
            "optimizer_state": max_abs_diff(a.optimizer_state(), b.optimizer_state())[0]}


def one_step(a: Any, b: Any, x: np.ndarray, z: np.ndarray | None, tol: float = 1e-4,
             tiny: float = 1e-6, labels: np.ndarray | None = None, **noise: np.ndarray
             ) -> dict[str, Any]:
    """One training step of `a` and `b` from the same state, compared.

    `b` first receives `a`'s full state (weights and optimizer state, through the canonical
    API), so the comparison measures one step of framework difference, not the growth of
    earlier differences. Gradients are recovered from the optimizer state
    (`gan_diffusion.optim.recovered_gradient`: e.g. Adam's g = (m_after - beta1 m_before) /
    (1 - beta1)).

    A weight counts as *ill-conditioned* when its gradient is round-off sized (|g| < `tiny`)
    in both frameworks: Adam, RMSprop and Adagrad (from a zero accumulator) move such a
    weight by about lr * sign(g) in their first steps, so round-off can send it +lr in one
    framework and -lr in the other.

    Args:
        z: the GANs' latent noise, passed as `z=`; None for a model without it (the VAE,
            whose noise is `eps=`).
        labels, **noise: passed to `train_step` (e.g. WGAN-GP's eps and z_g, the VAE's eps).

    Returns:
        {"losses": max abs loss difference, "weights": max abs weight difference over the
        well-conditioned weights, "gradients": max over tensors of max|g_a - g_b| / max|g_a|,
        "ill_conditioned": count of weights outside `tol` that are ill-conditioned,
        "ill_conditioned_max": their largest difference, "unexplained": count of weights
        outside `tol` that are not, "total": number of weights, "moved": max |update|}
    """
    from gan_diffusion.optim import recovered_gradient

    b.set_weights(a.get_weights())
    b.load_optimizer_state(a.optimizer_state())
    before, state_before = a.get_weights(), a.optimizer_state()
    optimized = {k.split("/", 1)[0] for k in state_before}  # the networks with an optimizer
    if z is not None:
        noise = {"z": z, **noise}
    la = a.train_step(x, labels, **noise)
    lb = b.train_step(x, labels, **noise)
    wa, wb = a.get_weights(), b.get_weights()
    oa, ob = a.optimizer_state(), b.optimizer_state()
    out = {"losses": max(abs(la[k] - lb[k]) for k in la), "weights": 0.0, "gradients": 0.0,
           "ill_conditioned": 0, "ill_conditioned_max": 0.0, "unexplained": 0, "total": 0,
           "moved": max_abs_diff(wa, before)[0]}
    for key in wa:
        err = np.abs(wa[key] - wb[key])
        out["total"] += err.size
        net, rest = key.split("/", 1)
        if "moving_" in rest or net not in optimized:  # BatchNorm statistics, EMA copies:
            # no optimizer state of their own, they must match outright
            out["weights"] = max(out["weights"], float(err.max()))
            out["unexplained"] += int((err >= tol).sum())
            continue
        states = [{k[len(net) + 1:]: v for k, v in o.items() if k.startswith(f"{net}/")}
                  for o in (state_before, oa, ob)]
        ga = recovered_gradient(a.config, states[0], states[1], before[key], wa[key], rest)
        gb = recovered_gradient(a.config, states[0], states[2], before[key], wb[key], rest)
        ill = (np.abs(ga) < tiny) & (np.abs(gb) < tiny)
        out["weights"] = max(out["weights"], float(np.where(ill, 0, err).max()))
        out["ill_conditioned"] += int((ill & (err >= tol)).sum())
        out["unexplained"] += int((~ill & (err >= tol)).sum())
        if (ill & (err >= tol)).any():
            out["ill_conditioned_max"] = max(out["ill_conditioned_max"], float(err[ill].max()))
        scale = float(np.abs(ga).max()) or 1.0
        out["gradients"] = max(out["gradients"], float(np.abs(ga - gb).max()) / scale)
    return out
