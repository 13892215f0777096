"""Optimizer choice per run (Adam, SGD, RMSprop, Adagrad), aligned across frameworks.

Both backends run torch.optim's update rules (gan_diffusion/optim.py); the TF backend's
optimizers are written to do so. Tolerances: against the float64 NumPy reference 1e-6
(float32); one DCGAN step TF <-> torch 1e-4 in float32 and 1e-9 in float64.
"""
import numpy as np
import pytest
from helpers import small_dcgan

from gan_diffusion.errors import ConfigError
from gan_diffusion.optim import optimizer_slots, reference_step
from gan_diffusion.parity import max_abs_diff, one_step, perturb_native, transfer
from gan_diffusion.registry import make_config

VARIANTS = {
    "adam": dict(optimizer="adam"),
    "sgd": dict(optimizer="sgd", learning_rate=0.01),
    "sgd-momentum": dict(optimizer="sgd", learning_rate=0.01, momentum=0.9),
    "sgd-nesterov": dict(optimizer="sgd", learning_rate=0.01, momentum=0.9, nesterov=True),
    "rmsprop": dict(optimizer="rmsprop", learning_rate=1e-3),
    "rmsprop-momentum": dict(optimizer="rmsprop", learning_rate=1e-3, momentum=0.5),
    "adagrad": dict(optimizer="adagrad", learning_rate=0.01),
}


def step_both(config, p0, grads):
    """Apply `grads` in turn with each backend's optimizer; returns (tf, torch) params and states."""
    import keras
    import tensorflow as tf
    import torch

    from gan_diffusion.tf_backend import optimizers as tfo
    from gan_diffusion.torch_backend import optimizers as tho

    kv = keras.Variable(p0.astype(np.float32))
    kopt = tfo.make_optimizer([kv], config)
    tp = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float32))
    topt = tho.make_optimizer([tp], config)
    for g in grads:
        kopt.apply_gradients([(tf.constant(g, tf.float32), kv)])
        tp.grad = torch.tensor(g, dtype=torch.float32)
        topt.step()
    states = (tfo.optimizer_state(kopt, {"p": (kv, "bias")}),
              tho.optimizer_state(topt, {"p": (tp, "bias")}))
    return (kv.numpy(), tp.detach().numpy()), states


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_both_backends_match_the_numpy_reference(variant):
    """Three steps with gradients down to 1e-8 (near epsilon, where its placement shows)."""
    config = make_config("dcgan", **VARIANTS[variant])
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=40)
    grads = [rng.normal(size=40) * np.logspace(-8, 0, 40) for _ in range(3)]
    ref, state = p0.copy(), {}
    for g in grads:
        ref = reference_step(config, ref, g.astype(np.float32), state)
    (p_tf, p_torch), (s_tf, s_torch) = step_both(config, p0, grads)
    assert np.abs(ref - p0).max() > 1e-4                     # the steps moved the parameter
    for got in (p_tf, p_torch):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
    assert int(s_tf["step"]) == int(s_torch["step"]) == 3
    for slot in optimizer_slots(config):
        np.testing.assert_allclose(s_tf[f"{slot}/p"], state[slot], rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(s_torch[f"{slot}/p"], state[slot], rtol=1e-5, atol=1e-9)


def test_stock_keras_rmsprop_would_not_match():
    """Keras' own RMSprop puts epsilon inside the square root: the alignment is needed."""
    import keras
    import tensorflow as tf

    config = make_config("dcgan", **VARIANTS["rmsprop"], epsilon=1e-6)
    g = np.full(4, 1e-6)
    ref = reference_step(config, np.zeros(4), g, {})
    v = keras.Variable(np.zeros(4, np.float32))
    stock = keras.optimizers.RMSprop(learning_rate=1e-3, rho=0.9, epsilon=1e-6)
    stock.apply_gradients([(tf.constant(g, tf.float32), v)])
    assert np.abs(v.numpy() - ref).max() > 1e-4


@pytest.mark.parametrize("variant", ["sgd-momentum", "rmsprop", "adagrad"])
@pytest.mark.parametrize("src,dst", [("tf", "torch"), ("torch", "tf")])
def test_one_dcgan_step_parity_per_optimizer(backends, variant, src, dst):
    """Two steps, each from the same state: losses and weights within 1e-4 (float32).
    Gradients: Adam and SGD keep them signed in their state and must agree within 1e-4
    relative; RMSprop and Adagrad keep g^2, whose float32 difference of two accumulators
    loses digits, so their recovered |g| is held to 1e-2 and their state to 1e-4."""
    a = backends[src].build("dcgan", **small_dcgan((28, 28, 1), **VARIANTS[variant]))
    perturb_native(a, seed=2)
    b = transfer(a, dst)
    rng = np.random.default_rng(1)
    for _ in range(2):
        x = rng.uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32)
        z = rng.standard_normal((8, 100)).astype(np.float32)
        r = one_step(a, b, x, z)
        assert r["losses"] < 1e-4 and r["weights"] < 1e-4 and r["unexplained"] == 0, r
        assert r["ill_conditioned"] <= 1e-4 * r["total"], r
        assert r["gradients"] < (1e-4 if variant.startswith("sgd") else 1e-2), r
        assert r["moved"] > 1e-4, r
        assert max_abs_diff(a.optimizer_state(), b.optimizer_state())[0] < 1e-4


