"""StyleGAN2 in PyTorch. Mirrors gan_diffusion/tf_backend/stylegan2.py line for line.

Weights are kept in the canonical channels-last layout (models/stylegan2.py
`weight_specs`) and permuted at use; activations are NCHW. Shapes in the docstrings of
models/stylegan2.py.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from gan_diffusion.models import stylegan2 as core
from gan_diffusion.models.stylegan2 import LRELU_GAIN, StyleGAN2Config, equalized_gain
from gan_diffusion.models.stylegan2_ref import fir_filter
from gan_diffusion.torch_backend.gan import GANModel
from gan_diffusion.torch_backend.optimizers import make_adam


# -- operations -------------------------------------------------------------------------
def upfirdn2d(x: torch.Tensor, f: np.ndarray, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Zero-insertion upsampling, zero padding (before, after), true convolution with the
    2D FIR `f` per channel, then every `down`-th pixel: (N, C, H, W) -> (N, C, H', W')."""
    n, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    k = torch.from_numpy(np.ascontiguousarray(f[::-1, ::-1])).to(x.dtype)
    x = F.conv2d(x, k[None, None].repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::down, ::down]


def _fir_kernel(gain: float, channels: int, dtype: torch.dtype) -> torch.Tensor:
    """The [1,3,3,1] filter as a depthwise weight (C, 1, 4, 4), flipped (conv2d correlates;
    the filter is symmetric, so this only states the convention)."""
    k = torch.from_numpy(np.ascontiguousarray(fir_filter(gain)[::-1, ::-1])).to(dtype)
    return k[None, None].expand(channels, 1, 4, 4)


def upsample2d(x: torch.Tensor) -> torch.Tensor:
    """upfirdn2d(x, f * 4, up=2, pad=(2, 1)) as one depthwise transposed conv (stride 2,
    padding 1): (N, C, H, W) -> (N, C, 2H, 2W). Zero insertion and a full-resolution conv
    cost 8x a 3x3 conv of the same tensor, backward included (issue 18)."""
    c = x.shape[1]
    return F.conv_transpose2d(x, _fir_kernel(4.0, c, x.dtype), stride=2, padding=1, groups=c)


def downsample2d(x: torch.Tensor) -> torch.Tensor:
    """upfirdn2d(x, f, down=2, pad=(1, 1)) as one strided depthwise conv: (N, C, H, W) ->
    (N, C, H/2, W/2), computing only the kept pixels."""
    c = x.shape[1]
    return F.conv2d(x, _fir_kernel(1.0, c, x.dtype), stride=2, padding=1, groups=c)


