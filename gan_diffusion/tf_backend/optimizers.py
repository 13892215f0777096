"""Optimizers and their state in the canonical layout.

Keras' Adam adds epsilon to sqrt(v) and folds the bias corrections into the learning rate
("epsilon hat"); torch.optim.Adam adds epsilon to sqrt(v_hat) (Kingma & Ba, Algorithm 1).
`Adam` here overrides the update so that both backends run the same rule, see
docs/alignment.md.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from gan_diffusion.tf_backend.layers import from_canonical, to_canonical


class Adam(keras.optimizers.Adam):
    """Keras Adam with PyTorch's update rule:

        m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
        p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        t = ops.cast(self.iterations + 1, variable.dtype)
        bias_correction1 = 1 - ops.power(ops.cast(self.beta_1, variable.dtype), t)
        bias_correction2 = 1 - ops.power(ops.cast(self.beta_2, variable.dtype), t)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign_add(m, ops.multiply(ops.subtract(g, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(g), v), 1 - self.beta_2))
        denom = ops.add(ops.divide(ops.sqrt(v), ops.sqrt(bias_correction2)), self.epsilon)
        self.assign_sub(variable, ops.multiply(lr / bias_correction1, ops.divide(m, denom)))


def make_adam(variables, lr: float, beta1: float, beta2: float, eps: float) -> Adam:
    """Adam with explicit hyper-parameters, built on `variables` so its state exists."""
    opt = Adam(learning_rate=lr, beta_1=beta1, beta_2=beta2, epsilon=eps)
    opt.build(variables)
    return opt


def adam_state(opt: Adam, tensors: dict[str, tuple[keras.Variable, str]]) -> dict:
    """{"step", "m/<name>", "v/<name>"} in canonical layout for the trainable variables."""
    out = {}
    for name, (var, kind) in tensors.items():
        if not var.trainable:
            continue
        i = opt._get_variable_index(var)
        out[f"m/{name}"] = to_canonical(opt._momentums[i], kind)
        out[f"v/{name}"] = to_canonical(opt._velocities[i], kind)
    out["step"] = np.array(int(opt.iterations.numpy()), np.int64)
    return out


def load_adam_state(opt: Adam, tensors: dict[str, tuple[keras.Variable, str]], state: dict) -> None:
    """Inverse of `adam_state`."""
    for name, (var, kind) in tensors.items():
        if not var.trainable:
            continue
        i = opt._get_variable_index(var)
        opt._momentums[i].assign(from_canonical(state[f"m/{name}"], kind))
        opt._velocities[i].assign(from_canonical(state[f"v/{name}"], kind))
    opt.iterations.assign(int(state["step"]))
