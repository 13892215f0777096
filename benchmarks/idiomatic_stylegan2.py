"""StyleGAN2 as each framework's users write it (speed baselines for benchmarks/frameworks.py).

    torch: nn.Module layers with nn.Parameters (EqualLinear, a modulated conv with noise
           injection, ToRGB, residual D blocks: the module structure of NVIDIA's
           stylegan2-ada-pytorch and rosinality's stylegan2-pytorch), torch.randn noise drawn
           in the forward pass, and stylegan2-ada's training phases: G main, G path-length
           regularization every pl_interval steps (its own forward at half the batch,
           pl_batch_shrink = 2), D main, D R1 every r1_interval steps (its own forward), each
           phase with its own backward and torch.optim.Adam step; the EMA by lerp.
    Keras: keras.layers.Layer subclasses with add_weight, a keras.Model whose `train_step`
           runs the same four phases (the lazy ones under tf.cond on a step counter), run by
           `fit()`, tf.random noise, the EMA by `assign`.

Both compute the architecture of gan_diffusion/models/stylegan2.py (same widths, kernels,
mapping depth, resampling) with the phases of the official loop; only the FIR resampling
op (upfirdn2d, a depthwise convolution: stylegan2-ada's reference path) and the minibatch
stddev are ours, as the DDPM baselines reuse our U-Net. The per-sample demodulation follows
the official form (weights scaled per sample, (N, O, I, k, k), summed). Unconditional only;
weights at the frameworks' own N(0, 1) equalized-lr init: only speed is measured.

Builders: (config, uint8 batch NHWC) -> run(n_steps); `torch_generator` / `keras_generator`
give the stock generator for the sampling-step timing. `stock_weights` maps our canonical
weights onto the stock layers, so tests/benchmarks checks that the stock networks compute
ours (the same architecture, so the timing ratio is about the implementation).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

GAIN = math.sqrt(2.0)     # lrelu gain of the official code


def stock_weights(cfg, w: dict[str, np.ndarray], channels_last: bool) -> dict[str, np.ndarray]:
    """Our canonical weights (models/stylegan2.py names) under the stock layers' names
    ("G.convs.0.weight", "D.fc.bias", ...); `channels_last`: Keras layouts (dense (in, out),
    conv (k, k, in, out)), else torch's ((out, in), (out, in, k, k), const (C, 4, 4))."""
    dense = (lambda a: a) if channels_last else (lambda a: a.T)
    conv = (lambda a: a) if channels_last else (lambda a: a.transpose(3, 2, 0, 1))
    out = {}
    for i in range(cfg.mapping_layers):
        out[f"G.mapping.{i}.weight"] = dense(w[f"generator/mapping/fc{i}/weight"])
        out[f"G.mapping.{i}.bias"] = w[f"generator/mapping/fc{i}/bias"]
    c4 = w["generator/synthesis/const"]
    out["G.const"] = c4 if channels_last else c4.transpose(2, 0, 1)
    names = [f"b{2 ** k}/{n}" for k in range(2, cfg.log2_res + 1)
             for n in (("conv0",) if k == 2 else ("conv0", "conv1"))]
    stock = [f"G.convs.{j}" for j in range(len(names))] + [f"G.torgbs.{j}" for j in range(cfg.log2_res - 1)]
    names += [f"b{2 ** k}/torgb" for k in range(2, cfg.log2_res + 1)]
    for ours, st in zip(names, stock):
        p = f"generator/synthesis/{ours}"
        out[f"{st}.affine.weight"] = dense(w[f"{p}/affine/weight"])
        out[f"{st}.affine.bias"] = w[f"{p}/affine/bias"]
        out[f"{st}.weight"], out[f"{st}.bias"] = conv(w[f"{p}/weight"]), w[f"{p}/bias"]
        if not ours.endswith("torgb"):
            out[f"{st}.noise_strength"] = w[f"{p}/noise_strength"].reshape(())
    d, r = "discriminator", cfg.image_shape[0]
    blocks = [(f"b{2 ** k}/conv0", f"b{2 ** k}/conv1", f"b{2 ** k}/skip") for k in range(cfg.log2_res, 2, -1)]
    pairs = [(f"b{r}/fromrgb", "D.fromrgb"), ("b4/conv", "D.conv")]
    pairs += [(o, f"D.blocks.{j}.{n}") for j, blk in enumerate(blocks)
              for o, n in zip(blk, ("conv0", "conv1", "skip"))]
    for ours, st in pairs:
        out[f"{st}.weight"] = conv(w[f"{d}/{ours}/weight"])
        if f"{d}/{ours}/bias" in w:
            out[f"{st}.bias"] = w[f"{d}/{ours}/bias"]
    fc = w[f"{d}/b4/fc/weight"]                                   # rows in (h, w, c) order
    if not channels_last:                                         # torch flattens (c, h, w)
        c = fc.shape[1]
        fc = fc.reshape(4, 4, c, c).transpose(2, 0, 1, 3).reshape(16 * c, c)
    out["D.fc.weight"], out["D.fc.bias"] = dense(fc), w[f"{d}/b4/fc/bias"]
    out["D.out.weight"], out["D.out.bias"] = dense(w[f"{d}/b4/out/weight"]), w[f"{d}/b4/out/bias"]
    return out


