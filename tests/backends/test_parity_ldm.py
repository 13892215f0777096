"""Latent diffusion (ldm) weight-transfer parity between TensorFlow and PyTorch, in both
directions, and the two stages' API. Tolerances: float32 forward passes (encoder moments,
decoder images, the cross-attention U-Net's noise, trained and EMA weights) 1e-4; one
training step of each stage in float64 from the same state with every noise fed from NumPy:
losses, weights (EMA included) and gradients (relative to each tensor's largest) 1e-10; a
10-step DDIM sample with guidance 2 from the same x_T 1e-3 (latents) and 1 grey level
(decoded uint8 images); checkpoints cross backends exactly. Measured errors: docs/ldm.md.

Each framework model is tiny (16x16 images, widths 8-16, 4x4x4 latents) and built once per
module: TF spends most of a test's time tracing its tf.functions.
"""
import numpy as np
import pytest

from gan_diffusion.backends import load_model
from gan_diffusion.checkpoint import weights_digest
from gan_diffusion.data import ArrayDataset
from gan_diffusion.errors import ConfigError
from gan_diffusion.models.ldm import init_ldm, ldm_weight_shapes
from gan_diffusion.optim import recovered_gradient
from gan_diffusion.parity import max_abs_diff, one_step, perturb_native
from gan_diffusion.registry import make_config

TOL32, TOL64 = 1e-4, 1e-10
SMALL = dict(image_shape=(16, 16, 1), ae_channels=(8, 16, 16), base_channels=8, norm_groups=4,
             num_classes=3, context_dim=8, context_tokens=2, batch_size=4)
LATENT = (4, 4, 4)

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # tiny nets (tests/conftest.py)


def images(n=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 1)).astype(np.uint8)


def dataset(n=16, seed=0):
    return ArrayDataset(images(n, seed), np.arange(n, dtype=np.int64) % 3, "toy", "random 16x16 images")


@pytest.fixture(scope="module")
def ae32(backends):
    """A torch autoencoder-stage model (float32), its weights perturbed: the autoencoder both
    float32 diffusion models attach."""
    m = backends["torch"].build("ldm", **SMALL)
    perturb_native(m, seed=5)
    return m


@pytest.fixture(scope="module")
def pair32(backends, ae32):
    """A conditional diffusion-stage ldm in each framework (float32), both on ae32."""
    out = {name: backends[name].build("ldm", stage="diffusion", **SMALL) for name in ("tf", "torch")}
    for m in out.values():
        m.set_autoencoder(ae32, dataset())
    return out


@pytest.fixture(scope="module")
def pair64(backends):
    """{"autoencoder": {tf, torch}, "diffusion": {tf, torch}} in float64; the diffusion models
    on the tf autoencoder."""
    out = {stage: {name: backends[name].build("ldm", stage=stage, dtype="float64", **SMALL)
                   for name in ("tf", "torch")} for stage in ("autoencoder", "diffusion")}
    for m in out["diffusion"].values():
        m.set_autoencoder(out["autoencoder"]["tf"], dataset())
    return out


def test_weight_layout_is_canonical(pair32, ae32):
    from gan_diffusion.models.ddpm import DDPMConfig
    from gan_diffusion.models.unet import unet_params

    w = pair32["tf"].get_weights()
    assert set(w) == set(ldm_weight_shapes(pair32["tf"].config))
    assert set(ae32.get_weights()) == {k for k in w if k.startswith("ae/")}
    assert w["ae/encoder.conv_in/kernel"].shape == (3, 3, 1, 8)          # (kh, kw, in, out)
    assert w["ae/encoder.down0.res0.conv1/kernel"].shape == (3, 3, 8, 8)
    assert w["ae/encoder.out.conv/kernel"].shape == (3, 3, 16, 8)        # 2c moments
    assert w["ae/quant_conv/kernel"].shape == (1, 1, 8, 8)
    assert w["ae/post_quant_conv/kernel"].shape == (1, 1, 4, 4)
    assert w["ae/decoder.out.conv/kernel"].shape == (3, 3, 8, 1)
    assert w["unet/conv_in/kernel"].shape == (3, 3, 4, 8)                 # latent channels in
    assert w["unet/context/embeddings"].shape == (4, 2 * 8)               # K + 1 labels, T * D
    assert w["unet/mid.xattn.k/kernel"].shape == (8, 16)                  # D -> C
    assert w["unet/mid.xattn.q/kernel"].shape == (16, 16)
    assert "unet/label/embeddings" not in w                               # labels via cross-attention only
    assert not any("xattn" in k or "context" in k for k in unet_params(DDPMConfig()))  # DDPM unchanged
    bad = dict(w)
    bad["ae/encoder.conv_in/kernel"] = bad["ae/encoder.conv_in/kernel"].transpose(3, 2, 0, 1)
    with pytest.raises(ValueError, match="ae/encoder.conv_in/kernel has shape"):
        pair32["torch"].set_weights(bad)


