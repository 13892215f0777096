"""Latent-space figures of the Keras VAE example, as PNG (matplotlib, no pyplot state).

    save_manifold        decoded images over a 2-D grid of z, axes labelled with z values
    save_latent_scatter  encoded means z_mean of labelled images, coloured by class
"""
from __future__ import annotations

import os

import numpy as np


def _save(fig, path: str | os.PathLike) -> None:
    from gan_diffusion.utils.io import atomic_open

    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", bbox_inches="tight")


def save_manifold(path: str | os.PathLike, images: np.ndarray, grid_x: np.ndarray,
                  grid_y: np.ndarray, title: str = "") -> None:
    """The 2-D latent manifold plot: images tiled without gaps, ticks at tile centres.

    Args:
        path: PNG file.
        images: uint8 (n*n, H, W, C), row-major; row i decodes z[1] = grid_y[i], column j
            z[0] = grid_x[j] (VAEBase.manifold's output).
        grid_x, grid_y: the z values of the columns and rows.

    Example:
        >>> save_manifold("manifold.png", *vae.manifold(n=20, scale=2.0))
    """
    from matplotlib.figure import Figure

    n = len(grid_x)
    images = np.asarray(images)
    _, h, w, c = images.shape
    tiles = images.reshape(n, n, h, w, c).transpose(0, 2, 1, 3, 4).reshape(n * h, n * w, c)
    fig = Figure(figsize=(10, 10), dpi=100)
    ax = fig.subplots()
    ax.imshow(tiles[..., 0] if c == 1 else tiles, cmap="Greys_r" if c == 1 else None,
              vmin=0, vmax=255, interpolation="nearest")
    step = max(1, n // 10)                          # at most ~10 labelled ticks per axis
    ax.set_xticks(np.arange(n)[::step] * w + w // 2, [f"{v:.1f}" for v in grid_x[::step]])
    ax.set_yticks(np.arange(n)[::step] * h + h // 2, [f"{v:.1f}" for v in grid_y[::step]])
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    if title:
        ax.set_title(title)
    _save(fig, path)


def save_latent_scatter(path: str | os.PathLike, z: np.ndarray, labels: np.ndarray | None,
                        title: str = "") -> None:
    """Scatter of 2-D latent means, coloured by label (the Keras example's cluster plot).

    Args:
        z: (N, 2) latent means (only the first two dimensions are drawn).
        labels: (N,) class labels, or None for one colour.

    Example:
        >>> save_latent_scatter("latent.png", vae.latent_means(test), test.labels)
    """
    from matplotlib.figure import Figure

    z = np.asarray(z)
    fig = Figure(figsize=(9, 7.5), dpi=100)
    ax = fig.subplots()
    points = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10" if labels is not None else None,
                        s=2, alpha=0.7)
    if labels is not None:
        fig.colorbar(points, ax=ax, label="label")
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    if title:
        ax.set_title(title)
    _save(fig, path)
