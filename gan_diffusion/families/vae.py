"""Framework-free VAE methods shared by both backends (NumPy in, NumPy out).

A backend VAE (tf_backend/vae.py, torch_backend/vae.py) subclasses `VAEBase` and supplies,
besides TrainerBase's hooks:

    encode(images, labels=None)  -> (z_mean, z_log_var), NumPy (N, latent_dim) each
    decode(z, labels=None)       -> NumPy NHWC in [0, 1] (the likelihood's mean, sigmoid(logits))
    loss_terms(images, labels=None, eps=None) -> the batch's loss terms, no update

Images come in as every model takes them: uint8 NHWC, or float NHWC in the model range
[-1, 1] (gan_diffusion.data.as_model_batch, what the data pipeline serves). The VAE works on
[0, 1] (its Bernoulli likelihood needs it): x01 = (x + 1) / 2, i.e. u / 255 for uint8 u,
done by the backends' `images`. Outputs that are images (`sample`, `reconstruct`,
`interpolate`, `manifold`) are uint8, through the project's conversion (round(255 p)).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from gan_diffusion.errors import ConfigError
from gan_diffusion.families.base import TrainerBase
from gan_diffusion.models.vae import bits_per_dim, lerp_latents, manifold_latents, to_unit_range


def to_uint8(x01: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 pixels via the project's conversion (from_model_range)."""
    from gan_diffusion.data import from_model_range

    return from_model_range(2.0 * np.asarray(x01, np.float64) - 1.0)