def load_stock(G, D, cfg, weights: dict[str, np.ndarray]) -> None:
    """Set the stock G and D (torch modules or Keras models) to our canonical weights."""
    keras_layout = not hasattr(G, "named_parameters")
    for name, a in stock_weights(cfg, weights, keras_layout).items():
        obj = {"G": G, "D": D}[name[0]]
        for part in name.split(".")[1:]:
            obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
        if keras_layout:
            obj.assign(a)
        else:
            import torch
            with torch.no_grad():
                obj.copy_(torch.from_numpy(np.array(a)))   # (ascontiguousarray makes 0-d 1-d)


def stock_networks(backend: str, cfg):
    """(G, D): the stock generator and discriminator of `backend` ("torch" or "tf")."""
    Generator, Discriminator = (_torch_modules if backend == "torch" else _keras_modules)()
    return Generator(cfg), Discriminator(cfg)


# -- PyTorch -----------------------------------------------------------------------------
def _torch_modules():
    import torch
    import torch.nn.functional as F
    from torch import nn

    from gan_diffusion.torch_backend.stylegan2 import downsample2d, minibatch_stddev, upsample2d

    class EqualLinear(nn.Module):
        def __init__(self, i, o, bias_init=0.0, lr_mul=1.0, act=False):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(o, i) / lr_mul)
            self.bias = nn.Parameter(torch.full((o,), float(bias_init)))
            self.scale, self.lr_mul, self.act = lr_mul / math.sqrt(i), lr_mul, act

        def forward(self, x):                                     # (N, i) -> (N, o)
            x = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
            return F.leaky_relu(x, 0.2) * GAIN if self.act else x

    class EqualConv(nn.Module):                                   # discriminator conv
        def __init__(self, i, o, k, bias=True, act=True, down=False):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(o, i, k, k))
            self.bias = nn.Parameter(torch.zeros(o)) if bias else None
            self.scale, self.act, self.down = 1 / math.sqrt(i * k * k), act, down

        def forward(self, x):                                     # (N, i, H, W) -> (N, o, H', W')
            if self.down:
                x = downsample2d(x)
            x = F.conv2d(x, self.weight * self.scale, self.bias, padding=self.weight.shape[-1] // 2)
            return F.leaky_relu(x, 0.2) * GAIN if self.act else x

    class ModConv(nn.Module):                   # SynthesisLayer (noise, act) or ToRGB (neither)
        def __init__(self, i, o, k, w_dim, up=False, rgb=False):
            super().__init__()
            self.affine = EqualLinear(w_dim, i, bias_init=1.0)
            self.weight = nn.Parameter(torch.randn(o, i, k, k))
            self.bias = nn.Parameter(torch.zeros(o))
            self.noise_strength = None if rgb else nn.Parameter(torch.zeros([]))
            self.scale, self.up, self.rgb = 1 / math.sqrt(i * k * k), up, rgb

        def forward(self, x, w):                                  # x (N, i, H, W), w (N, w_dim)
            s = self.affine(w)                                    # (N, i)
            wt = self.weight * self.scale
            if self.up:
                x = upsample2d(x)
            x = F.conv2d(x * s[:, :, None, None], wt, padding=wt.shape[-1] // 2)
            if self.rgb:
                return x + self.bias[None, :, None, None]
            d = ((wt[None] * s[:, None, :, None, None]).square().sum(dim=(2, 3, 4)) + 1e-8).rsqrt()
            x = x * d[:, :, None, None]                           # demodulation, (N, o)
            n, _, h, wd = x.shape
            x = x + torch.randn(n, 1, h, wd, dtype=x.dtype) * self.noise_strength
            return F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * GAIN

    class Generator(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.cfg = cfg
            dims = [cfg.latent_dim] + [cfg.w_dim] * cfg.mapping_layers
            self.mapping = nn.ModuleList(EqualLinear(a, b, lr_mul=cfg.mapping_lr_mul, act=True)
                                         for a, b in zip(dims, dims[1:]))
            self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
            self.const = nn.Parameter(torch.randn(cfg.channels(4), 4, 4))
            self.convs, self.torgbs = nn.ModuleList(), nn.ModuleList()
            c = cfg.channels(4)
            self.convs.append(ModConv(c, c, 3, cfg.w_dim))
            self.torgbs.append(ModConv(c, cfg.image_shape[2], 1, cfg.w_dim, rgb=True))
            for k in range(3, cfg.log2_res + 1):
                o = cfg.channels(2 ** k)
                self.convs.extend([ModConv(c, o, 3, cfg.w_dim, up=True), ModConv(o, o, 3, cfg.w_dim)])
                self.torgbs.append(ModConv(o, cfg.image_shape[2], 1, cfg.w_dim, rgb=True))
                c = o

        def map(self, z, update_w_avg=False):                     # (N, z) -> ws (N, num_ws, w)
            x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
            for fc in self.mapping:
                x = fc(x)
            if update_w_avg:
                self.w_avg.copy_(x.detach().mean(0).lerp(self.w_avg, self.cfg.w_avg_beta))
            return x[:, None].repeat(1, self.cfg.num_ws, 1)

        def forward(self, ws):                                    # (N, num_ws, w) -> (N, C, R, R)
            x = self.const[None].repeat(ws.shape[0], 1, 1, 1)
            x = self.convs[0](x, ws[:, 0])
            img = self.torgbs[0](x, ws[:, 1])
            for j, rgb in enumerate(self.torgbs[1:]):
                i = 1 + 2 * j                                     # ws index of this block's conv0
                x = self.convs[i + 1](self.convs[i](x, ws[:, i]), ws[:, i + 1])
                img = upsample2d(img) + rgb(x, ws[:, i + 2])
            return img

    class DBlock(nn.Module):                                      # residual block, r -> r / 2
        def __init__(self, i, o):
            super().__init__()
            self.conv0, self.conv1 = EqualConv(i, i, 3), EqualConv(i, o, 3, down=True)
            self.skip = EqualConv(i, o, 1, bias=False, act=False, down=True)

        def forward(self, x):
            return (self.skip(x) + self.conv1(self.conv0(x))) * math.sqrt(0.5)

    class Discriminator(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            r, c = cfg.image_shape[0], cfg.channels(4)
            self.fromrgb = EqualConv(cfg.image_shape[2], cfg.channels(r), 1)
            self.blocks = nn.Sequential(*(DBlock(cfg.channels(2 ** k), cfg.channels(2 ** (k - 1)))
                                          for k in range(cfg.log2_res, 2, -1)))
            self.conv = EqualConv(c + 1, c, 3)
            self.fc, self.out = EqualLinear(16 * c, c, act=True), EqualLinear(c, 1)

        def forward(self, img):                                   # (N, C, R, R) -> (N, 1)
            x = self.conv(minibatch_stddev(self.blocks(self.fromrgb(img))))
            return self.out(self.fc(x.flatten(1)))

    return Generator, Discriminator


def torch_generator(cfg):
    """The stock torch generator and its sampler z (N, latent) -> images (N, C, R, R)."""
    import torch

    G = _torch_modules()[0](cfg).eval()

    def sample(z):
        with torch.no_grad():
            return G(G.map(z))
    return sample


def torch_stylegan2(cfg, batch: np.ndarray) -> Callable[[int], None]:
    import copy

    import torch
    import torch.nn.functional as F

    Generator, Discriminator = _torch_modules()
    G, D = Generator(cfg), Discriminator(cfg)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), *_lazy(cfg, cfg.pl_interval))
    opt_d = torch.optim.Adam(D.parameters(), *_lazy(cfg, cfg.r1_interval))
    x = torch.from_numpy(batch.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)  # (N, C, H, W)
    pl_mean = torch.zeros([])
    state = {"step": 0}

    def run_G(n, update_w_avg=False):                             # style mixing, stylegan2-ada's
        z = torch.randn(n, cfg.latent_dim)
        ws = G.map(z, update_w_avg)
        cutoff = torch.empty([], dtype=torch.int64).random_(1, cfg.num_ws)
        cutoff = torch.where(torch.rand([]) < cfg.mixing_prob, cutoff, torch.full_like(cutoff, cfg.num_ws))
        ws[:, cutoff:] = G.map(torch.randn_like(z))[:, cutoff:]
        return G(ws), ws

    def phase(opt, module, loss):
        module.requires_grad_(True)
        opt.zero_grad(set_to_none=True)
        loss().backward()
        opt.step()
        module.requires_grad_(False)

    def g_main():
        img, _ = run_G(len(x), update_w_avg=True)
        return F.softplus(-D(img)).mean()

    def g_pl():
        img, ws = run_G(len(x) // 2)
        noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        grad, = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grad.square().sum(2).mean(1).sqrt()             # (N / 2,)
        mean = pl_mean.lerp(lengths.mean(), cfg.pl_decay)
        pl_mean.copy_(mean.detach())
        return (lengths - mean).square().mean() * cfg.pl_weight * cfg.pl_interval

    def d_main():
        with torch.no_grad():
            fake, _ = run_G(len(x))
        return F.softplus(D(fake)).mean() + F.softplus(-D(x)).mean()

    def d_r1():
        real = x.detach().requires_grad_(True)
        grad, = torch.autograd.grad(D(real).sum(), real, create_graph=True)
        return grad.square().sum(dim=(1, 2, 3)).mean() * (cfg.r1_gamma / 2) * cfg.r1_interval

    G.requires_grad_(False)
    D.requires_grad_(False)
    beta = cfg.ema_beta()

    def run(n: int) -> None:
        for _ in range(n):
            i = state["step"]
            phase(opt_g, G, g_main)
            if i % cfg.pl_interval == 0:
                phase(opt_g, G, g_pl)
            phase(opt_d, D, d_main)
            if i % cfg.r1_interval == 0:
                phase(opt_d, D, d_r1)
            with torch.no_grad():
                for pe, p in zip(G_ema.parameters(), G.parameters()):
                    pe.copy_(p.lerp(pe, beta))
                for be, b in zip(G_ema.buffers(), G.buffers()):
                    be.copy_(b)
            state["step"] += 1
    return run


def _lazy(cfg, interval: int) -> tuple[float, tuple[float, float]]:
    """Adam lr and betas corrected for a regularizer every `interval` steps (the official
    mb_ratio = interval / (interval + 1))."""
    c = interval / (interval + 1)
    return cfg.learning_rate * c, (cfg.beta1 ** c, cfg.beta2 ** c)


# -- Keras ---------------------------------------------------------------------------------
def _keras_modules():
    import keras
    import tensorflow as tf

    from gan_diffusion.tf_backend.stylegan2 import downsample2d, minibatch_stddev, upsample2d

    normal = keras.initializers.RandomNormal(0.0, 1.0)

    def lrelu(x):
        return tf.nn.leaky_relu(x, 0.2) * GAIN

    class EqualDense(keras.layers.Layer):
        def __init__(self, i, o, bias_init=0.0, lr_mul=1.0, act=False, **kw):
            super().__init__(**kw)
            self.weight = self.add_weight((i, o), keras.initializers.RandomNormal(0.0, 1.0 / lr_mul))
            self.bias = self.add_weight((o,), keras.initializers.Constant(bias_init))
            self.scale, self.lr_mul, self.act = lr_mul / math.sqrt(i), lr_mul, act

        def call(self, x):                                        # (N, i) -> (N, o)
            x = x @ (self.weight * self.scale) + self.bias * self.lr_mul
            return lrelu(x) if self.act else x

    class EqualConv(keras.layers.Layer):                          # discriminator conv
        def __init__(self, i, o, k, bias=True, act=True, down=False, **kw):
            super().__init__(**kw)
            self.weight = self.add_weight((k, k, i, o), normal)
            self.bias = self.add_weight((o,), "zeros") if bias else None
            self.scale, self.act, self.down = 1 / math.sqrt(i * k * k), act, down

        def call(self, x):                                        # (N, H, W, i) -> (N, H', W', o)
            if self.down:
                x = downsample2d(x)
            x = tf.nn.conv2d(x, self.weight * self.scale, 1, "SAME")
            x = x + self.bias if self.bias is not None else x
            return lrelu(x) if self.act else x

    class ModConv(keras.layers.Layer):          # SynthesisLayer (noise, act) or ToRGB (neither)
        def __init__(self, i, o, k, w_dim, up=False, rgb=False, **kw):
            super().__init__(**kw)
            self.affine = EqualDense(w_dim, i, bias_init=1.0)
            self.weight = self.add_weight((k, k, i, o), normal)
            self.bias = self.add_weight((o,), "zeros")
            self.noise_strength = None if rgb else self.add_weight((), "zeros")
            self.scale, self.up, self.rgb = 1 / math.sqrt(i * k * k), up, rgb

        def call(self, x, w):                                     # x (N, H, W, i), w (N, w_dim)
            s = self.affine(w)                                    # (N, i)
            wt = self.weight * self.scale
            if self.up:
                x = upsample2d(x)
            x = tf.nn.conv2d(x * s[:, None, None, :], wt, 1, "SAME")
            if self.rgb:
                return x + self.bias
            d = tf.math.rsqrt(tf.reduce_sum(tf.square(wt[None] * s[:, None, None, :, None]),
                                            [1, 2, 3]) + 1e-8)    # demodulation, (N, o)
            x = x * d[:, None, None, :]
            shape = tf.shape(x)
            x = x + tf.random.normal([shape[0], shape[1], shape[2], 1]) * self.noise_strength
            return lrelu(x + self.bias)

    class Generator(keras.Model):
        def __init__(self, cfg, **kw):
            super().__init__(**kw)
            self.cfg = cfg
            dims = [cfg.latent_dim] + [cfg.w_dim] * cfg.mapping_layers
            self.mapping = [EqualDense(a, b, lr_mul=cfg.mapping_lr_mul, act=True)
                            for a, b in zip(dims, dims[1:])]
            self.w_avg = self.add_weight((cfg.w_dim,), "zeros", trainable=False)
            c, rgb, wd = cfg.channels(4), cfg.image_shape[2], cfg.w_dim
            self.const = self.add_weight((4, 4, c), normal)
            self.convs, self.torgbs = [ModConv(c, c, 3, wd)], [ModConv(c, rgb, 1, wd, rgb=True)]
            for k in range(3, cfg.log2_res + 1):
                o = cfg.channels(2 ** k)
                self.convs += [ModConv(c, o, 3, wd, up=True), ModConv(o, o, 3, wd)]
                self.torgbs.append(ModConv(o, rgb, 1, wd, rgb=True))
                c = o

        def map(self, z, update_w_avg=False):                     # (N, z) -> ws (N, num_ws, w)
            x = z * tf.math.rsqrt(tf.reduce_mean(tf.square(z), 1, keepdims=True) + 1e-8)
            for fc in self.mapping:
                x = fc(x)
            if update_w_avg:
                mean = tf.reduce_mean(tf.stop_gradient(x), 0)
                self.w_avg.assign(mean + self.cfg.w_avg_beta * (self.w_avg - mean))
            return tf.repeat(x[:, None], self.cfg.num_ws, axis=1)

        def call(self, ws):                                       # (N, num_ws, w) -> (N, R, R, C)
            x = tf.repeat(self.const[None], tf.shape(ws)[0], axis=0)
            x = self.convs[0](x, ws[:, 0])
            img = self.torgbs[0](x, ws[:, 1])
            for j, rgb in enumerate(self.torgbs[1:]):
                i = 1 + 2 * j
                x = self.convs[i + 1](self.convs[i](x, ws[:, i]), ws[:, i + 1])
                img = upsample2d(img) + rgb(x, ws[:, i + 2])
            return img

    class DBlock(keras.layers.Layer):                             # residual block, r -> r / 2
        def __init__(self, i, o, **kw):
            super().__init__(**kw)
            self.conv0, self.conv1 = EqualConv(i, i, 3), EqualConv(i, o, 3, down=True)
            self.skip = EqualConv(i, o, 1, bias=False, act=False, down=True)

        def call(self, x):
            return (self.skip(x) + self.conv1(self.conv0(x))) * math.sqrt(0.5)

    class Discriminator(keras.Model):
        def __init__(self, cfg, **kw):
            super().__init__(**kw)
            r, c, ch = cfg.image_shape[0], cfg.channels(4), cfg.channels
            self.fromrgb = EqualConv(cfg.image_shape[2], ch(r), 1)
            self.blocks = [DBlock(ch(2 ** k), ch(2 ** (k - 1))) for k in range(cfg.log2_res, 2, -1)]
            self.conv = EqualConv(c + 1, c, 3)
            self.fc, self.out = EqualDense(16 * c, c, act=True), EqualDense(c, 1)

        def call(self, img):                                      # (N, R, R, C) -> (N, 1)
            x = self.fromrgb(img)
            for block in self.blocks:
                x = block(x)
            x = self.conv(minibatch_stddev(x))
            return self.out(self.fc(tf.reshape(x, [tf.shape(x)[0], -1])))

    return Generator, Discriminator


def keras_generator(cfg):
    """The stock Keras generator and its sampler z (N, latent) -> images (N, R, R, C)."""
    import tensorflow as tf

    G = _keras_modules()[0](cfg)
    return tf.function(lambda z: G(G.map(z), training=False))


def keras_stylegan2(cfg, batch: np.ndarray) -> Callable[[int], None]:
    import keras
    import tensorflow as tf

    from .idiomatic import _keras_runner

    Generator, Discriminator = _keras_modules()

    class StyleGAN2(keras.Model):
        def __init__(self):
            super().__init__()
            self.G, self.D, self.G_ema = Generator(cfg), Discriminator(cfg), Generator(cfg)
            for g in (self.G, self.G_ema):                        # build
                g(g.map(tf.zeros((1, cfg.latent_dim))))
            self.D(tf.zeros((1, *cfg.image_shape)))
            self.G_ema.set_weights(self.G.get_weights())
            self.g_opt = keras.optimizers.Adam(*_keras_lazy(cfg, cfg.pl_interval))
            self.d_opt = keras.optimizers.Adam(*_keras_lazy(cfg, cfg.r1_interval))
            self.g_opt.build(self.G.trainable_variables)          # before the tf.cond branches
            self.d_opt.build(self.D.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
            self.pl_mean = tf.Variable(0.0, trainable=False)

        def run_G(self, n, update_w_avg=False):                   # style mixing
            z = tf.random.normal((n, cfg.latent_dim))
            ws = self.G.map(z, update_w_avg)
            cutoff = tf.random.uniform((), 1, cfg.num_ws, tf.int32)
            cutoff = tf.where(tf.random.uniform(()) < cfg.mixing_prob, cutoff, cfg.num_ws)
            mix = tf.cast(tf.range(cfg.num_ws) >= cutoff, ws.dtype)[None, :, None]
            ws = ws * (1 - mix) + self.G.map(tf.random.normal((n, cfg.latent_dim))) * mix
            return ws

        def phase(self, opt, net, loss_fn):
            with tf.GradientTape() as tape:
                loss = loss_fn()
            opt.apply_gradients(zip(tape.gradient(loss, net.trainable_variables),
                                    net.trainable_variables))
            return loss

        def g_main(self, n):
            return tf.reduce_mean(tf.nn.softplus(-self.D(self.G(self.run_G(n, True)))))

        def g_pl(self, n):
            ws = self.run_G(n // 2)
            with tf.GradientTape() as inner:
                inner.watch(ws)
                img = self.G(ws)
                noise = tf.random.normal(tf.shape(img)) / math.sqrt(cfg.image_shape[0] ** 2)
                dot = tf.reduce_sum(img * noise)
            g = inner.gradient(dot, ws)
            lengths = tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(g), 2), 1))  # (N / 2,)
            mean = self.pl_mean + cfg.pl_decay * (tf.reduce_mean(lengths) - self.pl_mean)
            self.pl_mean.assign(tf.stop_gradient(mean))
            return tf.reduce_mean(tf.square(lengths - mean)) * cfg.pl_weight * cfg.pl_interval

        def d_main(self, x):
            fake = tf.stop_gradient(self.G(self.run_G(tf.shape(x)[0])))
            return (tf.reduce_mean(tf.nn.softplus(self.D(fake)))
                    + tf.reduce_mean(tf.nn.softplus(-self.D(x))))

        def d_r1(self, x):
            with tf.GradientTape() as inner:
                inner.watch(x)
                logits = self.D(x)
            g = inner.gradient(logits, x)
            return (tf.reduce_mean(tf.reduce_sum(tf.square(g), [1, 2, 3]))
                    * (cfg.r1_gamma / 2) * cfg.r1_interval)

        def train_step(self, x):
            n = tf.shape(x)[0]
            zero = tf.constant(0.0)
            g_loss = self.phase(self.g_opt, self.G, lambda: self.g_main(n))
            pl = tf.cond(self.step % cfg.pl_interval == 0,
                         lambda: self.phase(self.g_opt, self.G, lambda: self.g_pl(n)), lambda: zero)
            d_loss = self.phase(self.d_opt, self.D, lambda: self.d_main(x))
            r1 = tf.cond(self.step % cfg.r1_interval == 0,
                         lambda: self.phase(self.d_opt, self.D, lambda: self.d_r1(x)), lambda: zero)
            beta = cfg.ema_beta()
            for e, v in zip(self.G_ema.trainable_variables, self.G.trainable_variables):
                e.assign(v + beta * (e - v))
            for e, v in zip(self.G_ema.non_trainable_variables, self.G.non_trainable_variables):
                e.assign(v)
            self.step.assign_add(1)
            return {"g_loss": g_loss, "pl": pl, "d_loss": d_loss, "r1": r1}

    return _keras_runner(StyleGAN2(), batch)


def _keras_lazy(cfg, interval: int) -> tuple[float, float, float]:
    lr, (b1, b2) = _lazy(cfg, interval)
    return lr, b1, b2
