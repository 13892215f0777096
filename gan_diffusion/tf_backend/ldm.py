"""Latent diffusion in TensorFlow/Keras. Mirrors gan_diffusion/torch_backend/ldm.py line for line.

The stages, sampling, the latent scale and the reconstructions come from
`gan_diffusion.families.ldm.LDMBase`; this file adds the Keras KL autoencoder (its blocks
reuse tf_backend/unet.py's), the latent U-Net and its EMA (tf_backend/unet.py, with
cross-attention), the two training steps and the network calls.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from gan_diffusion.families.ldm import LDMBase
from gan_diffusion.models.kl_autoencoder import (LOGVAR_RANGE, AutoencoderSpec, autoencoder_params,
                                                 decoder_blocks, encoder_blocks)
from gan_diffusion.models.ldm import LDMConfig, autoencoder_spec, init_ldm, ldm_weight_shapes, unet_spec
from gan_diffusion.models.unet import Block, timestep_features
from gan_diffusion.tf_backend import layers as backend_layers
from gan_diffusion.tf_backend import optimizers as backend_optimizers
from gan_diffusion.tf_backend.data import to_tf_dataset
from gan_diffusion.tf_backend.layers import images_to_input, labels_to_input
from gan_diffusion.tf_backend.optimizers import make_optimizer
from gan_diffusion.tf_backend.unet import (PARAM_ATTRS, AttentionBlock, InputConv, OutputBlock, UNet,
                                           Upsample, conv, group_norm, silu)


class ResBlock(keras.layers.Layer):
    """h = conv1(SiLU(norm1(x))); h = conv2(SiLU(norm2(h))); out = skip(x) + h (no time embedding)."""

    def __init__(self, block: Block, cfg):
        super().__init__(name=block.name, dtype=cfg.dtype)
        o = block.out_ch
        self.norm1, self.conv1 = group_norm(cfg, "norm1"), conv(cfg, o, 3, "conv1")
        self.norm2, self.conv2 = group_norm(cfg, "norm2"), conv(cfg, o, 3, "conv2")
        self.skip = conv(cfg, o, 1, "skip") if block.in_ch != o else None
        self.parts = {"norm1": self.norm1, "conv1": self.conv1, "norm2": self.norm2, "conv2": self.conv2}
        if self.skip is not None:
            self.parts["skip"] = self.skip

    def call(self, x, temb=None, training=False):
        h = self.conv1(silu(self.norm1(x)))
        h = self.conv2(silu(self.norm2(h)))
        return (x if self.skip is None else self.skip(x)) + h


class Downsample(keras.layers.Layer):
    """Zero padding (0 before, 1 after) on H and W, then a 3x3 stride-2 'valid' conv (SD's)."""

    def __init__(self, block: Block, cfg):
        super().__init__(name=block.name, dtype=cfg.dtype)
        self.pad = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), dtype=cfg.dtype)
        self.conv = conv(cfg, block.out_ch, 3, "conv", stride=2, padding="valid")
        self.parts = {"": self.conv}

    def call(self, x, temb=None, training=False):
        return self.conv(self.pad(x))                                  # (N, H/2, W/2, C)


class QuantConv(keras.layers.Layer):
    """quant_conv / post_quant_conv: a 1x1 conv."""

    def __init__(self, block: Block, cfg):
        super().__init__(name=block.name, dtype=cfg.dtype)
        self.conv = conv(cfg, block.out_ch, 1, "conv")
        self.parts = {"": self.conv}

    def call(self, x, temb=None, training=False):
        return self.conv(x)


BLOCKS = {"conv_in": InputConv, "res": ResBlock, "attn": AttentionBlock, "down": Downsample,
          "up": Upsample, "out": OutputBlock, "quant": QuantConv}


