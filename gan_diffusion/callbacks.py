"""What a training run does around `fit`, as small callback objects (Keras-callback style).

`train_run` (gan_diffusion/runs.py) calls, in list order:
    on_train_begin(run)           once, before the first epoch of this session
    on_epoch_end(run, stats)      after every epoch; run.history already holds `stats`
    on_train_end(run)             once, after the last epoch (not after a failure)
    close()                       on any exit

The order of `default_callbacks` is the epoch's commit protocol:
    1. measure   VAEEvaluation adds this epoch's evaluation to run.records["eval"]
    2. commit    Checkpoint writes weights + optimizer + history + records in ONE atomic
                 rename (checkpoints/latest.npz): the epoch exists from then on
    3. derive    history.json and eval.json (regenerated from the checkpoint on resume),
                 the sample grid, TensorBoard events, the log line
A crash before 2 loses the epoch cleanly; a crash after 2 loses only derived files, which
a resume rewrites. gan_diffusion/utils/faults.py names the points between the steps.
"""
from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import IO, Any

import numpy as np

from gan_diffusion.protocols import EpochStats, History
from gan_diffusion.utils import faults
from gan_diffusion.utils.io import write_json_if_changed

GRID_SEED, GRID_N = 0, 64
VAE_EVAL_MAX = 10000          # images the VAE is evaluated on after every epoch
VAE_MANIFOLD_N, VAE_MANIFOLD_SCALE = 21, 2.0   # latent_dim 2: 21 x 21 decodes of z in [-2, 2]^2


@dataclasses.dataclass
class RunContext:
    """The state callbacks share: the model, its data, the run folder and the records."""

    out: Path
    model: Any
    data: Any
    epochs: int                        # the run's total
    history: History
    records: dict[str, Any]            # per-epoch records committed with the checkpoint
    log: IO[str] | None = None
    backend_package: str = ""          # "gan_diffusion.tf_backend" / ".torch_backend"
    committed_epoch: int = 0           # the epoch checkpoints/latest.npz holds

    @property
    def checkpoint(self) -> Path:
        return self.out / "checkpoints" / "latest.npz"

    def committed(self) -> dict[str, Any]:
        """What the checkpoint carries besides the weights (restored on resume)."""
        return {"history": self.history.to_dict(), "records": self.records}


class Callback:
    def on_train_begin(self, run: RunContext) -> None:
        pass

    def on_epoch_end(self, run: RunContext, stats: EpochStats) -> None:
        pass

    def on_train_end(self, run: RunContext) -> None:
        pass

    def close(self) -> None:
        """Release what on_train_begin opened; called on any exit, failures included."""


class Checkpoint(Callback):
    """The commit point, then the files derived from it (history.json, eval.json)."""

    def on_epoch_end(self, run: RunContext, stats: EpochStats) -> None:
        faults.point("epoch-trained")
        run.model.save(run.checkpoint, run=run.committed())
        run.committed_epoch = stats.epoch
        faults.point("checkpoint-committed")
        write_derived(run)
        faults.point("history-written")


def write_derived(run: RunContext) -> list[str]:
    """history.json and eval.json from what the checkpoint holds; a file that already holds
    it is left untouched. Returns the names of the files written."""
    derived = {"history.json": run.history.to_dict()}
    if "eval" in run.records:
        derived["eval.json"] = run.records["eval"]
    return [name for name, data in derived.items() if write_json_if_changed(run.out / name, data)]


class SampleGrid(Callback):
    """samples/epoch_NNNN.png: 64 samples, or a row per class for a conditional model."""

    def on_epoch_end(self, run: RunContext, stats: EpochStats) -> None:
        self.write(run, stats.epoch)

    @staticmethod
    def path(run: RunContext, epoch: int) -> Path:
        return run.out / "samples" / f"epoch_{epoch:04d}.png"

    def write(self, run: RunContext, epoch: int) -> np.ndarray:
        from gan_diffusion.utils.images import save_grid

        images, nrow = run.model.preview_grid(GRID_N, seed=GRID_SEED)
        save_grid(self.path(run, epoch), images, nrow)
        self.last = (images, nrow)
        return images