def test_seeded_init_is_shared_and_takes_a_generator():
    cfg = make_config("ldm", stage="diffusion", **SMALL)
    a, b = init_ldm(cfg, 3), init_ldm(cfg, 3)
    assert max_abs_diff(a, b)[0] == 0.0 and max_abs_diff(a, init_ldm(cfg, 4))[0] > 0
    assert {k: v.shape for k, v in a.items()} == ldm_weight_shapes(cfg)
    assert not a["unet/mid.xattn.proj/kernel"].any()                     # residual branches start at 0
    np.testing.assert_array_equal(a["unet/conv_in/kernel"], a["ema/conv_in/kernel"])
    other = init_ldm(cfg, 3, rng=np.random.default_rng(99))              # native_init: any generator
    assert set(other) == set(a) and np.abs(other["ae/encoder.conv_in/kernel"] - a["ae/encoder.conv_in/kernel"]).max() > 0


@pytest.mark.parametrize("src,dst", [("tf", "torch"), ("torch", "tf")])
def test_forward_parity_float32(pair32, src, dst):
    a, b = pair32[src], pair32[dst]
    perturb_native(a, seed=7)
    b.set_weights(a.get_weights())
    assert max_abs_diff(a.get_weights(), b.get_weights())[0] == 0.0
    x = images()
    ma, mb = a.encode_moments(x), b.encode_moments(x)
    assert ma.shape == (4, 4, 4, 8) and np.abs(ma - mb).max() < TOL32
    z = np.random.default_rng(1).standard_normal((4, *LATENT)).astype(np.float32)
    da, db = a.decode_latents(z), b.decode_latents(z)
    assert da.shape == (4, 16, 16, 1) and np.abs(da - db).max() < TOL32 and np.abs(da).max() > 0.1
    t, y = np.array([0, 10, 500, 999]), np.array([0, 1, 2, 3])           # 3 = the null label
    for ema in (False, True):
        ea, eb = a.predict_noise(z, t, y, ema), b.predict_noise(z, t, y, ema)
        assert ea.shape == z.shape and np.abs(ea - eb).max() < TOL32, ema
    assert np.abs(a.predict_noise(z, t, y) - a.predict_noise(z, t, (y + 1) % 4)).max() > 1e-3  # labels matter


def gradient_error(a, net, state0, sa, sb, before, wa, wb):
    """Max over `net`'s tensors of max|g_a - g_b| / max|g_a| (gradients recovered from Adam's
    first moment), and the largest gradient of the attention k biases, whose exact gradient is
    zero (softmax ignores a constant added to every key)."""
    worst, k_bias = 0.0, 0.0

    def part(s):
        return {k[len(net) + 1:]: v for k, v in s.items() if k.startswith(f"{net}/")}

    for key in (k for k in wa if k.startswith(f"{net}/")):
        name = key[len(net) + 1:]
        ga = recovered_gradient(a.config, part(state0), part(sa), before[key], wa[key], name)
        gb = recovered_gradient(a.config, part(state0), part(sb), before[key], wb[key], name)
        if name.endswith(".k/bias"):
            k_bias = max(k_bias, float(np.abs(ga).max()), float(np.abs(gb).max()))
            continue
        worst = max(worst, float(np.abs(ga - gb).max()) / float(np.abs(ga).max()))
    return worst, k_bias


@pytest.mark.slow
@pytest.mark.parametrize("src,dst", [("tf", "torch"), ("torch", "tf")])
def test_autoencoder_step_parity_float64(pair64, src, dst):
    """One step of the KL autoencoder loss (l1 + kl_weight KL) from the same state, twice
    (Adam t = 1, 2), the posterior noise fed; the loss is also the NumPy reference's."""
    a, b = pair64["autoencoder"][src], pair64["autoencoder"][dst]
    perturb_native(a, seed=11)
    for step in range(2):
        x, eps = images(seed=step), np.random.default_rng(step).standard_normal((4, *LATENT))
        ref = a.reference_loss(x, eps)
        state0, before = a.optimizer_state(), a.get_weights()
        r = one_step(a, b, x, None, tol=TOL64, eps=eps)                  # syncs b to a's state first
        assert r["losses"] < TOL64 and r["weights"] < TOL64 and r["unexplained"] == 0, r
        grad_err, k_bias = gradient_error(a, "ae", state0, a.optimizer_state(), b.optimizer_state(),
                                          before, a.get_weights(), b.get_weights())
        assert grad_err < TOL64 and k_bias < 1e-12, (grad_err, k_bias)
        assert r["moved"] > 1e-4
    losses = b.train_step(x, eps=eps)
    assert set(losses) == {"loss", "recon", "kl"} and losses["kl"] > 0
    # the step's loss is the NumPy formula (models/kl_autoencoder.py) on the networks' outputs
    a.set_weights(before)
    a.load_optimizer_state(state0)
    got = a.train_step(x, eps=eps)
    assert all(abs(got[k] - ref[k]) < 1e-9 * max(1.0, abs(ref[k])) for k in ref), (got, ref)


