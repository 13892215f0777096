"""The MLP GAN (models/mlp_gan.py): its forward against a NumPy reference of the plan,
weight-transfer parity between TensorFlow and PyTorch in both directions (forward in
float32 within 1e-4; one and two training steps in float64 within 1e-9), checkpoints that
cross backends, the CLI, and its config errors."""
import subprocess
import sys

import numpy as np
import pytest

from gan_diffusion.backends import load_model
from gan_diffusion.errors import ConfigError
from gan_diffusion.parity import forward_errors, max_abs_diff, one_step, perturb_native, step_errors
from gan_diffusion.registry import make_config

DIRECTIONS = [("tf", "torch"), ("torch", "tf")]
SMALL = dict(g_widths=(32, 48), d_widths=(48, 32), latent_dim=100, batch_size=8)


def pair(backends, src, dst, shape, **kw):
    a = backends[src].build("mlp-gan", image_shape=shape, **{**SMALL, **kw})
    b = backends[dst].build("mlp-gan", image_shape=shape, **{**SMALL, **kw})
    perturb_native(a, seed=11)
    b.set_weights(a.get_weights())
    return a, b


def batch(shape, n=8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, (n, *shape)).astype(np.float32),
            rng.standard_normal((n, 100)).astype(np.float32))


def numpy_generator(w, z, widths, slope=0.2):
    """The plan by hand: dense + LeakyReLU per width, dense to H*W*C, tanh (HWC order)."""
    h = z.astype(np.float64)
    for i in range(len(widths)):
        h = h @ w[f"generator/dense{i}/kernel"] + w[f"generator/dense{i}/bias"]
        h = np.where(h > 0, h, slope * h)
    n = len(widths)
    return np.tanh(h @ w[f"generator/dense{n}/kernel"] + w[f"generator/dense{n}/bias"])


def numpy_discriminator(w, x, widths, slope=0.2):
    h = x.reshape(len(x), -1).astype(np.float64)                # channels-last flatten
    for i in range(len(widths)):
        h = h @ w[f"discriminator/dense{i}/kernel"] + w[f"discriminator/dense{i}/bias"]
        h = np.where(h > 0, h, slope * h)
    n = len(widths)
    return (h @ w[f"discriminator/dense{n}/kernel"] + w[f"discriminator/dense{n}/bias"])[:, 0]


@pytest.mark.parametrize("backend", ["tf", "torch"])
def test_forward_matches_numpy_reference(backends, backend):
    shape = (28, 28, 1)
    m = backends[backend].build("mlp-gan", image_shape=shape, **SMALL)
    perturb_native(m, seed=2)
    w = m.get_weights()
    x, z = batch(shape)
    g = m.forward_generator(z)
    assert g.shape == (8, *shape)
    np.testing.assert_allclose(g.reshape(8, -1), numpy_generator(w, z, SMALL["g_widths"]), atol=2e-5)
    np.testing.assert_allclose(m.forward_discriminator(x), numpy_discriminator(w, x, SMALL["d_widths"]),
                               atol=2e-5)


@pytest.mark.parametrize("src,dst", DIRECTIONS)
@pytest.mark.parametrize("shape,classes", [((28, 28, 1), 0), ((32, 32, 3), 0), ((28, 28, 1), 10)])
def test_forward_parity(backends, src, dst, shape, classes):
    a, b = pair(backends, src, dst, shape, num_classes=classes)
    assert max_abs_diff(a.get_weights(), b.get_weights())[0] == 0.0
    x, z = batch(shape)
    labels = np.arange(8) % classes if classes else None
    errors = forward_errors(a, b, z, x, labels=labels) if classes else forward_errors(a, b, z, x)
    assert max(errors.values()) < 1e-4, errors


@pytest.mark.parametrize("src,dst", DIRECTIONS)
def test_train_steps_agree_in_float64(backends, src, dst):
    shape = (28, 28, 1)
    a, b = pair(backends, src, dst, shape, dtype="float64")
    for step in range(2):                 # Adam's first step, then one with history
        x, z = batch(shape, seed=step)
        r = one_step(a, b, x, z, tol=1e-9)
        assert r["losses"] < 1e-9 and r["gradients"] < 1e-9 and r["weights"] < 1e-9, r
        assert r["moved"] > 1e-5, r
    a, b = pair(backends, src, dst, shape, dtype="float64")
    errors = step_errors(a, b, [batch(shape, seed=s) for s in range(2)])   # no resync
    assert max(errors.values()) < 1e-9, errors


@pytest.mark.parametrize("src,dst", DIRECTIONS)
def test_checkpoint_crosses_backends(backends, src, dst, tmp_path):
    shape = (28, 28, 1)
    a = backends[src].build("mlp-gan", image_shape=shape, **SMALL)
    x, z = batch(shape)
    a.train_step(x, z=z)
    a.save(tmp_path / "ckpt.npz")
    b = load_model(tmp_path / "ckpt.npz", dst)
    assert b.config.model == "mlp-gan" and b.global_step == 1
    assert max_abs_diff(a.get_weights(), b.get_weights())[0] == 0.0
    x2, z2 = batch(shape, seed=1)
    assert abs(a.train_step(x2, z=z2)["g_loss"] - b.train_step(x2, z=z2)["g_loss"]) < 1e-4


def test_defaults_are_the_studies_script_and_bad_widths_are_refused():
    cfg = make_config("mlp-gan")
    assert (cfg.g_widths, cfg.d_widths, cfg.learning_rate, cfg.beta1) == ((256, 512, 1024),
                                                                          (1024, 512, 256), 2e-4, 0.5)
    for bad in ([], [64, 0]):
        with pytest.raises(ConfigError, match="g_widths must be a non-empty list of positive widths"):
            make_config("mlp-gan", g_widths=bad)


def test_cli_trains_and_samples(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "gan_diffusion", "train", "--model", "mlp-gan", "--backend", "torch",
           "--dataset", "digits", "--limit", "256", "--epochs", "1", "--out", str(out),
           "--set", "g_widths=[64]", "--set", "d_widths=[64]"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "checkpoints" / "latest.npz").exists() and (out / "samples" / "epoch_0001.png").exists()