@pytest.mark.parametrize("variant", ["adam", "sgd-nesterov", "rmsprop-momentum", "adagrad"])
def test_one_dcgan_step_parity_float64(backends, variant):
    """In float64 the frameworks agree to round-off: 1e-9 on everything, gradients included."""
    a = backends["torch"].build("dcgan", **small_dcgan((28, 28, 1), dtype="float64",
                                                       **VARIANTS[variant]))
    perturb_native(a, seed=2)
    b = transfer(a, "tf")
    rng = np.random.default_rng(1)
    for _ in range(2):
        r = one_step(a, b, rng.uniform(-1, 1, (8, 28, 28, 1)), rng.standard_normal((8, 100)))
        assert max(r["losses"], r["weights"], r["gradients"]) < 1e-9, r
        assert r["unexplained"] == r["ill_conditioned"] == 0 and r["moved"] > 1e-4, r


@pytest.mark.parametrize("src,dst", [("tf", "torch"), ("torch", "tf")])
def test_optimizer_state_crosses_backends(backends, src, dst, tmp_path):
    from gan_diffusion.backends import load_model

    a = backends[src].build("dcgan", **small_dcgan((28, 28, 1), **VARIANTS["rmsprop-momentum"]))
    x = np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32)
    a.train_step(x)
    a.save(tmp_path / "c.npz")
    b = load_model(tmp_path / "c.npz", dst)
    state = b.optimizer_state()
    assert {k.split("/")[1] for k in state if not k.endswith("/step")} == {"v", "momentum"}
    assert max_abs_diff(a.optimizer_state(), state)[0] == 0.0
    la, lb = a.train_step(x), b.train_step(x)       # the same noise stream at step 1
    assert abs(la["d_loss"] - lb["d_loss"]) < 1e-4
    assert max_abs_diff(a.get_weights(), b.get_weights())[0] < 1e-4


def test_optimizer_config_errors():
    with pytest.raises(ConfigError, match="unknown optimizer 'adamw'.*adam, sgd, rmsprop, adagrad"):
        make_config("dcgan", optimizer="adamw")
    with pytest.raises(ConfigError, match="nesterov needs optimizer 'sgd' with momentum"):
        make_config("dcgan", optimizer="sgd", nesterov=True)
    with pytest.raises(ConfigError, match="momentum must be in"):
        make_config("wgan-gp", optimizer="rmsprop", momentum=1.5)
    with pytest.raises(ConfigError, match="learning_rate must be a positive"):
        make_config("dcgan", learning_rate=0)
    # configs recorded before the optimizer choice existed still load
    assert make_config("dcgan", adam_epsilon=1e-7).epsilon == 1e-7
    assert optimizer_slots(make_config("dcgan", optimizer="sgd")) == ()
