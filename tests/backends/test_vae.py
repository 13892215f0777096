"""VAE use: config, training records (negative ELBO in nats and bits/dim), sampling from the
prior, reconstruction with PSNR/SSIM (checked against tf.image), interpolation, the latent
manifold, the conditional VAE and the CLI run folder."""
import json
import math

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

from gan_diffusion.errors import ConfigError
from gan_diffusion.registry import list_models, make_config

TINY = dict(features=8, batch_size=32)


@pytest.fixture(scope="module")
def digits():
    from gan_diffusion.data import load_dataset

    return load_dataset("digits").subset(96)


def test_config_defaults_and_errors():
    assert "vae" in list_models()
    cfg = make_config("vae")
    assert (cfg.latent_dim, cfg.batch_size, cfg.learning_rate, cfg.likelihood) == (2, 128, 1e-3, "bernoulli")
    assert cfg.dims == 784 and make_config("vae", image_shape=(64, 64, 3)).dims == 12288
    for bad, match in [({"likelihood": "poisson"}, "likelihood"), ({"image_shape": (48, 48, 3)}, "48"),
                       ({"num_classes": 1}, "num_classes"), ({"gaussian_sigma": 0}, "gaussian_sigma"),
                       ({"optimizer": "lbfgs"}, "optimizer")]:
        with pytest.raises(ConfigError, match=match):
            make_config("vae", **bad)


@pytest.mark.parametrize("name", ["tf", "torch"])
def test_fit_reports_negative_elbo_in_nats_and_bits(backends, digits, name):
    model = backends[name].build("vae", image_shape=digits.image_shape, **TINY)
    history = model.fit(digits, epochs=2)
    first, last = (e.losses for e in history.epochs)
    assert set(first) == {"neg_elbo", "recon", "kl", "bpd"}
    for losses in (first, last):
        assert losses["neg_elbo"] == pytest.approx(losses["recon"] + losses["kl"], rel=1e-5)
        assert losses["bpd"] == pytest.approx(losses["neg_elbo"] / (784 * math.log(2)), rel=1e-9)
    assert last["neg_elbo"] < first["neg_elbo"] and model.global_step == 6
    line = history.epochs[-1].log_line(2)
    assert "neg_elbo" in line and "bpd" in line and "kl" in line
    assert json.loads(json.dumps(history.to_dict()))["epochs"][1]["losses"]["bpd"] == last["bpd"]


def test_controlled_mode_epochs_agree_across_backends(backends, digits):
    """Same data order and the same eps stream: one epoch of fit gives the same losses and
    weights in TF and torch."""
    from gan_diffusion.parity import max_abs_diff

    a = backends["tf"].build("vae", image_shape=digits.image_shape, **TINY)
    b = backends["torch"].build("vae", image_shape=digits.image_shape, **TINY)
    la, lb = a.fit(digits, 1).epochs[0].losses, b.fit(digits, 1).epochs[0].losses
    for k in la:
        assert la[k] == pytest.approx(lb[k], rel=1e-5), (k, la, lb)
    assert max_abs_diff(a.get_weights(), b.get_weights())[0] < 1e-4


@pytest.mark.parametrize("name", ["tf", "torch"])
def test_sample_reconstruct_interpolate_manifold(backends, digits, name, tmp_path):
    from gan_diffusion.parity import perturb_native, transfer
    from gan_diffusion.utils.latent_plots import save_latent_scatter, save_manifold

    model = backends[name].build("vae", image_shape=digits.image_shape, **TINY)
    perturb_native(model, seed=0, scale=0.1)
    other = transfer(model, "torch" if name == "tf" else "tf")
    samples = model.sample(6, seed=3)                       # decoded z ~ N(0, I), uint8
    assert samples.shape == (6, 28, 28, 1) and samples.dtype == np.uint8
    np.testing.assert_array_equal(samples, model.sample(6, seed=3))
    assert np.abs(samples.astype(int) - other.sample(6, seed=3).astype(int)).max() <= 1
    from gan_diffusion import noise
    z = noise.latent(6, 2, 3)
    np.testing.assert_array_equal(samples, np.rint(255 * model.decode(z).astype(np.float64)).astype(np.uint8))

    x = digits.images[:4]
    recon = model.reconstruct(x)
    assert recon.shape == x.shape and recon.dtype == np.uint8
    np.testing.assert_array_equal(recon, model.reconstruct(x.astype(np.float32) / 127.5 - 1))
    path = model.interpolate(x[0], x[1], steps=5)
    assert path.shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(path[[0, -1]], recon[:2])  # the ends decode the two means

    images, gx, gy = model.manifold(n=5, scale=1.5)
    assert images.shape == (25, 28, 28, 1) and gx[0] == -1.5 and gy[0] == 1.5
    z00 = np.array([[-1.5, 1.5]], np.float32)                # top-left tile: z = (-scale, +scale)
    np.testing.assert_array_equal(images[0], np.rint(255 * model.decode(z00)[0].astype(np.float64)))
    save_manifold(tmp_path / "m.png", images, gx, gy, title="t")
    save_latent_scatter(tmp_path / "s.png", model.latent_means(digits), digits.labels)
    for f in ("m.png", "s.png"):
        png = np.asarray(Image.open(tmp_path / f))
        assert png.shape[0] > 300 and png.std() > 0
    wide = backends[name].build("vae", latent_dim=3, **TINY)
    with pytest.raises(ConfigError, match="latent_dim 2"):
        wide.manifold()


