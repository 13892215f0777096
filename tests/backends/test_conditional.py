"""Class-conditional GANs (Mirza & Osindero 2014): a label embedding joined to the generator's
latent input and, as one extra image channel, to the discriminator's input; DCGAN and WGAN-GP,
both backends, parity in both directions (1e-4, float32; float64 where a LeakyReLU generator
step is compared, see test_parity_wgan_gp.py)."""
import numpy as np
import pytest
from helpers import small_dcgan

from gan_diffusion.errors import ConfigError
from gan_diffusion.models.dcgan import dcgan_weight_shapes
from gan_diffusion.models.wgan_gp import wgan_gp_weight_shapes
from gan_diffusion.parity import forward_errors, one_step, perturb_native, transfer
from gan_diffusion.registry import make_config

TOL = 1e-4
DIRECTIONS = [("tf", "torch"), ("torch", "tf")]


def cdcgan(backends, name, **kw):
    return backends[name].build("dcgan", **small_dcgan((28, 28, 1), num_classes=10, **kw))


def batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, (n, 28, 28, 1)).astype(np.float32),
            rng.standard_normal((n, 100)).astype(np.float32), rng.integers(0, 10, n))


def test_conditional_plans_add_label_embeddings():
    shapes = dcgan_weight_shapes(make_config("dcgan", num_classes=10, embed_dim=50))
    assert shapes["generator/label/embeddings"] == (10, 50)
    assert shapes["generator/convt0/kernel"][-1] == 150              # latent 100 + embedding 50
    assert shapes["discriminator/label/embeddings"] == (10, 28 * 28)  # one label channel
    assert shapes["discriminator/conv0/kernel"][2] == 2                # image + label channel
    shapes = wgan_gp_weight_shapes(make_config("wgan-gp", num_classes=3, image_shape=(64, 64, 3)))
    assert shapes["generator/dense0/kernel"][0] == 150
    assert shapes["critic/label/embeddings"] == (3, 64 * 64)
    assert shapes["critic/conv0/kernel"][2] == 4
    assert "generator/label/embeddings" not in dcgan_weight_shapes(make_config("dcgan"))
    with pytest.raises(ConfigError, match="num_classes must be 0"):
        make_config("dcgan", num_classes=1)


@pytest.mark.parametrize("model", ["dcgan", "wgan-gp"])
@pytest.mark.parametrize("src,dst", DIRECTIONS)
def test_conditional_forward_parity(backends, model, src, dst):
    kw = dict(d_features=16, batch_size=8) if model == "wgan-gp" else small_dcgan((28, 28, 1))
    a = backends[src].build(model, **{**kw, "image_shape": (28, 28, 1), "num_classes": 10})
    perturb_native(a, seed=4)
    b = transfer(a, dst)
    x, z, y = batch()
    errors = forward_errors(a, b, z, x, y)
    assert max(errors.values()) < TOL, errors
    # the label reaches both networks
    other = (y + 1) % 10
    assert np.abs(a.forward_generator(z, labels=y) - a.forward_generator(z, labels=other)).max() > 1e-3
    assert np.abs(a.forward_discriminator(x, labels=y)
                  - a.forward_discriminator(x, labels=other)).max() > 1e-4


@pytest.mark.parametrize("src,dst", DIRECTIONS)
def test_conditional_dcgan_step_parity(backends, src, dst):
    a = cdcgan(backends, src)
    perturb_native(a, seed=5)
    b = transfer(a, dst)
    for step in range(2):
        x, z, y = batch(seed=step)
        r = one_step(a, b, x, z, labels=y)
        assert r["losses"] < TOL and r["gradients"] < TOL, r
        assert r["weights"] < TOL and r["unexplained"] == 0, r
        assert r["ill_conditioned"] <= 1e-4 * r["total"], r
    emb = a.get_weights()["generator/label/embeddings"]
    assert np.abs(emb - b.get_weights()["generator/label/embeddings"]).max() < TOL


@pytest.mark.parametrize("src,dst", DIRECTIONS)
def test_conditional_wgan_gp_steps_parity_float64(backends, src, dst):
    """A critic step and a generator step (n_critic = 1) from the same state, in float64."""
    a = backends[src].build("wgan-gp", image_shape=(28, 28, 1), d_features=8, batch_size=8,
                            num_classes=10, n_critic=1, dtype="float64")
    perturb_native(a, seed=6)
    b = transfer(a, dst)
    x, z, y = batch()
    r = one_step(a, b, x, z, labels=y, eps=np.linspace(0, 1, 8), z_g=z[::-1].copy())
    assert max(r["losses"], r["weights"], r["gradients"]) < 1e-9, r
    assert r["unexplained"] == r["ill_conditioned"] == 0, r


def test_sample_labels(backends):
    a = cdcgan(backends, "torch")
    b = transfer(a, "tf")
    sevens = a.sample(4, seed=1, labels=7)
    assert sevens.shape == (4, 28, 28, 1) and sevens.dtype == np.uint8
    np.testing.assert_array_equal(sevens, a.sample(4, seed=1, labels=[7, 7, 7, 7]))
    assert not np.array_equal(sevens, a.sample(4, seed=1, labels=[1, 2, 3, 4]))
    # the same seed and labels give the same images in both frameworks (within one grey level)
    assert np.abs(sevens.astype(int) - b.sample(4, seed=1, labels=7).astype(int)).max() <= 1
    with pytest.raises(ConfigError, match=r"labels must be in \[0, 9\]"):
        a.sample(2, labels=[3, 10])
    with pytest.raises(ConfigError, match="one integer or 3 integers"):
        a.sample(3, labels=[1, 2])
    plain = backends["torch"].build("dcgan", **small_dcgan((28, 28, 1)))
    with pytest.raises(ConfigError, match="unconditional: labels are not accepted"):
        plain.sample(2, labels=[1, 2])
    with pytest.raises(ConfigError, match="unconditional: no class grid"):
        plain.class_grid()


def test_class_grid_rows_are_classes_columns_share_noise(backends):
    a = cdcgan(backends, "tf")
    grid = a.class_grid(per_class=3, seed=2)                 # (10 * 3, 28, 28, 1), class-major
    assert grid.shape == (30, 28, 28, 1)
    np.testing.assert_array_equal(grid[3:6], a.sample(3, seed=2, labels=1))  # row 1 = class 1
    images, nrow = a.preview_grid()
    assert nrow == 10 and images.shape == (100, 28, 28, 1)


@pytest.mark.parametrize("name", ["tf", "torch"])
def test_conditional_training_needs_labels(backends, name):
    from gan_diffusion.data import ArrayDataset, load_dataset

    data = load_dataset("digits").subset(80)                 # 5 steps: n_critic = 5
    model = backends[name].build("wgan-gp", image_shape=data.image_shape, d_features=8,
                                 batch_size=16, num_classes=10)
    history = model.fit(data, epochs=1)
    assert set(history.epochs[0].losses) == {"c_loss", "wasserstein", "gp", "g_loss"}
    unlabelled = ArrayDataset(data.images, None, "nolabels", "digits without labels")
    with pytest.raises(ConfigError, match="conditional .* has no labels"):
        model.fit(unlabelled, epochs=1)
    with pytest.raises(ValueError, match="needs a label per image"):
        model.train_step(data.images[:16])
