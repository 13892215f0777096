"""The offline fallback for RGB images of any size: cnn-cifar10-resized32 (the shipped
CIFAR-10 CNN on images resized to 32x32 in NumPy/PIL): the resize rule, TF-vs-torch features
on 64x64 images, "auto" picking it, the score names, and FID sanity on synthetic images and
(when GAN_DIFFUSION_DATA_DIR holds it) real CIFAR-10 upscaled to 64x64."""
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_diffusion import metrics
from gan_diffusion.compare import quality
from gan_diffusion.errors import ConfigError
from gan_diffusion.metrics import extractors as ex
from gan_diffusion.metrics.resized import resize_images
from gan_diffusion.models import inception as inc_spec

NAME = "cnn-cifar10-resized32"
GREY = "lenet-mnist-resized28"      # the grey counterpart: the MNIST LeNet after a resize to 28
DATA_DIR = os.environ.get("GAN_DIFFUSION_DATA_DIR")
needs_cifar = pytest.mark.skipif(
    not (DATA_DIR and (Path(DATA_DIR) / "cifar10-jpg" / "test").is_dir()),
    reason="GAN_DIFFUSION_DATA_DIR unset or has no cifar10-jpg/test/")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No Inception weights anywhere; a private statistics cache."""
    monkeypatch.delenv(inc_spec.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GAN_DIFFUSION_CACHE_DIR", str(tmp_path / "cache"))


def rel_err(a, b) -> float:
    """max |a - b| / max |b|."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b)))


def smooth_images(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """Natural-ish RGB images: random 8x8 colour fields upscaled (BICUBIC) to size x size."""
    small = np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(s).resize((size, size), Image.Resampling.BICUBIC))
                     for s in small])


def test_the_resize_rule_is_pil_bicubic_after_a_centre_crop():
    x = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    want = np.stack([np.asarray(Image.fromarray(im).resize((32, 32), Image.Resampling.BICUBIC))
                     for im in x])
    np.testing.assert_array_equal(resize_images(x, 32), want)
    wide = np.random.default_rng(1).integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)
    crop = np.stack([np.asarray(Image.fromarray(im).resize(
        (32, 32), Image.Resampling.BICUBIC, box=(8, 0, 56, 48))) for im in wide])
    np.testing.assert_array_equal(resize_images(wide, 32), crop)   # the middle 48x48, resized
    native = x[:, :32, :32]
    assert resize_images(native, 32) is native                    # 32x32 already: untouched
    # float images in [0, 1]: the same rule per channel in 32-bit float; PIL's 8-bit path
    # rounds and clips between its horizontal and vertical passes, hence up to 2 levels apart
    f = resize_images(x / 255.0, 32)
    assert f.dtype == np.float32 and 0.0 <= f.min() and f.max() <= 1.0
    diff = np.abs(f * 255.0 - want)
    assert diff.max() <= 2.0 and diff.mean() < 0.5, (diff.max(), diff.mean())
    with pytest.raises(ConfigError, match="uint8 or float"):
        resize_images(x.astype(np.int32), 32)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        resize_images(x * 1.0, 32)


@pytest.mark.parametrize("images", ["noise", "smooth"])
def test_tf_and_torch_give_the_same_features_on_64x64_images(images):
    x = (np.random.default_rng(2).integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)
         if images == "noise" else smooth_images(16, seed=3))
    entry = ex.get_extractor_entry(NAME)
    out = {}
    for be in ("torch", "tf"):
        ext, _ = ex.load_extractor(NAME, be)
        suffix = ext.inner.extractor_id[len("cnn-cifar10"):]             # "@<sha256 prefix>"
        assert ext.extractor_id == entry.expected_id == NAME + suffix and suffix.startswith("@")
        out[be] = ext.features_and_logits(x, batch_size=16)
        inner, _ = ex.load_extractor("cnn-cifar10", be)                # the same network...
        f_native = inner.features(resize_images(x, 32), batch_size=16)  # ...on the resized images
        np.testing.assert_array_equal(out[be][0], f_native)
    (f_t, l_t), (f_k, l_k) = out["torch"], out["tf"]
    assert f_t.shape == (16, 192) and l_t.shape == (16, 10)
    assert f_t.std(axis=0).max() > 1e-3                                 # not degenerate
    assert rel_err(f_k, f_t) < 1e-4, rel_err(f_k, f_t)
    assert rel_err(l_k, l_t) < 1e-4, rel_err(l_k, l_t)


