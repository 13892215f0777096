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
    assert quality.resolve_extractor("auto", (64, 64, 3)) == "cnn-cifar10-resized32"
    assert quality.resolve_extractor("auto", (32, 32, 1)) == "lenet-mnist-resized28"
    with pytest.raises(ConfigError, match="no offline extractor for 64x64x2"):
        quality.resolve_extractor("auto", (64, 64, 2))
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
    assert quick.overrides["ddpm"]["sample_steps"] == 10
    paper = resolve("paper", models="dcgan", epochs=2, sets=["dcgan.g_features=16", "seed=3"])
    assert (paper.dataset, paper.epochs, paper.seeds, paper.n_eval) == ("mnist", 2, 3, 10000)
    assert paper.overrides == {"dcgan": {"g_features": 16, "seed": 3}}
    assert resolve(None, models="wgan-gp", backends="pytorch").backends == ["torch"]
    with pytest.raises(UnknownNameError, match="unknown model 'vae-x'"):
        resolve("quick", models="vae-x")
    with pytest.raises(ConfigError, match="--epochs must be >= 1"):
        resolve(None, models="dcgan", epochs=0)


def test_quick_ddpm_is_the_measured_conditional_setting():
    """The quick preset's DDPM (the measured setting of compare/models.py, docs/compare.md) is
    a valid 28x28 config: class-conditional with guidance 2, cosine schedule, 10 trailing DDIM
    steps with eta 1, a three-level U-Net with attention at 7x7 only; --set still overrides
    it and the paper preset keeps the model's defaults."""
    from gan_diffusion.compare.presets import resolve
    from gan_diffusion.registry import make_config

    cfg = make_config("ddpm", image_shape=(28, 28, 1), **resolve("quick").overrides["ddpm"])
    assert (cfg.num_classes, cfg.guidance) == (10, 2.0)
    assert (cfg.schedule, cfg.timestep_spacing, cfg.sampler, cfg.sample_steps, cfg.eta) == \
        ("cosine", "trailing", "ddim", 10, 1.0)
    assert (cfg.base_channels, cfg.channel_mults, cfg.attention_resolutions) == (16, (1, 2, 2), (7,))
    assert (cfg.batch_size, cfg.learning_rate) == (16, 2e-3)
    assert resolve("quick", sets=["ddpm.eta=0"]).overrides["ddpm"]["eta"] == 0
    assert resolve("paper").overrides["ddpm"] == {}


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

    config = None            # no num_classes: unconditional (worker.evaluation_outputs reads it)

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


# -- model against model: the ratio interval, the model-effect table and its figures ---------
def test_ratio_interval_formula_edges_and_reciprocal():
    from gan_diffusion.compare.stats import ratio_interval

    a, b = [30.0, 32.0, 35.0], [20.0, 21.5, 19.0, 22.0]
    iv = ratio_interval(a, b)
    ma, mb = np.mean(a), np.mean(b)
    va, vb = np.var(a, ddof=1) / (3 * ma ** 2), np.var(b, ddof=1) / (4 * mb ** 2)
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert iv.ratio == pytest.approx(ma / mb, rel=1e-12) and iv.df == pytest.approx(df, rel=1e-12)
    assert (iv.low, iv.high) == pytest.approx((ma / mb * math.exp(-half), ma / mb * math.exp(half)),
                                              rel=1e-12)
    assert iv.excludes_one and iv.low < iv.ratio < iv.high and iv.note == ""
    back = ratio_interval(b, a)                       # swapping: exactly the reciprocal interval
    assert (back.low, back.high) == pytest.approx((1 / iv.high, 1 / iv.low), rel=1e-12)
    assert ratio_interval(a, b, 0.90).high < iv.high
    one = ratio_interval([5.0], [2.0, 3.0])
    assert one.ratio == 2.0 and math.isnan(one.low) and "fewer than 2" in one.note
    assert "opposite signs" in ratio_interval([-1.0, -2.0], [1.0, 2.0]).note
    zero = ratio_interval([1.0, 2.0], [-1.0, 1.0])
    assert math.isnan(zero.ratio) and math.isnan(zero.high) and "mean is 0" in zero.note
    flat = ratio_interval([4.0, 4.0], [2.0, 2.0])
    assert (flat.low, flat.ratio, flat.high) == (2.0, 2.0, 2.0)
    neg = ratio_interval([-4.0, -6.0], [-1.0, -1.5])   # same sign: the ratio of magnitudes
    assert neg.ratio == pytest.approx(4.0) and 0 < neg.low < 4.0 < neg.high
    with pytest.raises(ValueError, match="non-finite"):
        ratio_interval([1.0, math.inf], [1.0, 2.0])