class VAEBase(TrainerBase):
    """What both backends' VAEs share: reporting, sampling from the prior, reconstruction,
    interpolation, the latent manifold and evaluation."""

    # -- hooks each backend implements -------------------------------------------------
    def encode(self, images: Any, labels: Any = None) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def decode(self, z: np.ndarray, labels: Any = None) -> np.ndarray:
        raise NotImplementedError

    def loss_terms(self, images: Any, labels: Any = None, eps: np.ndarray | None = None
                   ) -> dict[str, float]:
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------
    def reparam_noise(self, step: int, n: int, stream: str = "reparam") -> np.ndarray:
        """eps ~ N(0, I) of shape (n, latent_dim) for one training step (or evaluation batch,
        stream "reparam_eval"), from NumPy, so both backends see the same draws."""
        return self.noise.normal(self.config.seed, stream, step, (n, self.config.latent_dim))

    def report(self, neg_elbo: float, recon: float, kl: float) -> dict[str, float]:
        """A step's losses as History records them: negative ELBO, its reconstruction and KL
        terms (nats per image, batch means) and the negative ELBO in bits/dim."""
        neg_elbo = float(neg_elbo)
        return {"neg_elbo": neg_elbo, "recon": float(recon), "kl": float(kl),
                "bpd": bits_per_dim(neg_elbo, self.config.dims)}

    def generate(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Decoded z in the model range [-1, 1] (what TrainerBase.sample converts to uint8).
        `sample(n, seed, labels=...)` thus decodes z ~ N(0, I): the decoder's mean image."""
        return 2.0 * self.decode(z, labels) - 1.0

    def _check_images(self, images: Any) -> np.ndarray:
        """A NumPy NHWC batch (uint8 or float in [-1, 1]) of the model's image shape."""
        from gan_diffusion.data import as_model_batch

        x = np.asarray(images)
        if x.dtype != np.uint8:
            return as_model_batch(x, self.config.image_shape)
        as_model_batch(x[:1], self.config.image_shape)   # shape check only
        return x

    def _labels_for(self, labels: Any, n: int) -> np.ndarray | None:
        """Labels of n images: required (one or n classes) by a conditional model, refused by
        an unconditional one."""
        if self.num_classes and labels is None:
            raise ConfigError(f"this conditional vae needs labels (one class or one per image) "
                              f"for its {n} image(s)")
        return self.check_labels(labels, n)

    def reconstruct_unit(self, images: Any, labels: Any = None, batch_size: int = 256) -> np.ndarray:
        """decode(z_mean(x)) as floats in [0, 1], NHWC (the deterministic reconstruction)."""
        x = self._check_images(images)
        y = self._labels_for(labels, len(x))
        out = []
        for i in range(0, len(x), batch_size):
            yb = None if y is None else y[i:i + batch_size]
            z_mean, _ = self.encode(x[i:i + batch_size], yb)
            out.append(self.decode(z_mean, yb))
        return np.concatenate(out)

    def reconstruct(self, images: Any, labels: Any = None, batch_size: int = 256) -> np.ndarray:
        """Reconstructions of `images`: decode(z_mean(x)), uint8 NHWC.

        Args:
            images: uint8 NHWC, or float NHWC in [-1, 1].
            labels: a conditional VAE's classes of the images (one, or one per image).

        Example:
            >>> recon = vae.reconstruct(test.images[:16])        # (16, 28, 28, 1) uint8
        """
        return to_uint8(self.reconstruct_unit(images, labels, batch_size))

    def reconstruction_metrics(self, images: Any, labels: Any = None, batch_size: int = 256
                               ) -> dict[str, float]:
        """Mean PSNR (dB) and SSIM (Wang et al. 2004, Gaussian window 11, sigma 1.5) of
        decode(z_mean(x)) against x, both as floats in [0, 1] (data_range 1), computed by
        gan_diffusion.metrics.

        Example:
            >>> vae.reconstruction_metrics(test.images[:1000])   # {"psnr": 17.9, "ssim": 0.71}
        """
        from gan_diffusion.metrics import psnr, ssim

        x = self._check_images(images)
        x01 = x / 255.0 if x.dtype == np.uint8 else to_unit_range(x)    # float64 in [0, 1]
        rec = self.reconstruct_unit(x, labels, batch_size)
        return {"psnr": float(psnr(x01, rec, data_range=1.0).mean()),
                "ssim": float(ssim(x01, rec, data_range=1.0).mean())}

    def interpolate(self, x0: Any, x1: Any, steps: int = 8, labels: Any = None) -> np.ndarray:
        """Decoded points of the segment between the latent means of two images.

        Args:
            x0, x1: one image each (H, W, C), uint8 or float in [-1, 1].
            steps: images on the path, both ends included.
            labels: conditional only: (class of x0, class of x1); the first half of the path
                is decoded with the first, the second half with the second.

        Returns:
            uint8 (steps, H, W, C).
        """
        if steps < 2:
            raise ConfigError(f"interpolate needs steps >= 2, got {steps}")
        x = self._check_images(np.stack([np.asarray(x0), np.asarray(x1)]))
        y = self._labels_for(labels, 2)
        z_mean, _ = self.encode(x, y)
        path = lerp_latents(z_mean[0], z_mean[1], steps)                 # (steps, latent_dim)
        y_path = None if y is None else np.where(np.arange(steps) < steps / 2, y[0], y[1])
        return to_uint8(self.decode(path, y_path))

    def manifold(self, n: int = 21, scale: float = 2.0, labels: Any = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The Keras example's 2-D latent manifold: decoded images over an n x n grid of z.

        Only for latent_dim 2. z[0] runs from -scale to scale left to right, z[1] from scale
        to -scale top to bottom (rows of the returned images, row-major).

        Args:
            labels: conditional only: the class to decode with.

        Returns:
            (uint8 images (n*n, H, W, C), grid_x (n,), grid_y (n,)); tile with nrow=n, or
            save with gan_diffusion.utils.latent_plots.save_manifold.
        """
        if self.config.latent_dim != 2:
            raise ConfigError(f"the latent manifold needs latent_dim 2, this vae has "
                              f"{self.config.latent_dim}")
        z, grid_x, grid_y = manifold_latents(n, scale)
        y = self._labels_for(labels, len(z))
        images = np.concatenate([to_uint8(self.decode(z[i:i + 256], None if y is None else y[i:i + 256]))
                                 for i in range(0, len(z), 256)])
        return images, grid_x, grid_y

    def evaluate(self, data: Any, batch_size: int = 256) -> dict[str, float]:
        """Loss terms and reconstruction quality on a whole dataset (e.g. the test split).

        One eps per image from the "reparam_eval" stream (batch i draws step i), so both
        backends and every epoch evaluate with the same noise. Means per image.

        Returns:
            {"neg_elbo", "recon", "kl" (nats), "bpd" (bits/dim), "psnr" (dB), "ssim"}.
        """
        self._check_data(data)
        totals = {"neg_elbo": 0.0, "recon": 0.0, "kl": 0.0, "psnr": 0.0, "ssim": 0.0}
        for step, i in enumerate(range(0, len(data), batch_size)):
            x = data.images[i:i + batch_size]
            y = data.labels[i:i + batch_size] if self.num_classes else None
            terms = self.loss_terms(x, y, eps=self.reparam_noise(step, len(x), "reparam_eval"))
            quality = self.reconstruction_metrics(x, y, batch_size)
            for k in totals:
                totals[k] += len(x) * (terms[k] if k in terms else quality[k])
        out = {k: v / len(data) for k, v in totals.items()}
        out["bpd"] = bits_per_dim(out["neg_elbo"], self.config.dims)
        return out

    def latent_means(self, data: Any, batch_size: int = 256) -> np.ndarray:
        """z_mean of every image of a dataset (conditional: with its labels), (N, latent_dim)."""
        out = []
        for i in range(0, len(data), batch_size):
            y = data.labels[i:i + batch_size] if self.num_classes else None
            out.append(self.encode(data.images[i:i + batch_size], y)[0])
        return np.concatenate(out)
