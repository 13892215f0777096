"""WGAN-GP: TF 'same' semantics in PyTorch, and weight-transfer parity in both directions.

Tolerance 1e-4 max abs. Measured (d_features 16, batch 8): float32 forward 4e-7 - 7e-6,
gradient penalty ~1e-7, critic steps ~1e-7 (weights); float64 critic + generator steps 1e-15.

Generator steps are compared in float64 (config dtype="float64"). In float32, a LeakyReLU
input within round-off (~1e-5 after the 12544-unit dense layer) of zero takes slope 1 in one
framework and 0.3 in the other, which changes thousands of weight gradients below it; with
these networks that happens in about half of the float32 generator steps we measured (see
docs/alignment.md, "Kink flips"). In float64 the round-off is 1e-16 and no unit is that close.
"""
import numpy as np
import pytest
import scipy.stats

from gan_diffusion.models.plan import convt_crop, same_pads
from gan_diffusion.parity import forward_errors, one_step, perturb_native, transfer

TOL = 1e-4
DIRECTIONS = [("tf", "torch"), ("torch", "tf")]


def pair(backends, src, dst, shape, **kw):
    a = backends[src].build("wgan-gp", image_shape=shape, d_features=16, batch_size=8, **kw)
    perturb_native(a, seed=3)
    b = transfer(a, dst)
    assert b.backend_name == dst
    return a, b


def batch(shape, n=8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, (n, *shape)).astype(np.float32),
            rng.standard_normal((n, 100)).astype(np.float32))


def test_same_padding_matches_tensorflow_arithmetic():
    assert same_pads(64, 5, 2) == (1, 2)     # asymmetric: torch padding=2 would shift by a pixel
    assert same_pads(7, 5, 2) == (2, 2)      # odd input: symmetric
    assert same_pads(7, 5, 1) == (2, 2)
    assert same_pads(16, 4, 2) == (1, 1)     # DCGAN's 4x4 stride-2 convs
    assert convt_crop(8, 5, 2) == (1, 16, 19)
    assert convt_crop(7, 5, 1) == (2, 7, 11)


@pytest.mark.parametrize("kernel,stride", [(3, 1), (3, 2), (4, 2), (5, 1), (5, 2), (5, 3)])
def test_same_layers_match_tensorflow_for_all_sizes(kernel, stride):
    """SameConv2d (conv padding plus TF's odd pixel) and SameConvTranspose2d (input shift
    plus padding / output_padding) give TF's 'same' outputs exactly, even and odd sizes."""
    import tensorflow as tf
    import torch

    from gan_diffusion.torch_backend.layers import SameConv2d, SameConvTranspose2d

    rng = np.random.default_rng(0)
    k = rng.normal(size=(kernel, kernel, 3, 4))                               # canonical
    for n in range(4, 12):
        x = rng.normal(size=(2, n, n, 3))                                     # NHWC, float64
        conv = SameConv2d(3, 4, kernel, stride, bias=False, in_size=n).double()
        convt = SameConvTranspose2d(4, 3, kernel, stride, bias=False, in_size=n).double()
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(k.transpose(3, 2, 0, 1)))
            convt.weight.copy_(torch.from_numpy(k.transpose(3, 2, 0, 1)))
            got = conv(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
            y = rng.normal(size=(2, n, n, 4))
            got_t = convt(torch.from_numpy(y.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
        want = tf.nn.conv2d(x, k, stride, "SAME").numpy()
        want_t = tf.nn.conv2d_transpose(y, k, (2, n * stride, n * stride, 3), stride, "SAME").numpy()
        assert got.shape == want.shape and got_t.shape == want_t.shape, n
        np.testing.assert_allclose(got, want, atol=1e-12, err_msg=f"conv, size {n}")
        np.testing.assert_allclose(got_t, want_t, atol=1e-12, err_msg=f"transposed conv, size {n}")


def test_naive_torch_padding_would_be_off_by_one_pixel():
    """The bug the exact port avoids: Conv2d(padding=2) differs from TF 'same' here."""
    import tensorflow as tf
    import torch

    from gan_diffusion.torch_backend.layers import SameConv2d

    x = np.random.default_rng(0).normal(size=(1, 3, 16, 16)).astype(np.float32)
    k = np.random.default_rng(1).normal(size=(5, 5, 3, 4)).astype(np.float32)  # canonical
    want = tf.nn.conv2d(x.transpose(0, 2, 3, 1), k, 2, "SAME").numpy().transpose(0, 3, 1, 2)
    w = torch.from_numpy(k.transpose(3, 2, 0, 1).copy())
    same = SameConv2d(3, 4, 5, 2, bias=False, in_size=16)
    with torch.no_grad():
        same.weight.copy_(w)
        ours = same(torch.from_numpy(x)).numpy()
        naive = torch.nn.functional.conv2d(torch.from_numpy(x), w, stride=2, padding=2).numpy()
    assert np.abs(ours - want).max() < 1e-4
    assert np.abs(naive - want).max() > 1e-2


@pytest.mark.parametrize("src,dst", DIRECTIONS)
@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 1), (64, 64, 3)])
def test_forward_and_gradient_penalty_parity(backends, src, dst, shape):
    a, b = pair(backends, src, dst, shape)
    x, z = batch(shape)
    assert a.forward_generator(z).shape == (8, *shape)
    errors = forward_errors(a, b, z, x)
    assert max(errors.values()) < TOL, errors
    fake, _ = batch(shape, seed=1)
    eps = np.random.default_rng(2).random(8).astype(np.float32)
    gp_a, gp_b = a.gradient_penalty(x, fake, eps), b.gradient_penalty(x, fake, eps)
    assert gp_a > 0.01 and abs(gp_a - gp_b) < TOL