class Autoencoder(keras.Model):
    """The KL autoencoder: encode(x (N, H, W, C)) -> moments (N, h, w, 2c);
    decode(z (N, h, w, c)) -> images (N, H, W, C)."""

    def __init__(self, spec: AutoencoderSpec):
        super().__init__(name="ae", dtype=spec.dtype)
        self.spec = spec
        self.encoder_specs, self.decoder_specs = encoder_blocks(spec), decoder_blocks(spec)
        self.encoder_blocks = [BLOCKS[b.kind](b, spec) for b in self.encoder_specs]
        self.decoder_blocks = [BLOCKS[b.kind](b, spec) for b in self.decoder_specs]
        side, _, channels = spec.image_shape                           # build the variables
        self.decode(self.encode(tf.zeros((1, side, side, channels), spec.dtype))[..., :spec.latent_channels])

    def encode(self, x, training=False):
        for block in self.encoder_blocks:
            x = block(x, None, training=training)
        return x

    def decode(self, z, training=False):
        for block in self.decoder_blocks:
            z = block(z, None, training=training)
        return z

    def canonical_tensors(self) -> dict[str, tuple[keras.Variable, str]]:
        """{"<layer>/<param>": (variable, kind)} for every canonical weight (models/kl_autoencoder.py)."""
        layers = {}
        for spec, block in zip(self.encoder_specs + self.decoder_specs,
                               self.encoder_blocks + self.decoder_blocks):
            layers.update({f"{spec.name}.{p}" if p else spec.name: m for p, m in block.parts.items()})
        out = {}
        for name, (kind, shape) in autoencoder_params(self.spec).items():
            path, param = name.rsplit("/", 1)
            var = getattr(layers[path], PARAM_ATTRS[param])
            assert tuple(var.shape) == shape, (name, var.shape, shape)
            out[name] = (var, kind)
        return out


