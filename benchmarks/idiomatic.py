"""Each framework's own idiomatic training loop for our architectures (speed baselines).

    torch: a plain PyTorch loop over stock nn modules (the PyTorch DCGAN tutorial's order;
           the usual WGAN-GP loop with torch.autograd.grad for the penalty);
    Keras: a keras.Model subclass overriding `train_step`, run by `fit()` (the TF DCGAN
           tutorial's simultaneous G/D tapes; the keras.io WGAN-GP example's critic loop).

Every builder returns `run(n_steps)` that performs n_steps training steps (critic steps for
WGAN-GP, as our `train_step`) on a fixed batch, so benchmarks/frameworks.py times ours and
these the same way. Add a model: write its two builders and list them in IDIOMATIC.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def plans_of(model: str, cfg):
    """(generator plan, discriminator/critic plan) of a registered GAN's config."""
    import importlib

    from gan_diffusion.registry import get_spec

    plans = importlib.import_module(f"gan_diffusion.models.{get_spec(model).module}").networks(cfg)
    return plans["generator"], plans.get("discriminator", plans.get("critic"))


# -- DCGAN -----------------------------------------------------------------------------------
def torch_dcgan(cfg, batch: np.ndarray) -> Callable[[int], None]:
    import torch
    from torch import nn

    from stock import torch_net

    gp, dp = plans_of("dcgan", cfg)
    G, D = torch_net(gp, cfg.bn_momentum, cfg.bn_epsilon), torch_net(dp, cfg.bn_momentum, cfg.bn_epsilon)
    opt_g = torch.optim.Adam(G.parameters(), cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))
    bce = nn.BCEWithLogitsLoss()
    x = torch.from_numpy(batch.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)  # (N, C, H, W)
    ones, zeros = torch.ones(len(x)), torch.zeros(len(x))

    def run(n: int) -> None:
        for _ in range(n):
            fake = G(torch.randn(len(x), cfg.latent_dim))
            D.zero_grad()
            d_loss = bce(D(x).view(-1), ones) + bce(D(fake.detach()).view(-1), zeros)
            d_loss.backward()
            opt_d.step()
            G.zero_grad()
            g_loss = bce(D(fake).view(-1), ones)
            g_loss.backward()
            opt_g.step()
    return run


def keras_dcgan(cfg, batch: np.ndarray) -> Callable[[int], None]:
    import keras
    import tensorflow as tf

    from stock import keras_net

    gp, dp = plans_of("dcgan", cfg)
    G = keras_net(gp, cfg.bn_momentum, cfg.bn_epsilon, (cfg.latent_dim,))
    D = keras_net(dp, cfg.bn_momentum, cfg.bn_epsilon, tuple(cfg.image_shape))
    bce = keras.losses.BinaryCrossentropy(from_logits=True)

    class GAN(keras.Model):
        def __init__(self):
            super().__init__()
            self.G, self.D = G, D
            self.g_opt = keras.optimizers.Adam(cfg.learning_rate, cfg.beta1, cfg.beta2)
            self.d_opt = keras.optimizers.Adam(cfg.learning_rate, cfg.beta1, cfg.beta2)

        def train_step(self, x):
            z = tf.random.normal((tf.shape(x)[0], cfg.latent_dim))
            with tf.GradientTape() as gt, tf.GradientTape() as dt:
                fake = self.G(z, training=True)
                real_out, fake_out = self.D(x, training=True), self.D(fake, training=True)
                g_loss = bce(tf.ones_like(fake_out), fake_out)
                d_loss = bce(tf.ones_like(real_out), real_out) + bce(tf.zeros_like(fake_out), fake_out)
            self.g_opt.apply_gradients(zip(gt.gradient(g_loss, self.G.trainable_variables),
                                           self.G.trainable_variables))
            self.d_opt.apply_gradients(zip(dt.gradient(d_loss, self.D.trainable_variables),
                                           self.D.trainable_variables))
            return {"d_loss": d_loss, "g_loss": g_loss}

    return _keras_runner(GAN(), batch)


