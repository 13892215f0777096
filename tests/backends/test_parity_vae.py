"""VAE: the Keras example's architecture and loss, checked against Keras itself and NumPy,
and weight-transfer parity TF <-> torch in both directions.

Tolerance 1e-4 max abs unless stated. Measured (features 8 or the example's 32, batch 8):
float32 encoder/decoder outputs 6e-8 - 5e-7; one step's weights 3e-8 - 2e-6, gradients
(relative) 1e-6 - 4e-6; float64 steps: losses, weights, gradients 1e-17 - 2e-12.
The loss terms are sums over D pixels (545 nats for 28x28 at initialisation, 8500 for
64x64x3), so float32 parity on them is a few ulps of the sum (6e-5 and 1e-3), asserted as
1e-6 relative; in float64 they agree to 1e-12 absolute and 1e-4 is asserted.
"""
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from gan_diffusion.data import as_model_batch
from gan_diffusion.models.vae import (bernoulli_nll, gaussian_nll, kl_standard_normal,
                                      loss_terms_reference, reparameterize, to_unit_range,
                                      vae_weight_shapes)
from gan_diffusion.parity import max_abs_diff, one_step, perturb_native, transfer
from gan_diffusion.registry import make_config

TOL = 1e-4
DIRECTIONS = [("tf", "torch"), ("torch", "tf")]


def pair(backends, src, dst, shape=(28, 28, 1), **kw):
    a = backends[src].build("vae", image_shape=shape, **{"features": 8, "batch_size": 8, **kw})
    perturb_native(a, seed=3)
    b = transfer(a, dst)
    assert b.backend_name == dst
    return a, b


def batch(shape, n=8, seed=0, latent=2, classes=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, *shape)).astype(np.uint8)
    eps = rng.standard_normal((n, latent))
    return x, eps, (rng.integers(0, classes, n) if classes else None)


# ------------------------------------------------------------ architecture = the Keras example

def test_weight_shapes_and_counts_match_the_keras_example():
    """The example's summaries: encoder 69,076 parameters, decoder 65,089 (28x28x1, latent 2)."""
    shapes = vae_weight_shapes(make_config("vae"))
    count = lambda net: sum(int(np.prod(s)) for k, s in shapes.items() if k.startswith(net))  # noqa: E731
    assert count("encoder/") == 69076 and count("decoder/") == 65089
    assert shapes["encoder/conv1/kernel"] == (3, 3, 32, 64)
    assert shapes["encoder/z_log_var/kernel"] == (16, 2)
    assert shapes["decoder/dense0/kernel"] == (2, 7 * 7 * 64)
    assert shapes["decoder/convt3/kernel"] == (3, 3, 1, 32)
    for side, start in ((32, 8), (64, 16)):                     # RGB: the map starts at side / 4
        s = vae_weight_shapes(make_config("vae", image_shape=(side, side, 3), latent_dim=16))
        assert s["encoder/dense0/kernel"] == (start * start * 64, 16)
        assert s["decoder/dense0/kernel"] == (16, start * start * 64)
        assert s["decoder/convt3/kernel"] == (3, 3, 3, 32)
    cond = vae_weight_shapes(make_config("vae", num_classes=10))
    assert cond["encoder/label/embeddings"] == (10, 28 * 28) and cond["encoder/conv0/kernel"][2] == 2
    assert cond["decoder/label/embeddings"] == (10, 50) and cond["decoder/dense0/kernel"][0] == 52


def keras_example(cfg):
    """The keras.io example's encoder and decoder, written with stock Keras layers."""
    import keras
    from keras import layers

    side, _, c = cfg.image_shape
    inp = keras.Input(cfg.image_shape)
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(inp)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Dense(16, activation="relu")(layers.Flatten()(x))
    encoder = keras.Model(inp, [layers.Dense(cfg.latent_dim)(x), layers.Dense(cfg.latent_dim)(x)])
    z = keras.Input((cfg.latent_dim,))
    s = side // 4
    y = layers.Reshape((s, s, 64))(layers.Dense(s * s * 64, activation="relu")(z))
    y = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(y)
    y = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(y)
    decoder = keras.Model(z, layers.Conv2DTranspose(c, 3, activation="sigmoid", padding="same")(y))
    return encoder, decoder


