"""StyleGAN2: the special operations against the NumPy references (models/stylegan2_ref.py)
in both backends, equalized lr, and TF <-> torch parity of forward passes, one full
training step and checkpoints.

Tolerances: operations vs NumPy 1e-10 (float64); forward float32 1e-4 (measured 2e-6 - 4e-6
on G, 1e-7 on D); one D step + one G step in float64 with R1, path length and style mixing
1e-10 (measured ~1e-16 on weights, ~1e-14 on Adam's v). Tiny networks (8x8, channels 8,
batch 4) keep the TF traces of the double-gradient steps short.
"""
import numpy as np
import pytest
import scipy.signal

from gan_diffusion.errors import ConfigError
from gan_diffusion.models import stylegan2 as core
from gan_diffusion.models import stylegan2_ref as ref
from gan_diffusion.parity import max_abs_diff
from gan_diffusion.registry import make_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = dict(channel_base=64, channel_max=8, latent_dim=8, w_dim=8, mapping_layers=2,
            batch_size=4)


def ops(name):
    """The backend's stylegan2 module, NHWC <-> native image converters, and a plain
    array -> tensor converter."""
    if name == "tf":
        import tensorflow as tf

        from gan_diffusion.tf_backend import stylegan2 as m
        return m, tf.constant, lambda t: t.numpy(), tf.constant
    import torch

    from gan_diffusion.torch_backend import stylegan2 as m
    return (m, lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))),
            lambda t: t.detach().numpy().transpose(0, 2, 3, 1), torch.from_numpy)


# -- references -------------------------------------------------------------------------
def test_numpy_upfirdn2d_is_zero_insertion_then_scipy_convolution():
    rng = np.random.default_rng(0)
    x, f = rng.standard_normal((1, 5, 6, 1)), rng.standard_normal((3, 4))   # asymmetric filter
    up = np.zeros((10, 12))
    up[::2, ::2] = x[0, :, :, 0]
    want = scipy.signal.convolve2d(np.pad(up, ((2, 1), (2, 1))), f, mode="valid")[::3, ::3]
    np.testing.assert_allclose(ref.upfirdn2d(x, f, up=2, down=3, pad=(2, 1))[0, :, :, 0], want,
                               atol=1e-12)
    flat = np.ones((1, 8, 8, 1))                        # gains: constants stay constant inside
    np.testing.assert_allclose(ref.upsample2d(flat)[0, 2:-2, 2:-2], 1.0, atol=1e-12)
    np.testing.assert_allclose(ref.downsample2d(flat)[0, 1:-1, 1:-1], 1.0, atol=1e-12)
    assert ref.upsample2d(flat).shape == (1, 16, 16, 1)
    assert ref.downsample2d(flat).shape == (1, 4, 4, 1)


def test_numpy_minibatch_stddev_by_hand():
    x = np.random.default_rng(1).standard_normal((6, 2, 2, 3))
    out = ref.minibatch_stddev(x)                       # groups of 3: {0, 2, 4}, {1, 3, 5}
    want = np.sqrt(x[[1, 3, 5]].var(axis=0) + 1e-8).mean()
    assert out.shape == (6, 2, 2, 4) and np.allclose(out[3, :, :, 3], want)


@pytest.mark.parametrize("backend", ["tf", "torch"])
def test_upfirdn2d_matches_numpy(backend):
    m, to, back, raw = ops(backend)
    rng = np.random.default_rng(2)
    x, f = rng.standard_normal((2, 8, 8, 3)), rng.standard_normal((3, 4))
    for args in [dict(up=2, pad=(2, 1)), dict(down=2, pad=(1, 1)), dict(up=2, down=3, pad=(1, 2))]:
        np.testing.assert_allclose(back(m.upfirdn2d(to(x), f, **args)), ref.upfirdn2d(x, f, **args),
                                   atol=1e-10)
    np.testing.assert_allclose(back(m.upsample2d(to(x))), ref.upsample2d(x), atol=1e-10)
    np.testing.assert_allclose(back(m.downsample2d(to(x))), ref.downsample2d(x), atol=1e-10)


