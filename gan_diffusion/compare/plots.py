"""The comparison figures (matplotlib, Agg, PNG), drawn from the run records.

    <model>_losses.png      per-epoch mean losses, a line per backend (mean over seeds,
                            band = min..max over seeds), a panel per loss
    epoch_times.png         seconds per epoch, bars per backend (mean, error bar = std over seeds)
    quality.png             FID and KID per model and backend (mean, error bar = std over
                            seeds, dots = seeds), extractor named in the title
    <model>_samples.png     evaluation samples of seed 0, TF | torch side by side (same latents)
    <model>_trajectory.png  sampling trajectories (models that provide them: diffusion)
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from gan_diffusion.compare.quality import extractor_note, score_label
from gan_diffusion.compare.tables import RunResult
from gan_diffusion.compare.worker import load_images

COLORS = {"tf": "#e8710a", "torch": "#1f6fd1"}  # TensorFlow orange, PyTorch blue
NAMES = {"tf": "TensorFlow/Keras", "torch": "PyTorch"}


@dataclasses.dataclass
class Figure:
    title: str
    path: Path
    caption: str


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    from gan_diffusion.utils.io import atomic_open

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)


def _by(results: list[RunResult], model: str, backend: str) -> list[RunResult]:
    return [r for r in results if r.model == model and r.backend == backend]


def _models(results): return list(dict.fromkeys(r.model for r in results))
def _backends(results): return list(dict.fromkeys(r.backend for r in results))


def loss_curves(results: list[RunResult], folder: Path) -> list[Figure]:
    plt = _plt()
    figs = []
    for model in _models(results):
        runs = [r for r in results if r.model == model]
        keys = list(dict.fromkeys(k for r in runs for e in r.epochs for k in e["losses"]))
        fig, axes = plt.subplots(1, len(keys), figsize=(3.3 * len(keys), 2.8), squeeze=False)
        for ax, key in zip(axes[0], keys):
            for be in _backends(runs):
                group = _by(runs, model, be)
                n = min(len(r.epochs) for r in group)
                vals = np.array([[r.epochs[i]["losses"].get(key, np.nan) for i in range(n)]
                                 for r in group])                          # (seeds, epochs)
                x = np.arange(1, n + 1)
                ax.plot(x, np.nanmean(vals, 0), "o-", ms=3, color=COLORS.get(be), label=NAMES.get(be, be))
                if len(group) > 1:
                    ax.fill_between(x, np.nanmin(vals, 0), np.nanmax(vals, 0), color=COLORS.get(be),
                                    alpha=0.2, lw=0)
            ax.set_title(key, fontsize=10)
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        fig.suptitle(f"{model}: mean training losses per epoch (band: min-max over seeds)", fontsize=10)
        fig.tight_layout()
        path = folder / f"{model}_losses.png"
        _save(fig, path)
        figs.append(Figure(f"{model}: loss curves", path, "Per-epoch mean losses from history.json; "
                           "line = mean over seeds, band = min..max over seeds."))
    return figs


def epoch_time_bars(results: list[RunResult], folder: Path) -> list[Figure]:
    plt = _plt()
    models = _models(results)
    fig, axes = plt.subplots(len(models), 1, figsize=(8, 2.6 * len(models)), squeeze=False)
    for ax, model in zip(axes[:, 0], models):
        backends = [b for b in _backends(results) if _by(results, model, b)]
        width = 0.8 / max(1, len(backends))
        for j, be in enumerate(backends):
            group = _by(results, model, be)
            n = min(len(r.epochs) for r in group)
            secs = np.array([r.epoch_seconds[:n] for r in group])           # (seeds, epochs)
            x = np.arange(1, n + 1) + (j - (len(backends) - 1) / 2) * width
            err = secs.std(0, ddof=1) if len(group) > 1 else None
            ax.bar(x, secs.mean(0), width, yerr=err, capsize=2, color=COLORS.get(be),
                   label=NAMES.get(be, be))
        ax.set_title(f"{model}: seconds per epoch (mean over seeds, error bar: std)", fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_xticks(range(1, max(len(r.epochs) for r in _by(results, model, backends[0])) + 1))
        ax.set_ylabel("s")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = folder / "epoch_times.png"
    _save(fig, path)
    return [Figure("Seconds per epoch", path, "Wall time of every epoch (epoch 1 includes tracing "
                   "and warm-up); bars: mean over seeds, error bars: standard deviation.")]


def quality_bars(results: list[RunResult], extractor: str, folder: Path) -> list[Figure]:
    plt = _plt()
    scored = [r for r in results if r.quality]
    if not scored:
        return []
    models, backends = _models(scored), _backends(scored)
    metrics = [m for m in ("fid", "kid") if any(m in r.quality for r in scored)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 3.2), squeeze=False)
    width = 0.8 / max(1, len(backends))
    for ax, metric in zip(axes[0], metrics):
        for j, be in enumerate(backends):
            for i, model in enumerate(models):
                vals = [r.quality[metric]["value"] for r in _by(scored, model, be) if metric in r.quality]
                if not vals:
                    continue
                x = i + (j - (len(backends) - 1) / 2) * width
                err = np.std(vals, ddof=1) if len(vals) > 1 else None
                ax.bar(x, np.mean(vals), width, yerr=err, capsize=4, color=COLORS.get(be),
                       label=NAMES.get(be, be) if i == 0 else None)
                ax.plot([x] * len(vals), vals, "k.", ms=4)
        ax.set_xticks(range(len(models)), models)
        ax.set_title(f"{score_label(extractor, metric)} (lower is better)", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = folder / "quality.png"
    _save(fig, path)
    return [Figure("Sample quality", path, "Bars: mean over seeds; error bars: standard deviation; "
                   "dots: individual seeds. " + extractor_note(extractor))]


def _grid(images: np.ndarray, n: int = 64) -> np.ndarray:
    from gan_diffusion.utils.images import make_grid

    return make_grid(images[:n], nrow=int(math.sqrt(min(n, len(images)))) or 1, pad_value=255)


def sample_grids(results: list[RunResult], folder: Path) -> list[Figure]:
    plt = _plt()
    figs = []
    for model in _models(results):
        panels = []
        for be in _backends(results):
            group = sorted(_by(results, model, be), key=lambda r: r.seed)
            if group and (group[0].path / "eval_samples.npz").exists():
                images, _ = load_images(group[0].path / "eval_samples.npz")
                panels.append((be, group[0].seed, _grid(images)))
        if not panels:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.3), squeeze=False)
        for ax, (be, seed, grid) in zip(axes[0], panels):
            ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{NAMES.get(be, be)} (seed {seed})", fontsize=10, color=COLORS.get(be))
            ax.axis("off")
        fig.suptitle(f"{model}: evaluation samples, the same latent vectors in both backends", fontsize=10)
        path = folder / f"{model}_samples.png"
        _save(fig, path)
        figs.append(Figure(f"{model}: samples, TF | torch", path, "The first 64 evaluation samples "
                           "of the first seed; both panels decode the same latent vectors."))
    return figs


def trajectories(results: list[RunResult], folder: Path) -> list[Figure]:
    plt = _plt()
    figs = []
    for model in _models(results):
        panels = []
        for be in _backends(results):
            group = sorted(_by(results, model, be), key=lambda r: r.seed)
            if group and (group[0].path / "trajectory.npz").exists():
                from gan_diffusion.utils.images import make_grid

                traj, meta = load_images(group[0].path / "trajectory.npz")  # (n * frames, H, W, C)
                n = meta["n"]
                # rows: samples, columns: sampler steps from x_T to x_0
                panels.append((be, make_grid(traj, nrow=len(traj) // n, pad_value=255)))
        if not panels:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5), squeeze=False)
        for ax, (be, grid) in zip(axes[0], panels):
            ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255)
            ax.set_title(NAMES.get(be, be), fontsize=10, color=COLORS.get(be))
            ax.axis("off")
        fig.suptitle(f"{model}: sampling trajectory (left to right: x_T to x_0)", fontsize=10)
        path = folder / f"{model}_trajectory.png"
        _save(fig, path)
        figs.append(Figure(f"{model}: sampling trajectories", path,
                           "Rows: samples; columns: steps of the sampler, noise to image."))
    return figs


def make_figures(results: list[RunResult], extractor: str, folder: Path) -> list[Figure]:
    """All figures, in report order."""
    if not results:
        return []
    return (quality_bars(results, extractor, folder) + epoch_time_bars(results, folder)
            + loss_curves(results, folder) + sample_grids(results, folder) + trajectories(results, folder))
