"""Framework-free metric statistics: Frechet distance, KID, IS, precision/recall, PSNR/SSIM.

References: the pytorch-fid sqrtm formula (reproduced in frechet_distance_sqrtm_reference),
closed forms, brute-force loops, and tf.image.psnr / tf.image.ssim (TF imported in tests only).
"""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from gan_diffusion import metrics
from gan_diffusion.metrics import (FeatureStats, FewSamplesWarning, MetricInputError, Score,
                                   feature_statistics, frechet_distance,
                                   frechet_distance_sqrtm_reference)


def random_features(rng, n, d, shift=0.0):
    """(n, d) correlated Gaussian features."""
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mix + shift


def exact_fd_from_features(a, b):
    """FD of the Gaussians fitted to a and b with tr(sqrt(S1 S2)) = nuclear norm of X Y^T,
    X, Y the centred, (n-1)^-1/2-scaled features: exact also when n < d."""
    x = (a - a.mean(0)) / np.sqrt(len(a) - 1)
    y = (b - b.mean(0)) / np.sqrt(len(b) - 1)
    diff = a.mean(0) - b.mean(0)
    nuclear = np.linalg.svd(x @ y.T, compute_uv=False).sum()
    return diff @ diff + (x * x).sum() + (y * y).sum() - 2 * nuclear


# ---------------------------------------------------------------- Frechet distance

