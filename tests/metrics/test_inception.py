"""FID Inception-v3: layout, TF-vs-torch parity, preprocessing, pooling, batching, weight files.

Random canonical weights stand in for the real ones (no download in tests); the real file is
only needed to compute actual FID values.
"""
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
import torch.nn.functional as F

from gan_diffusion.data import DataError
from gan_diffusion.errors import ConfigError
from gan_diffusion.models import inception as spec
from gan_diffusion.tf_backend import inception as tfi
from gan_diffusion.torch_backend import inception as pti


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b|."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def exts():
    """{"tf": extractor, "torch": extractor}; each test sets the weights it needs."""
    return {"tf": tfi.InceptionExtractor(), "torch": pti.InceptionExtractor()}


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)


@pytest.fixture
def no_weight_dirs(tmp_path, monkeypatch):
    """Empty search folders: no env dir, the torch hub cache inside tmp_path."""
    monkeypatch.delenv(spec.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


# -- layout ---------------------------------------------------------------------------------
def test_layout_is_the_same_in_both_backends_and_the_spec(exts):
    expected = spec.weight_shapes()
    assert len(spec.conv_specs()) == 94 and len(expected) == 94 * 5 + 2
    for name, ext in exts.items():
        assert {k: v.shape for k, v in ext.get_weights().items()} == expected, name
    assert len(exts["tf"].net.weights) == len(expected)               # no stray Keras variables
    state = exts["torch"].net.state_dict()
    keys = {k for k in state if not k.endswith("num_batches_tracked")}
    assert keys == {spec.torch_key(k) for k in expected}
    assert spec.torch_key("inception/Mixed_6e/branch7x7dbl_5/conv/kernel") in state
    chans = [spec.STEM[-1].out_ch] + [b.out_ch for b in spec.BLOCKS]
    assert [b.in_ch for b in spec.BLOCKS] == chans[:-1] and chans[-1] == spec.FEATURE_DIM


def test_core_module_is_framework_free():
    code = ("import sys, gan_diffusion.models.inception as m; m.layout(); m.init_random(0); "
            "print('torch' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- parity ---------------------------------------------------------------------------------
@pytest.mark.parametrize("source, seed", [("tf", 0), ("torch", 1)])
def test_features_agree_across_backends(exts, images, source, seed):
    target = "torch" if source == "tf" else "tf"
    exts[source].init_random(seed)
    exts[target].set_weights(exts[source].get_weights())         # transfer source -> target
    w_src, w_dst = exts[source].get_weights(), exts[target].get_weights()
    assert all(np.array_equal(w_src[k], w_dst[k]) for k in w_src)
    (f_a, l_a), (f_b, l_b) = (exts[b].features_and_logits(images[:2], batch_size=2) for b in (source, target))
    assert f_a.shape == (2, spec.FEATURE_DIM) and l_a.shape == (2, spec.NUM_CLASSES)
    assert np.abs(f_a).max() > 1e-2                                 # not a degenerate all-zero output
    assert rel_err(f_b, f_a) < 1e-4, rel_err(f_b, f_a)
    assert rel_err(l_b, l_a) < 1e-4, rel_err(l_b, l_a)
    if source == "tf":  # logits without the fc bias (Inception Score convention)
        u_a, u_b = (exts[b].logits(images[:1], unbiased=True) for b in (source, target))
        bias = w_src["inception/fc/bias"]
        assert rel_err(u_b, u_a) < 1e-4 and rel_err(u_a + bias, l_a[:1]) < 1e-5


@pytest.mark.parametrize("shape", [(2, 64, 64, 3), (1, 28, 28, 1), (2, 320, 401, 3), (1, 299, 299, 3)])
def test_tf_resize_equals_torch_interpolate(exts, shape):
    x = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    t = exts["torch"].preprocess(x)                                 # (N, 3, 299, 299)
    ref = F.interpolate(torch.from_numpy(spec.as_unit_images(x)).permute(0, 3, 1, 2),
                        size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    assert torch.equal(t, ref)
    k = exts["tf"].preprocess(x).numpy()                            # (N, 299, 299, 3)
    assert k.shape == (shape[0], 299, 299, 3) and -1 <= k.min() and k.max() <= 1
    assert np.abs(k - t.permute(0, 2, 3, 1).numpy()).max() < 1e-5


def test_pools_exclude_padding_and_the_last_block_takes_the_max(exts):
    x = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 1) ** 1.5   # NHWC
    corner = x[:, :2, :2, 0].mean(axis=(1, 2))                      # 4 real values, not 9
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)
    avg_t = pti.avg_pool_3x3(xt).permute(0, 2, 3, 1).numpy()
    avg_k = tfi.avg_pool_3x3(tf.constant(x)).numpy()
    np.testing.assert_allclose(avg_t[:, 0, 0, 0], corner, rtol=1e-6)
    np.testing.assert_allclose(avg_k, avg_t, rtol=1e-6)
    keras_avg = keras.layers.AveragePooling2D(3, 1, padding="same")(tf.constant(x)).numpy()
    np.testing.assert_allclose(keras_avg, avg_k, rtol=1e-6)         # Keras 'same' excludes padding too
    max_t = pti.max_pool_3x3(xt).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(tfi.max_pool_3x3(tf.constant(x)).numpy(), max_t)
    np.testing.assert_array_equal(max_t[:, 0, 0, 0], x[:, 1, 1, 0])  # max of the corner window
    for name, ext in exts.items():
        e1, e2 = ext.net.Mixed_7b, ext.net.Mixed_7c
        assert type(e1).__name__ == "FIDInceptionE_1" and type(e2).__name__ == "FIDInceptionE_2", name
        feats = np.random.default_rng(2).standard_normal((1, 5, 5, 8)).astype(np.float32)
        inp = torch.from_numpy(feats).permute(0, 3, 1, 2) if name == "torch" else tf.constant(feats)
        as_nhwc = (lambda y: y.permute(0, 2, 3, 1).numpy()) if name == "torch" else (lambda y: y.numpy())
        mod = pti if name == "torch" else tfi
        np.testing.assert_array_equal(as_nhwc(e2.pool(inp)), as_nhwc(mod.max_pool_3x3(inp)))
        np.testing.assert_array_equal(as_nhwc(e1.pool(inp)), as_nhwc(mod.avg_pool_3x3(inp)))
        assert not np.allclose(as_nhwc(e2.pool(inp)), as_nhwc(e1.pool(inp)))
    for block in ("Mixed_5b", "Mixed_6b"):  # A and C blocks average as well
        assert type(getattr(exts["torch"].net, block)).__name__.startswith("FIDInception")


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_features_do_not_depend_on_batch_size(exts, images, backend):
    exts[backend].init_random(3)
    one = exts[backend].features(images, batch_size=4)
    split = exts[backend].features(images, batch_size=3)            # batches of 3 and 1
    assert rel_err(split, one) < 1e-5, rel_err(split, one)


# -- weight files ---------------------------------------------------------------------------
def test_missing_weights_name_the_file_the_places_and_the_fix(no_weight_dirs):
    for download in (None, False):  # None: GAN_DIFFUSION_NO_DOWNLOAD=1 (conftest) forbids it
        with pytest.raises(spec.PretrainedWeightsError) as err:
            spec.find_inception_weights(no_weight_dirs / "mine", download=download)
        msg = str(err.value)
        for part in (spec.WEIGHTS_FILE, str(no_weight_dirs / "mine"), str(no_weight_dirs / "torch"),
                     spec.WEIGHTS_URL, spec.WEIGHTS_DIR_ENV, "not found"):
            assert part in msg, (part, msg)
    assert isinstance(err.value, DataError)


def test_wrong_checksum_is_rejected(no_weight_dirs, monkeypatch):
    fake = no_weight_dirs / "torch" / "hub" / "checkpoints" / spec.WEIGHTS_FILE
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"not the inception weights")
    with pytest.raises(spec.PretrainedWeightsError, match="sha256.*expected.*delete it and download"):
        spec.find_inception_weights()
    # search order: explicit folder, then $GAN_DIFFUSION_WEIGHTS_DIR, then the hub cache
    monkeypatch.setattr(spec, "WEIGHTS_SHA256", spec.sha256_file(fake))
    assert spec.find_inception_weights() == fake
    env_dir, own = no_weight_dirs / "env", no_weight_dirs / "own"
    for d in (env_dir, own):
        d.mkdir()
        (d / spec.WEIGHTS_FILE).write_bytes(fake.read_bytes())
    monkeypatch.setenv(spec.WEIGHTS_DIR_ENV, str(env_dir))
    assert spec.find_inception_weights() == env_dir / spec.WEIGHTS_FILE
    assert spec.find_inception_weights(own) == own / spec.WEIGHTS_FILE


