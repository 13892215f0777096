"""DCGAN weight-transfer parity between TensorFlow and PyTorch, in both directions.

Tolerances (float32): forward outputs and one/two training steps agree within 1e-4 max abs.
Measured on this machine: forward ~1e-6, losses and weights after two steps ~5e-6.

The source model's weights are first perturbed with its own framework's RNG, so the test
reads native state through get_weights() rather than round-tripping our own init.
"""
import numpy as np
import pytest
from conftest import max_abs_diff, small_dcgan

from gan_diffusion.checkpoint import load_model

TOL = 1e-4
DIRECTIONS = [("tf", "torch"), ("torch", "tf")]


def perturb_native(model, seed):
    """Add framework-native noise to every weight; give BN statistics random values."""
    if model.backend_name == "torch":
        import torch

        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for net in (model.generator, model.discriminator):
                for name, t in list(net.named_parameters()) + list(net.named_buffers()):
                    if name.endswith("running_var"):
                        t.copy_(0.5 + torch.rand(t.shape, generator=gen))
                    else:
                        t.add_(0.05 * torch.randn(t.shape, generator=gen))
    else:
        import tensorflow as tf

        gen = tf.random.Generator.from_seed(seed)
        for net in (model.generator, model.discriminator):
            for v in net.variables:
                if "moving_variance" in v.path:
                    v.assign(0.5 + gen.uniform(v.shape))
                else:
                    v.assign(v + 0.05 * gen.normal(v.shape))


def pair(backends, src, dst, shape, **kw):
    a = backends[src].build("dcgan", **small_dcgan(shape, **kw))
    b = backends[dst].build("dcgan", **small_dcgan(shape, **kw))
    perturb_native(a, seed=11)
    b.set_weights(a.get_weights())
    return a, b


def batch(shape, n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, *shape)).astype(np.float32)
    z = rng.standard_normal((n, 100)).astype(np.float32)
    return x, z


@pytest.mark.parametrize("src,dst", DIRECTIONS)
@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 1), (32, 32, 3), (64, 64, 3)])
def test_forward_parity(backends, src, dst, shape):
    a, b = pair(backends, src, dst, shape)
    assert max_abs_diff(a.get_weights(), b.get_weights())[0] == 0.0  # exact copy
    x, z = batch(shape)
    for training in (False, True):
        ga, gb = a.forward_generator(z, training), b.forward_generator(z, training)
        assert ga.shape == gb.shape == (8, *shape)
        assert np.abs(ga - gb).max() < TOL, (training, np.abs(ga - gb).max())
        da, db = a.forward_discriminator(x, training), b.forward_discriminator(x, training)
        assert da.shape == db.shape == (8,)
        assert np.abs(da - db).max() < TOL, (training, np.abs(da - db).max())
    # training-mode passes updated the BatchNorm statistics the same way (biased variance)
    diff, key = max_abs_diff(a.get_weights(), b.get_weights())
    assert diff < TOL, key


@pytest.mark.parametrize("src,dst", DIRECTIONS)
@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_train_step_parity(backends, src, dst, shape):
    a, b = pair(backends, src, dst, shape)
    before = a.get_weights()
    for step in range(2):
        x, z = batch(shape, seed=step)
        la, lb = a.train_step(x, z=z), b.train_step(x, z=z)
        for k in la:
            assert abs(la[k] - lb[k]) < TOL, (step, k, la[k], lb[k])
    wa, wb = a.get_weights(), b.get_weights()
    diff, key = max_abs_diff(wa, wb)
    assert diff < TOL, (key, diff)
    # the steps really moved the weights (Adam moves each weight by about lr per step)
    moved = max_abs_diff(wa, before)[0]
    assert moved > 2e-4
    # and the updates agree relative to their size (catches epsilon/bias-correction mistakes)
    for k in wa:
        if "moving" not in k:
            da, db = wa[k] - before[k], wb[k] - before[k]
            assert np.linalg.norm(da - db) <= 1e-3 * np.linalg.norm(da), k
    oa, ob = a.optimizer_state(), b.optimizer_state()
    assert int(oa["generator/step"]) == int(ob["generator/step"]) == 2
    diff, key = max_abs_diff(oa, ob)
    assert diff < TOL, (key, diff)