# -- WGAN-GP ---------------------------------------------------------------------------------
def torch_wgan_gp(cfg, batch: np.ndarray) -> Callable[[int], None]:
    import torch

    from stock import torch_net

    gp, cp = plans_of("wgan-gp", cfg)
    G, C = torch_net(gp, cfg.bn_momentum, cfg.bn_epsilon), torch_net(cp, cfg.bn_momentum, cfg.bn_epsilon)
    opt_g = torch.optim.Adam(G.parameters(), cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))
    opt_c = torch.optim.Adam(C.parameters(), cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))
    x = torch.from_numpy(batch.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)
    state = {"step": 0}

    def run(n: int) -> None:
        for _ in range(n):
            fake = G(torch.randn(len(x), cfg.latent_dim)).detach()
            eps = torch.rand(len(x), 1, 1, 1)
            x_hat = (eps * x + (1 - eps) * fake).requires_grad_(True)
            grad, = torch.autograd.grad(C(x_hat).sum(), x_hat, create_graph=True)
            penalty = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
            c_loss = C(fake).mean() - C(x).mean() + cfg.gp_weight * penalty
            opt_c.zero_grad()
            c_loss.backward()
            opt_c.step()
            state["step"] += 1
            if state["step"] % cfg.n_critic == 0:
                g_loss = -C(G(torch.randn(len(x), cfg.latent_dim))).mean()
                opt_g.zero_grad()
                g_loss.backward()
                opt_g.step()
    return run


def keras_wgan_gp(cfg, batch: np.ndarray) -> Callable[[int], None]:
    """keras.io's WGAN-GP example structure: one `train_step` per batch runs n_critic critic
    updates and one generator update; run(n) performs n critic steps (n / n_critic batches)."""
    import keras
    import tensorflow as tf

    from stock import keras_net

    gp, cp = plans_of("wgan-gp", cfg)
    G = keras_net(gp, cfg.bn_momentum, cfg.bn_epsilon, (cfg.latent_dim,))
    C = keras_net(cp, cfg.bn_momentum, cfg.bn_epsilon, tuple(cfg.image_shape))

    class WGANGP(keras.Model):
        def __init__(self):
            super().__init__()
            self.G, self.C = G, C
            self.g_opt = keras.optimizers.Adam(cfg.learning_rate, cfg.beta1, cfg.beta2)
            self.c_opt = keras.optimizers.Adam(cfg.learning_rate, cfg.beta1, cfg.beta2)

        def gradient_penalty(self, real, fake):
            eps = tf.random.uniform((tf.shape(real)[0], 1, 1, 1))
            x_hat = eps * real + (1 - eps) * fake
            with tf.GradientTape() as tape:
                tape.watch(x_hat)
                out = self.C(x_hat, training=True)
            grad = tape.gradient(out, [x_hat])[0]
            norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]))
            return tf.reduce_mean((norm - 1.0) ** 2)

        def train_step(self, x):
            n = tf.shape(x)[0]
            for _ in range(cfg.n_critic):
                z = tf.random.normal((n, cfg.latent_dim))
                with tf.GradientTape() as tape:
                    fake = self.G(z, training=True)
                    c_loss = (tf.reduce_mean(self.C(fake, training=True))
                              - tf.reduce_mean(self.C(x, training=True))
                              + cfg.gp_weight * self.gradient_penalty(x, fake))
                grads = tape.gradient(c_loss, self.C.trainable_variables)
                self.c_opt.apply_gradients(zip(grads, self.C.trainable_variables))
            z = tf.random.normal((n, cfg.latent_dim))
            with tf.GradientTape() as tape:
                g_loss = -tf.reduce_mean(self.C(self.G(z, training=True), training=True))
            grads = tape.gradient(g_loss, self.G.trainable_variables)
            self.g_opt.apply_gradients(zip(grads, self.G.trainable_variables))
            return {"c_loss": c_loss, "g_loss": g_loss}

    fit = _keras_runner(WGANGP(), batch)
    return lambda n: fit(max(1, n // cfg.n_critic))


def _keras_runner(model, batch: np.ndarray) -> Callable[[int], None]:
    import tensorflow as tf

    x = tf.constant(batch.astype(np.float32) / 127.5 - 1)          # (N, H, W, C)
    model.compile()
    data = tf.data.Dataset.from_tensors(x).repeat()

    def run(n: int) -> None:
        model.fit(data, epochs=1, steps_per_epoch=n, verbose=0)
    return run


# model -> (torch builder, Keras builder); each builder: (config, uint8 batch) -> run(n_steps)
IDIOMATIC = {"dcgan": (torch_dcgan, keras_dcgan), "wgan-gp": (torch_wgan_gp, keras_wgan_gp)}