@pytest.mark.parametrize("backend", ["tf", "torch"])
@pytest.mark.parametrize("demod", [True, False])
def test_modulated_conv_matches_numpy(backend, demod):
    m, to, back, raw = ops(backend)
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((3, 6, 6, 4)), rng.standard_normal((3, 3, 4, 5))
    s = rng.uniform(0.2, 2.0, (3, 4))
    conv = m.modulated_conv(to(x), raw(w), raw(s), demod)
    np.testing.assert_allclose(back(conv), ref.modulated_conv(x, w, s, demod), atol=1e-10)


@pytest.mark.parametrize("backend", ["tf", "torch"])
def test_minibatch_stddev_matches_numpy(backend):
    m, to, back, raw = ops(backend)
    for n in (8, 6, 3):
        x = np.random.default_rng(n).standard_normal((n, 4, 4, 5))
        np.testing.assert_allclose(back(m.minibatch_stddev(to(x))), ref.minibatch_stddev(x),
                                   atol=1e-10)


def test_demodulated_output_has_unit_variance_per_output_channel():
    """With i.i.d. unit-variance inputs, demodulation makes each output channel's expected
    variance sum(w'^2) / (sum(w'^2) + eps) = 1, whatever the weights and styles."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 40, 40, 6))
    w = rng.standard_normal((3, 3, 6, 4)) * np.array([0.1, 1.0, 5.0, 30.0])   # very unequal outputs
    s = rng.uniform(0.1, 10.0, (2, 6))
    inner = (slice(None), slice(1, -1), slice(1, -1))                          # no zero padding
    demod = ref.modulated_conv(x, w, s)[inner]
    np.testing.assert_allclose(demod.var(axis=(1, 2)), 1.0, atol=0.12)
    plain = ref.modulated_conv(x, w, s, demod=False)[inner].var(axis=(1, 2))
    assert plain.max() / plain.min() > 100                                      # without it: not
    wn = ref.demodulate(ref.modulate(w, s))
    np.testing.assert_allclose((wn ** 2).sum(axis=(1, 2, 3)), 1.0, atol=1e-6)


@pytest.mark.parametrize("backend", ["tf", "torch"])
def test_equalized_lr_scale(backend):
    """Weights are stored N(0, 1/lr_mul^2) and scaled by lr_mul / sqrt(fan_in) at run time:
    the effective layer is He-initialised, and d out / d stored weight carries the scale."""
    assert core.equalized_gain(16, 0.01) == pytest.approx(0.0025)
    m, _, _, raw = ops(backend)
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((4000, 64)), rng.standard_normal((64, 32)) / 0.01, np.ones(32)
    out = np.asarray(m.dense(raw(x), raw(w), raw(b), 0.01))
    np.testing.assert_allclose(out, x @ w * 0.01 / 8 + 0.01, atol=1e-10)
    assert abs((out - 0.01).var() - 1.0) < 0.15     # unit variance in, unit out (2048 weights)
    cfg = make_config("stylegan2", image_shape=(8, 8, 1), **TINY)
    init = core.init_weights(cfg)
    assert 80 < init["generator/mapping/fc1/weight"].std() < 120   # 1 / lr_mul = 100
    assert 0.7 < init["discriminator/b8/conv0/weight"].std() < 1.3


# -- configs ------------------------------------------------------------------------------
@pytest.mark.parametrize("override,message", [
    (dict(image_shape=(12, 12, 3)), "power of two >= 8"),
    (dict(image_shape=(4, 4, 3)), "power of two >= 8"),
    (dict(image_shape=(32, 16, 3)), "power of two >= 8"),
    (dict(psi=1.5), "psi must be in [0, 1]"),
    (dict(psi=-0.1), "psi must be in [0, 1]"),
    (dict(mixing_prob=1.2), "mixing_prob must be in [0, 1]"),
    (dict(mixing_prob=-0.5), "mixing_prob must be in [0, 1]"),
    (dict(r1_interval=0), "r1_interval must be a positive number"),
])
def test_bad_configs_give_one_clear_error(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        make_config("stylegan2", **{"image_shape": (32, 32, 3), **override})


def test_config_layout_and_lazy_adam():
    cfg = make_config("stylegan2", image_shape=(32, 32, 3))
    assert cfg.num_ws == 8 and [cfg.channels(r) for r in (4, 8, 16, 32)] == [32, 32, 32, 16]
    lr, b1, b2 = cfg.lazy(16)
    assert lr == pytest.approx(0.002 * 16 / 17) and b1 == 0
    assert b2 == pytest.approx(0.99 ** (16 / 17))
    assert [i for *_, i in core.synthesis_layers(cfg)] == [0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 7]
    assert core.mixing_mask(cfg, 0.95, 0.5).sum() == 0                 # no mixing
    assert core.mixing_mask(cfg, 0.1, 0.0).tolist() == [0] + [1] * 7   # cutoff 1
    assert core.mixing_mask(cfg, 0.1, 0.999).tolist() == [0] * 7 + [1]  # cutoff num_ws - 1


# -- cross-backend parity -------------------------------------------------------------------
def perturbed(backends, **kw):
    """(torch model, tf model) holding the same randomly perturbed weights (noise strengths,
    biases and w_avg non-zero)."""
    a = backends["torch"].build("stylegan2", **{**TINY, **kw})
    rng = np.random.default_rng(6)
    weights = {k: v + 0.1 * rng.standard_normal(v.shape).astype(v.dtype)
               for k, v in a.get_weights().items()}
    a.set_weights(weights)
    b = backends["tf"].build("stylegan2", config=a.config)
    b.set_weights(weights)
    return a, b


@pytest.mark.parametrize("num_classes", [0, 3])
def test_forward_parity_float32(backends, num_classes):
    a, b = perturbed(backends, image_shape=(16, 16, 3), num_classes=num_classes)
    rng = np.random.default_rng(7)
    z, z2 = rng.standard_normal((2, 4, 8)).astype(np.float32)
    x = rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 1]) if num_classes else None
    noise = core.layer_noise(a.config, 0, "sg2_noise", 0, 4, 0)
    mix = core.mixing_mask(a.config, 0.0, 0.5)
    for kw in [dict(), dict(net="generator", psi=0.7, noise_inputs=noise, z2=z2, mix=mix)]:
        ga, gb = a.forward_generator(z, labels=y, **kw), b.forward_generator(z, labels=y, **kw)
        assert ga.shape == (4, 16, 16, 3) and np.abs(ga - gb).max() < 1e-4
    da, db = a.forward_discriminator(x, labels=y), b.forward_discriminator(x, labels=y)
    assert da.shape == (4,) and np.abs(da - db).max() < 1e-4
    with pytest.raises(ConfigError, match="psi"):
        a.forward_generator(z, labels=y, psi=2.0)


@pytest.fixture(scope="module")
def stepped(backends, tmp_path_factory):
    """One training step (step 0: R1 and path length on, style mixing forced in both
    phases) of the same float64 model in each backend; the torch checkpoint after it."""
    a, b = perturbed(backends, image_shape=(8, 8, 3), dtype="float64")
    x = np.random.default_rng(8).uniform(-1, 1, (4, 8, 8, 3))
    mix = core.mixing_mask(a.config, 0.0, 0.5)
    before = a.get_weights()
    la, lb = a.train_step(x, mix_d=mix, mix_g=mix), b.train_step(x, mix_d=mix, mix_g=mix)
    path = tmp_path_factory.mktemp("sg2") / "torch.npz"
    a.save(path)
    return a, b, la, lb, x, path, before


@pytest.mark.slow    # 20-40 s on 2 shared cores: the TF traces of the double-gradient steps
def test_one_training_step_parity_float64(stepped):
    a, b, la, lb, _, _, before = stepped
    assert set(la) == set(lb) == {"d_loss", "g_loss", "r1", "pl"}
    assert max(abs(la[k] - lb[k]) for k in la) < 1e-10
    err, where = max_abs_diff(a.get_weights(), b.get_weights())
    assert err < 1e-10, where
    assert max_abs_diff(a.optimizer_state(), b.optimizer_state())[0] < 1e-10
    w = a.get_weights()                         # every network moved (not a no-op step)
    for name in ("generator/pl_mean", "generator/mapping/w_avg", "generator/mapping/fc0/weight",
                 "discriminator/b8/conv0/weight", "generator_ema/synthesis/b8/conv1/weight"):
        assert not np.allclose(w[name], before[name]), name


@pytest.mark.slow    # 10-25 s: another TF trace (the step without R1 and path length)
def test_checkpoint_from_torch_resumes_in_tf(stepped, backends):
    a, b, _, _, x, path, _ = stepped
    c = backends["tf"].build("stylegan2", config=a.config)
    c.restore(path)
    assert c.global_step == 1 and max_abs_diff(a.get_weights(), c.get_weights())[0] == 0
    la, lc = a.train_step(x), c.train_step(x)      # step 1: no R1, no path length
    assert set(la) == {"d_loss", "g_loss"} and max(abs(la[k] - lc[k]) for k in la) < 1e-10
    assert max_abs_diff(a.get_weights(), c.get_weights())[0] < 1e-10


def test_r1_and_path_length_enter_the_updates(backends):
    """Step 0 with R1 / path length on moves D / G differently from the same step with them
    off, and step 1 (neither due) reports neither (torch; the TF step is the same by parity)."""
    x = np.random.default_rng(9).uniform(-1, 1, (4, 8, 8, 3))
    runs = {}
    for key, kw in {"on": {}, "off": dict(r1_gamma=0.0, pl_weight=0.0)}.items():
        m = backends["torch"].build("stylegan2", image_shape=(8, 8, 3), dtype="float64",
                                    **{**TINY, **kw})
        runs[key] = (m.train_step(x), m.get_weights(), m)
    (l_on, w_on, m_on), (l_off, w_off, _) = runs["on"], runs["off"]
    assert {"r1", "pl"} <= set(l_on) and not {"r1", "pl"} & set(l_off)
    assert l_on["r1"] > 0 and l_on["pl"] > 0
    for name in ("discriminator/b8/conv0/weight", "generator/synthesis/b8/conv1/weight"):
        assert not np.allclose(w_on[name], w_off[name]), name
    assert w_on["generator/pl_mean"][0] > 0 and w_off["generator/pl_mean"][0] == 0
    assert set(m_on.train_step(x)) == {"d_loss", "g_loss"}


def test_both_phases_layer_noise_is_the_two_single_phase_draws():
    """step_noise draws the layer noise of both phases at once: the same values as drawing
    each phase alone (so runs recorded before that change reproduce exactly)."""
    cfg = make_config("stylegan2", image_shape=(16, 16, 3), channel_base=128, channel_max=8)
    both = core.layer_noise(cfg, 3, "sg2_noise", 5, 4, None)
    for phase in (0, 1):
        one = core.layer_noise(cfg, 3, "sg2_noise", 5, 4, phase)
        assert len(one) == len(both[phase]) and all(np.array_equal(a, b) for a, b in zip(one, both[phase]))
    step = core.step_noise(cfg, 5, 4)
    assert all(np.array_equal(a, b) for a, b in zip(step["noise_g"], core.layer_noise(cfg, 0, "sg2_noise", 5, 4, 1)))
