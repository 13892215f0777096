"""Framework-free parts of the comparison harness: statistics, quality scoring, presets,
and the --native-rng mechanics (in process)."""
import math
import sys

import numpy as np
import pytest
from helpers import small_dcgan
from scipy import stats

from gan_diffusion.compare import quality
from gan_diffusion.compare.stats import mean_std, paired_interval, seed_spread, welch_interval
from gan_diffusion.errors import ConfigError, UnknownNameError


@pytest.mark.parametrize("a,b", [([10.0, 11.5], [8.0, 8.4]), ([1.0, 2.0, 4.0], [2.0, 3.0, 5.5]),
                                 ([5.0, 5.1, 5.3, 4.9, 5.2], [4.0, 6.0, 5.0])])
def test_welch_interval_matches_scipy(a, b):
    iv = welch_interval(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert iv.diff == pytest.approx(np.mean(a) - np.mean(b), rel=1e-12)
    assert (iv.low, iv.high) == pytest.approx((ref.low, ref.high), rel=1e-10)
    assert iv.excludes_zero == (ref.low > 0 or ref.high < 0)
    ref90 = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.90)
    assert (welch_interval(a, b, 0.90).low, welch_interval(a, b, 0.90).high) == \
        pytest.approx((ref90.low, ref90.high), rel=1e-10)


def test_paired_interval_matches_scipy():
    a, b = [10.0, 11.0, 12.5, 9.0], [9.0, 10.5, 11.0, 9.2]
    iv = paired_interval(a, b)
    ref = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (iv.low, iv.high) == pytest.approx((ref.low, ref.high), rel=1e-10) and iv.df == 3


def test_interval_edge_cases_and_two_seed_width():
    assert math.isnan(welch_interval([1.0], [2.0, 3.0]).low)       # one seed: no interval
    iv = welch_interval([2.0, 2.0], [1.0, 1.0])
    assert (iv.low, iv.high) == (1.0, 1.0) and iv.excludes_zero       # no spread at all
    m, s, n = mean_std([1.0, 2.0, 6.0])
    assert (m, n) == (3.0, 3) and s == pytest.approx(np.std([1, 2, 6], ddof=1))
    assert math.isnan(mean_std([4.0])[1])
    # the docs' claim: 2 seeds with equal spread -> df 2, half-width 4.30 * sqrt(2 s^2 / 2)
    iv = welch_interval([0.0, 2.0], [10.0, 12.0])
    assert iv.df == pytest.approx(2.0) and iv.high - iv.diff == pytest.approx(4.3027 * math.sqrt(2), rel=1e-4)
    assert seed_spread([0.0, 2.0], [0.0, 4.0]) == pytest.approx(np.std([0, 4], ddof=1))
    with pytest.raises(ValueError, match="non-finite"):
        welch_interval([1.0, float("nan")], [1.0, 2.0])


