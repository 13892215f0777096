"""Optimizers with PyTorch's update rules, and their state in the canonical layout.

Keras' stock optimizers differ from torch.optim in small ways that parity tests see: Adam
adds epsilon to sqrt(v) and folds the bias corrections into the learning rate; RMSprop puts
epsilon inside the square root; SGD keeps a velocity of -lr * torch's momentum buffer;
Adagrad puts epsilon inside the root too. The classes here run the rules written in
gan_diffusion/optim.py (torch's), so both backends take the same step; see
docs/alignment.md ("Optimizers"). Mirrors gan_diffusion/torch_backend/optimizers.py.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from gan_diffusion.optim import initial_slot, optimizer_slots
from gan_diffusion.tf_backend.layers import from_canonical, to_canonical


class TorchRuleOptimizer(keras.optimizers.Optimizer):
    """Base: one state variable per weight for each slot name in `slots`."""

    def __init__(self, slots: tuple[str, ...], learning_rate: float, initial: float = 0.0):
        super().__init__(learning_rate=learning_rate)
        self.slots, self.initial, self.lr = tuple(slots), float(initial), float(learning_rate)

    def build(self, variables) -> None:
        if self.built:
            return
        super().build(variables)
        self._slots = {
            slot: [self.add_variable_from_reference(
                v, slot, initializer=keras.initializers.Constant(self.initial if slot == "sum" else 0.0))
                for v in variables]
            for slot in self.slots}

    def slot(self, name: str, variable) -> keras.Variable:
        """The `name` state variable of one weight."""
        return self._slots[name][self._get_variable_index(variable)]

    def _prepare(self, gradient, variable):
        """(learning rate, dense gradient, dtype); constants are made from Python floats in
        the variable's dtype (ops.cast(0.999, "float64") would round through float32)."""
        if isinstance(gradient, tf.IndexedSlices):  # embedding rows: a dense update, as torch's
            gradient = tf.convert_to_tensor(gradient)
        dtype = variable.dtype
        return tf.constant(self.lr, dtype), ops.cast(gradient, dtype), dtype


class Adam(TorchRuleOptimizer):
    """m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
    p -= lr / (1-b1^t) * m / (sqrt(v) / sqrt(1-b2^t) + eps)   (torch.optim.Adam)"""

    def __init__(self, learning_rate: float, beta_1: float, beta_2: float, epsilon: float):
        super().__init__(("m", "v"), learning_rate)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def update_step(self, gradient, variable, learning_rate):
        lr, g, dtype = self._prepare(gradient, variable)
        t = ops.cast(self.iterations + 1, dtype)
        bias_correction1 = 1 - ops.power(tf.constant(self.beta_1, dtype), t)
        bias_correction2 = 1 - ops.power(tf.constant(self.beta_2, dtype), t)
        m, v = self.slot("m", variable), self.slot("v", variable)
        self.assign_add(m, ops.multiply(ops.subtract(g, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(g), v), 1 - self.beta_2))
        denom = ops.add(ops.divide(ops.sqrt(v), ops.sqrt(bias_correction2)), self.epsilon)
        self.assign_sub(variable, ops.multiply(lr / bias_correction1, ops.divide(m, denom)))


class SGD(TorchRuleOptimizer):
    """buf = mu buf + g;  p -= lr * (g + mu buf if nesterov else buf)   (torch.optim.SGD)"""

    def __init__(self, learning_rate: float, momentum: float, nesterov: bool):
        super().__init__(("momentum",) if momentum > 0 else (), learning_rate)
        self.momentum, self.nesterov = momentum, nesterov

    def update_step(self, gradient, variable, learning_rate):
        lr, g, _ = self._prepare(gradient, variable)
        if self.momentum > 0:
            buf = self.slot("momentum", variable)
            self.assign(buf, ops.add(ops.multiply(buf, self.momentum), g))
            g = ops.add(g, ops.multiply(buf, self.momentum)) if self.nesterov else buf
        self.assign_sub(variable, ops.multiply(lr, g))