@pytest.mark.slow
@pytest.mark.parametrize("src,dst", [("tf", "torch"), ("torch", "tf")])
def test_diffusion_step_parity_float64(pair64, src, dst):
    """Attach the float64 autoencoder (same latent scale computed in both), then one L_simple
    step of the latent U-Net from the same state, twice, with a dropped label."""
    a, b = pair64["diffusion"][src], pair64["diffusion"][dst]
    ae = pair64["autoencoder"][src]
    for m in (a, b):
        m.config = m.config.replace(latent_scale=0.0)
        m.set_autoencoder(ae, dataset())
    assert a.config.latent_scale == b.config.latent_scale > 0
    assert a.config.autoencoder_sha256 == b.config.autoencoder_sha256 == weights_digest(ae.get_weights())
    perturb_native(a, seed=13)
    for step in range(2):
        x = images(seed=step + 3)
        z = np.random.default_rng(step).standard_normal((4, *LATENT))
        t, y, drop = np.array([1, 10, 500, 999]), np.array([0, 1, 2, 0]), np.array([False, True, False, False])
        state0, before = a.optimizer_state(), a.get_weights()
        r = one_step(a, b, x, z, tol=TOL64, labels=y, t=t, drop=drop)
        assert r["losses"] < TOL64 and r["weights"] < TOL64 and r["unexplained"] == 0, r
        wa, wb = a.get_weights(), b.get_weights()
        grad_err, k_bias = gradient_error(a, "unet", state0, a.optimizer_state(), b.optimizer_state(),
                                          before, wa, wb)
        assert grad_err < TOL64 and k_bias < 1e-12, (grad_err, k_bias)
        assert max(np.abs(wa[k] - before[k]).max() for k in wa if k.startswith("unet/")) > 1e-4
        assert max(np.abs(wa[k] - before[k]).max() for k in wa if k.startswith("ae/")) == 0.0  # frozen


@pytest.mark.parametrize("src,dst", [("tf", "torch"), ("torch", "tf")])
def test_ddim_guided_sample_parity(pair32, src, dst):
    """10-step DDIM with guidance 2 from the same x_T: the latents within 1e-3, the decoded
    images within one grey level."""
    a, b = pair32[src], pair32[dst]
    perturb_native(a, seed=21, scale=0.02)
    b.set_weights(a.get_weights())
    y = np.array([0, 1, 2, 0])
    x_T = a.initial_noise(4, seed=1)
    assert x_T.shape == (4, *LATENT)
    kw = dict(sampler="ddim", steps=10, guidance=2.0)
    za, zb = a.denoise(x_T, y, seed=1, **kw), b.denoise(x_T, y, seed=1, **kw)
    assert np.abs(za - zb).max() < 1e-3 and np.abs(za - x_T).max() > 0.1
    ia, ib = a.sample(4, seed=1, labels=y, **kw), b.sample(4, seed=1, labels=y, **kw)
    assert ia.dtype == np.uint8 and ia.shape == (4, 16, 16, 1)
    assert np.abs(ia.astype(int) - ib.astype(int)).max() <= 1
    np.testing.assert_array_equal(ia, a._to_uint8(za))                    # sample = decode(denoise)