class LDM(LDMBase):
    """The KL autoencoder [+ latent U-Net, its EMA] and the optimizer of the config's stage
    (TensorFlow/Keras); cross-attention on label tokens when config.num_classes > 0."""

    backend_name = "tf"
    backend_layers, backend_optimizers = backend_layers, backend_optimizers  # for TrainerBase

    def __init__(self, config: LDMConfig):
        super().__init__(config)
        self.ae = Autoencoder(autoencoder_spec(config))
        self._tensors = {"ae": self.ae.canonical_tensors()}
        if config.stage == "autoencoder":
            self.opt = make_optimizer(self.ae.trainable_variables,
                                      config.replace(learning_rate=config.ae_learning_rate))
            self._optimizers = {"ae": self.opt}
            self._step = tf.function(self._ae_step_impl, reduce_retracing=True)
        else:
            self.ae.trainable = False                  # frozen: the autoencoder stage trained it
            self.unet, self.ema = UNet(unet_spec(config), "unet"), UNet(unet_spec(config), "ema")
            self.ema.trainable = False
            self._tensors.update(unet=self.unet.canonical_tensors(), ema=self.ema.canonical_tensors())
            self.opt = make_optimizer(self.unet.trainable_variables, config)
            self._optimizers = {"unet": self.opt}
            self._ema_pairs = [(self._tensors["ema"][k][0], w) for k, (w, _) in self._tensors["unet"].items()]
            self._step = tf.function(self._diffusion_step_impl, reduce_retracing=True)
            self.network_call = tf.function(self._predict_impl, reduce_retracing=True)
        self.set_weights(init_ldm(config, config.seed))
        self._encode = tf.function(self.ae.encode, reduce_retracing=True)
        self._decode = tf.function(self.ae.decode, reduce_retracing=True)

    def weight_shapes(self) -> dict:
        return ldm_weight_shapes(self.config)

    # -- NumPy <-> tensors in the model's dtype -----------------------------------------
    def images(self, images) -> tf.Tensor:
        return images_to_input(images, self.config.image_shape, self.config.dtype)

    def nhwc(self, array: np.ndarray) -> tf.Tensor:
        """An NHWC NumPy array (noise, latents) as a tensor of the model's dtype (layout kept)."""
        return tf.constant(np.asarray(array, self.config.dtype))

    def tensor(self, array) -> tf.Tensor:
        return tf.constant(np.asarray(array, self.config.dtype))

    def labels(self, labels) -> tf.Tensor | None:
        return None if labels is None or not self.num_classes else labels_to_input(labels)

    def to_numpy(self, x: tf.Tensor) -> np.ndarray:
        """Network output -> NHWC NumPy."""
        return x.numpy()

    # -- the network calls --------------------------------------------------------------
    def encode_moments(self, images) -> np.ndarray:
        """The encoder's moments (N, h, w, 2c) of images (NumPy uint8 / float in [-1, 1])."""
        return self.to_numpy(self._encode(self.images(images)))

    def decode_latents(self, z: np.ndarray) -> np.ndarray:
        """decoder(z) for unscaled latents (N, h, w, c): NHWC images, NumPy."""
        return self.to_numpy(self._decode(self.nhwc(z)))

    def predict_noise(self, x: np.ndarray, t: np.ndarray, labels: np.ndarray | None = None,
                      ema: bool = True) -> np.ndarray:
        """Predicted noise for scaled latents x_t (N, h, w, c) at timesteps t (N,) [and labels]."""
        self._require_diffusion("predict_noise")
        if self.num_classes and labels is None:
            raise ValueError("this conditional ldm needs labels (the null class is num_classes)")
        f = timestep_features(t, self.config.base_channels, self.config.dtype)  # (N, ch)
        return self.to_numpy(self.network_call(self.nhwc(x), self.tensor(f), self.labels(labels), ema))

    def _predict_impl(self, x: tf.Tensor, f: tf.Tensor, y: tf.Tensor | None, ema: bool):
        return (self.ema if ema else self.unet)(x, f, y, training=False)

    # -- training -----------------------------------------------------------------------
    def train_step(self, images, labels=None, eps: np.ndarray | None = None, z: np.ndarray | None = None,
                   t: np.ndarray | None = None, drop: np.ndarray | None = None) -> dict[str, float]:
        """One step of the config's stage.

        autoencoder: loss = recon + kl_weight * kl (models/kl_autoencoder.py) on posterior
            samples mean + exp(log_var / 2) eps; eps (N, h, w, c) NHWC, default the "reparam"
            stream at global_step. Returns {"loss", "recon", "kl"} per image.
        diffusion: x_0 = latent_scale * mean(q(z | x)) of the frozen encoder, then DDPM's
            L_simple step and EMA update; z (N, h, w, c), t (N,), drop (N,) as DDPM's.
            Returns {"loss"}.
        """
        x = self.images(images)                                         # (N, H, W, C)
        n, c = int(x.shape[0]), self.config
        if c.stage == "autoencoder":
            if eps is None:
                eps = self.noise.normal(c.seed, "reparam", self.global_step, (n, *c.latent_shape))
            loss, recon, kl = self._step(x, self.nhwc(eps))
            self.global_step += 1
            return {"loss": float(loss), "recon": float(recon), "kl": float(kl)}
        self._require_autoencoder()
        y = np.asarray(labels) if labels is not None and self.num_classes else None
        inp = self.training_inputs(n, self.global_step, y, z, t, drop)
        rate = 1.0 - self.ema_decay_at(self.global_step)                # EMA: e += rate (w - e)
        loss = self._step(x, self.tensor(c.latent_scale), self.nhwc(inp["z"]), self.tensor(inp["a"]),
                          self.tensor(inp["b"]), self.tensor(inp["features"]), self.labels(inp["labels"]),
                          self.tensor(rate))
        self.global_step += 1
        return {"loss": float(loss)}

    def _posterior(self, x, training=False):
        """(mean, log_var) of q(z | x), log_var clipped as SD's."""
        moments = self.ae.encode(x, training=training)
        k = self.config.latent_channels
        return moments[..., :k], tf.clip_by_value(moments[..., k:], *LOGVAR_RANGE)

    def _ae_step_impl(self, x, eps):
        with tf.GradientTape() as tape:
            mean, log_var = self._posterior(x, training=True)
            rec = self.ae.decode(mean + tf.exp(0.5 * log_var) * eps, training=True)
            err = tf.abs(x - rec) if self.config.recon_loss == "l1" else tf.square(x - rec)
            recon = tf.reduce_sum(tf.reshape(err, [tf.shape(err)[0], -1]), axis=1)          # (N,)
            kl_map = tf.square(mean) + tf.exp(log_var) - 1.0 - log_var
            kl = 0.5 * tf.reduce_sum(tf.reshape(kl_map, [tf.shape(kl_map)[0], -1]), axis=1)  # (N,)
            loss = tf.reduce_mean(recon + self.config.kl_weight * kl)
        grads = tape.gradient(loss, self.ae.trainable_variables)
        self.opt.apply_gradients(zip(grads, self.ae.trainable_variables))
        return loss, tf.reduce_mean(recon), tf.reduce_mean(kl)

    def _diffusion_step_impl(self, x, scale, z, a, b, f, y, rate):
        x0 = scale * self._posterior(x)[0]                              # frozen encoder: no tape
        with tf.GradientTape() as tape:
            x_t = a * x0 + b * z                                        # forward process q(x_t | x_0)
            eps = self.unet(x_t, f, y, training=True)                   # (N, h, w, c)
            loss = tf.reduce_mean(tf.square(eps - z))                   # L_simple
        grads = tape.gradient(loss, self.unet.trainable_variables)
        self.opt.apply_gradients(zip(grads, self.unet.trainable_variables))
        for e, w in self._ema_pairs:
            e.assign_add(rate * (w - e))
        return loss

    def batches(self, data, epoch: int):
        return to_tf_dataset(data, self.config.batch_size, self.config.seed, epoch,
                             self.config.drop_last)


def build(config: LDMConfig) -> LDM:
    return LDM(config)
