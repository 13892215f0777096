"""Offline feature networks (LeNet-MNIST, CNN-CIFAR-10): layout, TF-vs-torch parity in both
directions, shipped weights (checksum, accuracy on the real test sets), input checks."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO_ROOT

from gan_diffusion.errors import ConfigError, UnknownNameError
from gan_diffusion.models import classifiers as spec_mod
from gan_diffusion.tf_backend import classifiers as tfc
from gan_diffusion.torch_backend import classifiers as ptc

NAMES = ("lenet-mnist", "cnn-cifar10")
MODULES = {"tf": tfc, "torch": ptc}
DATA_DIR = os.environ.get("GAN_DIFFUSION_DATA_DIR")
needs_data = pytest.mark.skipif(not DATA_DIR, reason="GAN_DIFFUSION_DATA_DIR is not set: the "
                                "real MNIST / CIFAR-10 test sets are needed")


def rel_err(a, b) -> float:
    """max |a - b| / max |b|."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b)))


def random_images(name: str, n: int, seed: int = 0) -> np.ndarray:
    shape = spec_mod.get_classifier(name).image_shape
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def perturbed_weights(name: str, seed: int) -> dict:
    """Seeded init plus random BatchNorm statistics and biases (so every array matters)."""
    spec = spec_mod.get_classifier(name)
    w = spec.init_weights(seed)
    rng = np.random.default_rng(seed + 100)
    for k, v in w.items():
        if k.endswith(("moving_mean", "beta", "bias")):
            w[k] = rng.normal(0, 0.1, v.shape).astype(np.float32)
        elif k.endswith(("moving_variance", "gamma")):
            w[k] = rng.uniform(0.5, 1.5, v.shape).astype(np.float32)
    return w


@pytest.fixture(scope="module")
def nets():
    """{(name, backend): uninitialised Classifier}; each test loads the weights it needs."""
    return {(n, b): m.build(n, weights=None) for n in NAMES for b, m in MODULES.items()}


@pytest.mark.parametrize("name", NAMES)
def test_layout_is_the_same_in_both_backends_and_the_spec(nets, name):
    spec = spec_mod.get_classifier(name)
    expected = spec.weight_shapes()
    assert all(k.startswith(f"{spec.network}/") for k in expected)
    for be in MODULES:
        assert {k: v.shape for k, v in nets[name, be].get_weights().items()} == expected, be
    n_tf = sum(len(net.weights) for net in (nets[name, "tf"].body, nets[name, "tf"].head))
    assert n_tf == len(expected)                                       # no stray Keras variables
    assert expected[f"{spec.network}/logits/kernel"] == (spec.feature_dim, 10)
    assert 1e5 < sum(int(np.prod(s)) for s in expected.values()) < 2e6  # small enough to ship


@pytest.mark.parametrize("name, source", [("lenet-mnist", "tf"), ("lenet-mnist", "torch"),
                                          ("cnn-cifar10", "tf"), ("cnn-cifar10", "torch")])
def test_features_and_logits_agree_across_backends(nets, name, source):
    target = "torch" if source == "tf" else "tf"
    nets[name, source].set_weights(perturbed_weights(name, seed=1 if source == "tf" else 2))
    nets[name, target].set_weights(nets[name, source].get_weights())    # transfer source -> target
    w_src, w_dst = nets[name, source].get_weights(), nets[name, target].get_weights()
    assert all(np.array_equal(w_src[k], w_dst[k]) for k in w_src)
    x = random_images(name, 16)
    f_a, l_a = nets[name, source].features_and_logits(x, batch_size=16)
    f_b, l_b = nets[name, target].features_and_logits(x, batch_size=16)
    spec = spec_mod.get_classifier(name)
    assert f_a.shape == (16, spec.feature_dim) and l_a.shape == (16, 10)
    assert np.abs(f_a).max() > 1e-2 and f_a.std(axis=0).max() > 1e-3  # not degenerate
    assert rel_err(f_b, f_a) < 1e-4, rel_err(f_b, f_a)
    assert rel_err(l_b, l_a) < 1e-4, rel_err(l_b, l_a)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_features_do_not_depend_on_batch_size(nets, backend):
    clf = nets["cnn-cifar10", backend]
    clf.set_weights(perturbed_weights("cnn-cifar10", 3))
    x = random_images("cnn-cifar10", 7)
    assert rel_err(clf.features(x, batch_size=3), clf.features(x, batch_size=7)) < 1e-5


@pytest.mark.parametrize("name", NAMES)
def test_shipped_weights_are_verified_and_agree_across_backends(nets, name):
    spec = spec_mod.get_classifier(name)
    assert len(spec.weights_sha256) == 64
    assert spec_mod.sha256_file(spec.weights_path) == spec.weights_sha256
    meta = nets[name, "torch"].load_weights()
    assert meta["classifier"] == name and meta["test_accuracy_torch"] > 0.85
    nets[name, "tf"].load_weights()
    ids = {be: nets[name, be].extractor_id for be in MODULES}
    assert ids["tf"] == ids["torch"] == f"{name}@{spec.weights_sha256[:12]}"
    x = random_images(name, 8, seed=5)
    (f_t, l_t), (f_k, l_k) = (nets[name, be].features_and_logits(x) for be in ("torch", "tf"))
    assert rel_err(f_k, f_t) < 1e-4 and rel_err(l_k, l_t) < 1e-4


