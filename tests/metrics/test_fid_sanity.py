"""Sanity checks any FID must pass, with the shipped LeNet-MNIST extractor on real MNIST:
real vs real is low; noise and blur raise it monotonically; dropping a class raises it.
The figures are printed (pytest -s) and quoted in docs/metrics.md."""
import os

import numpy as np
import pytest

from gan_diffusion.metrics.sanity import add_noise, blur, fid_sanity

DATA_DIR = os.environ.get("GAN_DIFFUSION_DATA_DIR")
pytestmark = pytest.mark.skipif(not DATA_DIR, reason="GAN_DIFFUSION_DATA_DIR is not set: the "
                                "sanity checks need the real MNIST files")


@pytest.fixture(scope="module")
def figures():
    from gan_diffusion.data import load_dataset

    train = load_dataset("mnist", "train", data_dir=DATA_DIR, limit=10000)
    test = load_dataset("mnist", "test", data_dir=DATA_DIR)
    out = fid_sanity(train.images, test.images, test.labels, n=2000, extractor="lenet-mnist")
    print(f"\n{out['name']} ({out['extractor']}, {out['backend']}), reference: {out['n_reference']} "
          f"train images, samples of {out['n']} test images")
    print(f"  real test vs train: {out['real']:.4g}")
    print("  noise sigma -> FID: " + ", ".join(f"{s:g}: {v:.4g}" for s, v in out["noise"]))
    print("  blur sigma  -> FID: " + ", ".join(f"{s:g}: {v:.4g}" for s, v in out["blur"]))
    print(f"  full test sample: {out['full']:.4g}; without class {out['drop_class']}: "
          f"{out['dropped']:.4g}")
    return out


def test_real_against_other_real_scores_low(figures):
    """Low = below every perturbation, and below a tenth of what a moderate corruption gives
    (noise of std 32/255, blur of std 1 pixel; both still leave the digits legible)."""
    noise, blurred = dict(figures["noise"]), dict(figures["blur"])
    assert figures["real"] < min(min(noise.values()), min(blurred.values())), figures
    assert figures["real"] < 0.1 * noise[32.0] and figures["real"] < 0.1 * blurred[1.0], figures


@pytest.mark.parametrize("kind", ["noise", "blur"])
def test_score_rises_monotonically_with_the_strength(figures, kind):
    values = [figures["real"]] + [v for _, v in figures[kind]]
    assert all(b > a for a, b in zip(values, values[1:])), (kind, values)


def test_removing_a_class_scores_worse_than_the_full_set(figures):
    assert figures["dropped"] > 5 * figures["full"], figures
    assert figures["full"] < 2 * figures["real"] + 1e-9   # another full sample: as low as "real"


def test_perturbations():
    x = np.full((2, 9, 9, 1), 100, np.uint8)
    x[:, 4, 4] = 255
    b = blur(x, 1.0)
    assert b.dtype == np.uint8 and b[0, 4, 4, 0] < 255 and b[0, 4, 5, 0] > 100
    assert b.sum(dtype=np.int64) == pytest.approx(x.sum(dtype=np.int64), rel=1e-3)  # mass kept
    n = add_noise(x, 10.0, seed=0)
    assert n.dtype == np.uint8 and 5 < np.abs(n.astype(int) - x).mean() < 12
    np.testing.assert_array_equal(n, add_noise(x, 10.0, seed=0))