@pytest.mark.parametrize("n_a, n_b, sd_a, sd_b", [(5, 4, 5.0, 2.0), (30, 30, 5.0, 4.0)])
def test_ratio_interval_covers_the_true_ratio(n_a, n_b, sd_a, sd_b):
    """Monte Carlo: normal seeds around means 50 and 40 (coefficients of variation 4 - 10 %,
    like FID over seeds); the 95% interval covers 50 / 40 in 93 - 97 % of 1,500 draws (a
    normal quantile instead of t, or a missing 1/n, falls outside that band)."""
    from gan_diffusion.compare.stats import ratio_interval

    rng = np.random.default_rng(1)
    hits = [iv.low <= 1.25 <= iv.high for iv in (
        ratio_interval(rng.normal(50.0, sd_a, n_a), rng.normal(40.0, sd_b, n_b)) for _ in range(1500))]
    assert 0.93 <= np.mean(hits) <= 0.97


def _fake_run(tmp_path, model, backend, seed, fid=None, kid=None, secs=(), losses=None):
    """A RunResult as tables.read_run would build it, with no training behind it."""
    from gan_diffusion.compare.tables import RunResult

    quality = {}
    for key, value in (("fid", fid), ("kid", kid)):
        if value is not None:
            quality[key] = {"value": value, "name": key.upper(), "n_fake": 100, "n_real": 100}
    epochs = [{"epoch": i + 1, "seconds": s, "images_per_sec": 96 / s, "steps": 3, "images": 96,
               "losses": dict(losses or {"loss": 1.0})} for i, s in enumerate(secs)]
    return RunResult(model, backend, seed, tmp_path / model / backend / f"seed{seed}",
                     {"threads": {"intra_op": 2}, "rng": {"mode": "controlled"}},
                     {"finished": True, "peak_rss_mb": 500.0, "sample": {"images_per_sec": 50.0}},
                     epochs, quality or None)


# dcgan and vae in tf and torch (3 seeds), sd-img2img evaluation-only in torch (2 seeds, FID only)
FID = {("dcgan", "tf"): [30.0, 32.0, 34.0], ("dcgan", "torch"): [31.0, 33.0, 35.5],
       ("vae", "tf"): [50.0, 55.0, 53.0], ("vae", "torch"): [51.0, 54.0, 52.0],
       ("sd-img2img", "torch"): [80.0, 90.0]}
KID = {("dcgan", "tf"): [0.01, 0.02, 0.015], ("dcgan", "torch"): [0.011, 0.021, 0.016],
       ("vae", "tf"): [-0.003, -0.001, 0.001], ("vae", "torch"): [0.002, 0.003, 0.001]}


def _study(tmp_path):
    runs = []
    for (model, be), fids in FID.items():
        for k, fid in enumerate(fids):
            if model == "dcgan":      # steady state: median of epochs 2..N = 5 + k (tf), 3.25 + k / 2
                secs = [10.0, 4 + k, 5 + k, 6 + k] if be == "tf" else [12.0, 3 + k / 2, 3.5 + k / 2]
            elif model == "vae":      # 2.2 + k / 10 in both backends
                secs = [3.0, 2.0 + k / 10, 2.2 + k / 10, 2.4 + k / 10]
            else:
                secs = []             # evaluation-only: no epochs
            losses = {"loss": 1.0, "neg_elbo": 100.0 + k} if model == "vae" else None
            runs.append(_fake_run(tmp_path, model, be, k, fid, KID.get((model, be), [None] * 3)[k],
                                  secs, losses))
    return runs


