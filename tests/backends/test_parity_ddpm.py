"""DDPM weight-transfer parity between TensorFlow and PyTorch, in both directions, and the
sampling API. Tolerances (float32): U-Net outputs 1e-4; one training step from the same
state with t, the noise and the label-dropout mask fed from NumPy: loss, gradients
(relative to each tensor's largest), updated weights and EMA weights 1e-4; a 10-step DDIM
sample from the same x_T 1e-3. Measured errors: benchmarks/parity_report.py --model ddpm, docs/diffusion.md.

Each test model is tiny (base 8 channels) and each framework model is built once per module:
TF spends most of a test's time tracing its tf.functions.
"""
import numpy as np
import pytest

from gan_diffusion.backends import load_model
from gan_diffusion.errors import ConfigError
from gan_diffusion.optim import recovered_gradient
from gan_diffusion.parity import max_abs_diff, one_step, perturb_native
from gan_diffusion.registry import make_config

TOL = 1e-4
SMALL = dict(image_shape=(16, 16, 1), base_channels=8, channel_mults=(1, 2), norm_groups=4,
             batch_size=4, num_classes=3)
SHAPES = {  # (image shape, overrides): 28 -> 14 -> 7 with attention at 7; RGB 32 -> 16 -> 8 -> 4
    "28x28x1": ((28, 28, 1), dict(channel_mults=(1, 2, 2))),
    "32x32x3": ((32, 32, 3), dict(channel_mults=(1, 2, 2, 2), attention_resolutions=(8, 4))),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")   # tiny nets (tests/conftest.py)


@pytest.fixture(scope="module")
def pair(backends):
    """A conditional tiny DDPM in each framework (same config)."""
    return {name: backends[name].build("ddpm", **SMALL) for name in ("tf", "torch")}


def batch(shape=(16, 16, 1), n=4, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, (n, *shape)).astype(np.float32),          # x_0
            rng.standard_normal((n, *shape)).astype(np.float32),         # noise
            rng.integers(0, 1000, n), rng.integers(0, classes, n))       # t, labels


def forward_error(a, b, shape, labels=None, seed=0, emas=(False, True)):
    """Max |eps_a - eps_b| of the trained weights' and the EMA weights' U-Net."""
    x, _, t, _ = batch(shape, seed=seed)
    errs = [np.abs(a.predict_noise(x, t, labels, ema) - b.predict_noise(x, t, labels, ema)).max()
            for ema in emas]
    assert a.predict_noise(x, t, labels).shape == x.shape
    return max(errs)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_unet_forward_parity_both_directions(backends, shape):
    image_shape, kw = SHAPES[shape]
    models = {n: backends[n].build("ddpm", image_shape=image_shape, base_channels=8, norm_groups=4, **kw)
              for n in ("tf", "torch")}
    for src, dst in (("tf", "torch"), ("torch", "tf")):
        a, b = models[src], models[dst]
        perturb_native(a, seed=7)                       # native state, read through get_weights
        b.set_weights(a.get_weights())
        assert max_abs_diff(a.get_weights(), b.get_weights())[0] == 0.0
        err = forward_error(a, b, image_shape, emas=(False,))   # EMA net: the conditional test
        assert err < TOL, (src, dst, err)
    # the output is not trivially small
    x, _, t, _ = batch(image_shape)
    assert np.abs(models["tf"].predict_noise(x, t, ema=False)).max() > 0.1


def test_conditional_forward_parity_and_labels_matter(pair):
    a, b = pair["torch"], pair["tf"]
    perturb_native(a, seed=3)
    b.set_weights(a.get_weights())
    y = np.array([0, 1, 2, 3])                         # 3 = the null class
    assert forward_error(a, b, (16, 16, 1), y) < TOL
    x, _, t, _ = batch()
    assert np.abs(a.predict_noise(x, t, y) - a.predict_noise(x, t, (y + 1) % 4)).max() > 1e-3