def test_import_loads_no_framework():
    code = ("import sys, gan_diffusion.metrics;"
            "bad = [m for m in ('tensorflow', 'torch', 'keras', 'sklearn') if m in sys.modules];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fd_matches_sqrtm_reference_spd(seed):
    rng = np.random.default_rng(seed)
    d = 64
    a, b = rng.normal(size=(2, d, d))
    s1, s2 = a @ a.T / d + 0.1 * np.eye(d), b @ b.T / d + 0.1 * np.eye(d)   # SPD
    mu1, mu2 = rng.normal(size=(2, d))
    ours = frechet_distance(mu1, s1, mu2, s2)
    ref = frechet_distance_sqrtm_reference(mu1, s1, mu2, s2)
    assert ours == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("n", [20, 40, 63])
def test_fd_low_rank_matches_reference_and_exact(n):
    rng = np.random.default_rng(n)
    d = 64
    a, b = random_features(rng, n, d), random_features(rng, n, d, shift=0.3) * 1.5
    with pytest.warns(FewSamplesWarning, match="singular"):
        mu1, s1 = feature_statistics(a)
    with pytest.warns(FewSamplesWarning):
        mu2, s2 = feature_statistics(b)
    ours = frechet_distance(mu1, s1, mu2, s2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the reference may retry with eps*I
        ref = frechet_distance_sqrtm_reference(mu1, s1, mu2, s2)
    assert ours == pytest.approx(ref, rel=1e-6)
    assert ours == pytest.approx(exact_fd_from_features(a, b), rel=1e-10)


def test_fd_full_rank_matches_exact():
    rng = np.random.default_rng(3)
    a, b = random_features(rng, 500, 64), random_features(rng, 300, 64, shift=0.1)
    ours = metrics.fid_from_features(a, b).value
    assert ours == pytest.approx(exact_fd_from_features(a, b), rel=1e-10)


@pytest.mark.parametrize("n", [10, 200])   # singular and full-rank covariances
def test_fd_identical_stats_zero_never_negative(n):
    rng = np.random.default_rng(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        for _ in range(5):
            mu, s = feature_statistics(random_features(rng, n, 32) * 100)
            fd = frechet_distance(mu, s, mu, s)
            assert 0.0 <= fd <= 1e-9 * np.trace(s)


def test_fd_returns_python_float():
    rng = np.random.default_rng(0)
    mu1, s1 = feature_statistics(random_features(rng, 100, 8))
    mu2, s2 = feature_statistics(random_features(rng, 100, 8, shift=1.0))
    fd = frechet_distance(mu1, s1, mu2, s2)
    assert type(fd) is float and np.isfinite(fd) and fd > 0


def test_fd_diagonal_closed_form():
    rng = np.random.default_rng(0)
    d = 16
    v1, v2 = rng.uniform(0.1, 5.0, size=(2, d))
    mu1, mu2 = rng.normal(size=(2, d))
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected,
                                                                                 rel=1e-12)
    assert frechet_distance(np.zeros(1), [[1.0]], np.ones(1), [[4.0]]) == pytest.approx(2.0)


def test_few_samples_warning_only_when_n_not_above_d():
    rng = np.random.default_rng(0)
    with pytest.warns(FewSamplesWarning, match="10 samples for 16 features"):
        FeatureStats.from_features(rng.normal(size=(10, 16)))
    with pytest.warns(FewSamplesWarning):
        metrics.fid_from_features(rng.normal(size=(10, 16)), rng.normal(size=(50, 16)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        feature_statistics(rng.normal(size=(17, 16)))


def test_fd_input_errors():
    rng = np.random.default_rng(0)
    mu, s = np.zeros(4), np.eye(4)
    with pytest.raises(MetricInputError, match="different dimension"):
        frechet_distance(mu, s, np.zeros(5), np.eye(5))
    with pytest.raises(MetricInputError, match=r"must be \(4, 4\)"):
        frechet_distance(mu, np.eye(3), mu, s)
    with pytest.raises(MetricInputError, match="not symmetric"):
        frechet_distance(mu, s + np.triu(np.ones((4, 4)), 1), mu, s)
    with pytest.raises(MetricInputError, match="not positive semi-definite"):
        frechet_distance(mu, -s, mu, s)
    with pytest.raises(MetricInputError, match="2-D array"):
        feature_statistics(rng.normal(size=(10, 2, 2)))
    bad = rng.normal(size=(10, 3))
    bad[4, 1] = np.nan
    with pytest.raises(MetricInputError, match="NaN or inf in 1 of 10 rows"):
        feature_statistics(bad)
    with pytest.raises(MetricInputError, match="same feature extractor"):
        metrics.fid_from_features(rng.normal(size=(10, 3)), rng.normal(size=(10, 4)))


def test_feature_stats_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    st = FeatureStats.from_features(random_features(rng, 100, 8), extractor="inception-v3-pool3",
                                    preprocessing="resize299-bilinear")
    path = tmp_path / "real_stats.npz"
    st.save(path)
    assert os.listdir(tmp_path) == ["real_stats.npz"]        # no temporary file left behind
    back = FeatureStats.load(path)
    assert np.array_equal(back.mu, st.mu) and np.array_equal(back.sigma, st.sigma)
    assert back.mu.dtype == back.sigma.dtype == np.float64
    assert (back.n, back.extractor, back.preprocessing) == (100, "inception-v3-pool3",
                                                            "resize299-bilinear")
    with np.load(path, allow_pickle=False) as z:              # no pickled objects inside
        assert all(z[k].dtype != object for k in z.files)
    np.savez(tmp_path / "other.npz", mu=st.mu)
    with pytest.raises(MetricInputError, match="not a FeatureStats file"):
        FeatureStats.load(tmp_path / "other.npz")


def test_fid_scores_carry_counts_and_extractor():
    rng = np.random.default_rng(0)
    real, fake = random_features(rng, 80, 8), random_features(rng, 60, 8, shift=1.0)
    score = metrics.fid_from_features(real, fake, extractor="toy")
    assert isinstance(score, Score)
    assert (score.name, score.n_real, score.n_fake, score.extractor) == ("fid", 80, 60, "toy")
    assert score.value == pytest.approx(exact_fd_from_features(real, fake), rel=1e-10)
    assert "n_real=80" in str(score) and score.to_dict()["params"]["dim"] == 8
    other = FeatureStats.from_features(fake, extractor="other")
    with pytest.raises(MetricInputError, match="extractor"):
        metrics.fid_from_stats(FeatureStats.from_features(real, extractor="toy"), other)


# ---------------------------------------------------------------- KID

def brute_force_mmd2(x, y):
    k = lambda a, b: (a @ b / len(a) + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def test_mmd2_matches_brute_force():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(7, 3)) + 0.5
    assert metrics.mmd2_unbiased(x, y) == pytest.approx(brute_force_mmd2(x, y), rel=1e-12)


def test_kid_same_vs_shifted_distribution():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(600, 16)), rng.normal(size=(600, 16))
    same_mean, same_std = metrics.kernel_inception_distance(a, b, n_subsets=20,
                                                            subset_size=200)
    shifted_mean, _ = metrics.kernel_inception_distance(a, b + 0.5, n_subsets=20,
                                                        subset_size=200)
    assert abs(same_mean) < 0.02 and same_std > 0
    assert shifted_mean > 0.5 and shifted_mean > 20 * abs(same_mean)


def test_kid_seeded_and_subset_clipped():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(40, 4)) + 1.0
    first = metrics.kernel_inception_distance(a, b, n_subsets=5, subset_size=30, seed=3)
    assert first == metrics.kernel_inception_distance(a, b, n_subsets=5, subset_size=30, seed=3)
    with pytest.warns(FewSamplesWarning, match="using subsets of 40"):
        score = metrics.kid_from_features(a, b, extractor="toy", n_subsets=3)
    assert (score.name, score.n_real, score.n_fake, score.extractor) == ("kid", 50, 40, "toy")
    assert score.params["subset_size"] == 40 and score.std is not None


# ---------------------------------------------------------------- Inception Score

def test_inception_score_bounds():
    k = 10
    confident = np.eye(k)[np.arange(1000) % k]             # one-hot, classes balanced
    mean, std = metrics.inception_score(confident)
    assert mean == pytest.approx(k, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)
    same = np.tile(np.random.default_rng(0).dirichlet(np.ones(k)), (500, 1))
    assert metrics.inception_score(same)[0] == pytest.approx(1.0, abs=1e-12)
    score = metrics.is_from_probs(confident, splits=5, extractor="inception-v3-logits")
    assert (score.name, score.n_real, score.n_fake) == ("is", None, 1000)


def test_inception_score_bad_input():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(100, 10))
    with pytest.raises(MetricInputError, match="softmax"):
        metrics.inception_score(logits)
    with pytest.raises(MetricInputError, match="sum to 1"):
        metrics.inception_score(np.abs(logits))
    with pytest.raises(MetricInputError, match="splits"):
        metrics.inception_score(np.eye(10)[:5], splits=10)


# ---------------------------------------------------------------- precision / recall

def test_precision_recall_extremes():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 8))
    assert metrics.precision_recall(real, real) == (1.0, 1.0)
    assert metrics.precision_recall(real, rng.normal(size=(300, 8)) + 100.0) == (0.0, 0.0)