def _blobs(n, shift=0.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(100 + shift, 30, (n, 28, 28, 1))
    return np.clip(x, 0, 255).astype(np.uint8)


def test_standin_quality_scores_are_labelled_and_sensible():
    from gan_diffusion.data import load_dataset

    digits = load_dataset("digits").images                     # (1797, 28, 28, 1) uint8
    real, other = digits[:300], digits[300:600]
    noise = np.random.default_rng(0).integers(0, 256, other.shape, dtype=np.uint8)
    blurred = ((other.astype(np.int32) + np.roll(other, 3, axis=2)) // 2).astype(np.uint8)
    same, blur, bad = (quality.score_samples(x, real, extractor="pixels-pca64", kid_subsets=10)
                       for x in (other, blurred, noise))
    assert same["fid"]["extractor"] == "pixels-pca64" == bad["kid"]["extractor"]
    assert same["fid"]["n_real"] == 300 and same["fid"]["n_fake"] == 300
    assert same["fid"]["value"] < blur["fid"]["value"] < bad["fid"]["value"]
    assert bad["fid"]["value"] > 10 * same["fid"]["value"]
    assert same["kid"]["value"] < bad["kid"]["value"]
    with pytest.raises(ConfigError, match="uint8 NHWC"):
        quality.score_samples(real.astype(np.float32), real)
    with pytest.raises(ConfigError, match="differ in shape"):
        quality.score_samples(real[:, :14], real)
    with pytest.raises(ConfigError, match="more than 64 real images"):
        quality.score_samples(real[:50], real[:50], extractor="pixels-pca64")


@pytest.fixture
def no_inception(monkeypatch, tmp_path):
    """No FID Inception weights anywhere: "auto" must pick the shipped offline networks."""
    from gan_diffusion.models import inception as inc_spec

    monkeypatch.delenv(inc_spec.WEIGHTS_DIR_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def test_auto_extractor_resolves_to_the_shipped_network_for_the_shape(no_inception):

    assert quality.DEFAULT_EXTRACTOR == "auto"
    assert quality.resolve_extractor(None, (28, 28, 1)) == "lenet-mnist"
    assert quality.resolve_extractor("auto", (32, 32, 3)) == "cnn-cifar10"
    assert quality.resolve_extractor("pixels-pca64", (64, 64, 3)) == "pixels-pca64"
    with pytest.raises(ConfigError, match="no offline extractor for 64x64x3"):
        quality.resolve_extractor("auto", (64, 64, 3))
    with pytest.raises(ConfigError):            # LeNet takes 28x28x1 only
        quality.resolve_extractor("lenet-mnist", (32, 32, 3))
    with pytest.raises(UnknownNameError, match="lenet-mnist"):
        quality.resolve_extractor("inceptoin", (28, 28, 1))
    assert quality.score_label("lenet-mnist", "fid") == "FID-LeNet(MNIST)"
    assert quality.score_label("inception", "kid") == "KID"
    assert quality.score_label("pixels-pca64", "fid") == "FID [pixels-pca64]"
    assert "not comparable with Inception" in quality.extractor_note("lenet-mnist")
    assert "NOT Inception FID" in quality.extractor_note("pixels-pca64")


def test_real_extractor_scores_through_the_shared_metrics_api(no_inception):
    """The harness's default path: LeNet-MNIST features through gan_diffusion.metrics, the
    same code `gan-diffusion fid` runs (torch extracts; its TF twin agrees, test_classifiers)."""
    pytest.importorskip("torch")
    from gan_diffusion import metrics
    from gan_diffusion.data import load_dataset

    digits = load_dataset("digits").images                     # (1797, 28, 28, 1) uint8
    real, other = digits[:400], digits[400:800]
    noise = np.random.default_rng(0).integers(0, 256, other.shape, dtype=np.uint8)
    same, bad = (quality.score_samples(x, real, extractor="lenet-mnist", backend="torch",
                                       kid_subsets=10) for x in (other, noise))
    assert same["fid"]["name"] == "FID-LeNet(MNIST)" and same["kid"]["name"] == "KID-LeNet(MNIST)"
    assert same["fid"]["extractor"].startswith("lenet-mnist@")
    assert same["fid"]["n_real"] == 400 and same["kid"]["n_fake"] == 400
    assert same["fid"]["value"] < bad["fid"]["value"] / 10
    assert same["kid"]["value"] < bad["kid"]["value"]
    # the number is the shared API's own, not a re-implementation
    ref = metrics.fid(real, other, extractor="lenet-mnist", backend="torch", progress=False)
    assert same["fid"]["value"] == pytest.approx(ref.value, rel=1e-9)

def test_presets_and_overrides():
    from gan_diffusion.compare.presets import resolve

    quick = resolve("quick")
    assert (quick.dataset, quick.epochs, quick.seeds, quick.threads) == ("digits", 6, 2, 2)
    assert quick.models[:2] == ["dcgan", "wgan-gp"] and quick.backends == ["tf", "torch"]
    assert quick.models == ["dcgan", "wgan-gp", "vae", "ddpm"]
    assert quick.overrides["dcgan"] == {"g_features": 32, "d_features": 32, "batch_size": 32}
    assert quick.overrides["ddpm"]["sample_steps"] == 20
    paper = resolve("paper", models="dcgan", epochs=2, sets=["dcgan.g_features=16", "seed=3"])
    assert (paper.dataset, paper.epochs, paper.seeds, paper.n_eval) == ("mnist", 2, 3, 10000)
    assert paper.overrides == {"dcgan": {"g_features": 16, "seed": 3}}
    assert resolve(None, models="wgan-gp", backends="pytorch").backends == ["torch"]
    with pytest.raises(UnknownNameError, match="unknown model 'vae-x'"):
        resolve("quick", models="vae-x")
    with pytest.raises(ConfigError, match="--epochs must be >= 1"):
        resolve(None, models="dcgan", epochs=0)


@pytest.mark.parametrize("model", ["dcgan", "wgan-gp"])
def test_numpy_init_alone_gives_identical_weights(backends, model):
    """Controlled mode's shared init checkpoint is a safeguard: the models already draw their
    initial weights in NumPy, so both backends start bit-identical without it."""
    from gan_diffusion.checkpoint import weights_digest

    kw = small_dcgan((28, 28, 1)) if model == "dcgan" else {"image_shape": (28, 28, 1), "d_features": 8}
    digests = {name: weights_digest(be.build(model, **kw).get_weights()) for name, be in backends.items()}
    assert digests["tf"] == digests["torch"]


SMALL = {"dcgan": small_dcgan((28, 28, 1)),
         "wgan-gp": {"image_shape": (28, 28, 1), "d_features": 8},
         "vae": {"image_shape": (28, 28, 1)},
         "ddpm": {"image_shape": (28, 28, 1), "base_channels": 8, "channel_mults": (1, 2),
                  "norm_groups": 4}}
TRAINING_STREAM = {"dcgan": "latent", "wgan-gp": "interp", "vae": "reparam", "ddpm": "diffusion"}


@pytest.mark.parametrize("model", ["dcgan", "wgan-gp", "vae", "ddpm"])
def test_native_rng_draws_weights_and_noise_with_the_framework(backends, model):
    from gan_diffusion import noise
    from gan_diffusion.checkpoint import weights_digest
    from gan_diffusion.compare.native import apply_native_rng

    kw = SMALL[model]
    digests, drawn = {}, {}
    for name, be in backends.items():
        controlled = be.build(model, **kw)
        m = be.build(model, **kw)
        record = apply_native_rng(m, be)
        assert record["init"].startswith("tf.random" if name == "tf" else "torch.Generator")
        assert record["noise"].startswith("tf.random" if name == "tf" else "torch.Generator")
        assert TRAINING_STREAM[model] in record["native_streams"]
        assert "sample" not in record["native_streams"]
        w, w0 = m.get_weights(), controlled.get_weights()
        digests[name] = weights_digest(w)
        assert digests[name] != weights_digest(w0)
        kernel = next(k for k in w if k.endswith("kernel") and np.std(w0[k]) > 0)
        # same distribution as the NumPy init: the spread of a kernel matches within 10 %
        assert np.std(w[kernel]) == pytest.approx(np.std(w0[kernel]), rel=0.1)
        again = be.build(model, **kw)
        apply_native_rng(again, be)
        assert weights_digest(again.get_weights()) == digests[name]     # seeded: reproducible
        stream = TRAINING_STREAM[model]
        z = m.noise.normal(0, stream, 0, (4, 8))
        assert z.shape == (4, 8) and not np.allclose(z, noise.normal(0, stream, 0, (4, 8)))
        t = m.noise.integers(0, "timestep", 0, 1000, 64)
        assert t.dtype == np.int64 and t.min() >= 0 and t.max() < 1000
        assert not np.array_equal(t, noise.integers(0, "timestep", 0, 1000, 64))
        # evaluation noise stays the shared draws, so quality is measured on the same noise
        np.testing.assert_array_equal(m.noise.normal(0, "sample", 3, (2, 5)),
                                      noise.normal(0, "sample", 3, (2, 5)))
        drawn[name] = z
        m.train_step(np.zeros((8, 28, 28, 1), np.uint8))                  # trains with it
        assert controlled.noise is noise and again.noise is not m.noise    # one instance each
    assert digests["tf"] != digests["torch"]
    assert not np.allclose(drawn["tf"], drawn["torch"])


@pytest.mark.parametrize("model", ["dcgan", "wgan-gp", "vae", "ddpm"])
def test_native_rng_leaves_other_models_controlled(backends, model):
    """A native model in the process changes no other model's noise: models of the same
    classes built before and after it train exactly as in a process without it (module-wide
    patching of the noise would fail this)."""
    from gan_diffusion.compare.native import apply_native_rng
    from gan_diffusion.parity import max_abs_diff

    x = np.random.default_rng(0).integers(0, 256, (8, 28, 28, 1), dtype=np.uint8)

    def two_steps(m):
        return [m.train_step(x) for _ in range(2)], m.get_weights()

    for be in backends.values():
        before = be.build(model, **SMALL[model])
        reference = two_steps(be.build(model, **SMALL[model]))
        native = be.build(model, **SMALL[model])
        apply_native_rng(native, be)
        native.train_step(x)
        after = be.build(model, **SMALL[model])
        for m in (before, after):
            losses, weights = two_steps(m)
            assert losses == reference[0]
            assert max_abs_diff(weights, reference[1])[0] == 0.0


def test_compare_package_imports_no_framework():
    import subprocess

    code = ("import sys\n"
            "import gan_diffusion.cli, gan_diffusion.compare.runner, gan_diffusion.compare.worker\n"
            "import gan_diffusion.compare.plots, gan_diffusion.compare.report, gan_diffusion.compare.native\n"
            "import gan_diffusion.parity  # perturb_native dispatches to the backend\n"
            "print([m for m in ('tensorflow', 'torch', 'keras') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


class _StubModel:
    """Stands in for a VAE (evaluate -> neg_elbo) and a diffusion model (trajectory): models
    plug in through compare/models.py alone (the real ones run in tests/compare/test_compare.py)."""

    def __init__(self, shift):
        self.shift = shift

    def sample(self, n, seed=0, **kwargs):
        rng = np.random.default_rng(seed + self.shift)
        return rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)

    def trajectory(self, n, seed=0, frames=5, **kwargs):
        steps = (np.arange(n * frames) % frames * 60).astype(np.uint8)       # image-major
        return np.broadcast_to(steps[:, None, None, None], (n * frames, 28, 28, 1)).copy()

    def evaluate(self, data):
        assert len(data) == 80
        return {"neg_elbo": 100.0 + self.shift, "recon": 1.0}


def test_models_plug_in_through_the_per_model_table(tmp_path):
    import json

    from gan_diffusion.compare import plots, report, tables, worker
    from gan_diffusion.compare.models import traits
    from gan_diffusion.data import load_dataset

    out = tmp_path / "out"
    for model in ("vae", "ddpm"):
        for shift, be in enumerate(("tf", "torch")):
            for seed in (0, 1):
                run = tables.run_folder(out, model, be, seed)
                run.mkdir(parents=True)
                t = traits(model)
                spec = {"n_eval": 80, "sample_kwargs": {}, "trajectory": t.trajectory,
                        "evaluate": list(t.evaluate),
                        "eval_data": {"dataset": "digits", "split": "train"}}
                record = worker.evaluation_outputs(_StubModel(shift + seed), spec, run)
                (run / "run.json").write_text(json.dumps({"finished": True, "peak_rss_mb": 500.0 + shift,
                                                          **record}))
                losses = [{"loss": 1.0 / e, "neg_elbo": 120.0 - e - shift} for e in (1, 2)]
                (run / "history.json").write_text(json.dumps({"epochs": [
                    {"epoch": e, "seconds": 2.0 + e + shift, "steps": 3, "images": 96,
                     "images_per_sec": 96 / (2.0 + e + shift), "losses": losses[e - 1]} for e in (1, 2)]}))
                (run / "config.json").write_text(json.dumps({"threads": {"intra_op": 2},
                                                             "rng": {"mode": "controlled"}}))
    ref = tmp_path / "reference.npz"
    worker.save_images(ref, load_dataset("digits").images[:80])
    worker.score({"runs": [str(p) for p in out.glob("runs/*/*/seed*")], "reference": str(ref),
                  "extractor": "pixels-pca64"})
    results = tables.collect(out, ["vae", "ddpm"], ["tf", "torch"], 2)
    assert len(results) == 8
    tabs = {t.name: t for t in tables.build_tables(results, ["tf", "torch"], "pixels-pca64", True)}
    q = {(r["model"], r["backend"]): r for r in tabs["quality"].rows}
    assert q[("vae", "tf")]["eval_neg_elbo_mean"] == pytest.approx(100.5)      # seeds 0, 1
    assert q[("vae", "torch")]["neg_elbo_mean"] == pytest.approx(117.0)        # final epoch
    assert "eval_neg_elbo_mean" not in q[("ddpm", "tf")]                       # no evaluate
    assert "neg_elbo (eval split)" in tabs["quality"].markdown()
    effect = {(r["model"], r["metric"]): r for r in tabs["framework_effect"].rows}
    assert effect[("vae", "eval_neg_elbo")]["diff"] == pytest.approx(-1.0)
    assert effect[("vae", "steady_epoch_s")]["diff"] == pytest.approx(-1.0)
    figures = plots.make_figures(results, "pixels-pca64", tmp_path / "plots")
    names = {f.path.name for f in figures}
    assert {"ddpm_trajectory.png", "vae_samples.png", "quality.png"} <= names
    assert "vae_trajectory.png" not in names
    page = report.render(list(tabs.values()), figures, {"command": "test"}, ["note"])
    assert page.count("data:image/png;base64,") == len(figures)