@pytest.mark.parametrize("src,dst", DIRECTIONS)
@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 1)])
def test_critic_step_parity(backends, src, dst, shape):
    """Four critic steps, each from the same state (weights + Adam state): losses, Wasserstein
    estimate, penalty and updated weights within 1e-4; gradients within 1e-4 relative. In
    float64: on a later CPU a float32 kink flip (module docstring) put the 28x28 critic's
    gradients 1.1e-2 relative apart with the same code that had passed before."""
    a, b = pair(backends, src, dst, shape, dtype="float64")
    x, z = batch(shape)
    for _ in range(4):  # n_critic = 5: no generator step yet
        r = one_step(a, b, x, z, tol=TOL)
        assert r["losses"] < TOL and r["gradients"] < TOL, r
        assert r["weights"] < TOL and r["unexplained"] == 0 and r["ill_conditioned"] == 0, r
        assert r["moved"] > 1e-4, r


@pytest.mark.parametrize("src,dst", DIRECTIONS)
@pytest.mark.parametrize("shape", [(28, 28, 1), (64, 64, 3)])
def test_generator_step_parity_float64(backends, src, dst, shape):
    """n_critic = 1: every step is a critic step and then a generator step; two such steps,
    each from the same state. Everything within 1e-4 (measured: 1e-15), no exceptions."""
    a, b = pair(backends, src, dst, shape, n_critic=1, dtype="float64")
    assert a.get_weights()["generator/dense0/kernel"].dtype == np.float64
    for step in range(2):
        x, z = batch(shape, seed=step)
        eps = np.random.default_rng(step).random(8)
        r = one_step(a, b, x, z, tol=TOL, eps=eps, z_g=z[::-1].copy())
        assert r["moved"] > 1e-4, r
        assert max(r["losses"], r["gradients"], r["weights"]) < TOL, r
        assert r["unexplained"] == r["ill_conditioned"] == 0, r
    assert int(a.optimizer_state()["generator/step"]) == 2 == int(b.optimizer_state()["generator/step"])


def test_interpolation_weights_are_uniform_per_sample(backends):
    """Public examples have drawn them from a normal, or one per pixel: ours are one per
    sample, uniform on [0, 1), the same in both backends."""
    models = [backends[n].build("wgan-gp", image_shape=(28, 28, 1), d_features=8) for n in ("tf", "torch")]
    draws = [m.interpolation_weights(step, 64) for m in models for step in range(3)]
    assert draws[0].shape == (64,)                       # one weight per sample, not per pixel
    np.testing.assert_array_equal(draws[0], draws[3])    # same stream in both backends
    eps = np.concatenate([models[0].interpolation_weights(s, 64) for s in range(100)])
    assert eps.min() >= 0.0 and eps.max() < 1.0
    assert scipy.stats.kstest(eps, "uniform").pvalue > 1e-3
    assert scipy.stats.kstest(eps, "norm", args=(0.5, 0.25)).pvalue < 1e-3


@pytest.mark.parametrize("name", ["tf", "torch"])
def test_wgan_gp_trains_and_logs_the_estimate(backends, name):
    from gan_diffusion.data import load_dataset

    data = load_dataset("digits").subset(80)
    model = backends[name].build("wgan-gp", image_shape=data.image_shape, d_features=8,
                                 batch_size=16)
    history = model.fit(data, epochs=1)
    losses = history.epochs[0].losses
    assert set(losses) == {"c_loss", "wasserstein", "gp", "g_loss"}
    assert model.global_step == 5 and all(np.isfinite(v) for v in losses.values())
    assert model.sample(4, seed=0).shape == (4, 28, 28, 1)


def test_checkpoint_crosses_backends(backends, tmp_path):
    from gan_diffusion.backends import load_model
    from gan_diffusion.parity import max_abs_diff

    a, _ = pair(backends, "tf", "torch", (28, 28, 1))
    x, z = batch((28, 28, 1))
    a.train_step(x, z=z)
    a.save(tmp_path / "c.npz")
    b = load_model(tmp_path / "c.npz", "torch")
    assert b.global_step == 1 and b.config == a.config
    assert max_abs_diff(a.get_weights(), b.get_weights())[0] == 0.0
    assert max_abs_diff(a.optimizer_state(), b.optimizer_state())[0] == 0.0