def gradient_error(a, state0, sa, sb, before, wa, wb):
    """Max over the U-Net's tensors of max|g_a - g_b| / max|g_a| (gradients recovered from
    Adam's first moment), and the largest gradient of the attention k biases, whose exact
    gradient is zero (softmax ignores a constant added to every key)."""
    worst, k_bias = 0.0, 0.0

    def net_state(s):
        return {k[len("unet/"):]: v for k, v in s.items() if k.startswith("unet/")}

    for key in (k for k in wa if k.startswith("unet/")):
        name = key[len("unet/"):]
        ga = recovered_gradient(a.config, net_state(state0), net_state(sa), before[key], wa[key], name)
        gb = recovered_gradient(a.config, net_state(state0), net_state(sb), before[key], wb[key], name)
        if name.endswith(".k/bias"):
            k_bias = max(k_bias, float(np.abs(ga).max()), float(np.abs(gb).max()))
            continue
        worst = max(worst, float(np.abs(ga - gb).max()) / float(np.abs(ga).max()))
    return worst, k_bias


@pytest.mark.parametrize("src,dst", [("tf", "torch"), ("torch", "tf")])
def test_train_step_parity(pair, src, dst):
    """One L_simple step from the same state (weights, EMA, Adam state), twice (Adam t = 1, 2),
    conditional with one label dropped to the null class."""
    a, b = pair[src], pair[dst]
    perturb_native(a, seed=11)
    for step in range(2):
        x, z, t, y = batch(seed=step)
        drop = np.array([False, True, False, False])
        state0, before = a.optimizer_state(), a.get_weights()
        r = one_step(a, b, x, z, tol=TOL, labels=y, t=t, drop=drop)   # syncs b to a's state first
        assert r["losses"] < TOL, r
        assert r["weights"] < TOL and r["unexplained"] == 0 and r["ill_conditioned"] == 0, r
        wa, wb = a.get_weights(), b.get_weights()
        grad_err, k_bias = gradient_error(a, state0, a.optimizer_state(), b.optimizer_state(),
                                          before, wa, wb)
        assert grad_err < TOL and k_bias < 1e-6, (grad_err, k_bias)
        moved = max(np.abs(wa[k] - before[k]).max() for k in wa if k.startswith("unet/"))
        assert moved > 1e-4                                            # the step really trained
    # the EMA weights took the same update in both (one_step compared them outright)
    assert any(k.startswith("ema/") for k in wa)


def test_ema_rule_and_warmup(pair):
    m = pair["torch"]
    assert m.ema_decay_at(0) == pytest.approx(0.1) and m.ema_decay_at(10_000) == 0.999
    start = m.global_step
    x, z, t, y = batch(seed=5)
    before = m.get_weights()
    m.train_step(x, y, z=z, t=t)
    after = m.get_weights()
    rate = 1 - m.ema_decay_at(start)
    for k in (k for k in after if k.startswith("unet/")):
        e = "ema/" + k[len("unet/"):]
        np.testing.assert_allclose(after[e], before[e] + rate * (after[k] - before[e]), atol=1e-6)


def test_training_streams_are_shared(pair):
    """Without explicit noise, both backends draw the same t, noise and label dropout from the
    NumPy streams at the same global step: a resynced pair takes the same step."""
    a, b = pair["tf"], pair["torch"]
    b.set_weights(a.get_weights())
    b.load_optimizer_state(a.optimizer_state())
    b.global_step = a.global_step = 7
    x, _, _, y = batch(seed=9)
    la, lb = a.train_step(x, y), b.train_step(x, y)
    assert abs(la["loss"] - lb["loss"]) < TOL
    assert max_abs_diff(a.get_weights(), b.get_weights())[0] < TOL
    inp = a.training_inputs(4000, 3, np.zeros(4000, np.int64))
    assert abs((inp["labels"] == 3).mean() - 0.1) < 0.02              # label dropout p = 0.1
    assert 0 <= inp["t"].min() and inp["t"].max() < 1000 and abs(inp["z"].std() - 1) < 0.02