@pytest.mark.parametrize("name", ["tf", "torch"])
@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_forward_and_loss_match_the_keras_example(backends, name, shape):
    """Our weights in the example's stock-Keras model: same encoder and decoder outputs, and
    the example's loss (sum over pixels of keras BCE, batch mean, + KL) equals ours."""
    import tensorflow as tf
    import keras

    model = backends[name].build("vae", image_shape=shape)
    perturb_native(model, seed=1, scale=0.02)
    encoder, decoder = keras_example(model.config)
    w = model.get_weights()
    encoder.set_weights([w[f"encoder/{l}/{p}"] for l in ("conv0", "conv1", "dense0", "z_mean", "z_log_var")
                         for p in ("kernel", "bias")])
    decoder.set_weights([w[f"decoder/{l}/{p}"] for l in ("dense0", "convt1", "convt2", "convt3")
                         for p in ("kernel", "bias")])
    x, eps, _ = batch(shape)
    data = x.astype(np.float32) / 255.0                               # the example's input
    z_mean, z_log_var = (t.numpy() for t in encoder(data))
    ours = model.encode(x)
    assert max(np.abs(ours[0] - z_mean).max(), np.abs(ours[1] - z_log_var).max()) < TOL
    z = (z_mean + np.exp(0.5 * z_log_var) * eps).astype(np.float32)
    reconstruction = decoder(z)
    assert np.abs(model.decode(z) - reconstruction.numpy()).max() < TOL
    recon = tf.reduce_mean(tf.reduce_sum(keras.losses.binary_crossentropy(data, reconstruction),
                                         axis=(1, 2)))                # the example's formula
    kl = tf.reduce_mean(tf.reduce_sum(-0.5 * (1 + z_log_var - z_mean ** 2 - np.exp(z_log_var)), axis=1))
    terms = model.loss_terms(x, eps=eps)
    # keras' BCE averages over the channel axis: for C channels it is our per-pixel sum / C
    assert terms["recon"] == pytest.approx(shape[2] * float(recon), rel=1e-5)
    assert terms["kl"] == pytest.approx(float(kl), rel=1e-5, abs=1e-6)


# ------------------------------------------------------------ loss formulas

def test_kl_closed_form_against_numerical_integration_and_monte_carlo():
    rng = np.random.default_rng(0)
    mean, log_var = rng.normal(0, 1.5, (3, 4)), rng.normal(0, 1.0, (3, 4))
    closed = kl_standard_normal(mean, log_var)                        # (3,)
    # independent 1: quadrature of q log(q / p) per dimension (the dimensions are independent)
    quad = np.zeros(3)
    for i in range(3):
        for j in range(4):
            q = scipy.stats.norm(mean[i, j], math.exp(0.5 * log_var[i, j]))
            f = lambda t: q.pdf(t) * (q.logpdf(t) - scipy.stats.norm.logpdf(t))  # noqa: E731
            quad[i] += scipy.integrate.quad(f, -np.inf, np.inf, epsabs=1e-12)[0]
    np.testing.assert_allclose(closed, quad, rtol=1e-8, atol=1e-10)
    # independent 2: Monte Carlo E_q[log q(z) - log p(z)] with 400k samples, within 5 s.e.
    z = reparameterize(mean[0], log_var[0], rng.standard_normal((400_000, 4)))
    std = np.exp(0.5 * log_var[0])
    log_ratio = (scipy.stats.norm.logpdf(z, mean[0], std) - scipy.stats.norm.logpdf(z)).sum(axis=1)
    assert abs(log_ratio.mean() - closed[0]) < 5 * log_ratio.std() / math.sqrt(len(z))
    assert kl_standard_normal(np.zeros((1, 3)), np.zeros((1, 3)))[0] == 0.0