def conv(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """'same' conv of NCHW x with a canonical (k, k, I, O) weight (already scaled)."""
    return F.conv2d(x, w.permute(3, 2, 0, 1), padding=w.shape[0] // 2)


def modulated_conv(x: torch.Tensor, w: torch.Tensor, styles: torch.Tensor, demod: bool = True
                   ) -> torch.Tensor:
    """Modulated (and demodulated) conv, in the non-fused form: scale the input channels by
    the styles (N, I), convolve, scale the outputs by 1 / sqrt(sum_{k,k,I} (w s)^2 + 1e-8)."""
    out = conv(x * styles[:, :, None, None], w)
    if demod:
        d = torch.rsqrt(styles.square() @ w.square().sum(dim=(0, 1)) + 1e-8)   # (N, O)
        out = out * d[:, :, None, None]
    return out


def minibatch_stddev(x: torch.Tensor, group: int = core.MBSTD_GROUP) -> torch.Tensor:
    """(N, C, H, W) -> (N, C + 1, H, W); groups are samples n, n + M, ... (M = N / G)."""
    n, c, h, w = x.shape
    g = max(d for d in range(1, min(group, n) + 1) if n % d == 0)
    y = x.reshape(g, n // g, c, h, w)
    y = torch.sqrt((y - y.mean(0)).square().mean(0) + 1e-8).mean(dim=(1, 2, 3))   # (M,)
    y = y.repeat(g).reshape(n, 1, 1, 1).expand(n, 1, h, w)
    return torch.cat([x, y], dim=1)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


def dense(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, lr_mul: float = 1.0
          ) -> torch.Tensor:
    """Equalized-lr fully connected layer: x @ (w * lr_mul / sqrt(in)) + b * lr_mul."""
    out = x @ (w * equalized_gain(w.shape[0], lr_mul))
    return out if b is None else out + b * lr_mul


def normalize(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


# -- the model ------------------------------------------------------------------------------
class StyleGAN2(GANModel):
    """StyleGAN2 generator (with its EMA) and residual discriminator, with their Adams."""

    def __init__(self, config: StyleGAN2Config):
        super().__init__(config)
        dtype = getattr(torch, config.dtype)
        self.P: dict[str, torch.Tensor] = {}
        self._tensors = {"generator": {}, "generator_ema": {}, "discriminator": {}}
        for name, (shape, _) in core.weight_specs(config).items():
            net, rest = name.split("/", 1)
            t = torch.zeros(shape, dtype=dtype, requires_grad=not core.is_statistic(name))
            self.P[name] = t
            self._tensors[net][rest] = (t, "param")
        self.layers = core.synthesis_layers(config)
        trainable = {net: [t for t, _ in ts.values() if t.requires_grad]
                     for net, ts in self._tensors.items()}
        g_int = config.pl_interval if config.pl_weight > 0 else 0
        d_int = config.r1_interval if config.r1_gamma > 0 else 0
        self.g_opt = make_adam(trainable["generator"], *self._adam(g_int), config.epsilon)
        self.d_opt = make_adam(trainable["discriminator"], *self._adam(d_int), config.epsilon)
        self._optimizers = {"generator": self.g_opt, "discriminator": self.d_opt}
        self.set_weights(core.init_weights(config))

    def _adam(self, interval: int) -> tuple[float, float, float]:
        c = self.config
        return c.lazy(interval) if interval else (c.learning_rate, c.beta1, c.beta2)

    def weight_shapes(self) -> dict:
        return core.stylegan2_weight_shapes(self.config)

    # -- networks -----------------------------------------------------------------------
    def mapping(self, z: torch.Tensor, y: torch.Tensor | None, net: str = "generator"
                ) -> torch.Tensor:
        """z (N, latent_dim) [labels (N,)] -> w (N, w_dim)."""
        P, cfg = self.P, self.config
        x = normalize(z)
        if y is not None:
            e = P[f"{net}/mapping/embed/weight"][y] * equalized_gain(cfg.num_classes)
            x = torch.cat([x, normalize(e + P[f"{net}/mapping/embed/bias"])], dim=1)
        for i in range(cfg.mapping_layers):
            x = lrelu(dense(x, P[f"{net}/mapping/fc{i}/weight"], P[f"{net}/mapping/fc{i}/bias"],
                            cfg.mapping_lr_mul))
        return x

    def synthesis(self, ws: torch.Tensor, noises: list[torch.Tensor | None],
                  net: str = "generator") -> torch.Tensor:
        """ws (N, num_ws, w_dim), per-conv noise (N, r, r, 1) or None (the constant noise)
        -> image (N, C, R, R)."""
        P = self.P
        x = P[f"{net}/synthesis/const"].permute(2, 0, 1)[None].expand(ws.shape[0], -1, -1, -1)
        img, k = None, 0
        for name, ksize, _, _, idx in self.layers:
            p = f"{net}/synthesis/{name}"
            w = P[f"{p}/weight"]
            w = w * equalized_gain(w.shape[0] * w.shape[1] * w.shape[2])
            s = dense(ws[:, idx], P[f"{p}/affine/weight"], P[f"{p}/affine/bias"])
            if ksize == 1:
                rgb = modulated_conv(x, w, s, demod=False) + P[f"{p}/bias"][None, :, None, None]
                img = rgb if img is None else upsample2d(img) + rgb
                continue
            if name.endswith("conv0") and not name.startswith("b4/"):
                x = upsample2d(x)
            x = modulated_conv(x, w, s)
            nz = noises[k] if noises[k] is not None else P[f"{p}/noise_const"][None]
            x = x + nz.permute(0, 3, 1, 2) * P[f"{p}/noise_strength"]
            x = lrelu(x + P[f"{p}/bias"][None, :, None, None])
            k += 1
        return img

    def discriminate(self, img: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Images (N, C, R, R) [labels] -> logits (N, 1)."""
        P, cfg = self.P, self.config
        res = cfg.image_shape[0]

        def cv(x, name, bias=True):
            w = P[f"discriminator/{name}/weight"]
            out = conv(x, w * equalized_gain(w.shape[0] * w.shape[1] * w.shape[2]))
            return out + P[f"discriminator/{name}/bias"][None, :, None, None] if bias else out

        x = lrelu(cv(img, f"b{res}/fromrgb"))
        for k in range(cfg.log2_res, 2, -1):
            r = 2 ** k
            skip = cv(downsample2d(x), f"b{r}/skip", bias=False)
            x = lrelu(cv(x, f"b{r}/conv0"))
            x = lrelu(cv(downsample2d(x), f"b{r}/conv1"))
            x = (x + skip) * math.sqrt(0.5)
        x = lrelu(cv(minibatch_stddev(x), "b4/conv"))
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)            # channels-last flatten
        x = lrelu(dense(x, P["discriminator/b4/fc/weight"], P["discriminator/b4/fc/bias"]))
        out = dense(x, P["discriminator/b4/out/weight"], P["discriminator/b4/out/bias"])
        if y is not None:
            cmap = P["discriminator/b4/embed/weight"][y]
            out = (out * cmap).sum(dim=1, keepdim=True) / math.sqrt(cmap.shape[1])
        return out

    def mixed_ws(self, z, z2, mix, y, net: str = "generator") -> tuple[torch.Tensor, torch.Tensor]:
        """(ws (N, num_ws, w_dim) with ws[:, mix == 1] from z2, w of z (N, w_dim))."""
        w, w2 = self.mapping(z, y, net), self.mapping(z2, y, net)
        m = self.tensor(mix)[None, :, None]
        return w[:, None] * (1 - m) + w2[:, None] * m, w

    # -- forward passes (NumPy in, NumPy out) ----------------------------------------------
    def forward_generator(self, z: np.ndarray, training: bool = False, labels=None, *,
                          net: str = "generator_ema", psi: float | None = None,
                          noise_inputs: list | None = None, z2=None, mix=None) -> np.ndarray:
        """Generator output NHWC; default: the EMA generator, the config's psi, the constant
        noise, no mixing."""
        cfg = self.config
        psi = core.check_psi(cfg.psi if psi is None else psi)
        with torch.no_grad():
            y = self.labels(labels)
            zt = self.tensor(z)
            if z2 is None:
                w = self.mapping(zt, y, net)
                ws = w[:, None].expand(-1, cfg.num_ws, -1)
            else:
                ws, _ = self.mixed_ws(zt, self.tensor(z2), mix, y, net)
            w_avg = self.P[f"{net}/mapping/w_avg"]
            ws = w_avg + psi * (ws - w_avg)
            nz = [None if a is None else self.tensor(a) for a in
                  (noise_inputs or [None] * len(core.noise_shapes(cfg)))]
            return self.synthesis(ws, nz, net).permute(0, 2, 3, 1).numpy()

    def forward_discriminator(self, images, training: bool = False, labels=None) -> np.ndarray:
        with torch.no_grad():
            return self.discriminate(self.images(images), self.labels(labels)).reshape(-1).numpy()

    def generate(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        return self.forward_generator(z, labels=labels)

    # -- training -------------------------------------------------------------------------
    def train_step(self, images, labels=None, **noise_arrays) -> dict[str, float]:
        """One D step (R1 every r1_interval steps), one G step (path length every
        pl_interval steps), then the EMA update. Noise: `core.step_noise` at global_step,
        any entry of which may be given in `noise_arrays` (e.g. z_d=..., z_g=...)."""
        cfg, step, P = self.config, self.global_step, self.P
        x = self.images(images)                                       # (N, C, H, W)
        n = x.shape[0]
        nz = {**core.step_noise(cfg, step, n, self.noise), **noise_arrays}
        y = self.labels(labels)
        t = self.tensor
        out = {}

        # D step
        with torch.no_grad():
            ws, _ = self.mixed_ws(t(nz["z_d"]), t(nz["z2_d"]), nz["mix_d"], y)
            fake = self.synthesis(ws, [t(a) for a in nz["noise_d"]])
        do_r1 = cfg.r1_gamma > 0 and step % cfg.r1_interval == 0
        x = x.detach().requires_grad_(do_r1)
        real_logits = self.discriminate(x, y)
        d_loss = F.softplus(self.discriminate(fake, y)).mean() + F.softplus(-real_logits).mean()
        total = d_loss
        if do_r1:
            g, = torch.autograd.grad(real_logits.sum(), x, create_graph=True)
            r1 = g.square().sum(dim=(1, 2, 3)).mean()
            total = total + r1 * (cfg.r1_gamma / 2) * cfg.r1_interval
            out["r1"] = float(r1.detach())
        self.d_opt.zero_grad(set_to_none=True)
        total.backward()
        self.d_opt.step()
        out["d_loss"] = float(d_loss.detach())

        # G step
        d_params = [v for v, _ in self._tensors["discriminator"].values() if v.requires_grad]
        for v in d_params:
            v.requires_grad_(False)
        try:
            ws, w = self.mixed_ws(t(nz["z_g"]), t(nz["z2_g"]), nz["mix_g"], y)
            img = self.synthesis(ws, [t(a) for a in nz["noise_g"]])
            g_loss = F.softplus(-self.discriminate(img, y)).mean()
            total = g_loss
            if cfg.pl_weight > 0 and step % cfg.pl_interval == 0:
                pl_noise = t(nz["pl_noise"]).permute(0, 3, 1, 2)
                g, = torch.autograd.grad((img * pl_noise).sum(), ws, create_graph=True)
                lengths = g.square().sum(dim=2).mean(dim=1).sqrt()   # (N,)
                pl_mean = P["generator/pl_mean"]
                new_mean = pl_mean + cfg.pl_decay * (lengths.mean().detach() - pl_mean)
                pl = (lengths - new_mean).square().mean()
                total = total + pl * cfg.pl_weight * cfg.pl_interval
                with torch.no_grad():
                    pl_mean.copy_(new_mean)
                out["pl"] = float(pl.detach())
            self.g_opt.zero_grad(set_to_none=True)
            total.backward()
            self.g_opt.step()
        finally:
            for v in d_params:
                v.requires_grad_(True)
        out["g_loss"] = float(g_loss.detach())

        with torch.no_grad():                                         # w_avg, then the EMA
            w_avg = P["generator/mapping/w_avg"]
            w_avg.copy_(w.mean(0) + cfg.w_avg_beta * (w_avg - w.mean(0)))
            beta = cfg.ema_beta()
            for name, (ema, _) in self._tensors["generator_ema"].items():
                src = P[f"generator/{name}"]
                if name.endswith(("/w_avg", "/noise_const")):
                    ema.copy_(src)
                else:
                    ema.copy_(src + beta * (ema - src))
        self.global_step += 1
        return out


def build(config: StyleGAN2Config) -> StyleGAN2:
    return StyleGAN2(config)