class RMSprop(TorchRuleOptimizer):
    """v = rho v + (1-rho) g^2;  a = sqrt(v) + eps;  p -= lr g / a, or with momentum
    buf = mu buf + g / a;  p -= lr buf   (torch.optim.RMSprop, alpha = rho)"""

    def __init__(self, learning_rate: float, rho: float, momentum: float, epsilon: float):
        super().__init__(("v", "momentum") if momentum > 0 else ("v",), learning_rate)
        self.rho, self.momentum, self.epsilon = rho, momentum, epsilon

    def update_step(self, gradient, variable, learning_rate):
        lr, g, _ = self._prepare(gradient, variable)
        v = self.slot("v", variable)
        self.assign(v, ops.add(ops.multiply(v, self.rho), ops.multiply(ops.square(g), 1 - self.rho)))
        avg = ops.add(ops.sqrt(v), self.epsilon)
        if self.momentum > 0:
            buf = self.slot("momentum", variable)
            self.assign(buf, ops.add(ops.multiply(buf, self.momentum), ops.divide(g, avg)))
            self.assign_sub(variable, ops.multiply(lr, buf))
        else:
            self.assign_sub(variable, ops.multiply(lr, ops.divide(g, avg)))


class Adagrad(TorchRuleOptimizer):
    """s = s + g^2 (s starts at initial_accumulator);  p -= lr g / (sqrt(s) + eps)
    (torch.optim.Adagrad with lr_decay 0)"""

    def __init__(self, learning_rate: float, initial_accumulator: float, epsilon: float):
        super().__init__(("sum",), learning_rate, initial=initial_accumulator)
        self.epsilon = epsilon

    def update_step(self, gradient, variable, learning_rate):
        lr, g, _ = self._prepare(gradient, variable)
        s = self.slot("sum", variable)
        self.assign_add(s, ops.square(g))
        self.assign_sub(variable, ops.multiply(lr, ops.divide(g, ops.add(ops.sqrt(s), self.epsilon))))


def make_optimizer(variables, config) -> TorchRuleOptimizer:
    """The optimizer a config names, built on `variables` so its state exists.

    Example:
        >>> opt = make_optimizer(model.trainable_variables, config)   # config.optimizer == "sgd"
    """
    c, lr = config, config.learning_rate
    opt = {"adam": lambda: Adam(lr, c.beta1, c.beta2, c.epsilon),
           "sgd": lambda: SGD(lr, c.momentum, c.nesterov),
           "rmsprop": lambda: RMSprop(lr, c.rho, c.momentum, c.epsilon),
           "adagrad": lambda: Adagrad(lr, c.initial_accumulator, c.epsilon)}[c.optimizer]()
    assert opt.slots == optimizer_slots(c) and opt.initial in (0.0, initial_slot(c, "sum"))
    opt.build(variables)
    return opt


def make_adam(variables, lr: float, beta1: float, beta2: float, eps: float) -> Adam:
    """Adam with explicit hyper-parameters, built on `variables`."""
    opt = Adam(lr, beta1, beta2, eps)
    opt.build(variables)
    return opt


def optimizer_state(opt: TorchRuleOptimizer, tensors: dict[str, tuple[keras.Variable, str]]) -> dict:
    """{"step", "<slot>/<name>"} in canonical layout for the trainable variables."""
    out = {}
    for name, (var, kind) in tensors.items():
        if var.trainable:
            for slot in opt.slots:
                out[f"{slot}/{name}"] = to_canonical(opt.slot(slot, var), kind)
    out["step"] = np.array(int(opt.iterations.numpy()), np.int64)
    return out


def load_optimizer_state(opt: TorchRuleOptimizer, tensors: dict[str, tuple[keras.Variable, str]],
                         state: dict) -> None:
    """Inverse of `optimizer_state`."""
    for name, (var, kind) in tensors.items():
        if var.trainable:
            for slot in opt.slots:
                opt.slot(slot, var).assign(from_canonical(state[f"{slot}/{name}"], kind, var.dtype))
    opt.iterations.assign(int(state["step"]))
