"""What both backends' latent diffusion models share, framework-free: the stages, the
autoencoder's reconstructions and metrics, attaching a trained autoencoder and computing the
latent scale, and sampling in latent space (docs/ldm.md).

A backend LDM (tf_backend/ldm.py, torch_backend/ldm.py) subclasses `LDMBase` and supplies,
besides TrainerBase's hooks:

    encode_moments(images)      -> the encoder's moments, NumPy (N, h, w, 2c)
    decode_latents(z)           -> decoder(z), NumPy NHWC images in about [-1, 1]
    predict_noise(x, t, labels=None, ema=True)   the U-Net on scaled latents (diffusion stage)
    train_step(images, labels=None, eps=None, z=None, t=None, drop=None)
        autoencoder stage: one step on the KL autoencoder loss, eps (N, h, w, c) the posterior
        noise ("reparam" stream); diffusion stage: one L_simple step of the U-Net on
        latent_scale * mean(q(z | x)), z, t, drop as DDPM's

Noise streams: the autoencoder stage draws eps from ("reparam", seed, step); the diffusion
stage t, its noise and label dropout as DDPM ("timestep", "diffusion", "label"); sampling
x_T (the latent's shape) and step noise from "sample", as DDPM.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from gan_diffusion.errors import CheckpointError, ConfigError
from gan_diffusion.families.diffusion import DiffusionModelBase
from gan_diffusion.models.kl_autoencoder import autoencoder_loss, split_moments
from gan_diffusion.models.ldm import LDMConfig, autoencoder_part, check_autoencoder_match

PREVIEW_IMAGES = 32   # the autoencoder stage's sample grid: 32 training images and their reconstructions


class LDMBase(DiffusionModelBase):
    """Latent diffusion on top of DiffusionModelBase: one stage per model (config.stage)."""

    config: LDMConfig
    preview_images: np.ndarray | None = None   # set by fit(): what the autoencoder's grid shows

    # -- hooks each backend implements -------------------------------------------------
    def encode_moments(self, images: Any) -> np.ndarray:
        raise NotImplementedError

    def decode_latents(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # -- stages --------------------------------------------------------------------------
    @property
    def stage(self) -> str:
        return self.config.stage

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """What is diffused: the latent (H/f, W/f, c)."""
        return tuple(self.config.latent_shape)

    def _require_diffusion(self, what: str) -> None:
        if self.stage != "diffusion":
            raise ConfigError(f"{what} needs the diffusion stage; this ldm is an autoencoder "
                              "(train one with --stage diffusion --autoencoder RUN, or --stage both)")

    def _require_autoencoder(self) -> None:
        if self.stage == "diffusion" and not self.config.autoencoder_sha256:
            raise ConfigError("this diffusion-stage ldm has no trained autoencoder: attach one with "
                              "model.set_autoencoder(checkpoint_or_model, data) before training")

    def fit(self, data: Any, epochs: int, **kwargs: Any):
        """Train the config's stage `epochs` more epochs (TrainerBase.fit)."""
        self._require_autoencoder()
        self._check_data(data)
        self.preview_images = data.images[:PREVIEW_IMAGES]
        return super().fit(data, epochs, **kwargs)

    # -- the autoencoder (both stages) --------------------------------------------------------
    def encode(self, images: Any, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """The posterior q(z | x) of images (uint8 or float in [-1, 1], NHWC): (mean, log_var),
        each NumPy (N, h, w, c), unscaled (the U-Net sees latent_scale * mean)."""
        from gan_diffusion.data import as_model_batch

        x = as_model_batch(np.asarray(images), self.config.image_shape)
        parts = [self.encode_moments(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        return split_moments(np.concatenate(parts), self.config.latent_channels)

    def decode(self, z: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """decoder(z) of unscaled latents (N, h, w, c): NumPy NHWC in about [-1, 1]."""
        z = np.asarray(z, self.config.dtype)
        if z.shape[1:] != tuple(self.config.latent_shape):
            raise ConfigError(f"latents must have shape (N, {', '.join(map(str, self.config.latent_shape))})"
                              f" (NHWC), got {z.shape}")
        return np.concatenate([self.decode_latents(z[i:i + batch_size]) for i in range(0, len(z), batch_size)])

    def reconstruct(self, images: Any, batch_size: int = 256) -> np.ndarray:
        """decoder(mean(q(z | x))) of images, uint8 NHWC (the deterministic reconstruction)."""
        from gan_diffusion.data import from_model_range

        return from_model_range(self.decode(self.encode(images, batch_size)[0], batch_size))

    def reconstruction_metrics(self, images: Any, batch_size: int = 256) -> dict[str, float]:
        """Mean PSNR (dB) and SSIM (gan_diffusion.metrics) of `reconstruct(images)` against the
        uint8 images (data range 255)."""
        from gan_diffusion.data import from_model_range
        from gan_diffusion.metrics import psnr, ssim

        x = np.asarray(images)
        x = x if x.dtype == np.uint8 else from_model_range(x)
        rec = self.reconstruct(x, batch_size)
        return {"psnr": float(psnr(x, rec).mean()), "ssim": float(ssim(x, rec).mean())}

    def evaluate(self, data: Any, batch_size: int = 256) -> dict[str, float]:
        """Reconstruction quality on a dataset: PSNR, SSIM and the autoencoder loss of the
        deterministic reconstruction (z = mean: recon and kl per image, models/kl_autoencoder.py)."""
        from gan_diffusion.data import from_model_range, to_model_range
        from gan_diffusion.metrics import psnr, ssim

        self._check_data(data)
        totals = {"recon": 0.0, "kl": 0.0, "psnr": 0.0, "ssim": 0.0}
        c = self.config
        for i in range(0, len(data), batch_size):
            x = data.images[i:i + batch_size]
            mean, log_var = self.encode(x, batch_size)
            rec = self.decode(mean, batch_size)
            terms = autoencoder_loss(to_model_range(x), rec, mean, log_var, c.recon_loss, c.kl_weight)
            r8 = from_model_range(rec)
            quality = {"psnr": float(psnr(x, r8).mean()), "ssim": float(ssim(x, r8).mean())}
            for k in totals:
                totals[k] += len(x) * (terms[k] if k in terms else quality[k])
        return {k: v / len(data) for k, v in totals.items()}

    def latent_std(self, data: Any, batch_size: int = 256) -> float:
        """Standard deviation of the latent means of every image of `data` (float64, all
        elements together): latent_scale = 1 / latent_std, as SD's scale factor."""
        means = [self.encode(data.images[i:i + batch_size], batch_size)[0].astype(np.float64)
                 for i in range(0, len(data), batch_size)]
        return float(np.concatenate(means).std())

    def autoencoder_weights(self) -> dict[str, np.ndarray]:
        """The "ae/..." canonical weights."""
        return autoencoder_part(self.get_weights())

    def set_autoencoder(self, source: Any, data: Any = None, name: str | None = None) -> str:
        """Attach a trained autoencoder to a diffusion-stage model: copy its "ae/" weights,
        record their sha256 (config.autoencoder_sha256) and, when config.latent_scale is 0,
        compute latent_scale = 1 / std of the latent means of `data` (the training images),
        rounded to 6 significant digits.

        Args:
            source: an ldm checkpoint (.npz of either stage, either backend) or an ldm model.
            data: the training data (needed when latent_scale is still 0).
            name: how errors name the source (e.g. the autoencoder's run folder).

        Returns:
            the sha256 of the autoencoder's weights.

        Raises:
            ConfigError: the autoencoder was built for other images or widths (named).
        """
        from gan_diffusion.checkpoint import load_checkpoint, weights_digest

        self._require_diffusion("set_autoencoder")
        if isinstance(source, (str, os.PathLike)):
            weights, _, meta = load_checkpoint(source)
            name = name or str(source)
            if meta.get("model") != "ldm":
                raise CheckpointError(f"{name} holds a {meta.get('model')!r} model, not an ldm autoencoder")
            theirs = LDMConfig.from_dict(meta["config"])
        else:
            weights, theirs, name = source.get_weights(), source.config, name or "model"
        check_autoencoder_match(self.config, theirs, name)
        ae = autoencoder_part(weights)
        self.set_weights({**self.get_weights(), **ae})
        digest = weights_digest(ae)
        scale = self.config.latent_scale
        self.config = self.config.replace(autoencoder_sha256=digest)
        if not scale:
            if data is None:
                raise ConfigError("latent_scale is 0 (compute it from the data): pass the training "
                                  "data to set_autoencoder, or set latent_scale")
            self._check_data(data)
            std = self.latent_std(data)
            if not std > 0:
                raise ConfigError(f"the latents of {data.name} have std {std}: the autoencoder {name} "
                                  "is degenerate; train it longer")
            # 6 significant digits (SD's is 0.18215): the backends' float32 encoders agree to
            # about 1e-7, so both compute the same recorded scale from the same autoencoder
            self.config = self.config.replace(latent_scale=float(f"{1.0 / std:.6g}"))
        return digest

    # -- sampling (diffusion stage) -------------------------------------------------------
    def denoise(self, x_T: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        """DiffusionModelBase.denoise on scaled latents (N, h, w, c): what `sample`,
        `class_grid` and `trajectory` run before decoding (`_to_uint8`)."""
        self._require_diffusion("sampling")
        return super().denoise(x_T, *args, **kwargs)

    def _to_uint8(self, x: np.ndarray) -> np.ndarray:
        """Scaled latents (N, h, w, c) -> decoded uint8 images (N, H, W, C)."""
        from gan_diffusion.data import from_model_range

        return from_model_range(self.decode(np.asarray(x) / self.config.latent_scale))

    def preview_grid(self, n: int = 64, seed: int = 0) -> tuple[np.ndarray, int | None]:
        """The run's sample grids: the autoencoder stage shows rows of 8 training images over
        their reconstructions (before the first fit, decoded N(0, I) latents); the diffusion
        stage samples as DDPM (a row per class when conditional)."""
        if self.stage == "diffusion":
            return super().preview_grid(n, seed)
        from gan_diffusion import noise
        from gan_diffusion.data import from_model_range

        if self.preview_images is None:
            z = noise.normal(seed, "sample", 0, (n, *self.config.latent_shape))
            return from_model_range(self.decode(z)), None
        x = self.preview_images
        rec = self.reconstruct(x)
        rows = [a[i:i + 8] for i in range(0, len(x), 8) for a in (x, rec)]
        return np.concatenate(rows), 8

    def forward_strip(self, images: np.ndarray, timesteps: Any = (0, 50, 100, 200, 300, 500, 700, 999),
                      seed: int = 0) -> np.ndarray:
        """q(z_t | z_0) of the images' scaled latents at several t, decoded (uint8, image-major;
        tile with nrow=len(timesteps))."""
        self._require_diffusion("forward_strip")
        from gan_diffusion import noise

        z0 = self.encode(images)[0].astype(np.float64) * self.config.latent_scale
        eps = noise.normal(seed, "sample", 0, z0.shape)
        rows = [self.schedule.q_sample(z0, np.full(len(z0), t), eps) for t in np.asarray(timesteps, np.int64)]
        return self._to_uint8(np.stack(rows, axis=1).reshape(-1, *z0.shape[1:]))

    def reference_loss(self, images: Any, eps: np.ndarray) -> dict[str, float]:
        """The autoencoder loss of a batch with posterior noise eps, in float64 NumPy from the
        backend's encoder and decoder outputs (tests compare train_step's losses with it)."""
        from gan_diffusion.data import as_model_batch

        x = as_model_batch(np.asarray(images), self.config.image_shape)
        mean, log_var = split_moments(self.encode_moments(x), self.config.latent_channels)
        z = mean + np.exp(0.5 * log_var) * eps
        return autoencoder_loss(x, self.decode(z), mean, log_var, self.config.recon_loss,
                                self.config.kl_weight)