def test_likelihoods_against_direct_formulas():
    rng = np.random.default_rng(1)
    x, logits = rng.uniform(size=(4, 6, 6, 1)), rng.normal(0, 3, (4, 6, 6, 1))
    p = 1 / (1 + np.exp(-logits))
    direct = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(4, -1).sum(1)
    np.testing.assert_allclose(bernoulli_nll(x, logits), direct, rtol=1e-10)
    gauss = -scipy.stats.norm.logpdf(x, p, 0.1).reshape(4, -1).sum(1)    # constant included
    np.testing.assert_allclose(gaussian_nll(x, p, 0.1), gauss, rtol=1e-10)


@pytest.mark.parametrize("name", ["tf", "torch"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_loss_terms_match_numpy_reference(backends, name, likelihood):
    """float64 model: its loss terms equal the NumPy formulas on its own encoder/decoder
    outputs (logits recovered from the float64 sigmoid), and KL equals the closed form."""
    model = backends[name].build("vae", features=8, likelihood=likelihood, gaussian_sigma=0.2,
                                 dtype="float64")
    perturb_native(model, seed=2)
    x, eps, _ = batch((28, 28, 1))
    z_mean, z_log_var = model.encode(x)
    p = model.decode(reparameterize(z_mean, z_log_var, eps))
    logits = np.log(p) - np.log1p(-p)
    x01 = to_unit_range(as_model_batch(x, (28, 28, 1)))              # the pipeline's float32 [-1, 1]
    ref = loss_terms_reference(model.config, x01, logits, z_mean, z_log_var)
    ours = model.loss_terms(x, eps=eps)
    for k in ("neg_elbo", "recon", "kl", "bpd"):
        assert ours[k] == pytest.approx(ref[k], rel=1e-9), k
    assert ours["kl"] > 0.01
    assert ours["bpd"] == pytest.approx(ours["neg_elbo"] / (784 * math.log(2)), rel=1e-12)
    assert ours["neg_elbo"] == pytest.approx(ours["recon"] + ours["kl"], rel=1e-12)


# ------------------------------------------------------------ TF <-> torch parity

@pytest.mark.parametrize("src,dst", DIRECTIONS)
@pytest.mark.parametrize("shape,classes", [((28, 28, 1), 0), ((28, 28, 1), 10),
                                           ((32, 32, 3), 0), ((64, 64, 3), 3)])
def test_encoder_decoder_and_loss_parity(backends, src, dst, shape, classes):
    a, b = pair(backends, src, dst, shape, num_classes=classes)
    x, eps, y = batch(shape, classes=classes)
    (ma, va), (mb, vb) = a.encode(x, y), b.encode(x, y)
    assert max(np.abs(ma - mb).max(), np.abs(va - vb).max()) < TOL
    da, db = a.decode(eps, y), b.decode(eps, y)
    assert da.shape == (8, *shape) and np.abs(da - db).max() < TOL
    ta, tb = a.loss_terms(x, y, eps=eps), b.loss_terms(x, y, eps=eps)
    for k in ta:
        assert ta[k] == pytest.approx(tb[k], rel=1e-6, abs=1e-6), (k, ta, tb)
    if classes:  # the label reaches both networks
        other = (y + 1) % classes
        assert np.abs(a.encode(x, other)[0] - ma).max() > 1e-4
        assert np.abs(a.decode(eps, other) - da).max() > 1e-4


@pytest.mark.parametrize("src,dst", DIRECTIONS)
@pytest.mark.parametrize("classes", [0, 10])
def test_train_step_parity_float32(backends, src, dst, classes):
    """Two steps, each from the same state with the same eps: updated weights within 1e-4,
    gradients within 1e-4 relative, no ill-conditioned or unexplained weights."""
    a, b = pair(backends, src, dst, num_classes=classes)
    for step in range(2):
        x, eps, y = batch((28, 28, 1), seed=step, classes=classes)
        r = one_step(a, b, x, None, labels=y, eps=eps)
        assert r["losses"] < 2e-6 * 600, r                            # a few ulps of ~545 nats
        assert r["weights"] < TOL and r["gradients"] < TOL, r
        assert r["unexplained"] == r["ill_conditioned"] == 0 and r["moved"] > 1e-4, r


@pytest.mark.parametrize("src,dst", DIRECTIONS)
@pytest.mark.parametrize("shape,classes,likelihood", [((28, 28, 1), 0, "gaussian"),
                                                      ((32, 32, 3), 10, "bernoulli")])
def test_train_step_parity_float64(backends, src, dst, shape, classes, likelihood):
    a, b = pair(backends, src, dst, shape, num_classes=classes, likelihood=likelihood,
                dtype="float64")
    for step in range(2):
        x, eps, y = batch(shape, seed=step, classes=classes)
        r = one_step(a, b, x, None, labels=y, eps=eps)
        assert max(r["losses"], r["weights"], r["gradients"]) < TOL, r
        assert max(r["weights"], r["gradients"]) < 1e-9, r           # measured ~1e-15
        assert r["unexplained"] == r["ill_conditioned"] == 0 and r["moved"] > 1e-4, r


@pytest.mark.parametrize("optimizer,src,dst", [("rmsprop", "tf", "torch"), ("sgd", "torch", "tf")])
def test_optimizer_choice_parity(backends, optimizer, src, dst):
    a, b = pair(backends, src, dst, optimizer=optimizer, momentum=0.9, learning_rate=1e-3,
                dtype="float64")
    assert "encoder/momentum/conv0/kernel" in a.optimizer_state()
    for step in range(2):
        x, eps, _ = batch((28, 28, 1), seed=step)
        r = one_step(a, b, x, None, eps=eps)
        assert max(r["losses"], r["weights"], r["gradients"]) < 1e-9, r


def test_default_noise_is_the_same_in_both_backends(backends):
    """Without eps, both draw the "reparam" stream at global_step: same losses, same weights."""
    a, b = pair(backends, "tf", "torch")
    x, _, _ = batch((28, 28, 1))
    la, lb = a.train_step(x), b.train_step(x)
    assert la["neg_elbo"] == pytest.approx(lb["neg_elbo"], rel=1e-6)
    assert max_abs_diff(a.get_weights(), b.get_weights())[0] < TOL
    np.testing.assert_array_equal(a.reparam_noise(5, 3), b.reparam_noise(5, 3))


@pytest.mark.parametrize("src,dst", DIRECTIONS)
def test_checkpoint_crosses_backends(backends, src, dst, tmp_path):
    from gan_diffusion.backends import load_model

    a, _ = pair(backends, src, dst, num_classes=10)
    x, eps, y = batch((28, 28, 1), classes=10)
    a.train_step(x, y, eps=eps)
    a.save(tmp_path / "v.npz")
    b = load_model(tmp_path / "v.npz", dst)
    assert b.backend_name == dst and b.global_step == 1 and b.config == a.config
    assert max_abs_diff(a.get_weights(), b.get_weights())[0] == 0.0
    assert max_abs_diff(a.optimizer_state(), b.optimizer_state())[0] == 0.0
    x, eps, y = batch((28, 28, 1), seed=1, classes=10)
    la, lb = a.train_step(x, y, eps=eps), b.train_step(x, y, eps=eps)  # training continues alike
    assert la["neg_elbo"] == pytest.approx(lb["neg_elbo"], rel=1e-6)
    assert max_abs_diff(a.get_weights(), b.get_weights())[0] < TOL