@pytest.mark.parametrize("src,dst", [("tf", "torch"), ("torch", "tf")])
def test_ddim_sample_parity(pair, src, dst):
    """10-step DDIM from the same x_T (the seed), conditional with guidance 2: within 1e-3;
    also a 10-step DDPM sample (same step noise from the NumPy stream)."""
    a, b = pair[src], pair[dst]
    perturb_native(a, seed=21, scale=0.02)
    b.set_weights(a.get_weights())
    y = np.array([0, 1, 2, 0])
    x_T = a.initial_noise(4, seed=1)
    for kw in (dict(sampler="ddim", steps=10, guidance=2.0), dict(sampler="ddim", steps=10, eta=1.0),
               dict(sampler="ddpm", steps=10, guidance=1.0)):
        xa = a.denoise(x_T, y, seed=1, **kw)
        xb = b.denoise(x_T, y, seed=1, **kw)
        assert np.abs(xa - xb).max() < 1e-3, (kw, np.abs(xa - xb).max())
        assert np.abs(xa - x_T).max() > 0.1
    ia, ib = a.sample(4, seed=1, labels=y, steps=10), b.sample(4, seed=1, labels=y, steps=10)
    assert ia.dtype == np.uint8 and ia.shape == (4, 16, 16, 1)
    assert np.abs(ia.astype(int) - ib.astype(int)).max() <= 1


def test_sample_api_and_guidance_semantics(pair):
    m = pair["torch"]
    perturb_native(m, seed=2, scale=0.02)
    first = m.sample(3, seed=4, labels=1, steps=5)
    np.testing.assert_array_equal(first, m.sample(3, seed=4, labels=[1, 1, 1], steps=5))
    assert not np.array_equal(first, m.sample(3, seed=5, labels=1, steps=5))
    # batch_size does not change the result (each chunk takes its rows of the same noise)
    np.testing.assert_array_equal(m.sample(3, seed=4, labels=1, steps=5, sampler="ddpm"),
                                  m.sample(3, seed=4, labels=1, steps=5, sampler="ddpm", batch_size=2))
    # w = 0 is the unconditional model: the label no longer matters
    np.testing.assert_array_equal(m.sample(2, seed=4, labels=0, steps=5, guidance=0.0),
                                  m.sample(2, seed=4, labels=2, steps=5, guidance=0.0))
    assert not np.array_equal(m.sample(2, seed=4, labels=0, steps=5, guidance=3.0),
                              m.sample(2, seed=4, labels=2, steps=5, guidance=3.0))
    grid = m.class_grid(per_class=2, seed=4, steps=5)
    assert grid.shape == (6, 16, 16, 1)
    np.testing.assert_array_equal(grid[2:4], m.sample(2, seed=4, labels=1, steps=5))
    with pytest.raises(ConfigError, match="unknown arguments"):
        m.sample(2, step=5)
    with pytest.raises(ConfigError, match=r"labels must be in \[0, 2\]"):
        m.sample(2, labels=[0, 3])
    with pytest.raises(ConfigError, match="unknown sampler 'euler'"):
        m.sample(2, labels=0, sampler="euler")


def test_config_eta_is_the_default_ddim_noise(pair):
    """config.eta is what sample(), class_grid() and trajectory() use unless eta is given;
    the DDPM sampler ignores it (its noise is the variance_type's)."""
    m = pair["torch"]
    perturb_native(m, seed=5, scale=0.02)
    config = m.config
    kw = dict(seed=4, labels=[0, 1], steps=5)
    plain, noisy = m.sample(2, **kw), m.sample(2, eta=1.0, **kw)
    assert not np.array_equal(plain, noisy)
    try:
        m.config = config.replace(eta=1.0)
        np.testing.assert_array_equal(m.sample(2, **kw), noisy)
        np.testing.assert_array_equal(m.sample(2, eta=0.0, **kw), plain)   # an explicit eta wins
        np.testing.assert_array_equal(m.trajectory(n=2, frames=3, **kw)[2::3], noisy)
        grid = m.class_grid(per_class=2, seed=4, steps=5)   # DDIM noise is drawn per batch,
        ddpm = m.sample(2, sampler="ddpm", **kw)            # so compare grids with grids; no eta error
        m.config = config
        np.testing.assert_array_equal(m.class_grid(per_class=2, seed=4, steps=5, eta=1.0), grid)
        assert not np.array_equal(m.class_grid(per_class=2, seed=4, steps=5), grid)
        np.testing.assert_array_equal(m.sample(2, sampler="ddpm", **kw), ddpm)
    finally:
        m.config = config