@pytest.mark.parametrize("src,dst", DIRECTIONS)
def test_train_step_parity_64_rgb(backends, src, dst):
    """64x64: one step; the first Adam step moves each weight by ~lr * sign(g), so a weight
    whose gradient is below float32 round-off (|g| ~ 1e-7) can move in opposite directions
    in the two frameworks. We require 1e-4 everywhere except on at most 0.01% of weights,
    and those may differ by at most 2 * lr + 1e-4 (opposite first steps)."""
    shape = (64, 64, 3)
    a, b = pair(backends, src, dst, shape)
    x, z = batch(shape)
    la, lb = a.train_step(x, z=z), b.train_step(x, z=z)
    for k in la:
        assert abs(la[k] - lb[k]) < TOL, (k, la[k], lb[k])
    wa, wb = a.get_weights(), b.get_weights()
    errs = np.concatenate([np.abs(wa[k] - wb[k]).ravel() for k in wa])
    assert (errs >= TOL).mean() <= 1e-4, (errs >= TOL).sum()
    assert errs.max() <= 2 * 2e-4 + TOL


@pytest.mark.parametrize("src,dst", DIRECTIONS)
def test_checkpoint_crosses_backends(backends, src, dst, tmp_path):
    shape = (28, 28, 1)
    a = backends[src].build("dcgan", **small_dcgan(shape))
    perturb_native(a, seed=5)
    x, z = batch(shape)
    a.train_step(x, z=z)
    a.epoch = 3
    path = tmp_path / "ckpt.npz"
    a.save(path)
    b = load_model(path, dst)                      # converted into the other framework
    assert b.backend_name == dst and (b.epoch, b.global_step) == (3, 1)
    assert max_abs_diff(a.get_weights(), b.get_weights())[0] == 0.0
    assert max_abs_diff(a.optimizer_state(), b.optimizer_state())[0] == 0.0
    x2, z2 = batch(shape, seed=1)
    la, lb = a.train_step(x2, z=z2), b.train_step(x2, z=z2)   # ...and trained on
    assert abs(la["g_loss"] - lb["g_loss"]) < TOL
    diff, key = max_abs_diff(a.get_weights(), b.get_weights())
    assert diff < TOL, key
    assert max_abs_diff(a.optimizer_state(), b.optimizer_state())[0] < TOL


def reference_adam(p, grads, lr, b1, b2, eps):
    """Kingma & Ba (2015) Algorithm 1 in float64 NumPy."""
    m = v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return p


def test_adam_matches_reference_in_both_backends():
    """Gradients near epsilon expose where epsilon is added (Keras' stock Adam fails this)."""
    import tensorflow as tf
    import torch

    from gan_diffusion.tf_backend.optimizers import make_adam as tf_adam
    from gan_diffusion.torch_backend.optimizers import make_adam as torch_adam

    rng = np.random.default_rng(0)
    p0 = rng.normal(size=64)
    grads = [rng.normal(size=64) * 10.0 ** rng.uniform(-9, -1, size=64) for _ in range(3)]
    hp = dict(lr=2e-4, beta1=0.5, beta2=0.999, eps=1e-8)
    ref = reference_adam(p0, grads, hp["lr"], hp["beta1"], hp["beta2"], hp["eps"])

    tp = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float32))
    opt = torch_adam([tp], **hp)
    for g in grads:
        tp.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
    import keras

    kv = keras.Variable(p0.astype(np.float32))
    kopt = tf_adam([kv], **hp)
    for g in grads:
        kopt.apply_gradients([(tf.constant(g, tf.float32), kv)])
    stock = keras.optimizers.Adam(learning_rate=hp["lr"], beta_1=0.5, beta_2=0.999, epsilon=1e-8)
    sv = keras.Variable(p0.astype(np.float32))
    for g in grads:
        stock.apply_gradients([(tf.constant(g, tf.float32), sv)])
    for got in (tp.detach().numpy(), kv.numpy()):
        assert np.abs(got - ref).max() < 1e-6
    assert np.abs(sv.numpy() - ref).max() > 1e-5  # why the override exists


def test_torch_batchnorm_tracks_biased_variance_like_keras():
    import keras
    import torch

    from gan_diffusion.torch_backend.layers import BatchNorm

    x = np.random.default_rng(0).normal(2.0, 3.0, (4, 3, 5, 5)).astype(np.float32)
    bn = BatchNorm(3, momentum=0.1, eps=1e-5).train()
    y = bn(torch.from_numpy(x)).detach().numpy()
    kbn = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    ky = np.asarray(kbn(x.transpose(0, 2, 3, 1), training=True)).transpose(0, 3, 1, 2)
    biased = x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * biased, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(kbn.moving_variance), bn.running_var.numpy(), rtol=1e-6)
    np.testing.assert_allclose(y, ky, atol=1e-5)
