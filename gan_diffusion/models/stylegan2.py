"""StyleGAN2 (Karras et al. 2020, config F, scaled down): typed config, the canonical
weight layout, the seeded NumPy init and the per-step noise both backends share.

Generator (resolution R = 2^k, channels ch(r) = min(channel_base // r, channel_max)):

    mapping:   z (N, latent_dim) -> normalize 2nd moment [-> concat normalized label
               embedding (N, embed_dim)] -> mapping_layers x (FC w_dim, lrelu) -> w (N, w_dim)
               (equalized lr with lr multiplier mapping_lr_mul; w_avg tracked for truncation)
    broadcast: w -> ws (N, num_ws, w_dim), num_ws = 2k - 2; style mixing swaps ws[:, c:]
    synthesis: const (4, 4, ch4) -> b4: conv (modulated 3x3, noise, bias, lrelu), torgb
               -> b8 .. bR: upfirdn2d up x2, conv0, conv1 (modulated 3x3 + noise), torgb
               (modulated 1x1, not demodulated); img = upsample(img) + torgb(x)
Discriminator (residual): fromrgb (1x1) at R; per block r = R..8: conv0 3x3, downsample +
conv1 3x3, skip = downsample + 1x1 (no bias); x = (skip + x) / sqrt(2); then at 4x4:
minibatch stddev (+1 channel), conv 3x3, fc (16 ch4 -> ch4), out fc (ch4 -> 1, or a
projection onto a label embedding when conditional).

Weights are stored N(0, 1) (mapping: N(0, 1 / lr_mul^2)) and scaled at run time by
`equalized_gain` (equalized learning rate). All names and shapes are `weight_specs`.
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from gan_diffusion import noise
from gan_diffusion.configs import Config, TrainConfig, check_positive
from gan_diffusion.errors import ConfigError
from gan_diffusion.models.gan import GANInputs

FIR = (1.0, 3.0, 3.0, 1.0)
LRELU_GAIN = math.sqrt(2.0)
MBSTD_GROUP = 4


@dataclasses.dataclass
class StyleGAN2Config(TrainConfig, GANInputs):
    """StyleGAN2 hyper-parameters (defaults: config F's training, small channel counts).

    Shared fields are documented on `GANInputs` (shape, latent_dim = z size, conditioning:
    embed_dim is the label embedding joined to z in the mapping network) and `TrainConfig`.
    learning_rate / beta1 / beta2 are the unregularized Adam values; with lazy
    regularization each network's Adam uses lr * c, beta ** c, c = interval / (interval + 1).

    Attributes:
        channel_base, channel_max: ch(r) = min(channel_base // r, channel_max).
        w_dim, mapping_layers, mapping_lr_mul: the mapping network.
        r1_gamma, r1_interval: R1 weight and lazy interval (steps); gamma 0 disables R1.
        pl_weight, pl_interval, pl_decay: path-length regularization (weight 0 disables).
        mixing_prob: style-mixing probability per training batch.
        ema_kimg: half-life of the generator EMA in thousands of images.
        w_avg_beta: decay of the tracked mean w (truncation).
        psi: truncation at sampling, in [0, 1] (1: none).
    """

    model: ClassVar[str] = "stylegan2"
    image_shape: tuple[int, int, int] = (32, 32, 3)
    latent_dim: int = 128
    embed_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 8
    mapping_lr_mul: float = 0.01
    channel_base: int = 512
    channel_max: int = 32
    r1_gamma: float = 0.05
    r1_interval: int = 16
    pl_weight: float = 2.0
    pl_interval: int = 4
    pl_decay: float = 0.01
    mixing_prob: float = 0.9
    ema_kimg: float = 10.0
    w_avg_beta: float = 0.995
    psi: float = 1.0
    learning_rate: float = 0.002
    beta1: float = 0.0
    beta2: float = 0.99
    batch_size: int = 32

    def validate(self) -> None:
        super().validate()
        self.image_shape = check_resolution(self.image_shape)
        check_positive(self, "w_dim", "mapping_layers", "mapping_lr_mul", "channel_base",
                       "channel_max", "r1_interval", "pl_interval", "ema_kimg")
        for name in ("r1_gamma", "pl_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"stylegan2 config field {name} must be >= 0, "
                                  f"got {getattr(self, name)!r}")
        for name in ("psi", "mixing_prob", "pl_decay", "w_avg_beta"):
            check_unit(self, name)
        if self.channel_base // self.image_shape[0] < 1:
            raise ConfigError(f"stylegan2 channel_base {self.channel_base} leaves no channels at "
                              f"{self.image_shape[0]}x{self.image_shape[0]}; raise it")

    @property
    def log2_res(self) -> int:
        return int(math.log2(self.image_shape[0]))

    @property
    def num_ws(self) -> int:
        return 2 * self.log2_res - 2

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    def lazy(self, interval: int) -> tuple[float, float, float]:
        """Adam (lr, beta1, beta2) corrected for a regularizer run every `interval` steps."""
        c = interval / (interval + 1)
        return self.learning_rate * c, self.beta1 ** c, self.beta2 ** c

    def ema_beta(self) -> float:
        """Per-step EMA decay: 0.5 ** (batch / (ema_kimg * 1000))."""
        return 0.5 ** (self.batch_size / (self.ema_kimg * 1000.0))


def check_resolution(shape) -> tuple[int, int, int]:
    """(R, R, C) with R a power of two >= 8 and C in (1, 3); ConfigError otherwise."""
    try:
        h, w, c = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ConfigError(f"image_shape must be (height, width, channels), got {shape!r}") from None
    if h != w or h < 8 or h & (h - 1) or c not in (1, 3):
        raise ConfigError(f"stylegan2 image_shape {tuple(shape)!r} is not supported: use square "
                          "images whose side is a power of two >= 8 (8, 16, 32, 64, ...) with 1 "
                          "or 3 channels; resize the data (image_size=...) to fit")
    return (h, w, c)


def check_unit(config: Config, name: str) -> None:
    value = getattr(config, name)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{config.model} config field {name} must be in [0, 1], got {value!r}")


def check_psi(psi: float) -> float:
    if not 0.0 <= float(psi) <= 1.0:
        raise ConfigError(f"truncation psi must be in [0, 1], got {psi!r}")
    return float(psi)


def equalized_gain(fan_in: int, lr_mul: float = 1.0) -> float:
    """Run-time weight scale of equalized learning rate: lr_mul / sqrt(fan_in)."""
    return lr_mul / math.sqrt(fan_in)


# -- layout --------------------------------------------------------------------------
def synthesis_layers(cfg: StyleGAN2Config) -> list[tuple[str, int, int, int, int]]:
    """Modulated layers in order: (name, kind 3=conv / 1=torgb, in_ch, out_ch, w index).
    Conv layers at resolution r > 4 follow a x2 upsampling (conv0)."""
    out, idx = [], 0
    for k in range(2, cfg.log2_res + 1):
        r = 2 ** k
        ch_in, ch = cfg.channels(max(r // 2, 4)), cfg.channels(r)
        convs = [("conv0", ch, ch)] if r == 4 else [("conv0", ch_in, ch), ("conv1", ch, ch)]
        for j, (name, i, o) in enumerate(convs):
            out.append((f"b{r}/{name}", 3, i, o, idx + j))
        idx += len(convs)
        out.append((f"b{r}/torgb", 1, ch, cfg.image_shape[2], idx))
    return out


def noise_shapes(cfg: StyleGAN2Config) -> list[tuple[str, int]]:
    """(conv layer name, side) of each per-layer noise input, in synthesis order."""
    return [(name, int(name.split("/")[0][1:])) for name, kind, *_ in synthesis_layers(cfg)
            if kind == 3]


def weight_specs(cfg: StyleGAN2Config) -> dict[str, tuple[tuple[int, ...], str]]:
    """{canonical name: (shape, init)}; init is "normal", "mapping" (N(0, 1/lr_mul^2)),
    "zeros" or "ones". Networks: generator, generator_ema (same names, no pl_mean) and
    discriminator."""
    g: dict[str, tuple[tuple[int, ...], str]] = {}
    z = cfg.latent_dim
    if cfg.conditional:
        g["mapping/embed/weight"] = ((cfg.num_classes, cfg.embed_dim), "normal")
        g["mapping/embed/bias"] = ((cfg.embed_dim,), "zeros")
        z += cfg.embed_dim
    for i in range(cfg.mapping_layers):
        g[f"mapping/fc{i}/weight"] = ((z if i == 0 else cfg.w_dim, cfg.w_dim), "mapping")
        g[f"mapping/fc{i}/bias"] = ((cfg.w_dim,), "zeros")
    g["mapping/w_avg"] = ((cfg.w_dim,), "zeros")
    g["synthesis/const"] = ((4, 4, cfg.channels(4)), "normal")
    for name, k, i, o, _ in synthesis_layers(cfg):
        g[f"synthesis/{name}/affine/weight"] = ((cfg.w_dim, i), "normal")
        g[f"synthesis/{name}/affine/bias"] = ((i,), "ones")
        g[f"synthesis/{name}/weight"] = ((k, k, i, o), "normal")
        g[f"synthesis/{name}/bias"] = ((o,), "zeros")
        if k == 3:
            r = int(name.split("/")[0][1:])
            g[f"synthesis/{name}/noise_strength"] = ((1,), "zeros")
            g[f"synthesis/{name}/noise_const"] = ((r, r, 1), "normal")
    d: dict[str, tuple[tuple[int, ...], str]] = {}
    res, c = cfg.image_shape[0], cfg.image_shape[2]
    d[f"b{res}/fromrgb/weight"] = ((1, 1, c, cfg.channels(res)), "normal")
    d[f"b{res}/fromrgb/bias"] = ((cfg.channels(res),), "zeros")
    for k in range(cfg.log2_res, 2, -1):
        r = 2 ** k
        i, o = cfg.channels(r), cfg.channels(r // 2)
        d[f"b{r}/conv0/weight"], d[f"b{r}/conv0/bias"] = ((3, 3, i, i), "normal"), ((i,), "zeros")
        d[f"b{r}/conv1/weight"], d[f"b{r}/conv1/bias"] = ((3, 3, i, o), "normal"), ((o,), "zeros")
        d[f"b{r}/skip/weight"] = ((1, 1, i, o), "normal")
    ch = cfg.channels(4)
    out = cfg.channels(4) if cfg.conditional else 1
    d["b4/conv/weight"], d["b4/conv/bias"] = ((3, 3, ch + 1, ch), "normal"), ((ch,), "zeros")
    d["b4/fc/weight"], d["b4/fc/bias"] = ((16 * ch, ch), "normal"), ((ch,), "zeros")
    d["b4/out/weight"], d["b4/out/bias"] = ((ch, out), "normal"), ((out,), "zeros")
    if cfg.conditional:
        d["b4/embed/weight"] = ((cfg.num_classes, ch), "normal")
    specs = {f"generator/{k}": v for k, v in g.items()}
    specs["generator/pl_mean"] = ((1,), "zeros")
    specs.update({f"generator_ema/{k}": v for k, v in g.items()})
    specs.update({f"discriminator/{k}": v for k, v in d.items()})
    return specs


def stylegan2_weight_shapes(cfg: StyleGAN2Config) -> dict[str, tuple[int, ...]]:
    return {k: shape for k, (shape, _) in weight_specs(cfg).items()}


def is_statistic(name: str) -> bool:
    """Weights no optimizer updates: the tracked means, the constant noise, the EMA."""
    return name.startswith("generator_ema/") or name.endswith(("/w_avg", "/pl_mean", "/noise_const"))


def init_weights(cfg: StyleGAN2Config) -> dict[str, np.ndarray]:
    """The seeded initial weights (one NumPy generator over the names in sorted order); the
    EMA starts as a copy of the generator."""
    rng = np.random.default_rng([int(cfg.seed), 17])
    out = {}
    for name, (shape, init) in sorted(weight_specs(cfg).items()):
        if name.startswith("generator_ema/"):
            continue
        if init in ("normal", "mapping"):
            a = rng.standard_normal(shape) / (cfg.mapping_lr_mul if init == "mapping" else 1.0)
        else:
            a = np.full(shape, 1.0 if init == "ones" else 0.0)
        out[name] = a.astype(cfg.dtype)
    for name in list(out):
        if name.startswith("generator/") and name != "generator/pl_mean":
            out["generator_ema/" + name[len("generator/"):]] = out[name].copy()
    return out


# -- shared per-step noise ------------------------------------------------------------
def mixing_mask(cfg: StyleGAN2Config, u_decide: float, u_cut: float) -> np.ndarray:
    """(num_ws,) 0/1 mask: 1 where the layer takes the second latent's w. With probability
    mixing_prob (u_decide < mixing_prob) the cutoff is uniform in [1, num_ws - 1]."""
    n = cfg.num_ws
    cut = 1 + min(int(u_cut * (n - 1)), n - 2) if u_decide < cfg.mixing_prob else n
    return (np.arange(n) >= cut).astype(cfg.dtype)


def layer_noise(cfg: StyleGAN2Config, seed: int, stream: str, step: int, n: int,
                phase: int | None, draw=noise) -> list:
    """Per-layer noise inputs (N, r, r, 1) of one phase (0: D step, 1: G step), or, for
    phase None, [phase 0's, phase 1's] from one draw (the same values, half the cost)."""
    shapes = noise_shapes(cfg)
    flat = draw.normal(seed, stream, step, (2, n * sum(r * r for _, r in shapes)))

    def split(row: np.ndarray) -> list[np.ndarray]:
        out, at = [], 0
        for _, r in shapes:
            out.append(row[at:at + n * r * r].reshape(n, r, r, 1))
            at += n * r * r
        return out
    return [split(flat[0]), split(flat[1])] if phase is None else split(flat[phase])


def step_noise(cfg: StyleGAN2Config, step: int, n: int, draw=noise) -> dict[str, object]:
    """Everything random in training step `step` for a batch of n, as NumPy (NHWC):
    z_d, z2_d, mix_d, noise_d (D step) and z_g, z2_g, mix_g, noise_g, pl_noise (G step).
    `draw` is the model's noise source (`TrainerBase.noise`)."""
    s, z = cfg.seed, cfg.latent_dim
    u = draw.uniform(s, "sg2_mix", step, (4,))
    z2 = draw.normal(s, "sg2_latent2", step, (2, n, z))
    side, _, c = cfg.image_shape
    noise_d, noise_g = layer_noise(cfg, s, "sg2_noise", step, n, None, draw)
    return {"z_d": draw.normal(s, "latent", step, (n, z)), "z2_d": z2[0],
            "mix_d": mixing_mask(cfg, float(u[0]), float(u[1])),
            "noise_d": noise_d,
            "z_g": draw.normal(s, "latent_g", step, (n, z)), "z2_g": z2[1],
            "mix_g": mixing_mask(cfg, float(u[2]), float(u[3])),
            "noise_g": noise_g,
            "pl_noise": draw.normal(s, "sg2_pl", step, (n, side, side, c)) / side}