def test_unconditional_sampling_and_figures(backends):
    m = backends["torch"].build("ddpm", **{**SMALL, "num_classes": 0})
    perturb_native(m, seed=1, scale=0.02)
    with pytest.raises(ConfigError, match="guidance needs a class-conditional model"):
        m.sample(2, guidance=2.0)
    traj = m.trajectory(n=2, seed=3, frames=5, steps=8)
    assert traj.shape == (10, 16, 16, 1)
    np.testing.assert_array_equal(traj[4::5], m.sample(2, seed=3, steps=8))   # last frame = x_0
    np.testing.assert_array_equal(traj[0::5], m._to_uint8(m.initial_noise(2, 3)))  # first = x_T
    images = (np.arange(2 * 16 * 16).reshape(2, 16, 16, 1) % 256).astype(np.uint8)
    strip = m.forward_strip(images, timesteps=(0, 500, 999))
    assert strip.shape == (6, 16, 16, 1)
    diff = np.abs(strip[0].astype(int) - images[0])                      # t = 0: the image (noise
    assert diff.mean() < 2 and diff.max() <= 8                           # std 0.01, 1.3 grey levels)
    far = strip[2::3].astype(float) / 127.5 - 1                           # t = 999: almost pure noise
    assert abs(np.corrcoef(far.ravel(), images.ravel().astype(float))[0, 1]) < 0.1


@pytest.mark.parametrize("src,dst", [("tf", "torch")])
def test_checkpoint_crosses_backends(pair, src, dst, tmp_path):
    a = pair[src]
    x, z, t, y = batch(seed=3)
    a.train_step(x, y, z=z, t=t)
    a.save(tmp_path / "ddpm.npz")
    b = load_model(tmp_path / "ddpm.npz", dst)                          # EMA and Adam state included
    assert b.global_step == a.global_step
    assert max_abs_diff(a.get_weights(), b.get_weights())[0] == 0.0
    assert max_abs_diff(a.optimizer_state(), b.optimizer_state())[0] == 0.0
    la, lb = a.train_step(x, y, z=z, t=t), b.train_step(x, y, z=z, t=t)
    assert abs(la["loss"] - lb["loss"]) < TOL
    assert max_abs_diff(a.get_weights(), b.get_weights())[0] < TOL


@pytest.mark.parametrize("bad,match", [
    (dict(image_shape=(28, 28, 1), channel_mults=(1, 2, 2, 2)), "28 is not divisible by 8"),
    (dict(base_channels=12, norm_groups=8), "norm_groups 8 must divide"),
    (dict(attention_resolutions=(5,)), r"attention_resolutions \[5\] are not among"),
    (dict(schedule="quadratic"), "schedule must be one of"),
    (dict(sample_steps=2000), "exceeds timesteps"),
    (dict(num_classes=1), "num_classes must be 0"),
    (dict(eta=-0.5), "eta must be >= 0"),
    (dict(sampler="ddpm", eta=1.0), "eta applies to the DDIM sampler only"),
])
def test_bad_ddpm_config_is_rejected(bad, match):
    with pytest.raises(ConfigError, match=match):
        make_config("ddpm", **bad)


def test_weight_layout_is_canonical(pair):
    from gan_diffusion.protocols import Generator, Sampler, Trainer

    assert all(isinstance(m, p) for m in pair.values() for p in (Generator, Trainer, Sampler))
    w = pair["tf"].get_weights()
    assert w["unet/conv_in/kernel"].shape == (3, 3, 1, 8)               # (kh, kw, in, out)
    assert w["unet/down1.res0.skip/kernel"].shape == (1, 1, 8, 16)
    assert w["unet/mid.attn.q/kernel"].shape == (16, 16)
    assert w["unet/label/embeddings"].shape == (4, 32)                 # 3 classes + null, 4 * base
    assert set(k[len("ema/"):] for k in w if k.startswith("ema/")) == \
        set(k[len("unet/"):] for k in w if k.startswith("unet/"))
    bad = dict(w)
    bad["unet/conv_in/kernel"] = bad["unet/conv_in/kernel"].transpose(3, 2, 0, 1)
    with pytest.raises(ValueError, match="unet/conv_in/kernel has shape"):
        pair["torch"].set_weights(bad)