def test_auto_picks_it_for_rgb_sizes_without_a_network_of_their_own():
    assert not ex.inception_weights_present()
    for shape in ((64, 64, 3), (100, 80, 3), (299, 299, 3)):
        assert ex.auto_extractor(shape).name == NAME, shape
        assert quality.resolve_extractor("auto", shape) == NAME
    assert ex.auto_extractor((32, 32, 3)).name == "cnn-cifar10"        # native sizes keep theirs
    assert ex.auto_extractor((28, 28, 1)).name == "lenet-mnist"
    assert ex.auto_extractor((64, 64, 1)).name == GREY                # grey: the LeNet's
    with pytest.raises(ConfigError, match=f"64x64x2 images.*other HxWx3 -> {NAME}"):
        ex.auto_extractor((64, 64, 2))                                 # no network at all
    with pytest.raises(ConfigError, match=rf"64x64x1 images.*\*x\*x3.*use extractor='{GREY}'"):
        ex.check_shape(ex.EXTRACTORS[NAME], (64, 64, 1), "the fake images")
    with pytest.raises(ConfigError, match=f"64x64x3 images.*use extractor='{NAME}'"):
        ex.check_shape(ex.EXTRACTORS["cnn-cifar10"], (64, 64, 3), "the fake images")
    assert ex.DATASET_SHAPES["eurosat"] == (64, 64, 3)


def test_scores_carry_the_resize_in_their_name_and_id():
    entry = ex.EXTRACTORS[NAME]
    assert entry.score_name("fid") == "FID-CNN(CIFAR-10)@32px"
    assert quality.score_label(NAME, "kid") == "KID-CNN(CIFAR-10)@32px"
    assert "resized to 32x32" in quality.extractor_note(NAME)
    # statistics files map back to this entry, not to cnn-cifar10 (a prefix of its id)
    assert ex.entry_for_id(entry.expected_id).name == NAME
    assert ex.entry_for_id(ex.EXTRACTORS["cnn-cifar10"].expected_id).name == "cnn-cifar10"
    a, b = smooth_images(250, seed=4), smooth_images(250, seed=5)
    out = metrics.compute_metrics(a, b, kid=True, kid_subset_size=100, kid_subsets=5)
    assert out["fid"].name == "FID-CNN(CIFAR-10)@32px" and str(out["fid"]).startswith(
        "FID-CNN(CIFAR-10)@32px=")
    assert out["kid"].name == "KID-CNN(CIFAR-10)@32px"
    assert out["fid"].extractor == entry.expected_id and out["fid"].params["dim"] == 192
    assert out["fid"].params["preprocessing"] == entry.preprocessing
    tf = metrics.fid(a, b, backend="tf")
    assert tf.value == pytest.approx(out["fid"].value, rel=1e-4)


def _fid_properties(x: np.ndarray, other: np.ndarray) -> dict:
    noise = np.random.default_rng(9).integers(0, 256, x.shape, dtype=np.uint8)
    vals = {"self": metrics.fid(x, x).value, "other": metrics.fid(x, other).value,
            "noise": metrics.fid(x, noise).value}
    print(f"\nFID-CNN(CIFAR-10)@32px on {x.shape[1:]}: {vals}")
    assert vals["self"] < 1e-6 * vals["noise"] + 1e-9, vals          # ~0 against itself
    assert vals["noise"] > 10 * vals["other"], vals                   # noise is far away
    return vals