def test_model_effect_table_numbers_and_skipped_metrics(tmp_path):
    from gan_diffusion.compare import tables

    results = _study(tmp_path)
    t = tables.model_effect_table(results, "lenet-mnist")
    rows = {(r["model_a"], r["model_b"], r["backend"], r["key"]): r for r in t.rows}
    # every pair once, A listed before B; metrics both models have; pooled only for dcgan-vae
    assert {k[:2] for k in rows} == {("dcgan", "vae"), ("dcgan", "sd-img2img"), ("vae", "sd-img2img")}
    assert {k[2:] for k in rows if k[:2] == ("dcgan", "vae")} == {
        (be, key) for be in ("tf", "torch", "pooled") for key in ("fid", "kid", "steady_epoch_s")}
    assert {k[2:] for k in rows if k[1] == "sd-img2img"} == {("torch", "fid")}   # no time, KID, pooling
    assert not any(k[3] == "neg_elbo" for k in rows)          # the VAE's alone: no row, not 0
    # FID, tf: means, Welch's difference interval, the log-delta ratio interval
    r = rows[("dcgan", "vae", "tf", "fid")]
    a, b = FID[("dcgan", "tf")], FID[("vae", "tf")]
    assert r["metric"] == "FID-LeNet(MNIST)" and (r["n_a"], r["n_b"]) == (3, 3)
    assert (r["mean_a"], r["mean_b"]) == pytest.approx((32.0, 52.666666666666664), rel=1e-12)
    ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert r["difference"] == pytest.approx(32.0 - 158 / 3, rel=1e-12)
    assert (r["diff_ci_low"], r["diff_ci_high"]) == pytest.approx((ref.low, ref.high), rel=1e-10)
    cv2 = np.var(a, ddof=1) / (3 * 32.0 ** 2) + np.var(b, ddof=1) / (3 * (158 / 3) ** 2)
    assert r["ratio"] == pytest.approx(32.0 / (158 / 3), rel=1e-12)
    assert r["ratio_ci_low"] < r["ratio"] < r["ratio_ci_high"]
    assert math.log(r["ratio_ci_high"] / r["ratio"]) == pytest.approx(
        stats.t.ppf(0.975, r["ratio_df"]) * math.sqrt(cv2), rel=1e-10)
    # pooled: the per-seed mean over tf and torch, n = 3 seeds (not 6 runs)
    p = rows[("dcgan", "vae", "pooled", "fid")]
    pa = (np.array(FID[("dcgan", "tf")]) + FID[("dcgan", "torch")]) / 2
    pb = (np.array(FID[("vae", "tf")]) + FID[("vae", "torch")]) / 2
    ref = stats.ttest_ind(pa, pb, equal_var=False).confidence_interval(0.95)
    assert (p["n_a"], p["n_b"], p["pooled_over"]) == (3, 3, "tf,torch")
    assert (p["diff_ci_low"], p["diff_ci_high"]) == pytest.approx((ref.low, ref.high), rel=1e-10)
    # steady time per epoch: the medians of epochs 2..N by hand
    s = rows[("dcgan", "vae", "tf", "steady_epoch_s")]
    assert (s["mean_a"], s["mean_b"]) == pytest.approx((6.0, 2.3), rel=1e-12)
    assert s["difference"] == pytest.approx(3.7) and s["ratio"] == pytest.approx(6.0 / 2.3)
    assert rows[("dcgan", "vae", "torch", "steady_epoch_s")]["mean_a"] == pytest.approx(3.75)
    # KID of opposite-signed means: a difference interval, no ratio interval, and the reason
    k = rows[("dcgan", "vae", "tf", "kid")]
    assert not math.isnan(k["diff_ci_low"]) and math.isnan(k["ratio_ci_low"])
    assert "opposite signs" in k["note"]
    sd = rows[("dcgan", "sd-img2img", "torch", "fid")]
    assert (sd["n_a"], sd["n_b"], sd["mean_b"]) == (3, 2, 85.0)
    md = t.markdown()
    assert "| dcgan | vae | pooled (tf, torch) | FID-LeNet(MNIST) | 32.58 | 52.5 | -19.92 |" in md
    assert "| Steady time per epoch (s) | 6 | 2.3 | 3.7 |" in md and "log ratio" in t.note
    both = tables.model_effect_table(results, "lenet-mnist", both_orders=True).rows
    rev = next(r for r in both if (r["model_a"], r["model_b"], r["backend"], r["key"]) ==
               ("vae", "dcgan", "tf", "fid"))
    assert rev["difference"] == pytest.approx(-r["difference"])
    assert rev["ratio_ci_low"] == pytest.approx(1 / r["ratio_ci_high"], rel=1e-12)