def test_checkpoints_cross_backends(pair64, tmp_path):
    """Each stage (float64, the models traced above): tf writes, torch restores (weights, Adam
    state, step, the recorded autoencoder and latent scale) and takes the same next step."""
    x, y = images(), np.array([0, 1, 2, 0])
    z, t = np.random.default_rng(0).standard_normal((4, *LATENT)), np.array([5, 50, 500, 900])
    for stage, kw in (("diffusion", dict(labels=y, z=z, t=t)), ("autoencoder", dict(eps=z))):
        a = pair64[stage]["tf"]
        a.train_step(x, **kw)
        a.save(tmp_path / f"{stage}.npz")
        b = load_model(tmp_path / f"{stage}.npz", "torch")
        assert b.stage == stage and b.global_step == a.global_step and b.config == a.config
        assert max_abs_diff(a.get_weights(), b.get_weights())[0] == 0.0
        assert max_abs_diff(a.optimizer_state(), b.optimizer_state())[0] == 0.0
        la, lb = a.train_step(x, **kw), b.train_step(x, **kw)           # drop: the same stream draw
        assert abs(la["loss"] - lb["loss"]) < TOL64 * max(1.0, la["loss"]), stage
        assert max_abs_diff(a.get_weights(), b.get_weights())[0] < TOL64, stage
    # an autoencoder checkpoint attaches to a diffusion stage of the other backend
    d = pair64["diffusion"]["torch"]
    d.set_autoencoder(tmp_path / "autoencoder.npz", dataset(), name="AE-RUN")
    assert d.config.autoencoder_sha256 == weights_digest(load_model(tmp_path / "autoencoder.npz", "torch").get_weights())


def test_stage_api(pair32, ae32, backends):
    m = pair32["torch"]
    rec = ae32.reconstruct(images(3))
    assert rec.dtype == np.uint8 and rec.shape == (3, 16, 16, 1)
    scores = ae32.evaluate(dataset(8))
    assert set(scores) == {"recon", "kl", "psnr", "ssim"} and scores["psnr"] > 0
    grid, nrow = ae32.preview_grid()
    assert nrow is None and grid.shape == (64, 16, 16, 1)                # before fit: decoded N(0, I)
    for call in (lambda: ae32.sample(2), lambda: ae32.class_grid(1), lambda: ae32.trajectory(2)):
        with pytest.raises(ConfigError, match="sampling needs the diffusion stage"):
            call()
    first = m.sample(3, seed=4, labels=1, steps=4)
    np.testing.assert_array_equal(first, m.sample(3, seed=4, labels=[1, 1, 1], steps=4, batch_size=2))
    np.testing.assert_array_equal(m.sample(2, seed=4, labels=0, steps=4, guidance=0.0),   # w = 0:
                                  m.sample(2, seed=4, labels=2, steps=4, guidance=0.0))   # unconditional
    assert m.class_grid(per_class=2, seed=4, steps=3).shape == (6, 16, 16, 1)
    assert m.trajectory(n=2, seed=3, frames=4, steps=6, labels=0).shape == (8, 16, 16, 1)
    assert m.forward_strip(images(2), timesteps=(0, 999)).shape == (4, 16, 16, 1)
    with pytest.raises(ConfigError, match=r"labels must be in \[0, 2\]"):
        m.sample(2, labels=[0, 3])
    fresh = backends["torch"].build("ldm", stage="diffusion", **SMALL)
    with pytest.raises(ConfigError, match="no trained autoencoder"):
        fresh.fit(dataset(), 1)
    wrong = backends["torch"].build("ldm", stage="diffusion", **{**SMALL, "ae_channels": (8, 16)})
    with pytest.raises(ConfigError, match=r"autoencoder MY-RUN does not fit.*ae_channels"):
        wrong.set_autoencoder(ae32, dataset(), name="MY-RUN")


@pytest.mark.parametrize("bad,match", [
    (dict(image_shape=(28, 28, 1), ae_channels=(8, 16, 16, 16)), "28 is not divisible by 8"),
    (dict(image_shape=(28, 28, 1), channel_mults=(1, 2)), "halve the 7x7 latent"),
    (dict(ae_channels=(8,)), "two or more positive widths"),
    (dict(ae_channels=(8, 12, 12), norm_groups=8), "norm_groups 8 must divide"),
    (dict(recon_loss="l3"), "recon_loss must be one of"),
    (dict(stage="both"), "stage must be one of"),
    (dict(kl_weight=-1.0), "kl_weight must be >= 0"),
    (dict(attention_resolutions=(3,)), r"attention_resolutions \[3\] are not among"),
])
def test_bad_ldm_config_is_rejected(bad, match):
    with pytest.raises(ConfigError, match=match):
        make_config("ldm", **{"image_shape": (16, 16, 1), **bad})


def test_defaults_and_latent_shapes():
    cfg = make_config("ldm")
    assert cfg.latent_shape == (7, 7, 4) and cfg.channel_mults == (1,) and cfg.factor == 4
    assert cfg.schedule == "scaled_linear" and not cfg.clip_sample and cfg.kl_weight == 1e-6
    cifar = make_config("ldm", image_shape=(32, 32, 3))
    assert cifar.latent_shape == (8, 8, 4) and cifar.channel_mults == (1, 2)
    assert make_config("ldm", image_shape=(64, 64, 3), ae_channels=(32, 64, 64, 64)).latent_shape == (8, 8, 4)
