"""StyleGAN2 in TensorFlow. Mirrors gan_diffusion/torch_backend/stylegan2.py line for line.

Weights are keras.Variables in the canonical channels-last layout (models/stylegan2.py
`weight_specs`); activations are NHWC. Shapes in the docstrings of models/stylegan2.py.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from gan_diffusion.models import stylegan2 as core
from gan_diffusion.models.stylegan2 import LRELU_GAIN, StyleGAN2Config, equalized_gain
from gan_diffusion.models.stylegan2_ref import fir_filter
from gan_diffusion.tf_backend.gan import GANModel
from gan_diffusion.tf_backend.optimizers import make_adam


# -- operations -------------------------------------------------------------------------
def upfirdn2d(x: tf.Tensor, f: np.ndarray, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> tf.Tensor:
    """Zero-insertion upsampling, zero padding (before, after), true convolution with the
    2D FIR `f` per channel, then every `down`-th pixel: (N, H, W, C) -> (N, H', W', C).
    Channels are folded into the batch so a plain conv2d (with second derivatives) runs it."""
    n, h, w, c = (tf.shape(x)[0], x.shape[1], x.shape[2], x.shape[3])
    x = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [-1, h, w, 1])       # (N*C, H, W, 1)
    if up > 1:
        x = tf.pad(x[:, :, None, :, None, :], [[0, 0], [0, 0], [0, up - 1], [0, 0], [0, up - 1],
                                               [0, 0]])
        x = tf.reshape(x, [-1, h * up, w * up, 1])
    x = tf.pad(x, [[0, 0], list(pad), list(pad), [0, 0]])
    k = tf.constant(np.ascontiguousarray(f[::-1, ::-1])[:, :, None, None], x.dtype)
    x = tf.nn.conv2d(x, k, 1, "VALID")[:, ::down, ::down, :]
    return tf.transpose(tf.reshape(x, [n, c, x.shape[1], x.shape[2]]), [0, 2, 3, 1])


def _fir_kernel(gain: float, channels: int, dtype) -> tf.Tensor:
    """The [1,3,3,1] filter as a depthwise weight (4, 4, C, 1), flipped (conv correlates)."""
    k = np.ascontiguousarray(fir_filter(gain)[::-1, ::-1])
    return tf.constant(np.tile(k[:, :, None, None], (1, 1, channels, 1)), dtype)


def upsample2d(x: tf.Tensor) -> tf.Tensor:
    """upfirdn2d(x, f * 4, up=2, pad=(2, 1)) as a depthwise transposed conv (the adjoint of a
    stride-2 depthwise conv, cropped by one pixel): (N, H, W, C) -> (N, 2H, 2W, C), channels
    last, no transposes; about 2x faster than the folded form, backward included (issue 18)."""
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    size = tf.stack([tf.shape(x)[0], 2 * h + 2, 2 * w + 2, c])
    full = tf.nn.depthwise_conv2d_backprop_input(size, _fir_kernel(4.0, c, x.dtype), x,
                                                 [1, 2, 2, 1], "VALID")
    return full[:, 1:-1, 1:-1, :]


def downsample2d(x: tf.Tensor) -> tf.Tensor:
    """upfirdn2d(x, f, down=2, pad=(1, 1)) as one strided depthwise conv: (N, H, W, C) ->
    (N, H/2, W/2, C), computing only the kept pixels (7x faster than the folded form)."""
    x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
    return tf.nn.depthwise_conv2d(x, _fir_kernel(1.0, x.shape[3], x.dtype), [1, 2, 2, 1], "VALID")


def conv(x: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
    """'same' conv of NHWC x with a canonical (k, k, I, O) weight (already scaled)."""
    return tf.nn.conv2d(x, w, 1, "SAME")


def modulated_conv(x: tf.Tensor, w: tf.Tensor, styles: tf.Tensor, demod: bool = True
                   ) -> tf.Tensor:
    """Modulated (and demodulated) conv, in the non-fused form: scale the input channels by
    the styles (N, I), convolve, scale the outputs by 1 / sqrt(sum_{k,k,I} (w s)^2 + 1e-8)."""
    out = conv(x * styles[:, None, None, :], w)
    if demod:
        d = tf.math.rsqrt(tf.square(styles) @ tf.reduce_sum(tf.square(w), [0, 1]) + 1e-8)  # (N, O)
        out = out * d[:, None, None, :]
    return out


def minibatch_stddev(x: tf.Tensor, group: int = core.MBSTD_GROUP) -> tf.Tensor:
    """(N, H, W, C) -> (N, H, W, C + 1); groups are samples n, n + M, ... (M = N / G)."""
    n, h, w, c = x.shape
    g = max(d for d in range(1, min(group, n) + 1) if n % d == 0)
    y = tf.reshape(x, [g, n // g, h, w, c])
    y = tf.sqrt(tf.reduce_mean(tf.square(y - tf.reduce_mean(y, 0)), 0) + 1e-8)
    y = tf.tile(tf.reduce_mean(y, [1, 2, 3]), [g])                       # (N,)
    y = tf.broadcast_to(tf.reshape(y, [n, 1, 1, 1]), [n, h, w, 1])
    return tf.concat([x, y], axis=-1)


def lrelu(x: tf.Tensor) -> tf.Tensor:
    return tf.where(x > 0, x, x * 0.2) * LRELU_GAIN    # slope exact in float64


def dense(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | None, lr_mul: float = 1.0) -> tf.Tensor:
    """Equalized-lr fully connected layer: x @ (w * lr_mul / sqrt(in)) + b * lr_mul."""
    out = x @ (w * equalized_gain(w.shape[0], lr_mul))
    return out if b is None else out + b * lr_mul


def normalize(x: tf.Tensor) -> tf.Tensor:
    return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=1, keepdims=True) + 1e-8)


# -- the model ------------------------------------------------------------------------------
class StyleGAN2(GANModel):
    """StyleGAN2 generator (with its EMA) and residual discriminator, with their Adams."""

    def __init__(self, config: StyleGAN2Config):
        super().__init__(config)
        self.V: dict[str, keras.Variable] = {}
        self._tensors = {"generator": {}, "generator_ema": {}, "discriminator": {}}
        for name, (shape, _) in core.weight_specs(config).items():
            net, rest = name.split("/", 1)
            v = keras.Variable(np.zeros(shape, config.dtype), dtype=config.dtype,
                               trainable=not core.is_statistic(name), name=name.replace("/", "__"))
            self.V[name] = v
            self._tensors[net][rest] = (v, "param")
        self.layers = core.synthesis_layers(config)
        self.trainable = {net: [v for v, _ in ts.values() if v.trainable]
                          for net, ts in self._tensors.items()}
        g_int = config.pl_interval if config.pl_weight > 0 else 0
        d_int = config.r1_interval if config.r1_gamma > 0 else 0
        self.g_opt = make_adam(self.trainable["generator"], *self._adam(g_int), config.epsilon)
        self.d_opt = make_adam(self.trainable["discriminator"], *self._adam(d_int), config.epsilon)
        self._optimizers = {"generator": self.g_opt, "discriminator": self.d_opt}
        self.set_weights(core.init_weights(config))
        self._d_step = tf.function(self._d_step_impl, reduce_retracing=True)
        self._g_step = tf.function(self._g_step_impl, reduce_retracing=True)
        self._ema_step = tf.function(self._ema_step_impl)
        self._sample = tf.function(self._sample_impl, reduce_retracing=True)

    def _adam(self, interval: int) -> tuple[float, float, float]:
        c = self.config
        return c.lazy(interval) if interval else (c.learning_rate, c.beta1, c.beta2)

    def weight_shapes(self) -> dict:
        return core.stylegan2_weight_shapes(self.config)

    @property
    def P(self) -> dict[str, tf.Variable]:
        return {k: v.value for k, v in self.V.items()}

    # -- networks -----------------------------------------------------------------------
    def mapping(self, z: tf.Tensor, y: tf.Tensor | None, net: str = "generator") -> tf.Tensor:
        """z (N, latent_dim) [labels (N,)] -> w (N, w_dim)."""
        P, cfg = self.P, self.config
        x = normalize(z)
        if y is not None:
            e = tf.gather(P[f"{net}/mapping/embed/weight"], y) * equalized_gain(cfg.num_classes)
            x = tf.concat([x, normalize(e + P[f"{net}/mapping/embed/bias"])], axis=1)
        for i in range(cfg.mapping_layers):
            x = lrelu(dense(x, P[f"{net}/mapping/fc{i}/weight"], P[f"{net}/mapping/fc{i}/bias"],
                            cfg.mapping_lr_mul))
        return x

    def synthesis(self, ws: tf.Tensor, noises: list, net: str = "generator") -> tf.Tensor:
        """ws (N, num_ws, w_dim), per-conv noise (N, r, r, 1) or None (the constant noise)
        -> image (N, R, R, C)."""
        P = self.P
        c4 = P[f"{net}/synthesis/const"]
        x = tf.broadcast_to(c4[None], [tf.shape(ws)[0], *c4.shape])
        img, k = None, 0
        for name, ksize, _, _, idx in self.layers:
            p = f"{net}/synthesis/{name}"
            w = P[f"{p}/weight"]
            w = w * equalized_gain(w.shape[0] * w.shape[1] * w.shape[2])
            s = dense(ws[:, idx], P[f"{p}/affine/weight"], P[f"{p}/affine/bias"])
            if ksize == 1:
                rgb = modulated_conv(x, w, s, demod=False) + P[f"{p}/bias"]
                img = rgb if img is None else upsample2d(img) + rgb
                continue
            if name.endswith("conv0") and not name.startswith("b4/"):
                x = upsample2d(x)
            x = modulated_conv(x, w, s)
            nz = noises[k] if noises[k] is not None else P[f"{p}/noise_const"][None]
            x = x + nz * P[f"{p}/noise_strength"]
            x = lrelu(x + P[f"{p}/bias"])
            k += 1
        return img

    def discriminate(self, img: tf.Tensor, y: tf.Tensor | None) -> tf.Tensor:
        """Images (N, R, R, C) [labels] -> logits (N, 1)."""
        P, cfg = self.P, self.config
        res = cfg.image_shape[0]

        def cv(x, name, bias=True):
            w = P[f"discriminator/{name}/weight"]
            out = conv(x, w * equalized_gain(w.shape[0] * w.shape[1] * w.shape[2]))
            return out + P[f"discriminator/{name}/bias"] if bias else out

        x = lrelu(cv(img, f"b{res}/fromrgb"))
        for k in range(cfg.log2_res, 2, -1):
            r = 2 ** k
            skip = cv(downsample2d(x), f"b{r}/skip", bias=False)
            x = lrelu(cv(x, f"b{r}/conv0"))
            x = lrelu(cv(downsample2d(x), f"b{r}/conv1"))
            x = (x + skip) * math.sqrt(0.5)
        x = lrelu(cv(minibatch_stddev(x), "b4/conv"))
        x = tf.reshape(x, [x.shape[0], -1])                                # channels-last flatten
        x = lrelu(dense(x, P["discriminator/b4/fc/weight"], P["discriminator/b4/fc/bias"]))
        out = dense(x, P["discriminator/b4/out/weight"], P["discriminator/b4/out/bias"])
        if y is not None:
            cmap = tf.gather(P["discriminator/b4/embed/weight"], y)
            out = tf.reduce_sum(out * cmap, axis=1, keepdims=True) / math.sqrt(cmap.shape[1])
        return out

    def mixed_ws(self, z, z2, mix, y, net: str = "generator") -> tuple[tf.Tensor, tf.Tensor]:
        """(ws (N, num_ws, w_dim) with ws[:, mix == 1] from z2, w of z (N, w_dim))."""
        w, w2 = self.mapping(z, y, net), self.mapping(z2, y, net)
        m = tf.cast(mix, w.dtype)[None, :, None]
        return w[:, None] * (1 - m) + w2[:, None] * m, w

    # -- forward passes (NumPy in, NumPy out) ----------------------------------------------
    def forward_generator(self, z: np.ndarray, training: bool = False, labels=None, *,
                          net: str = "generator_ema", psi: float | None = None,
                          noise_inputs: list | None = None, z2=None, mix=None) -> np.ndarray:
        """Generator output NHWC; default: the EMA generator, the config's psi, the constant
        noise, no mixing."""
        cfg = self.config
        psi = core.check_psi(cfg.psi if psi is None else psi)
        nz = [None if a is None else self.tensor(a) for a in
              (noise_inputs or [None] * len(core.noise_shapes(cfg)))]
        z2, mix = (None, None) if z2 is None else (self.tensor(z2), self.tensor(mix))
        return self._sample(self.tensor(z), self.labels(labels), z2, mix, nz, net,
                            tf.constant(psi, cfg.dtype)).numpy()

    def _sample_impl(self, z, y, z2, mix, noises, net: str, psi):
        """One graph per (net, noise / mixing / labels given or not): the forward of
        `forward_generator` (eager, it ran about 2x slower than the same graph)."""
        if z2 is None:
            ws = tf.repeat(self.mapping(z, y, net)[:, None], self.config.num_ws, axis=1)
        else:
            ws, _ = self.mixed_ws(z, z2, mix, y, net)
        w_avg = self.P[f"{net}/mapping/w_avg"]
        return self.synthesis(w_avg + psi * (ws - w_avg), noises, net)

    def forward_discriminator(self, images, training: bool = False, labels=None) -> np.ndarray:
        return tf.reshape(self.discriminate(self.images(images), self.labels(labels)), [-1]).numpy()

    def generate(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        return self.forward_generator(z, labels=labels)

    # -- training -------------------------------------------------------------------------
    def train_step(self, images, labels=None, **noise_arrays) -> dict[str, float]:
        """One D step (R1 every r1_interval steps), one G step (path length every
        pl_interval steps), then the EMA update. Noise: `core.step_noise` at global_step,
        any entry of which may be given in `noise_arrays` (e.g. z_d=..., z_g=...)."""
        cfg, step = self.config, self.global_step
        x = self.images(images)                                       # (N, H, W, C)
        n = int(x.shape[0])
        nz = {**core.step_noise(cfg, step, n, self.noise), **noise_arrays}
        y = self.labels(labels)
        t = self.tensor
        do_r1 = cfg.r1_gamma > 0 and step % cfg.r1_interval == 0
        do_pl = cfg.pl_weight > 0 and step % cfg.pl_interval == 0
        d_loss, r1 = self._d_step(x, y, t(nz["z_d"]), t(nz["z2_d"]), t(nz["mix_d"]),
                                  [t(a) for a in nz["noise_d"]], do_r1)
        g_loss, pl, w = self._g_step(y, t(nz["z_g"]), t(nz["z2_g"]), t(nz["mix_g"]),
                                     [t(a) for a in nz["noise_g"]], t(nz["pl_noise"]), do_pl)
        self._ema_step(w)
        self.global_step += 1
        out = {"d_loss": float(d_loss), "g_loss": float(g_loss)}
        if do_r1:
            out["r1"] = float(r1)
        if do_pl:
            out["pl"] = float(pl)
        return out

    def _d_step_impl(self, x, y, z, z2, mix, noises, do_r1: bool):
        cfg, D = self.config, self.trainable["discriminator"]
        ws, _ = self.mixed_ws(z, z2, mix, y)
        fake = tf.stop_gradient(self.synthesis(ws, noises))
        r1 = tf.zeros([], x.dtype)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([v.value for v in D])
            if do_r1:
                with tf.GradientTape(watch_accessed_variables=False) as inner:
                    inner.watch(x)
                    real_logits = self.discriminate(x, y)
                g = inner.gradient(real_logits, x)          # of their sum
                r1 = tf.reduce_mean(tf.reduce_sum(tf.square(g), [1, 2, 3]))
            else:
                real_logits = self.discriminate(x, y)
            d_loss = (tf.reduce_mean(tf.nn.softplus(self.discriminate(fake, y)))
                      + tf.reduce_mean(tf.nn.softplus(-real_logits)))
            total = d_loss + r1 * (cfg.r1_gamma / 2) * cfg.r1_interval if do_r1 else d_loss
        grads = tape.gradient(total, [v.value for v in D])
        self.d_opt.apply_gradients(zip(grads, D))
        return d_loss, r1

    def _g_step_impl(self, y, z, z2, mix, noises, pl_noise, do_pl: bool):
        cfg, G = self.config, self.trainable["generator"]
        pl = tf.zeros([], z.dtype)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([v.value for v in G])
            ws, w = self.mixed_ws(z, z2, mix, y)
            if do_pl:
                with tf.GradientTape(watch_accessed_variables=False) as inner:
                    inner.watch(ws)
                    img = self.synthesis(ws, noises)
                    pl_dot = tf.reduce_sum(img * pl_noise)
                g = inner.gradient(pl_dot, ws)
                lengths = tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(g), 2), 1))   # (N,)
                pl_mean = self.V["generator/pl_mean"].value
                new_mean = pl_mean + cfg.pl_decay * (tf.stop_gradient(tf.reduce_mean(lengths))
                                                     - pl_mean)
                pl = tf.reduce_mean(tf.square(lengths - new_mean))
            else:
                img = self.synthesis(ws, noises)
            g_loss = tf.reduce_mean(tf.nn.softplus(-self.discriminate(img, y)))
            total = g_loss + pl * cfg.pl_weight * cfg.pl_interval if do_pl else g_loss
        grads = tape.gradient(total, [v.value for v in G])
        self.g_opt.apply_gradients(zip(grads, G))
        if do_pl:
            self.V["generator/pl_mean"].assign(new_mean)
        return g_loss, pl, w

    def _ema_step_impl(self, w):
        cfg, V = self.config, self.V
        w_avg, mean = V["generator/mapping/w_avg"], tf.reduce_mean(w, 0)   # w_avg, then the EMA
        w_avg.assign(mean + cfg.w_avg_beta * (w_avg.value - mean))
        beta = cfg.ema_beta()
        for name, (ema, _) in self._tensors["generator_ema"].items():
            src = V[f"generator/{name}"].value
            if name.endswith(("/w_avg", "/noise_const")):
                ema.assign(src)
            else:
                ema.assign(src + beta * (ema.value - src))


def build(config: StyleGAN2Config) -> StyleGAN2:
    return StyleGAN2(config)
