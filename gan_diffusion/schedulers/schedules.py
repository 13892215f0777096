"""Noise schedules of DDPM (Ho et al. 2020) in NumPy, and every coefficient derived from them.

The forward process adds Gaussian noise in T steps, q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1},
beta_t I), so that in closed form

    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,   abar_t = prod_{s <= t} (1 - beta_s),  eps ~ N(0, I)

Three beta schedules (timesteps are 0-based, t = 0 .. T-1, as in diffusers):

    linear         beta_t = linspace(1e-4, 0.02, T)                      (Ho et al. 2020)
    cosine         abar(t) = cos^2((t/T + s) / (1 + s) * pi/2), s = 0.008;  (Nichol & Dhariwal 2021)
                   beta_t = min(1 - abar((t+1)/T) / abar(t/T), 0.999)     (diffusers' "squaredcos_cap_v2")
    scaled_linear  beta_t = linspace(sqrt(0.00085), sqrt(0.012), T)^2      (latent / Stable Diffusion,
                                                                           Rombach et al. 2022)

Everything is float64; schedulers cast to the model's dtype where they meet the images.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from gan_diffusion.errors import ConfigError

SCHEDULES = ("linear", "cosine", "scaled_linear")
# (beta_start, beta_end) when make_schedule is not given them
DEFAULT_BETAS = {"linear": (1e-4, 0.02), "scaled_linear": (0.00085, 0.012)}


def linear_betas(timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
    """Ho et al.'s linear schedule: (T,) betas from beta_start to beta_end.

    Example:
        >>> linear_betas()[[0, -1]].tolist()
        [0.0001, 0.02]
    """
    return np.linspace(beta_start, beta_end, timesteps, dtype=np.float64)


def scaled_linear_betas(timesteps: int = 1000, beta_start: float = 0.00085,
                        beta_end: float = 0.012) -> np.ndarray:
    """Stable Diffusion's schedule: (T,) betas, linear in sqrt(beta) from beta_start to beta_end.

    Example:
        >>> scaled_linear_betas()[[0, -1]].round(6).tolist()
        [0.00085, 0.012]
    """
    return np.linspace(beta_start ** 0.5, beta_end ** 0.5, timesteps, dtype=np.float64) ** 2


def cosine_betas(timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal's cosine schedule: (T,) betas, each clipped at `max_beta` (0.999)
    so the last steps stay finite (abar reaches cos^2(pi/2) = 0 at t = T)."""
    def abar(u: float) -> float:
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    return np.array([min(1 - abar((i + 1) / timesteps) / abar(i / timesteps), max_beta)
                     for i in range(timesteps)], dtype=np.float64)


@dataclasses.dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """A beta schedule and its derived coefficients, each an array of shape (T,) indexed by t.

    Attributes:
        betas: beta_t.
        alphas: 1 - beta_t.
        alphas_cumprod: abar_t = prod_{s<=t} alpha_s.
        alphas_cumprod_prev: abar_{t-1}, with abar_{-1} = 1.
        sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod: the forward process' scales.
        sqrt_recip_alphas_cumprod, sqrt_recipm1_alphas_cumprod: x_0 = a x_t - b eps.
        posterior_variance: variance of q(x_{t-1} | x_t, x_0),
            beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t) (0 at t = 0).
        posterior_log_variance_clipped: log beta~_t with beta~_0 replaced by beta~_1 (finite).
        posterior_mean_coef1, posterior_mean_coef2: mean of q(x_{t-1} | x_t, x_0) =
            coef1 x_0 + coef2 x_t, coef1 = beta_t sqrt(abar_{t-1}) / (1 - abar_t),
            coef2 = (1 - abar_{t-1}) sqrt(alpha_t) / (1 - abar_t).
    """

    name: str
    betas: np.ndarray

    @property
    def num_timesteps(self) -> int:
        return int(self.betas.shape[0])

    @functools.cached_property
    def alphas(self) -> np.ndarray:
        return 1.0 - self.betas

    @functools.cached_property
    def alphas_cumprod(self) -> np.ndarray:
        return np.cumprod(self.alphas)

    @functools.cached_property
    def alphas_cumprod_prev(self) -> np.ndarray:
        return np.append(1.0, self.alphas_cumprod[:-1])

    @functools.cached_property
    def sqrt_alphas_cumprod(self) -> np.ndarray:
        return np.sqrt(self.alphas_cumprod)

    @functools.cached_property
    def sqrt_one_minus_alphas_cumprod(self) -> np.ndarray:
        return np.sqrt(1.0 - self.alphas_cumprod)

    @functools.cached_property
    def sqrt_recip_alphas_cumprod(self) -> np.ndarray:
        return np.sqrt(1.0 / self.alphas_cumprod)

    @functools.cached_property
    def sqrt_recipm1_alphas_cumprod(self) -> np.ndarray:
        return np.sqrt(1.0 / self.alphas_cumprod - 1.0)

    @functools.cached_property
    def posterior_variance(self) -> np.ndarray:
        return self.betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)

    @functools.cached_property
    def posterior_log_variance_clipped(self) -> np.ndarray:
        var = self.posterior_variance
        return np.log(np.append(var[1], var[1:]))

    @functools.cached_property
    def posterior_mean_coef1(self) -> np.ndarray:
        return self.betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)

    @functools.cached_property
    def posterior_mean_coef2(self) -> np.ndarray:
        return (1.0 - self.alphas_cumprod_prev) * np.sqrt(self.alphas) / (1.0 - self.alphas_cumprod)

    def q_sample(self, x0: np.ndarray, t: np.ndarray | int, noise: np.ndarray) -> np.ndarray:
        """The forward process in closed form: sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps.

        Args:
            x0: clean images (N, ...) in [-1, 1].
            t: one timestep or one per image, (N,).
            noise: eps, the shape of x0.

        Returns:
            x_t in x0's dtype.
        """
        x0 = np.asarray(x0)
        a, b = self.forward_coefficients(t, x0.ndim)
        return (a * x0 + b * noise).astype(x0.dtype, copy=False)

    def forward_coefficients(self, t: np.ndarray | int, ndim: int) -> tuple[np.ndarray, np.ndarray]:
        """(sqrt(abar_t), sqrt(1 - abar_t)) shaped (N, 1, ..., 1) to broadcast over images."""
        t = np.asarray(t, dtype=np.int64)
        shape = (-1,) + (1,) * (ndim - 1)
        return (self.sqrt_alphas_cumprod[t].reshape(shape),
                self.sqrt_one_minus_alphas_cumprod[t].reshape(shape))


def make_schedule(name: str = "linear", timesteps: int = 1000, beta_start: float | None = None,
                  beta_end: float | None = None) -> NoiseSchedule:
    """The named schedule ("linear", "cosine" or "scaled_linear"). beta_start/end apply to the
    linear ones; by default 1e-4/0.02 for "linear" and SD's 0.00085/0.012 for "scaled_linear".

    Example:
        >>> make_schedule("cosine").alphas_cumprod[-1] < 1e-8
        True
    """
    if name in DEFAULT_BETAS:
        start, end = DEFAULT_BETAS[name]
        start = start if beta_start is None else beta_start
        end = end if beta_end is None else beta_end
        betas = linear_betas if name == "linear" else scaled_linear_betas
        return NoiseSchedule(name, betas(timesteps, start, end))
    if name == "cosine":
        return NoiseSchedule(name, cosine_betas(timesteps))
    raise ConfigError(f"unknown noise schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
