"""The StyleGAN2 speed baselines (benchmarks/idiomatic_stylegan2.py) compute our architecture:
with our weights copied in, the stock generator and discriminator of each framework give our
networks' outputs; and both idiomatic loops run through both lazy regularizers."""
from __future__ import annotations

import numpy as np
import pytest

import gan_diffusion
from benchmarks import idiomatic_stylegan2 as sg2
from gan_diffusion.models import stylegan2 as core
from gan_diffusion.registry import make_config

SMALL = dict(image_shape=(16, 16, 3), channel_base=256, channel_max=16, latent_dim=16, w_dim=16,
             mapping_layers=2, batch_size=4)


def perturbed_weights(cfg) -> dict[str, np.ndarray]:
    """The seeded init with every bias, scale and affine moved off its constant init (so a
    swapped or untransposed weight shows), noise strengths kept at 0 (the stock layers draw
    their own noise)."""
    rng = np.random.default_rng(1)
    w = core.init_weights(cfg)
    return {k: v if k.endswith("noise_strength") else (v + 0.3 * rng.standard_normal(v.shape)).astype(v.dtype)
            for k, v in w.items()}


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_stock_networks_compute_ours(backend):
    cfg = make_config("stylegan2", **SMALL)
    ours = gan_diffusion.get_backend(backend).build("stylegan2", config=cfg)
    weights = perturbed_weights(cfg)
    ours.set_weights(weights)
    G, D = sg2.stock_networks(backend, cfg)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, cfg.latent_dim)).astype(np.float32)
    images = rng.uniform(-1, 1, (4, *cfg.image_shape)).astype(np.float32)     # NHWC
    if backend == "torch":
        import torch
        sg2.load_stock(G, D, cfg, weights)
        with torch.no_grad():
            img = G(G.map(torch.from_numpy(z))).permute(0, 2, 3, 1).numpy()
            logits = D(torch.from_numpy(images.transpose(0, 3, 1, 2))).reshape(-1).numpy()
    else:
        import tensorflow as tf
        G(G.map(tf.constant(z)))                                  # build, then load
        D(tf.constant(images))
        sg2.load_stock(G, D, cfg, weights)
        img = G(G.map(tf.constant(z))).numpy()
        logits = tf.reshape(D(tf.constant(images)), [-1]).numpy()
    expected = ours.forward_generator(z, net="generator", psi=1.0)
    assert np.abs(expected).max() > 0.1                           # not a vanishing output
    np.testing.assert_allclose(img, expected, atol=2e-4, rtol=1e-4)
    np.testing.assert_allclose(logits, ours.forward_discriminator(images), atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("backend", ["torch", "tf"])
def test_idiomatic_loop_trains(backend):
    """17 steps cover both lazy regularizers (path length at 0, 4, ..., R1 at 0 and 16)."""
    from benchmarks.idiomatic import IDIOMATIC

    cfg = make_config("stylegan2", **SMALL)
    batch = np.random.default_rng(0).integers(0, 256, (4, *cfg.image_shape), dtype=np.uint8)
    run = IDIOMATIC["stylegan2"][0 if backend == "torch" else 1](cfg, batch)
    run(17)
