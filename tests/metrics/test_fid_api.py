"""The metrics API on images (fid, kid, isc, prc, compute_metrics, dataset_stats): inputs,
extractor choice, naming, backends, the statistics cache, errors. Uses the embedded digits
dataset (28x28x1, no data dir needed) and the shipped LeNet-MNIST weights."""
import numpy as np
import pytest
from PIL import Image

from gan_diffusion import metrics
from gan_diffusion.data import DataError, load_dataset
from gan_diffusion.errors import ConfigError, UnknownNameError
from gan_diffusion.metrics import FeatureStats, MetricInputError
from gan_diffusion.metrics import extractors as ex
from gan_diffusion.models import inception as inc_spec


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No Inception weights anywhere; a private statistics cache."""
    monkeypatch.delenv(inc_spec.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GAN_DIFFUSION_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits").images                              # (1797, 28, 28, 1) uint8


def test_auto_picks_the_offline_network_by_shape_and_inception_when_present(tmp_path, monkeypatch):
    assert not ex.inception_weights_present()
    assert ex.auto_extractor((28, 28, 1)).name == "lenet-mnist"
    assert ex.auto_extractor((32, 32, 3)).name == "cnn-cifar10"
    assert ex.auto_extractor((64, 64, 3)).name == "cnn-cifar10-resized32"   # other RGB sizes
    assert ex.auto_extractor((64, 64, 1)).name == "lenet-mnist-resized28"   # other grey sizes
    with pytest.raises(ConfigError) as err:
        ex.auto_extractor((64, 64, 2))                                      # no network
    for part in ("64x64x2", inc_spec.WEIGHTS_FILE, inc_spec.WEIGHTS_DIR_ENV, "extractor="):
        assert part in str(err.value)
    # an official-looking weight file in the hub cache switches "auto" to Inception
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / inc_spec.WEIGHTS_FILE).write_bytes(b"stand-in weights")
    assert ex.auto_extractor((28, 28, 1)).name == "lenet-mnist"          # wrong checksum: absent
    monkeypatch.setattr(inc_spec, "WEIGHTS_SHA256", inc_spec.sha256_file(hub / inc_spec.WEIGHTS_FILE))
    assert ex.auto_extractor((28, 28, 1)).name == "inception"
    assert ex.auto_extractor((64, 64, 3)).name == "inception"


def test_scores_are_named_after_the_extractor(digits):
    s = metrics.fid(digits[:600], digits[600:1200])
    assert s.name == "FID-LeNet(MNIST)" and "Inception" not in str(s)
    assert s.extractor == ex.EXTRACTORS["lenet-mnist"].expected_id
    assert s.extractor.startswith("lenet-mnist@") and str(s).startswith("FID-LeNet(MNIST)=")
    assert (s.n_real, s.n_fake) == (600, 600) and s.params["backend"] == "torch"
    assert s.params["dim"] == 128 and s.params["extractor_name"] == "lenet-mnist"
    assert ex.EXTRACTORS["inception"].score_name("fid") == "FID"
    assert ex.EXTRACTORS["cnn-cifar10"].score_name("kid") == "KID-CNN(CIFAR-10)"


def test_backends_give_the_same_scores(digits):
    a, b = digits[:500], digits[900:1400]
    torch_s = metrics.compute_metrics(a, b, kid=True, isc=True, kid_subset_size=200, kid_subsets=5)
    tf_s = metrics.compute_metrics(a, b, kid=True, isc=True, backend="tensorflow",
                                   kid_subset_size=200, kid_subsets=5)
    assert tf_s["fid"].params["backend"] == "tf" and torch_s["fid"].params["backend"] == "torch"
    for k in ("fid", "kid", "is"):
        assert tf_s[k].value == pytest.approx(torch_s[k].value, rel=1e-4, abs=1e-7), k
    assert torch_s["fid"].value > 0 and torch_s["is"].value > 1.5     # a real classifier's view


def test_inputs_arrays_folders_stats_and_dataset_names_give_one_answer(digits, tmp_path):
    a, b = digits[:400], digits[400:800]
    ref = metrics.fid(a, b)
    for name, imgs in (("a", a), ("b", b)):
        (tmp_path / name).mkdir()
        for i, img in enumerate(imgs):
            Image.fromarray(img[..., 0]).save(tmp_path / name / f"{i:04d}.png")
    assert metrics.fid(tmp_path / "a", str(tmp_path / "b")).value == pytest.approx(ref.value, rel=1e-9)
    f, _, ext_id, entry, _ = metrics.extract(a, "lenet-mnist")
    st = FeatureStats.from_features(f, ext_id, entry.preprocessing)
    st.save(tmp_path / "a.npz")
    assert metrics.fid(tmp_path / "a.npz", b).value == pytest.approx(ref.value, rel=1e-9)
    assert metrics.fid(st, tmp_path / "b").value == pytest.approx(ref.value, rel=1e-9)
    # the whole digits set by name, against its cached statistics
    full = metrics.fid("digits", b)
    assert full.n_real == 1797 and "digits" in full.params["real"].lower()
    assert full.value == pytest.approx(metrics.fid(digits, b).value, rel=1e-9)
    # statistics only: no backend is used at all
    both = metrics.fid(tmp_path / "a.npz", st)
    assert both.value == 0.0 and both.params["backend"] is None


def test_dataset_statistics_are_cached_and_recomputed_when_stale(tmp_path):
    st, path, cached = metrics.dataset_stats("digits", extractor="lenet-mnist")
    assert not cached and path == metrics.stats_cache_dir() / "digits-train-lenet-mnist.npz"
    assert path.parent == tmp_path / "cache" / "fid-stats"
    assert st.n == 1797 and st.extractor == ex.EXTRACTORS["lenet-mnist"].expected_id
    st2, _, cached = metrics.dataset_stats("digits")                  # auto -> lenet-mnist
    assert cached and np.array_equal(st2.mu, st.mu) and st2.source == st.source
    for field, value in (("extractor", "lenet-mnist@000000000000"), ("preprocessing", "other")):
        stale = FeatureStats(st.mu + 1.0, st.sigma, st.n, st.extractor, st.preprocessing)
        setattr(stale, field, value)
        stale.save(path)
        st3, _, cached = metrics.dataset_stats("digits")
        assert not cached and np.allclose(st3.mu, st.mu), field       # recomputed, overwritten
        assert FeatureStats.load(path).extractor == st.extractor
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable cached statistics"):
        assert not metrics.dataset_stats("digits")[2]
    out = tmp_path / "mine.npz"
    with pytest.warns(metrics.FewSamplesWarning, match="100 samples for 128 features"):
        assert metrics.dataset_stats("digits", limit=100, out=out)[0].n == 100 and out.is_file()


def test_kid_precision_recall_and_is(digits):
    a, b = digits[:600], digits[600:1200]
    k = metrics.kid(a, b, subset_size=300, n_subsets=10)
    assert k.name == "KID-LeNet(MNIST)" and abs(k.value) < 5 * k.std + 1e-3  # same distribution
    k_far = metrics.kid(a, 255 - b, subset_size=300, n_subsets=10)
    assert k_far.value > 100 * abs(k.value) and k_far.params["subset_size"] == 300
    p, r = metrics.prc(a, b)
    assert p.name == "precision-LeNet(MNIST)" and r.name == "recall-LeNet(MNIST)"
    assert 0.5 < p.value <= 1 and 0.5 < r.value <= 1
    s = metrics.isc(a, splits=5)
    assert s.name == "IS-LeNet(MNIST)" and s.n_real is None and 1.3 < s.value <= 10
    assert s.params["classes"] == 10
    same = metrics.isc(np.repeat(a[:1], 100, axis=0), splits=5)      # one image: IS = 1
    assert same.value == pytest.approx(1.0, abs=1e-6) and same.std < 1e-6


def test_clear_errors(digits, tmp_path):
    with pytest.raises(MetricInputError, match="neither an existing folder.*dataset name"):
        metrics.fid(tmp_path / "nowhere", digits[:10])
    with pytest.raises(MetricInputError, match="different image shapes"):
        metrics.fid(digits[:10], np.zeros((10, 32, 32, 3), np.uint8))
    with pytest.raises(ConfigError, match="28x28x1 images.*cnn-cifar10.*use extractor='lenet-mnist'"):
        metrics.fid(digits[:10], digits[10:20], extractor="cnn-cifar10")
    with pytest.raises(UnknownNameError, match="auto"):
        metrics.fid(digits[:10], digits[10:20], extractor="vgg")
    with pytest.raises(MetricInputError, match="NHWC"):
        metrics.fid(digits[:10, ..., 0], digits[10:20])
    with pytest.raises(MetricInputError, match="not a .npz"):
        (tmp_path / "x.txt").write_text("hi")
        metrics.fid(tmp_path / "x.txt", digits[:10])
    st = FeatureStats(np.zeros(3), np.eye(3), 10, "lenet-mnist@abc", "x")
    with pytest.raises(MetricInputError, match="need the images"):
        metrics.kid(st, digits[:20])
    with pytest.raises(MetricInputError, match="computed with lenet-mnist.*extractor is cnn-cifar10"):
        metrics.fid(st, np.zeros((10, 32, 32, 3), np.uint8), extractor="cnn-cifar10")
    with pytest.raises(MetricInputError, match="unknown extractor"):
        metrics.fid(FeatureStats(np.zeros(3), np.eye(3), 10, "vgg16", ""), digits[:20])
    with pytest.raises(DataError, match="MNIST"):
        metrics.fid("mnist:test", digits[:20], data_dir=tmp_path / "empty")


def test_inception_through_the_api(monkeypatch):
    """The Inception path of the API (any image size, unbiased logits over 1008 classes,
    plain "FID"/"IS" names), with seeded random weights standing in for the real file."""
    from gan_diffusion.torch_backend import inception as pti

    monkeypatch.setitem(ex._LOADED, ("inception", "torch"), pti.build("random", seed=0))
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    with pytest.warns(metrics.FewSamplesWarning):
        out = metrics.compute_metrics(a, b, extractor="inception", isc=True, isc_splits=2)
    assert out["fid"].name == "FID" and out["is"].name == "IS"
    assert out["fid"].extractor == f"{inc_spec.EXTRACTOR_ID}[random:seed=0]"
    assert out["fid"].params["dim"] == 2048 and out["is"].params["classes"] == 1008
    assert out["fid"].value > 0 and 1 <= out["is"].value