def test_fid_of_synthetic_64x64_images():
    _fid_properties(smooth_images(300, seed=6), smooth_images(300, seed=7))


@needs_cifar
def test_fid_of_real_cifar10_upscaled_to_64():
    from gan_diffusion.data import load_dataset

    test = load_dataset("cifar10", "test", data_dir=DATA_DIR, limit=600, image_size=64)
    assert test.images.shape == (600, 64, 64, 3)
    x, other = test.images[::2], test.images[1::2]                    # 30 of each class each
    vals = _fid_properties(x, other)
    assert vals["noise"] > 20 * vals["other"], vals                   # measured: 35.1 vs 0.977


# -- lenet-mnist-resized28: grey images of any size (MNIST at 32x32 for StyleGAN2) ----------
def smooth_grey(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Grey 7x7 noise fields upscaled (BICUBIC) to size x size, (n, size, size, 1) uint8."""
    small = np.random.default_rng(seed).integers(0, 256, (n, 7, 7), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(s).resize((size, size), Image.Resampling.BICUBIC))
                     for s in small])[..., None]


def test_grey_fallback_is_the_lenet_on_resized_images_in_both_backends():
    x = smooth_grey(16, 32, seed=1)
    entry = ex.get_extractor_entry(GREY)
    assert entry.score_name("fid") == "FID-LeNet(MNIST)@28px" and entry.feature_dim == 128
    assert ex.entry_for_id(entry.expected_id).name == GREY
    assert ex.entry_for_id(ex.EXTRACTORS["lenet-mnist"].expected_id).name == "lenet-mnist"
    assert quality.resolve_extractor("auto", (32, 32, 1)) == GREY
    out = {}
    for be in ("torch", "tf"):
        ext, _ = ex.load_extractor(GREY, be)
        assert ext.extractor_id == entry.expected_id
        out[be] = ext.features_and_logits(x, batch_size=16)
        inner, _ = ex.load_extractor("lenet-mnist", be)               # the same network...
        np.testing.assert_array_equal(out[be][0], inner.features(resize_images(x, 28), batch_size=16))
        with pytest.raises(ConfigError, match=r"takes grey images \(N, H, W, 1\).*got \(2, 32, 32, 3\)"):
            ext.features(np.zeros((2, 32, 32, 3), np.uint8))
    (f_t, l_t), (f_k, l_k) = out["torch"], out["tf"]
    assert f_t.shape == (16, 128) and l_t.shape == (16, 10) and f_t.std(axis=0).max() > 1e-3
    assert rel_err(f_k, f_t) < 1e-4 and rel_err(l_k, l_t) < 1e-4
    with pytest.raises(ConfigError, match=f"32x32x1 images.*use extractor='{GREY}'"):
        ex.check_shape(ex.EXTRACTORS["lenet-mnist"], (32, 32, 1), "the fake images")


@pytest.mark.skipif(not (DATA_DIR and (Path(DATA_DIR) / "mnist").is_dir()),
                    reason="GAN_DIFFUSION_DATA_DIR unset or has no mnist/")
def test_grey_fallback_fid_of_real_mnist_at_32():
    from gan_diffusion.data import load_dataset

    test = load_dataset("mnist", "test", data_dir=DATA_DIR, limit=600, image_size=32)
    assert test.images.shape == (600, 32, 32, 1)
    x, other = test.images[::2], test.images[1::2]
    noise = np.random.default_rng(9).integers(0, 256, x.shape, dtype=np.uint8)
    vals = {"self": metrics.fid(x, x).value, "other": metrics.fid(x, other).value,
            "noise": metrics.fid(x, noise).value}
    assert metrics.fid(x, other).name == "FID-LeNet(MNIST)@28px"
    assert vals["self"] < 1e-6 * vals["noise"] + 1e-9 and vals["noise"] > 20 * vals["other"], vals