def test_precision_recall_half_the_modes():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 2)) * 30
    real = np.concatenate([c + rng.normal(size=(500, 2)) for c in centers])
    fake = np.concatenate([c + rng.normal(size=(500, 2)) for c in centers[:2]])
    precision, recall = metrics.precision_recall(real, fake)
    assert precision > 0.95 and abs(recall - 0.5) < 0.03
    p, r = metrics.precision_recall_from_features(real, fake, extractor="toy")
    assert (p.value, r.value, p.n_real, r.n_fake, p.params["k"]) == (precision, recall,
                                                                     2000, 1000, 3)


def test_precision_recall_blocks_match_brute_force():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(120, 5)), rng.normal(size=(90, 5)) * 1.3 + 0.2
    k = 3
    r_rad = np.sort(cdist(real, real), axis=1)[:, k]
    f_rad = np.sort(cdist(fake, fake), axis=1)[:, k]
    expected = ((cdist(fake, real) <= r_rad[None]).any(1).mean(),
                (cdist(real, fake) <= f_rad[None]).any(1).mean())
    assert metrics.precision_recall(real, fake, k=k, max_block=200) == pytest.approx(expected)
    assert metrics.precision_recall(real, fake, k=k) == pytest.approx(expected)
    with pytest.raises(MetricInputError, match="more than k samples"):
        metrics.precision_recall(real[:3], fake, k=3)


# ---------------------------------------------------------------- PSNR / SSIM vs tf.image

@pytest.fixture(scope="module")
def tf():
    import tensorflow as tf
    return tf


def image_pairs():
    """(a, b, data_range) pairs: uint8 and float [0, 1], random and smoothed+noisy."""
    rng = np.random.default_rng(0)
    base = rng.uniform(size=(3, 40, 36, 3))
    smooth = base.copy()
    for axis in (1, 2):   # box blur, so SSIM's structure term matters
        smooth = (np.roll(smooth, 1, axis) + smooth + np.roll(smooth, -1, axis)) / 3
    noisy = np.clip(smooth + rng.normal(scale=0.05, size=smooth.shape), 0, 1)
    to_u8 = lambda x: np.round(x * 255).astype(np.uint8)  # noqa: E731
    return [(base, rng.uniform(size=base.shape), 1.0),
            (smooth, noisy, 1.0),
            (to_u8(base), to_u8(rng.uniform(size=base.shape)), 255),
            (to_u8(smooth), to_u8(noisy), 255)]


@pytest.mark.parametrize("case", range(4))
def test_psnr_ssim_match_tensorflow(tf, case):
    a, b, data_range = image_pairs()[case]
    ours_psnr = metrics.psnr(a, b, data_range)
    ours_ssim = metrics.ssim(a, b, data_range)
    tf_psnr = tf.image.psnr(a, b, max_val=data_range).numpy()
    tf_ssim = tf.image.ssim(a, b, max_val=data_range).numpy()
    assert ours_psnr.shape == ours_ssim.shape == (3,)
    np.testing.assert_allclose(ours_psnr, tf_psnr, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(ours_ssim, tf_ssim, atol=1e-4)


def test_ssim_psnr_identity_and_shapes():
    a, b, _ = image_pairs()[3]
    np.testing.assert_allclose(metrics.ssim(a, a), 1.0, atol=1e-12)
    assert np.isinf(metrics.psnr(a, a)).all()
    assert metrics.ssim(a[0], b[0]).shape == (1,)
    assert metrics.ssim(a[0], b[0])[0] == pytest.approx(metrics.ssim(a, b)[0], abs=1e-12)
    score = metrics.mean_ssim(a, b)
    assert (score.name, score.n_fake, score.extractor) == ("ssim", 3, "pixels")
    assert score.value == pytest.approx(metrics.ssim(a, b).mean())


def test_reconstruction_input_errors():
    x = np.zeros((2, 16, 16, 1))
    with pytest.raises(MetricInputError, match="data_range is required"):
        metrics.psnr(x, x)
    with pytest.raises(MetricInputError, match="at least 11x11"):
        metrics.ssim(x[:, :8], x[:, :8], data_range=1.0)
    with pytest.raises(MetricInputError, match="same shape"):
        metrics.ssim(x, x[:1], data_range=1.0)
    with pytest.raises(MetricInputError, match="same scale"):
        metrics.psnr(x.astype(np.uint8), x, data_range=1.0)