def test_state_dict_of_our_torch_module_loads_through_load_fid_weights(exts, images, tmp_path):
    src = pti.build("random", seed=4)
    path = tmp_path / "pt_inception-custom.pth"
    torch.save(src.net.state_dict(), path)                         # torchvision / pytorch-fid names
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in torch.load(path, weights_only=True)
    state = {k: v.numpy() for k, v in src.net.state_dict().items()}
    canon = spec.canonical_from_state_dict(state)                   # num_batches_tracked ignored
    back = spec.state_dict_from_canonical(canon)
    assert all(np.array_equal(back[k], state[k]) for k in back) and len(back) == len(canon)
    want = src.features(images[:2], batch_size=2)
    exts["torch"].init_random(5)
    assert exts["torch"].load_fid_weights(path) == path
    np.testing.assert_array_equal(exts["torch"].features(images[:2], batch_size=2), want)
    assert exts["torch"].extractor_id == f"{spec.EXTRACTOR_ID}[file:{path.name}]"
    # the converter: .pth -> canonical .npz, read by Keras without torch
    npz = pti.convert_fid_weights(path, tmp_path / "fid.npz")
    exts["tf"].load_fid_weights(npz)
    w_tf, w_torch = exts["tf"].get_weights(), src.get_weights()
    assert all(np.array_equal(w_tf[k], w_torch[k]) for k in w_torch)
    assert rel_err(exts["tf"].features(images[:2], batch_size=2), want) < 1e-4


def test_unreadable_weight_files_are_rejected(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"neither a zip archive nor a pickle")
    with pytest.raises(spec.PretrainedWeightsError, match="could not be read"):
        pti.read_fid_weights(bad)
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(spec.PretrainedWeightsError, match="not a pytorch-fid"):
        pti.read_fid_weights(bad)
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(spec.PretrainedWeightsError, match="corrupt"):
        spec.load_npz(tmp_path / "bad.npz")
    assert spec.extractor_id(spec.WEIGHTS_SHA256, "x") == spec.EXTRACTOR_ID


@pytest.mark.parametrize("bad, match", [
    (np.zeros((64, 64, 3), np.uint8), "NHWC"),
    (np.zeros((1, 64, 64, 2), np.uint8), "1 or 3 channels"),
    (np.full((1, 8, 8, 3), -1.0, np.float32), r"\[0, 1\]"),
    (np.zeros((1, 8, 8, 3), np.int32), "uint8 or float"),
])
def test_bad_images_are_one_clear_error(bad, match):
    with pytest.raises(ConfigError, match=match):
        spec.as_unit_images(bad)
