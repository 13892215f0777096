"""Latent diffusion in PyTorch. Mirrors gan_diffusion/tf_backend/ldm.py line for line.

The stages, sampling, the latent scale and the reconstructions come from
`gan_diffusion.families.ldm.LDMBase`; this file adds the torch KL autoencoder (its blocks
reuse torch_backend/unet.py's), the latent U-Net and its EMA (torch_backend/unet.py, with
cross-attention), the two training steps and the network calls.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan_diffusion.families.ldm import LDMBase
from gan_diffusion.models.kl_autoencoder import (LOGVAR_RANGE, AutoencoderSpec, autoencoder_params,
                                                 decoder_blocks, encoder_blocks)
from gan_diffusion.models.ldm import LDMConfig, autoencoder_spec, init_ldm, ldm_weight_shapes, unet_spec
from gan_diffusion.models.unet import Block, timestep_features
from gan_diffusion.torch_backend import layers as backend_layers
from gan_diffusion.torch_backend import optimizers as backend_optimizers
from gan_diffusion.torch_backend.data import to_torch_loader
from gan_diffusion.torch_backend.layers import images_to_input, labels_to_input
from gan_diffusion.torch_backend.optimizers import make_optimizer
from gan_diffusion.torch_backend.unet import (PARAM_ATTRS, AttentionBlock, InputConv, OutputBlock, UNet,
                                              Upsample, conv, group_norm, silu)


class ResBlock(nn.Module):
    """h = conv1(SiLU(norm1(x))); h = conv2(SiLU(norm2(h))); out = skip(x) + h (no time embedding)."""

    def __init__(self, block: Block, cfg):
        super().__init__()
        i, o = block.in_ch, block.out_ch
        self.norm1, self.conv1 = group_norm(cfg, i), conv(cfg, i, o, 3)
        self.norm2, self.conv2 = group_norm(cfg, o), conv(cfg, o, o, 3)
        self.skip = conv(cfg, i, o, 1) if i != o else None
        self.parts = {"norm1": self.norm1, "conv1": self.conv1, "norm2": self.norm2, "conv2": self.conv2}
        if self.skip is not None:
            self.parts["skip"] = self.skip

    def forward(self, x, temb=None):
        h = self.conv1(silu(self.norm1(x)))
        h = self.conv2(silu(self.norm2(h)))
        return (x if self.skip is None else self.skip(x)) + h


class Downsample(nn.Module):
    """Zero padding (0 before, 1 after) on H and W, then a 3x3 stride-2 'valid' conv (SD's)."""

    def __init__(self, block: Block, cfg):
        super().__init__()
        self.conv = conv(cfg, block.in_ch, block.out_ch, 3, stride=2, padding=0)
        self.parts = {"": self.conv}

    def forward(self, x, temb=None):
        return self.conv(F.pad(x, (0, 1, 0, 1)))                       # (N, C, H/2, W/2)


class QuantConv(nn.Module):
    """quant_conv / post_quant_conv: a 1x1 conv."""

    def __init__(self, block: Block, cfg):
        super().__init__()
        self.conv = conv(cfg, block.in_ch, block.out_ch, 1)
        self.parts = {"": self.conv}

    def forward(self, x, temb=None):
        return self.conv(x)


BLOCKS = {"conv_in": InputConv, "res": ResBlock, "attn": AttentionBlock, "down": Downsample,
          "up": Upsample, "out": OutputBlock, "quant": QuantConv}


class Autoencoder(nn.Module):
    """The KL autoencoder: encode(x (N, C, H, W)) -> moments (N, 2c, h, w);
    decode(z (N, c, h, w)) -> images (N, C, H, W)."""

    def __init__(self, spec: AutoencoderSpec):
        super().__init__()
        self.spec = spec
        self.encoder_specs, self.decoder_specs = encoder_blocks(spec), decoder_blocks(spec)
        self.encoder_blocks = nn.ModuleList(BLOCKS[b.kind](b, spec) for b in self.encoder_specs)
        self.decoder_blocks = nn.ModuleList(BLOCKS[b.kind](b, spec) for b in self.decoder_specs)
        self.to(getattr(torch, spec.dtype))

    def encode(self, x):
        for block in self.encoder_blocks:
            x = block(x, None)
        return x

    def decode(self, z):
        for block in self.decoder_blocks:
            z = block(z, None)
        return z

    def canonical_tensors(self) -> dict[str, tuple[torch.Tensor, str]]:
        """{"<layer>/<param>": (tensor, kind)} for every canonical weight (models/kl_autoencoder.py)."""
        layers = {}
        for spec, block in zip(self.encoder_specs + self.decoder_specs,
                               list(self.encoder_blocks) + list(self.decoder_blocks)):
            layers.update({f"{spec.name}.{p}" if p else spec.name: m for p, m in block.parts.items()})
        out = {}
        for name, (kind, shape) in autoencoder_params(self.spec).items():
            path, param = name.rsplit("/", 1)
            tensor = getattr(layers[path], PARAM_ATTRS[param])
            assert tensor.numel() == int(torch.Size(shape).numel()), (name, tensor.shape, shape)
            out[name] = (tensor, kind)
        return out


class LDM(LDMBase):
    """The KL autoencoder [+ latent U-Net, its EMA] and the optimizer of the config's stage
    (PyTorch); cross-attention on label tokens when config.num_classes > 0."""

    backend_name = "torch"
    backend_layers, backend_optimizers = backend_layers, backend_optimizers  # for TrainerBase

    def __init__(self, config: LDMConfig):
        super().__init__(config)
        self.ae = Autoencoder(autoencoder_spec(config))
        self._tensors = {"ae": self.ae.canonical_tensors()}
        if config.stage == "autoencoder":
            self.opt = make_optimizer(self.ae.parameters(),
                                      config.replace(learning_rate=config.ae_learning_rate))
            self._optimizers = {"ae": self.opt}
            self._step = self._ae_step_impl
        else:
            self.ae.requires_grad_(False)             # frozen: the autoencoder stage trained it
            self.unet, self.ema = UNet(unet_spec(config), "unet"), UNet(unet_spec(config), "ema")
            self.ema.requires_grad_(False)
            self._tensors.update(unet=self.unet.canonical_tensors(), ema=self.ema.canonical_tensors())
            self.opt = make_optimizer(self.unet.parameters(), config)
            self._optimizers = {"unet": self.opt}
            self._ema_pairs = [(self._tensors["ema"][k][0], w) for k, (w, _) in self._tensors["unet"].items()]
            self._step = self._diffusion_step_impl
            self._unet = torch.compile(self.unet) if config.compile else self.unet
            self.network_call = self._predict_impl
            self.unet.train()
            self.ema.eval()
        self.set_weights(init_ldm(config, config.seed))

    def weight_shapes(self) -> dict:
        return ldm_weight_shapes(self.config)

    # -- NumPy <-> tensors in the model's dtype -----------------------------------------
    def images(self, images) -> torch.Tensor:
        return images_to_input(images, self.config.image_shape, self.config.dtype)

    def nhwc(self, array: np.ndarray) -> torch.Tensor:
        """An NHWC NumPy array (noise, latents) as an NCHW tensor of the model's dtype."""
        return torch.from_numpy(np.ascontiguousarray(np.asarray(array).transpose(0, 3, 1, 2),
                                                     self.config.dtype))

    def tensor(self, array) -> torch.Tensor:
        return torch.from_numpy(np.array(array, self.config.dtype))

    def labels(self, labels) -> torch.Tensor | None:
        return None if labels is None or not self.num_classes else labels_to_input(labels)

    def to_numpy(self, x: torch.Tensor) -> np.ndarray:
        """Network output (NCHW) -> NHWC NumPy."""
        return np.ascontiguousarray(x.detach().numpy().transpose(0, 2, 3, 1))

    # -- the network calls --------------------------------------------------------------
    @torch.inference_mode()
    def encode_moments(self, images) -> np.ndarray:
        """The encoder's moments (N, h, w, 2c) of images (NumPy uint8 / float in [-1, 1])."""
        return self.to_numpy(self.ae.encode(self.images(images)))

    @torch.inference_mode()
    def decode_latents(self, z: np.ndarray) -> np.ndarray:
        """decoder(z) for unscaled latents (N, h, w, c): NHWC images, NumPy."""
        return self.to_numpy(self.ae.decode(self.nhwc(z)))

    def predict_noise(self, x: np.ndarray, t: np.ndarray, labels: np.ndarray | None = None,
                      ema: bool = True) -> np.ndarray:
        """Predicted noise for scaled latents x_t (N, h, w, c) at timesteps t (N,) [and labels]."""
        self._require_diffusion("predict_noise")
        if self.num_classes and labels is None:
            raise ValueError("this conditional ldm needs labels (the null class is num_classes)")
        f = timestep_features(t, self.config.base_channels, self.config.dtype)  # (N, ch)
        return self.to_numpy(self.network_call(self.nhwc(x), self.tensor(f), self.labels(labels), ema))

    @torch.inference_mode()
    def _predict_impl(self, x: torch.Tensor, f: torch.Tensor, y: torch.Tensor | None, ema: bool):
        net = self.ema if ema else self.unet
        mode = net.training
        net.eval()
        try:
            return net(x, f, y)
        finally:
            net.train(mode)

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
        x = self.images(images)                                         # (N, C, H, W)
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
                          rate)
        self.global_step += 1
        return {"loss": float(loss)}

    def _posterior(self, x):
        """(mean, log_var) of q(z | x), log_var clipped as SD's."""
        moments = self.ae.encode(x)
        k = self.config.latent_channels
        return moments[:, :k], torch.clamp(moments[:, k:], *LOGVAR_RANGE)

    def _ae_step_impl(self, x, eps):
        self.ae.train()
        mean, log_var = self._posterior(x)
        rec = self.ae.decode(mean + torch.exp(0.5 * log_var) * eps)
        err = torch.abs(x - rec) if self.config.recon_loss == "l1" else torch.square(x - rec)
        recon = err.flatten(1).sum(dim=1)                                                 # (N,)
        kl = 0.5 * (torch.square(mean) + torch.exp(log_var) - 1.0 - log_var).flatten(1).sum(dim=1)  # (N,)
        loss = torch.mean(recon + self.config.kl_weight * kl)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach(), recon.mean().detach(), kl.mean().detach()

    def _diffusion_step_impl(self, x, scale, z, a, b, f, y, rate):
        with torch.no_grad():
            x0 = scale * self._posterior(x)[0]                          # frozen encoder
        self.unet.train()
        x_t = a * x0 + b * z                                            # forward process q(x_t | x_0)
        eps = self._unet(x_t, f, y)                                     # (N, c, h, w)
        loss = F.mse_loss(eps, z)                                       # L_simple
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            for e, w in self._ema_pairs:
                e.add_(rate * (w - e))
        return loss.detach()

    def batches(self, data, epoch: int):
        return to_torch_loader(data, self.config.batch_size, self.config.seed, epoch,
                               self.config.drop_last)


def build(config: LDMConfig) -> LDM:
    return LDM(config)