def test_tampered_or_foreign_weight_files_are_rejected(tmp_path, monkeypatch):
    spec = spec_mod.get_classifier("lenet-mnist")
    shipped = spec.weights_path
    monkeypatch.setattr(spec_mod, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(spec_mod.ClassifierWeightsError, match="not found.*reinstall"):
        spec_mod.load_weights(spec)
    shutil.copy(shipped, tmp_path / spec.weights_file)
    spec_mod.load_weights(spec)                                         # intact copy: accepted
    with open(tmp_path / spec.weights_file, "r+b") as f:               # flip one byte
        f.seek(200)
        b = f.read(1)
        f.seek(200)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(spec_mod.ClassifierWeightsError, match="sha256.*corrupt or was replaced"):
        spec_mod.load_weights(spec)
    # other weights load from an explicit path, under another extractor id
    other = tmp_path / "mine.npz"
    spec_mod.save_weights(other, spec, perturbed_weights("lenet-mnist", 4))
    clf = ptc.build("lenet-mnist", weights=other)
    assert clf.extractor_id == "lenet-mnist[file:mine.npz]"
    with pytest.raises(spec_mod.ClassifierWeightsError, match="expected 'cnn-cifar10'"):
        spec_mod.load_weights(spec_mod.get_classifier("cnn-cifar10"), other)
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(spec_mod.ClassifierWeightsError, match="corrupt"):
        spec_mod.load_weights(spec, tmp_path / "bad.npz")


def test_bad_inputs_are_one_clear_error():
    spec = spec_mod.get_classifier("lenet-mnist")
    with pytest.raises(ConfigError, match=r"\(N, 28, 28, 1\).*does not resize"):
        spec_mod.as_model_input(np.zeros((2, 32, 32, 3), np.uint8), spec)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        spec_mod.as_model_input(np.full((1, 28, 28, 1), -1.0, np.float32), spec)
    with pytest.raises(ConfigError, match="uint8 or float"):
        spec_mod.as_model_input(np.zeros((1, 28, 28, 1), np.int32), spec)
    with pytest.raises(UnknownNameError, match="lenet-mnist"):
        spec_mod.get_classifier("vgg")
    x = np.zeros((1, 28, 28, 1), np.uint8)
    np.testing.assert_array_equal(spec_mod.as_model_input(x / 255.0, spec),
                                  spec_mod.as_model_input(x, spec))


def test_training_helpers():
    x = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    y = spec_mod.augment(x, np.random.default_rng(1), pad=2, flip=True)
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    for i in range(len(x)):   # every output is a shifted (maybe mirrored) crop of its own image
        crops = [padded[i, a:a + 8, b:b + 8] for a in range(5) for b in range(5)]
        assert any(np.array_equal(y[i], c) or np.array_equal(y[i], c[:, ::-1]) for c in crops)
    np.testing.assert_array_equal(spec_mod.augment(x, np.random.default_rng(1), 0, False), x)
    lrs = [spec_mod.one_cycle_lr(s, 100, 0.2) for s in range(100)]
    assert max(lrs) == pytest.approx(0.2) and lrs[0] < 0.02 and lrs[-1] < 0.01
    assert np.argmax(lrs) == 19


def test_core_modules_are_framework_free():
    code = ("import sys, gan_diffusion.metrics as m, gan_diffusion.models.classifiers as c; "
            "c.get_classifier('cnn-cifar10').init_weights(0); m.EXTRACTORS['lenet-mnist'].expected_id; "
            "print('torch' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- accuracy of the shipped weights on the real test sets -----------------------------------
@needs_data
@pytest.mark.parametrize("name, split_min", [("lenet-mnist", 0.99), ("cnn-cifar10", 0.85)])
def test_shipped_weights_reach_the_accuracy_on_the_real_test_set(nets, name, split_min):
    from gan_diffusion.data import load_dataset

    spec = spec_mod.get_classifier(name)
    test = load_dataset(spec.dataset, "test", data_dir=DATA_DIR)
    assert len(test) == 10000
    acc = {}
    for be in MODULES:
        nets[name, be].load_weights()
        acc[be] = float((nets[name, be].logits(test.images).argmax(1) == test.labels).mean())
    print(f"{name}: test accuracy torch {acc['torch']:.4f}, tf {acc['tf']:.4f}")
    assert acc["torch"] >= split_min and acc["tf"] >= split_min, acc
    assert abs(acc["torch"] - acc["tf"]) <= 2e-4                        # at most 2 of 10,000 flip


@needs_data
def test_training_script_is_seeded_and_records_the_run(tmp_path):
    """Two tiny runs of scripts/train_feature_nets.py with the same seed write identical files."""
    import json

    script = REPO_ROOT / "scripts" / "train_feature_nets.py"
    shas = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.npz"
        subprocess.run([sys.executable, str(script), "--net", "lenet-mnist", "--data-dir", DATA_DIR,
                        "--limit", "384", "--epochs", "1", "--threads", "1", "--out", str(out)],
                       check=True, capture_output=True, text=True, timeout=600)
        record = json.loads(out.with_suffix(".json").read_text())
        assert record["weights"]["sha256"] == spec_mod.sha256_file(out)
        assert record["config"]["epochs"] == 1 and record["config"]["seed"] == 0
        assert {"torch", "numpy", "python"} <= set(record["versions"])
        assert record["machine"]["cpu_count"] >= 1 and len(record["history"]) == 1
        assert 0 <= record["weights"]["test_accuracy_of_file"] <= 1
        shas.append(record["weights"]["sha256"])
    assert shas[0] == shas[1]
    ptc.build("lenet-mnist", weights=tmp_path / "a.npz")               # loads as "other weights"
