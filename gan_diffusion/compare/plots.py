"""The comparison figures (matplotlib, Agg, PNG), drawn from the run records.

    <model>_losses.png      per-epoch mean losses, a line per backend (mean over seeds,
                            band = min..max over seeds), a panel per loss
    epoch_times.png         seconds per epoch, bars per backend (mean, error bar = std over seeds)
    quality.png             every quality metric (FID, KID with the extractor named, class
                            accuracy, negative ELBO, ...) per model and backend: a panel
                            per metric, bars = mean, error bars = std over seeds, dots = seeds
    model_effect.png        model against model (two or more models): A - B of every metric
                            both models have, per backend and pooled, with the Welch 95%
                            interval as error bar (the numbers: tables/model_effect.md)
    real_vs_models.png      real | model 1 | model 2 ... (two or more models): the reference
                            images beside each model's first evaluation samples
    <model>_samples.png     evaluation samples of seed 0, TF | torch side by side (same latents)
    <model>_trajectory.png  sampling trajectories (models that provide them: diffusion)
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from gan_diffusion.compare.quality import extractor_note, score_label
from gan_diffusion.compare.tables import POOLED, RunResult, metric_label, model_effect_table
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
def _trained(results): return [r for r in results if r.epochs]   # evaluation-only runs have none


def _panels(plt, n: int, width: float, height: float, ncols: int = 3):
    """A figure with n axes on a grid of up to `ncols` columns; unused cells hidden."""
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def loss_curves(results: list[RunResult], folder: Path) -> list[Figure]:
    plt = _plt()
    figs = []
    results = _trained(results)
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
    results = _trained(results)
    models = _models(results)
    if not models:
        return []
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


def _direction(key: str) -> str:
    if "accuracy" in key:
        return " (higher is better)"
    if key in ("fid", "kid") or "elbo" in key:
        return " (lower is better)"
    return ""


def quality_bars(results: list[RunResult], extractor: str, folder: Path) -> list[Figure]:
    """quality.png: a panel per quality metric (RunResult.quality_values: FID, KID, class
    accuracy, negative ELBO, ...), x = the models that have it, a bar per backend (mean over
    seeds), error bar = standard deviation over seeds (none for one seed), dots = seeds."""
    plt = _plt()
    values = [(r, r.quality_values()) for r in results]
    metrics = list(dict.fromkeys(k for _, q in values for k in q))
    if not metrics:
        return []
    backends = _backends(results)
    fig, axes = _panels(plt, len(metrics), 4.6, 3.4)
    width = 0.8 / max(1, len(backends))
    for ax, metric in zip(axes, metrics):
        models = [m for m in _models(results) if any(r.model == m and metric in q for r, q in values)]
        drawn = set()
        for j, be in enumerate(backends):
            for i, model in enumerate(models):
                vals = [q[metric] for r, q in values if r.model == model and r.backend == be
                        and metric in q and not math.isnan(q[metric])]
                if not vals:
                    continue
                x = i + (j - (len(backends) - 1) / 2) * width
                err = np.std(vals, ddof=1) if len(vals) > 1 else None
                ax.bar(x, np.mean(vals), width, yerr=err, capsize=4, color=COLORS.get(be),
                       label=None if be in drawn else NAMES.get(be, be))
                drawn.add(be)
                ax.plot([x] * len(vals), vals, "k.", ms=4)
        ax.set_xticks(range(len(models)), models, rotation=20 if len(models) > 3 else 0)
        ax.set_title(metric_label(metric, extractor, results) + _direction(metric), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = folder / "quality.png"
    _save(fig, path)
    return [Figure("Sample quality", path, "A panel per quality metric; bars: mean over seeds per "
                   "model and backend; error bars: standard deviation over seeds (none with one "
                   "seed); dots: individual seeds. " + extractor_note(extractor))]


def model_effect_bars(results: list[RunResult], extractor: str, folder: Path) -> list[Figure]:
    """model_effect.png: a panel per metric of tables.model_effect_table, a horizontal bar per
    (pair A - B, backend), error bar = the Welch 95% interval (none with one seed)."""
    plt = _plt()
    rows = model_effect_table(results, extractor).rows
    keys = list(dict.fromkeys(r["key"] for r in rows))
    if not keys:
        return []
    n_bars = max(sum(r["key"] == k for r in rows) for k in keys)
    fig, axes = _panels(plt, len(keys), 5.2, 0.9 + 0.32 * n_bars, ncols=2)
    for ax, key in zip(axes, keys):
        shown = [r for r in rows if r["key"] == key][::-1]          # first row on top
        y = np.arange(len(shown))
        diff = np.array([r["difference"] for r in shown])
        low = np.array([r["diff_ci_low"] for r in shown])
        high = np.array([r["diff_ci_high"] for r in shown])
        has = ~np.isnan(low)
        err = np.where(has, [diff - low, high - diff], 0.0)           # (2, rows)
        colors = [COLORS.get(r["backend"], "#777777") for r in shown]
        ax.barh(y, diff, 0.7, xerr=err, capsize=3, color=colors, alpha=0.85)
        for yi in y[~has]:
            ax.annotate("1 seed: no interval", (0, yi), fontsize=7, va="center",
                        xytext=(4, 0), textcoords="offset points")
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(y, [f"{r['model_a']} − {r['model_b']} ({r['backend']})" for r in shown],
                      fontsize=8)
        ax.set_title(f"{shown[0]['metric']}: A − B", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Model effect A − B (mean over seeds), error bars: Welch 95% interval", fontsize=10)
    fig.tight_layout()
    path = folder / "model_effect.png"
    _save(fig, path)
    return [Figure("Model effect", path, "Differences of means A − B between models, a panel per "
                   f"metric, a bar per pair and backend ({POOLED}: per-seed mean over the "
                   "backends); error bars: Welch's 95% interval over seeds. Ratios A / B with "
                   "their intervals are in the model-effect table.")]


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


def real_vs_models(results: list[RunResult], folder: Path, reference: Path | None) -> list[Figure]:
    """One figure, real | model 1 | model 2 | ...: 64 reference images evenly spaced over the
    set (it is stored in class order: the first 64 would show one or two classes), then the
    first 64 evaluation samples of each model (its first backend and seed). Only for
    comparisons of two or more models (the EuroSAT study's real | GAN | SD)."""
    models = _models(results)
    if len(models) < 2 or reference is None or not Path(reference).exists():
        return []
    plt = _plt()
    real, _ = load_images(Path(reference))
    spread = np.linspace(0, len(real) - 1, min(64, len(real))).round().astype(int)
    panels = [("real", _grid(real[spread]))]
    for model in models:
        group = sorted((r for r in results if r.model == model), key=lambda r: (r.seed, r.backend))
        if group and (group[0].path / "eval_samples.npz").exists():
            images, _ = load_images(group[0].path / "eval_samples.npz")
            panels.append((f"{model} ({NAMES.get(group[0].backend, group[0].backend)}, "
                           f"seed {group[0].seed})", _grid(images)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.3), squeeze=False)
    for ax, (title, grid) in zip(axes[0], panels):
        ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.suptitle("real images | each model's evaluation samples", fontsize=10)
    path = folder / "real_vs_models.png"
    _save(fig, path)
    return [Figure("Real | " + " | ".join(models), path, "64 reference images (what FID compares "
                   "against), evenly spaced over its classes, then the first 64 evaluation "
                   "samples of each model.")]


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


def make_figures(results: list[RunResult], extractor: str, folder: Path,
                 reference: Path | None = None) -> list[Figure]:
    """All figures, in report order (`reference`: the real images FID compares against)."""
    if not results:
        return []
    return (quality_bars(results, extractor, folder) + model_effect_bars(results, extractor, folder)
            + epoch_time_bars(results, folder) + loss_curves(results, folder)
            + real_vs_models(results, folder, reference) + sample_grids(results, folder)
            + trajectories(results, folder))