@pytest.mark.parametrize("name", ["tf", "torch"])
def test_reconstruction_metrics_match_tf_image(backends, digits, name):
    """PSNR and SSIM (window 11, sigma 1.5) of the VAE's reconstructions equal tf.image's."""
    import tensorflow as tf

    from gan_diffusion.parity import perturb_native

    model = backends[name].build("vae", image_shape=digits.image_shape, **TINY)
    perturb_native(model, seed=0, scale=0.1)
    x = digits.images[:8]
    ours = model.reconstruction_metrics(x)
    x01, rec = x / 255.0, model.reconstruct_unit(x).astype(np.float64)
    assert ours["psnr"] == pytest.approx(float(tf.reduce_mean(tf.image.psnr(x01, rec, 1.0))), abs=1e-4)
    assert ours["ssim"] == pytest.approx(float(tf.reduce_mean(tf.image.ssim(
        x01, rec, 1.0, filter_size=11, filter_sigma=1.5))), abs=1e-4)
    ev = model.evaluate(digits, batch_size=40)                # 3 batches, the last one partial
    assert set(ev) == {"neg_elbo", "recon", "kl", "bpd", "psnr", "ssim"}
    assert ev["bpd"] == pytest.approx(ev["neg_elbo"] / (784 * math.log(2)))
    first = model.loss_terms(digits.images[:40], eps=model.reparam_noise(0, 40, "reparam_eval"))
    assert ev == model.evaluate(digits, batch_size=40) and first["neg_elbo"] != ev["neg_elbo"]


@pytest.mark.parametrize("name", ["tf", "torch"])
def test_conditional_vae(backends, digits, name):
    model = backends[name].build("vae", image_shape=digits.image_shape, num_classes=10, **TINY)
    history = model.fit(digits, epochs=1)
    assert np.isfinite(history.epochs[0].losses["neg_elbo"])
    sevens = model.sample(4, seed=1, labels=7)
    np.testing.assert_array_equal(sevens, model.sample(4, seed=1, labels=[7] * 4))
    assert not np.array_equal(sevens, model.sample(4, seed=1, labels=[1, 2, 3, 4]))
    grid = model.class_grid(per_class=3, seed=2)
    assert grid.shape == (30, 28, 28, 1)
    np.testing.assert_array_equal(grid[21:24], model.sample(3, seed=2, labels=7))
    x, y = digits.images[:4], digits.labels[:4]
    assert model.reconstruct(x, y).shape == x.shape
    assert model.interpolate(x[0], x[1], 4, labels=(y[0], y[1])).shape == (4, 28, 28, 1)
    with pytest.raises(ConfigError, match="needs labels"):
        model.reconstruct(x)
    plain = backends[name].build("vae", **TINY)
    with pytest.raises(ConfigError, match="unconditional: labels are not accepted"):
        plain.reconstruct(x, y)


cli = run_cli


def test_cli_run_folder(tmp_path):
    run = tmp_path / "vae"
    out = cli("train", "--backend", "torch", "--model", "vae", "--dataset", "digits", "--epochs", "1",
              "--out", str(run), "--set", "features=8", "--batch-size", "32", "--limit", "64")
    assert "neg_elbo" in out.stdout and "bpd" in out.stdout and "| train neg_elbo" in out.stdout
    losses = json.loads((run / "history.json").read_text())["epochs"][0]["losses"]
    assert set(losses) == {"neg_elbo", "recon", "kl", "bpd"}
    ev = json.loads((run / "eval.json").read_text())
    assert ev["split"] == "train" and ev["images"] == 64 and ev["epochs"][0]["epoch"] == 1
    for name in ("manifold.png", "latent_scatter.png", "reconstructions.png", "interpolations.png",
                 "samples/epoch_0001.png"):
        assert np.asarray(Image.open(run / name)).std() > 0, name
    cond = tmp_path / "cvae"
    cli("train", "--backend", "tf", "--model", "vae", "--dataset", "digits", "--conditional",
        "--epochs", "1", "--out", str(cond), "--set", "features=8", "--batch-size", "32", "--limit", "64")
    assert json.loads((cond / "config.json").read_text())["model_config"]["num_classes"] == 10
    grid = np.asarray(Image.open(cond / "samples" / "epoch_0001.png"))
    assert grid.shape[0] > grid.shape[1] * 0.9             # 10 rows (one per class) x 10 columns
    assert not (cond / "manifold.png").exists()            # conditional: the class grid instead
