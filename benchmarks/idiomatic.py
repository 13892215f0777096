"""Each framework's own idiomatic training loop for our architectures (speed baselines).

    torch: a plain PyTorch loop over stock nn modules (the PyTorch DCGAN tutorial's order;
           the usual WGAN-GP loop with torch.autograd.grad for the penalty; the usual VAE
           loop with torch.randn_like for eps; DDPM: torch.randint / torch.randn noise, time
           features and the forward process in torch, torch.optim.Adam, an EMA with
           torch._foreach_lerp_);
    Keras: a keras.Model subclass overriding `train_step`, run by `fit()` (the TF DCGAN
           tutorial's simultaneous G/D tapes; the keras.io WGAN-GP example's critic loop; the
           keras.io VAE example's train_step; DDPM: the keras.io DDIM example's shape of
           train_step with tf.random noise and an EMA by `assign`).

The DDPM baselines reuse our U-Net module (torch nn.Module / keras.Model: there is no stock
U-Net in either framework); what differs is the loop around it: noise, time features and
the forward process drawn and computed in the framework instead of NumPy, and the EMA.

StyleGAN2's two loops (stock modules and stylegan2-ada's training phases) are in
benchmarks/idiomatic_stylegan2.py.

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

    from .stock import torch_net

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

    from .stock import keras_net

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

    from .stock import torch_net

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

    from .stock import keras_net

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


# -- VAE -------------------------------------------------------------------------------------
VAE_BN = (0.1, 1e-5)   # the VAE has no BatchNorm; stock builders still take (momentum, eps)


def vae_plans(cfg):
    """(encoder body plan, decoder plan) of the VAE: the encoder plan ends with the two
    heads z_mean and z_log_var (dense layers reading the same hidden vector)."""
    from gan_diffusion.models.vae import networks

    plans = networks(cfg)
    return plans["encoder"][:-2], plans["decoder"]


def torch_vae(cfg, batch: np.ndarray) -> Callable[[int], None]:
    import torch
    import torch.nn.functional as F
    from torch import nn

    from .stock import torch_net

    body_plan, dec_plan = vae_plans(cfg)
    body, D = torch_net(body_plan, *VAE_BN), torch_net(dec_plan, *VAE_BN)
    hidden = body_plan[-2].out_ch                                     # Dense(16) before its ReLU
    mean, log_var = nn.Linear(hidden, cfg.latent_dim), nn.Linear(hidden, cfg.latent_dim)
    params = [p for m in (body, mean, log_var, D) for p in m.parameters()]
    opt = torch.optim.Adam(params, cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))
    x = torch.from_numpy(batch.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)   # (N, C, H, W)

    def run(n: int) -> None:
        for _ in range(n):
            h = body(x)
            mu, lv = mean(h), log_var(h)
            z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
            recon = F.binary_cross_entropy_with_logits(D(z), x, reduction="sum") / len(x)
            kl = -0.5 * torch.sum(1 + lv - mu ** 2 - lv.exp()) / len(x)
            opt.zero_grad()
            (recon + kl).backward()
            opt.step()
    return run


def keras_vae(cfg, batch: np.ndarray) -> Callable[[int], None]:
    import keras
    import tensorflow as tf
    from keras import layers as L

    from .stock import keras_net

    body_plan, dec_plan = vae_plans(cfg)
    inp = keras.Input(tuple(cfg.image_shape))
    h = keras_net(body_plan, *VAE_BN, tuple(cfg.image_shape))(inp)
    encoder = keras.Model(inp, [L.Dense(cfg.latent_dim)(h), L.Dense(cfg.latent_dim)(h)])
    decoder = keras_net(dec_plan, *VAE_BN, (cfg.latent_dim,))

    class VAE(keras.Model):          # the keras.io VAE example's train_step (logits + BCE)
        def __init__(self):
            super().__init__()
            self.encoder, self.decoder = encoder, decoder
            self.opt = keras.optimizers.Adam(cfg.learning_rate, cfg.beta1, cfg.beta2)

        def train_step(self, x):
            x = (x + 1.0) / 2.0                                       # [-1, 1] -> [0, 1]
            with tf.GradientTape() as tape:
                mu, lv = self.encoder(x, training=True)
                z = mu + tf.exp(0.5 * lv) * tf.random.normal(tf.shape(mu))
                logits = self.decoder(z, training=True)
                recon = tf.reduce_mean(tf.reduce_sum(
                    tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), [1, 2, 3]))
                kl = tf.reduce_mean(-0.5 * tf.reduce_sum(1 + lv - mu ** 2 - tf.exp(lv), 1))
                loss = recon + kl
            weights = self.encoder.trainable_variables + self.decoder.trainable_variables
            self.opt.apply_gradients(zip(tape.gradient(loss, weights), weights))
            return {"loss": loss}

    return _keras_runner(VAE(), batch)


# -- DDPM ------------------------------------------------------------------------------------
def _time_features(t, dim: int, ops):
    """Sinusoidal features of timesteps t (N,) in the framework (`ops`: torch or tf math)."""
    half = dim // 2
    freqs = np.exp(-np.log(10000.0) * np.arange(half) / (half - 1)).astype(np.float32)
    args = ops["float"](t)[:, None] * ops["const"](freqs)[None, :]
    return ops["cat"]([ops["sin"](args), ops["cos"](args)])


def _alphas_cumprod(cfg) -> np.ndarray:
    betas = np.linspace(cfg.beta_start, cfg.beta_end, cfg.timesteps, dtype=np.float64)
    return np.cumprod(1.0 - betas).astype(np.float32)


def torch_ddpm(cfg, batch: np.ndarray) -> Callable[[int], None]:
    import torch
    import torch.nn.functional as F

    from gan_diffusion.torch_backend.unet import UNet

    net, ema = UNet(cfg, "unet"), UNet(cfg, "ema")
    ema.load_state_dict(net.state_dict())
    opt = torch.optim.Adam(net.parameters(), cfg.learning_rate, betas=(cfg.beta1, cfg.beta2))
    abar = torch.from_numpy(_alphas_cumprod(cfg))
    ops = {"float": lambda t: t.float(), "const": torch.from_numpy,
           "cat": lambda xs: torch.cat(xs, dim=1), "sin": torch.sin, "cos": torch.cos}
    x0 = torch.from_numpy(batch.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)
    ema_w, net_w = list(ema.parameters()), list(net.parameters())

    def run(n: int) -> None:
        for _ in range(n):
            t = torch.randint(0, cfg.timesteps, (len(x0),))
            z = torch.randn_like(x0)
            a = abar[t].view(-1, 1, 1, 1)
            x_t = a.sqrt() * x0 + (1 - a).sqrt() * z
            loss = F.mse_loss(net(x_t, _time_features(t, cfg.base_channels, ops), None), z)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                torch._foreach_lerp_(ema_w, net_w, 1.0 - cfg.ema_decay)
    return run


def keras_ddpm(cfg, batch: np.ndarray) -> Callable[[int], None]:
    import keras
    import tensorflow as tf

    from gan_diffusion.tf_backend.unet import UNet

    net, ema = UNet(cfg, "unet"), UNet(cfg, "ema")
    abar = tf.constant(_alphas_cumprod(cfg))
    ops = {"float": lambda t: tf.cast(t, tf.float32), "const": tf.constant,
           "cat": lambda xs: tf.concat(xs, axis=1), "sin": tf.sin, "cos": tf.cos}

    class Diffusion(keras.Model):
        def __init__(self):
            super().__init__()
            self.net, self.ema = net, ema
            self.opt = keras.optimizers.Adam(cfg.learning_rate, cfg.beta1, cfg.beta2)

        def train_step(self, x0):
            n = tf.shape(x0)[0]
            t = tf.random.uniform((n,), 0, cfg.timesteps, tf.int32)
            z = tf.random.normal(tf.shape(x0))
            a = tf.reshape(tf.gather(abar, t), (-1, 1, 1, 1))
            x_t = tf.sqrt(a) * x0 + tf.sqrt(1 - a) * z
            with tf.GradientTape() as tape:
                eps = self.net(x_t, _time_features(t, cfg.base_channels, ops), None, training=True)
                loss = tf.reduce_mean(tf.square(eps - z))
            w = self.net.trainable_variables
            self.opt.apply_gradients(zip(tape.gradient(loss, w), w))
            for e, v in zip(self.ema.weights, self.net.weights):
                e.assign(cfg.ema_decay * e + (1.0 - cfg.ema_decay) * v)
            return {"loss": loss}

    model = Diffusion()
    features = _time_features(tf.zeros((1,), tf.int32), cfg.base_channels, ops)
    for m in (net, ema):                                              # build both U-Nets
        m(tf.zeros((1, *cfg.image_shape)), features, None)
    return _keras_runner(model, batch)


def _keras_runner(model, batch: np.ndarray) -> Callable[[int], None]:
    import tensorflow as tf

    x = tf.constant(batch.astype(np.float32) / 127.5 - 1)          # (N, H, W, C)
    model.compile()
    data = tf.data.Dataset.from_tensors(x).repeat()

    def run(n: int) -> None:
        model.fit(data, epochs=1, steps_per_epoch=n, verbose=0)
    return run


from .idiomatic_stylegan2 import keras_stylegan2, torch_stylegan2  # noqa: E402 (after _keras_runner)

# model -> (torch builder, Keras builder); each builder: (config, uint8 batch) -> run(n_steps)
IDIOMATIC = {"dcgan": (torch_dcgan, keras_dcgan), "wgan-gp": (torch_wgan_gp, keras_wgan_gp),
             "vae": (torch_vae, keras_vae), "ddpm": (torch_ddpm, keras_ddpm),
             "stylegan2": (torch_stylegan2, keras_stylegan2)}
