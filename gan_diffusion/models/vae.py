"""VAE (Kingma & Welling 2014): typed config, framework-free plans and the loss in NumPy.

The architecture is the Keras example "Variational AutoEncoder" (fchollet, keras.io), for
28x28x1:

    encoder  x in [0, 1] -> Conv2D(32, 3, strides 2, relu, 'same') -> Conv2D(64, 3, s2, relu,
             'same') -> Flatten -> Dense(16, relu) -> z_mean = Dense(latent), z_log_var = Dense(latent)
    decoder  z -> Dense(7*7*64, relu) -> Reshape(7, 7, 64) -> Conv2DTranspose(64, 3, s2, relu,
             'same') -> Conv2DTranspose(32, 3, s2, relu, 'same') -> Conv2DTranspose(C, 3, 'same')
             -> sigmoid

with Keras' default Glorot-uniform kernels and zero biases (drawn once in NumPy). The map
starts at side / 4: 7x7 for 28, 8x8 for 32, 16x16 for 64 (RGB included). The decoder plan
stops at the logits; the sigmoid (the likelihood's mean) is applied by the backends, so the
Bernoulli loss is computed from logits (stable, the same value as BCE on the sigmoid output).

Conditional (`num_classes > 0`): as the conditional GANs (models/gan.py::label_layers), the
encoder's input gets one more channel, a learned H*W embedding of the label, and the
decoder's input is z joined to a learned `embed_dim` embedding of the label.

Loss per image, in nats (D = H*W*C pixel values, x in [0, 1]):

    bernoulli  recon = sum_i  max(l_i, 0) - l_i x_i + log(1 + exp(-|l_i|))   (BCE from logits l)
    gaussian   recon = sum_i  (x_i - mu_i)^2 / (2 sigma^2) + log(2 pi sigma^2) / 2, mu = sigmoid(l)
    kl         = -1/2 sum_j (1 + log_var_j - mean_j^2 - exp(log_var_j))    (KL(q(z|x) || N(0, I)))
    neg_elbo   = recon + kl;   bits/dim = neg_elbo / (D ln 2)

with z = mean + exp(log_var / 2) * eps, eps ~ N(0, I) from the NumPy "reparam" stream.
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from gan_diffusion.configs import (Config, TrainConfig, check_image_shape, check_num_classes,
                                   check_positive)
from gan_diffusion.errors import ConfigError
from gan_diffusion.models.gan import label_layers
from gan_diffusion.models.plan import Layer, weight_shapes

SIZES = (28, 32, 64)
LIKELIHOODS = ("bernoulli", "gaussian")
HEADS = ("z_mean", "z_log_var")  # the encoder plan's last two layers, both read the trunk's output


@dataclasses.dataclass
class VAENetConfig(Config):
    """The VAE's network and likelihood fields (the first part of `VAEConfig`).

    Attributes:
        latent_dim: size of z (2 gives the example's 2-D latent manifold plot).
        features: channels of the first conv (the second has twice as many): 32 -> 32, 64.
        hidden: units of the encoder's Dense layer before the two heads (16).
        likelihood: "bernoulli" (BCE summed over pixels, the example's) or "gaussian"
            (N(x; sigmoid(logits), gaussian_sigma^2 I), fixed variance, constant included).
        gaussian_sigma: the Gaussian likelihood's fixed standard deviation, in [0, 1] pixel units.
        num_classes, embed_dim: conditional VAE (0: unconditional); the decoder's label
            embedding size (the encoder's is one H x W channel).
    """

    image_shape: tuple[int, int, int] = (28, 28, 1)
    latent_dim: int = 2
    features: int = 32
    hidden: int = 16
    likelihood: str = "bernoulli"
    gaussian_sigma: float = 0.1
    num_classes: int = 0
    embed_dim: int = 50

    def validate(self) -> None:
        super().validate()
        self.image_shape = check_image_shape(self.image_shape, SIZES)
        check_positive(self, "latent_dim", "features", "hidden", "embed_dim", "gaussian_sigma")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"vae config field likelihood must be one of {LIKELIHOODS}, "
                              f"got {self.likelihood!r}")
        check_num_classes(self)

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0


@dataclasses.dataclass
class VAEConfig(TrainConfig, VAENetConfig):
    """VAE hyper-parameters; defaults are the Keras example's (Adam 1e-3, batch 128, latent 2).

    The network fields are documented on `VAENetConfig`, the optimizer and loader fields on
    `TrainConfig`: one optimizer rule for all weights (gan_diffusion.optim); Adam with
    Keras' defaults (lr 1e-3, betas 0.9/0.999, epsilon 1e-7) on torch's update rule.
    """

    model: ClassVar[str] = "vae"

    epsilon: float = 1e-7
    batch_size: int = 128

    @property
    def dims(self) -> int:
        """D, the number of pixel values per image (bits/dim divides by it)."""
        h, w, c = self.image_shape
        return h * w * c


def _labels(cfg: VAEConfig) -> dict[str, list[Layer]]:
    """The label embeddings (conditional only): the GANs' layers, encoder = discriminator's
    (one H x W channel), decoder = generator's (a vector joined to z)."""
    gan = label_layers(cfg)
    return {"encoder": gan["discriminator"], "decoder": gan["generator"]}


def encoder_plan(cfg: VAEConfig) -> list[Layer]:
    """Image (N, H, W, C) in [0, 1] [and labels] -> trunk (N, hidden), then the two heads
    z_mean and z_log_var (N, latent_dim), both applied to the trunk's output."""
    side, _, channels = cfg.image_shape
    f = cfg.features
    in_ch = channels + (1 if cfg.conditional else 0)                 # image [+ label channel]
    start = side // 4
    return _labels(cfg)["encoder"] + [
        Layer("conv0", "conv", in_ch, f, kernel=3, stride=2, bias=True, same=True, in_size=side),
        Layer("relu0", "relu"),                                       # (N, side/2, side/2, f)
        Layer("conv1", "conv", f, 2 * f, kernel=3, stride=2, bias=True, same=True, in_size=side // 2),
        Layer("relu1", "relu"),                                       # (N, side/4, side/4, 2f)
        Layer("flatten", "flatten"),
        Layer("dense0", "dense", start * start * 2 * f, cfg.hidden, bias=True),
        Layer("relu2", "relu"),                                       # (N, hidden)
        Layer("z_mean", "dense", cfg.hidden, cfg.latent_dim, bias=True),
        Layer("z_log_var", "dense", cfg.hidden, cfg.latent_dim, bias=True)]


def split_heads(plan: list[Layer]) -> tuple[list[Layer], list[Layer]]:
    """(trunk, [z_mean, z_log_var]) of an encoder plan."""
    assert tuple(layer.name for layer in plan[-2:]) == HEADS, plan[-2:]
    return plan[:-2], plan[-2:]


def decoder_plan(cfg: VAEConfig) -> list[Layer]:
    """z (N, latent_dim) [and labels] -> logits (N, H, W, C); sigmoid(logits) is the image."""
    side, _, channels = cfg.image_shape
    f, start = cfg.features, side // 4
    z_dim = cfg.latent_dim + (cfg.embed_dim if cfg.conditional else 0)  # z [+ label embedding]
    return _labels(cfg)["decoder"] + [
        Layer("dense0", "dense", z_dim, start * start * 2 * f, bias=True),
        Layer("relu0", "relu"),
        Layer("reshape", "reshape", shape=(start, start, 2 * f)),     # (N, side/4, side/4, 2f)
        Layer("convt1", "convt", 2 * f, 2 * f, kernel=3, stride=2, bias=True, same=True, in_size=start),
        Layer("relu1", "relu"),                                       # (N, side/2, side/2, 2f)
        Layer("convt2", "convt", 2 * f, f, kernel=3, stride=2, bias=True, same=True, in_size=2 * start),
        Layer("relu2", "relu"),                                       # (N, side, side, f)
        Layer("convt3", "convt", f, channels, kernel=3, stride=1, bias=True, same=True, in_size=side)]


def networks(cfg: VAEConfig) -> dict[str, list[Layer]]:
    """Both plans, keyed by network name (the first part of canonical weight names)."""
    return {"encoder": encoder_plan(cfg), "decoder": decoder_plan(cfg)}


def vae_weight_shapes(cfg: VAEConfig) -> dict[str, tuple[int, ...]]:
    return weight_shapes(networks(cfg))


# -- the loss in NumPy (float64): the reference the backends are tested against ----------

def to_unit_range(x: np.ndarray) -> np.ndarray:
    """Model-range images [-1, 1] (what the data pipeline serves) -> [0, 1]: (x + 1) / 2.
    uint8 pixels u become u / 255."""
    return (np.asarray(x, np.float64) + 1.0) / 2.0


def bernoulli_nll(x: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """-log p(x | logits) per image, summed over pixels: BCE of x in [0, 1] against
    sigmoid(logits), in the stable form max(l, 0) - l x + log(1 + exp(-|l|)). Returns (N,)."""
    x, l = np.asarray(x, np.float64), np.asarray(logits, np.float64)
    per_pixel = np.maximum(l, 0) - l * x + np.log1p(np.exp(-np.abs(l)))
    return per_pixel.reshape(len(x), -1).sum(axis=1)


def gaussian_nll(x: np.ndarray, mean: np.ndarray, sigma: float) -> np.ndarray:
    """-log N(x; mean, sigma^2 I) per image, constant included: sum_i (x_i - mean_i)^2 /
    (2 sigma^2) + log(2 pi sigma^2) / 2. Returns (N,)."""
    x, m = np.asarray(x, np.float64), np.asarray(mean, np.float64)
    per_pixel = (x - m) ** 2 / (2 * sigma ** 2) + 0.5 * math.log(2 * math.pi * sigma ** 2)
    return per_pixel.reshape(len(x), -1).sum(axis=1)


def kl_standard_normal(z_mean: np.ndarray, z_log_var: np.ndarray) -> np.ndarray:
    """KL(N(mean, diag(exp(log_var))) || N(0, I)) per row, closed form:
    -1/2 sum_j (1 + log_var_j - mean_j^2 - exp(log_var_j)). Returns (N,)."""
    m, lv = np.asarray(z_mean, np.float64), np.asarray(z_log_var, np.float64)
    return -0.5 * (1 + lv - m ** 2 - np.exp(lv)).sum(axis=1)


def reparameterize(z_mean: np.ndarray, z_log_var: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """z = mean + exp(log_var / 2) * eps."""
    return np.asarray(z_mean, np.float64) + np.exp(0.5 * np.asarray(z_log_var, np.float64)) * eps


def bits_per_dim(nats: float, dims: int) -> float:
    """Nats per image -> bits per pixel value: nats / (D ln 2)."""
    return float(nats) / (dims * math.log(2.0))


def loss_terms_reference(cfg: VAEConfig, x01: np.ndarray, logits: np.ndarray, z_mean: np.ndarray,
                         z_log_var: np.ndarray) -> dict[str, float]:
    """Batch means of the loss terms (nats per image) from a forward pass's outputs.

    Args:
        x01: targets in [0, 1], (N, H, W, C); logits: the decoder's (N, H, W, C).
        z_mean, z_log_var: the encoder's (N, latent_dim).

    Returns:
        {"neg_elbo", "recon", "kl", "bpd"} (nats, nats, nats, bits/dim).
    """
    if cfg.likelihood == "bernoulli":
        recon = bernoulli_nll(x01, logits)
    else:
        recon = gaussian_nll(x01, 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64))),
                             cfg.gaussian_sigma)
    kl = kl_standard_normal(z_mean, z_log_var)
    neg_elbo = float((recon + kl).mean())
    return {"neg_elbo": neg_elbo, "recon": float(recon.mean()), "kl": float(kl.mean()),
            "bpd": bits_per_dim(neg_elbo, cfg.dims)}


def manifold_latents(n: int, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Keras example's 2-D grid of latent points: n x n, z[0] from -scale to scale left to
    right, z[1] from scale down to -scale top to bottom.

    Returns:
        (z (n*n, 2) row-major, grid_x (n,), grid_y (n,)).
    """
    grid_x = np.linspace(-scale, scale, n)
    grid_y = np.linspace(-scale, scale, n)[::-1]
    z = np.array([[xi, yi] for yi in grid_y for xi in grid_x], np.float32)
    return z, grid_x, grid_y


def lerp_latents(z0: np.ndarray, z1: np.ndarray, steps: int) -> np.ndarray:
    """`steps` points on the segment from z0 to z1, ends included: (steps, latent_dim)."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    return ((1 - t) * np.asarray(z0, np.float64) + t * np.asarray(z1, np.float64)).astype(np.float32)