class TensorBoard(Callback):
    """Event files in OUT/tensorboard with the backend's writer: losses, time, images/s, grid."""

    def __init__(self, grids: SampleGrid):
        self.grids, self.writer = grids, None

    def on_train_begin(self, run: RunContext) -> None:
        tb = importlib.import_module(f"{run.backend_package}.tensorboard")
        self.writer = tb.EventWriter(run.out / "tensorboard")

    def on_epoch_end(self, run: RunContext, stats: EpochStats) -> None:
        from gan_diffusion.utils.images import make_grid

        self.writer.scalars(stats.epoch, {**{f"loss/{k}": v for k, v in stats.losses.items()},
                                          "time/epoch_seconds": stats.seconds,
                                          "time/images_per_sec": stats.images_per_sec})
        self.writer.image("samples", make_grid(*self.grids.last), stats.epoch)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class VAEEvaluation(Callback):
    """Negative ELBO, bits/dim, PSNR and SSIM on held-out images after every epoch
    (run.records["eval"]), and the figures after the last one (docs/vae.md)."""

    def __init__(self, eval_data: Any, split: str):
        self.data, self.split = eval_data, split

    def on_epoch_end(self, run: RunContext, stats: EpochStats) -> None:
        ev = run.model.evaluate(self.data)
        record = run.records.setdefault("eval", {"split": self.split, "images": len(self.data),
                                                 "epochs": []})
        record["epochs"].append({"epoch": stats.epoch, **ev})

    def line(self, run: RunContext) -> str:
        ev = run.records["eval"]["epochs"][-1]
        return (f"  | {self.split} neg_elbo {ev['neg_elbo']:.4f}  bpd {ev['bpd']:.4f}  "
                f"psnr {ev['psnr']:.2f}  ssim {ev['ssim']:.4f}")

    def on_train_end(self, run: RunContext) -> None:
        written = vae_figures(run.model, run.out, self.data)
        print(f"wrote {', '.join(p.name for p in written)} ({self.split} images) to {run.out}")


class LogLine(Callback):
    """One line per epoch on stdout and in train.log."""

    def __init__(self, evaluation: VAEEvaluation | None = None):
        self.evaluation = evaluation

    def on_epoch_end(self, run: RunContext, stats: EpochStats) -> None:
        line = stats.log_line(run.epochs)
        if self.evaluation is not None:
            line += self.evaluation.line(run)
        print(line, flush=True)
        if run.log is not None:
            run.log.write(line + "\n")
            run.log.flush()
        faults.point("epoch-done")


def default_callbacks(model: Any, eval_data: tuple[Any, str] | None, tensorboard: bool
                      ) -> list[Callback]:
    """The callbacks of a `gan-diffusion train` run, in commit-protocol order."""
    evaluation = VAEEvaluation(*eval_data) if eval_data is not None else None
    grids = SampleGrid()
    callbacks: list[Callback] = [evaluation] if evaluation else []
    callbacks += [Checkpoint(), grids]
    if tensorboard:
        callbacks.append(TensorBoard(grids))
    return callbacks + [LogLine(evaluation)]


def vae_eval_data(dataset: str, split: str, data: Any, data_dir: Any, image_size: Any
                  ) -> tuple[Any, str]:
    """What a VAE run is evaluated on after every epoch: the test split of mnist/cifar10
    (at most VAE_EVAL_MAX images), else the first VAE_EVAL_MAX training images."""
    from gan_diffusion.data import DataError, load_dataset

    if split == "train" and str(dataset).lower() in ("mnist", "cifar10"):
        try:
            return load_dataset(dataset, split="test", data_dir=data_dir, image_size=image_size,
                                limit=VAE_EVAL_MAX), "test"
        except DataError as exc:
            print(f"no test split to evaluate on ({exc}); evaluating on training images")
    return data.subset(VAE_EVAL_MAX), "train"


def vae_figures(model: Any, out: Path, data: Any) -> list[Path]:
    """Reconstructions, interpolations and, for latent_dim 2, the latent manifold and the
    latent scatter of `data` (the evaluation images), written into the run folder."""
    from gan_diffusion.utils.images import save_grid
    from gan_diffusion.utils.latent_plots import save_latent_scatter, save_manifold

    x = data.images[:32]
    y = data.labels[:32] if model.num_classes else None
    recon = model.reconstruct(x, y)
    pairs = np.concatenate([x[:16], recon[:16], x[16:32], recon[16:32]])  # rows: x, recon, x, recon
    written = [out / "reconstructions.png", out / "interpolations.png"]
    save_grid(written[0], pairs, 16)
    paths = [model.interpolate(data.images[2 * i], data.images[2 * i + 1], 10,
                               None if y is None else (y[2 * i], y[2 * i + 1])) for i in range(4)]
    save_grid(written[1], np.concatenate(paths), 10)
    if model.config.latent_dim == 2 and not model.num_classes:
        written.append(out / "manifold.png")
        save_manifold(written[-1], *model.manifold(VAE_MANIFOLD_N, VAE_MANIFOLD_SCALE),
                      title=f"decoded z, epoch {model.epoch}")
        if data.labels is not None:
            written.append(out / "latent_scatter.png")
            save_latent_scatter(written[-1], model.latent_means(data), data.labels,
                                title=f"z_mean of {len(data)} {data.name} images, epoch {model.epoch}")
    return written