def test_model_effect_only_with_two_models_and_one_seed_has_no_interval(tmp_path):
    from gan_diffusion.compare import report, tables

    results = _study(tmp_path)
    tabs = tables.build_tables(results, ["tf", "torch"], "lenet-mnist", paired=True)
    names = [t.name for t in tabs]
    assert names.index("model_effect") == names.index("framework_effect") + 1
    timing = {(r["model"], r["backend"]) for r in tabs[names.index("timing")].rows}
    assert ("sd-img2img", "torch") not in timing and ("dcgan", "tf") in timing   # no epochs: no row
    paths = tables.write_tables(tabs, tmp_path / "tables")
    assert tmp_path / "tables" / "model_effect.csv" in paths
    assert "### Model effect (A against B)" in (tmp_path / "tables" / "tables.md").read_text()
    import csv
    with open(tmp_path / "tables" / "model_effect.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["model_b"] == "sd-img2img")
    assert float(row["difference"]) == pytest.approx(np.mean(FID[("dcgan", "torch")]) - 85.0)
    assert float(row["ratio"]) == pytest.approx(np.mean(FID[("dcgan", "torch")]) / 85.0)
    page = report.render(tabs, [], {"command": "test"}, [])
    assert page.index("Model effect (A against B)") > page.index("Framework effect (tf − torch)")
    single = [r for r in results if r.model == "dcgan"]
    assert "model_effect" not in [t.name for t in tables.build_tables(single, ["tf", "torch"],
                                                                       "lenet-mnist", paired=True)]
    assert tables.model_effect_table(single, "lenet-mnist").rows == []
    one = [_fake_run(tmp_path, "dcgan", "torch", 0, fid=30.0), _fake_run(tmp_path, "vae", "torch", 0, fid=50.0)]
    (r,) = tables.model_effect_table(one, "lenet-mnist").rows
    assert r["difference"] == -20.0 and r["ratio"] == 0.6 and math.isnan(r["diff_ci_low"])
    assert "fewer than 2 seeds" in r["note"]
    assert "| dcgan | vae | torch | FID-LeNet(MNIST) | 30 | 50 | -20 | n/a | 0.6 | n/a | 1 / 1 |" \
        in tables.model_effect_table(one, "lenet-mnist").markdown()


def test_quality_and_model_effect_figures(tmp_path):
    from gan_diffusion.compare import plots

    results = _study(tmp_path)
    figs = plots.make_figures(results, "lenet-mnist", tmp_path / "plots")
    names = [f.path.name for f in figs]
    assert names[:2] == ["quality.png", "model_effect.png"]
    assert "sd-img2img_losses.png" not in names and "dcgan_losses.png" in names
    for f in figs:
        assert f.path.stat().st_size > 3000, f.path
    single = [r for r in results if r.model == "vae"]
    assert plots.model_effect_bars(single, "lenet-mnist", tmp_path / "one") == []
    (q,) = plots.quality_bars(single, "lenet-mnist", tmp_path / "one")     # FID, KID, neg_elbo panels
    assert q.path.stat().st_size > 3000 and "standard deviation" in q.caption


# -- latent against pixel diffusion: DDIM-50 timing, the autoencoder stage, PSNR / SSIM --------
class _CountingModel:
    """Records the sample() calls the worker makes; class-conditional with 10 classes."""

    class config:
        num_classes = 10

    def __init__(self):
        self.calls = []

    def sample(self, n, seed=0, **kwargs):
        self.calls.append((n, kwargs.get("steps"), kwargs.get("sampler"),
                           None if kwargs.get("labels") is None else list(kwargs["labels"])))
        return np.zeros((n, 8, 8, 1), np.uint8)


def test_worker_times_ddim50_after_a_warm_up_and_reads_the_first_stage(tmp_path):
    import json

    from gan_diffusion.compare import worker
    from gan_diffusion.compare.models import DDIM50, TIMED_IMAGES, traits

    assert traits("ddpm").timed_sample_kwargs == traits("ldm").timed_sample_kwargs == DDIM50
    assert traits("dcgan").timed_sample_kwargs is None and "psnr" in traits("ldm").evaluate
    m = _CountingModel()
    spec = {"n_eval": 20, "sample_kwargs": {"steps": 10}, "timed_sample_kwargs": DDIM50}
    (tmp_path / "autoencoder").mkdir()
    (tmp_path / "autoencoder" / "history.json").write_text(json.dumps({"epochs": [
        {"epoch": e, "seconds": s} for e, s in ((1, 9.0), (2, 4.0), (3, 5.0))]}))
    rec = worker.evaluation_outputs(m, spec, tmp_path)
    # warm-ups at two batch sizes, the timed evaluation call, the DDIM-50 warm-up (1 step) and call
    assert [c[:3] for c in m.calls] == [(8, 10, None), (9, 10, None), (20, 10, None),
                                        (TIMED_IMAGES, 1, "ddim"), (TIMED_IMAGES, 50, "ddim")]
    assert m.calls[-1][3] == [i % 10 for i in range(TIMED_IMAGES)]     # every class, in turn
    t = rec["timed_sample"]
    assert t["n"] == TIMED_IMAGES and t["kwargs"] == DDIM50
    assert t["ms_per_image"] == pytest.approx(1000 * t["seconds"] / TIMED_IMAGES)
    assert rec["stages"] == {"autoencoder": {"epochs": 3, "seconds": 18.0, "steady_epoch_s": 4.5}}
    plain = worker.evaluation_outputs(_CountingModel(), {"n_eval": 20, "sample_kwargs": {}},
                                      tmp_path / "x")
    assert "timed_sample" not in plain and "stages" not in plain      # one-stage, no second sampler


def test_ldm_against_ddpm_columns_from_run_records(tmp_path):
    from gan_diffusion.compare import tables

    results = []
    for model, ms, ae_s in (("ddpm", (40.0, 44.0), None), ("ldm", (10.0, 12.0), (30.0, 34.0))):
        for be in ("tf", "torch"):
            for k in (0, 1):
                r = _fake_run(tmp_path, model, be, k, fid=20.0 + k + (model == "ldm"),
                              secs=[5.0, 3.0 + k, 3.0 + k])
                r.run["timed_sample"] = {"n": 32, "ms_per_image": ms[k] + (be == "torch")}
                if ae_s:
                    r.run["stages"] = {"autoencoder": {"epochs": 2, "seconds": ae_s[k]}}
                    r.run["evaluate"] = {"psnr": 18.0 + k, "ssim": 0.6}
                results.append(r)
    tabs = {t.name: t for t in tables.build_tables(results, ["tf", "torch"], "lenet-mnist", True)}
    s = {(r["model"], r["backend"]): r for r in tabs["sampling"].rows}
    assert s[("ldm", "torch")]["ddim50_ms_per_image_mean"] == pytest.approx(12.0)
    assert s[("ddpm", "tf")]["ddim50_ms_per_image_mean"] == pytest.approx(42.0)
    assert "DDIM-50 ms / image" in tabs["sampling"].markdown() and "decoding" in tabs["sampling"].note
    tm = {(r["model"], r["backend"]): r for r in tabs["timing"].rows}
    assert tm[("ldm", "tf")]["autoencoder_s_mean"] == pytest.approx(32.0)
    assert math.isnan(tm[("ddpm", "tf")]["autoencoder_s_mean"])
    assert "Autoencoder stage (s)" in tabs["timing"].markdown()
    q = tabs["quality"].markdown()
    assert "Autoencoder PSNR (dB, eval split)" in q and "Autoencoder SSIM (eval split)" in q
    effect = {(r["model"], r["metric"]): r for r in tabs["framework_effect"].rows}
    assert effect[("ldm", "ddim50_ms_per_image")]["diff"] == pytest.approx(-1.0)   # paired by seed
    assert effect[("ldm", "eval_psnr")]["diff"] == pytest.approx(0.0)
    rows = {(r["backend"], r["key"]): r for r in tables.model_effect_table(results, "lenet-mnist").rows}
    d = rows[("tf", "ddim50_ms_per_image")]
    assert (d["mean_a"], d["mean_b"], d["ratio"]) == pytest.approx((42.0, 11.0, 42.0 / 11.0))
    assert rows[("pooled", "fid")]["difference"] == pytest.approx(-1.0)
    # without two-stage or DDIM-50 runs the columns stay out
    plain = [r for r in results if r.model == "ddpm"]
    for r in plain:
        del r.run["timed_sample"]
    tabs = {t.name: t for t in tables.build_tables(plain, ["tf", "torch"], "lenet-mnist", True)}
    assert "DDIM-50" not in tabs["sampling"].markdown() and "Autoencoder" not in tabs["timing"].markdown()


def test_timing_table_epochs_under_a_budget(tmp_path):
    """Under --budget-minutes seeds may reach different epoch counts: the Epochs column gives
    the range, and a group whose seeds agree keeps the plain count."""
    from gan_diffusion.compare import tables

    runs = [_fake_run(tmp_path, "stylegan2", "torch", 0, 90.0, None, [30.0, 31.0]),
            _fake_run(tmp_path, "stylegan2", "torch", 1, 92.0, None, [30.0, 29.0, 31.0]),
            _fake_run(tmp_path, "dcgan", "torch", 0, 50.0, None, [3.0, 2.0, 2.0]),
            _fake_run(tmp_path, "dcgan", "torch", 1, 51.0, None, [3.0, 2.0, 2.0])]
    rows = {r["model"]: r for r in tables.timing_table(runs).rows}
    assert rows["stylegan2"]["epochs"] == "2-3" and rows["dcgan"]["epochs"] == 3
    assert rows["stylegan2"]["train_s_mean"] == pytest.approx((61.0 + 90.0) / 2)


def test_quick_ldm_is_the_measured_conditional_setting():
    """The quick preset's ldm (compare/models.py, docs/ldm.md) is a valid 28x28 config on SD's
    scaled_linear schedule (not DDPM's cosine one, which drew noise unclipped), conditional
    with guidance 3; it is not in the default model list."""
    from gan_diffusion.compare.presets import PRESET_MODELS, resolve
    from gan_diffusion.registry import make_config

    opts = resolve("quick", models="ddpm,ldm")
    cfg = make_config("ldm", image_shape=(28, 28, 1), **opts.overrides["ldm"])
    assert (cfg.num_classes, cfg.guidance, cfg.ae_epochs) == (10, 3.0, 2)
    assert (cfg.batch_size, cfg.learning_rate, cfg.sample_steps) == (16, 1e-3, 20)
    assert (cfg.schedule, cfg.clip_sample, cfg.latent_shape) == ("scaled_linear", False, (7, 7, 4))
    assert "ldm" not in PRESET_MODELS and "ldm" not in resolve("quick").models


def test_busy_epochs_are_counted_and_marked(tmp_path):
    """Epochs during which other processes used QUIET_CORES or more are counted per (model,
    backend) in the timing table and starred in the epoch table; unmeasured ones (histories
    written before the load was recorded) are said to be unmeasured, not quiet."""
    from gan_diffusion.compare import tables

    runs = [_fake_run(tmp_path, "dcgan", "torch", k, secs=(2.0, 1.0, 1.0)) for k in range(2)]
    runs[0].epochs[1]["other_cores"] = 1.3          # seed 0, epoch 2: a busy machine
    for r in runs:
        for e in r.epochs:
            e.setdefault("other_cores", 0.02)
    old = [_fake_run(tmp_path, "vae", "torch", 0, secs=(2.0, 1.0))]
    timing = {r["model"]: r for r in tables.timing_table(runs + old).rows}
    assert timing["dcgan"]["busy_epochs"] == "1 of 6"
    assert timing["vae"]["busy_epochs"] == "not measured"
    md = tables.epoch_table(runs + old).markdown()
    lines = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert "*" in lines["2"].split("|")[2] and "*" not in lines["1"] and "*" not in lines["3"]
    assert "*" not in lines["2"].split("|")[3]                  # the vae column is not marked


def test_omp_wait_policy_reaches_workers_and_is_checked(monkeypatch):
    from gan_diffusion.compare.presets import resolve
    from gan_diffusion.compare.runner import child_env
    from gan_diffusion.errors import ConfigError

    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")             # inherited: replaced or removed
    assert child_env(2, "passive")["OMP_WAIT_POLICY"] == "PASSIVE"
    assert "OMP_WAIT_POLICY" not in child_env(2)
    opts = resolve("quick", models="dcgan")
    assert opts.omp_wait == "default" and opts.run_key("dcgan")["omp_wait"] == "default"
    assert resolve("quick", models="dcgan", omp_wait="passive").run_key("dcgan")["omp_wait"] == "passive"
    with pytest.raises(ConfigError, match="--omp-wait 'spin' is not a policy; use one of passive, default"):
        resolve("quick", models="dcgan", omp_wait="spin")
