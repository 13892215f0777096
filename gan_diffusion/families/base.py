"""Framework-free training mechanics shared by both backends.

`TrainerBase` owns the epoch loop, timing, History, checkpoints and sample post-processing.
A backend model subclasses it and supplies the framework parts:

    _tensors     {network: {"<layer>/<param>": (tensor, kind)}}   its weights, by canonical name
    _optimizers  {network: optimizer}
    backend_layers, backend_optimizers   the backend's modules (to_canonical/assign,
                                         optimizer_state/load_optimizer_state)
    weight_shapes()      the canonical shapes, to check what set_weights is given
    batches(data, epoch)                  the backend's data adapter, in the core's order
    train_step(images, labels=None, ...)  one step, returns {loss name: float}
    generate(z, labels=None)              NumPy latent [and labels] -> NumPy NHWC image in [-1, 1]
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from gan_diffusion import noise
from gan_diffusion._version import __version__
from gan_diffusion.checkpoint import load_checkpoint, save_checkpoint
from gan_diffusion.configs import Config
from gan_diffusion.errors import CheckpointError, ConfigError, DivergenceError
from gan_diffusion.models.plan import check_weights
from gan_diffusion.protocols import EpochStats, History
from gan_diffusion.utils import cpuload

EpochCallback = Callable[[Any, EpochStats], None]


class TrainerBase:
    """Shared training loop; subclasses are the per-backend model classes."""

    backend_name = ""  # "tf" or "torch"
    noise: Any = noise
    """Where the model draws its training noise (`self.noise.normal(seed, stream, step, shape)`,
    `.uniform`, `.integers`): the shared counter-based `gan_diffusion.noise` module, or, set on
    one instance by `--native-rng`, a `NativeNoise` (gan_diffusion/compare/native.py), the
    way diffusers takes `generator=`. Evaluation noise (`noise.latent`, the EVAL_STREAMS of
    compare/native.py) is the shared draws either way."""

    def __init__(self, config: Config):
        self.config = config
        self.epoch = 0        # completed epochs
        self.global_step = 0  # completed optimisation steps

    # -- hooks each backend implements -------------------------------------------------
    _tensors: dict[str, dict[str, tuple[Any, str]]]
    _optimizers: dict[str, Any]
    backend_layers: Any
    backend_optimizers: Any

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def batches(self, data: Any, epoch: int) -> Iterable[tuple[Any, Any]]:
        raise NotImplementedError

    def train_step(self, images: Any, labels: Any = None, **noise_arrays: Any) -> dict[str, float]:
        raise NotImplementedError

    def generate(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    # -- canonical state (docs/weights.md), the same code for every backend -------------
    def get_weights(self) -> dict[str, np.ndarray]:
        """All weights, trainable and statistics, as {"<net>/<layer>/<param>": array}."""
        return {f"{net}/{name}": self.backend_layers.to_canonical(t, kind)
                for net, tensors in self._tensors.items() for name, (t, kind) in tensors.items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Load canonical weights (from either backend); checks names, shapes and dtypes."""
        check_weights(weights, self.weight_shapes(), self.config.model)
        for net, tensors in self._tensors.items():
            for name, (t, kind) in tensors.items():
                self.backend_layers.assign(t, kind, weights[f"{net}/{name}"])

    def optimizer_state(self) -> dict[str, np.ndarray]:
        """Optimizer state per network: {"<net>/step", "<net>/<slot>/<weight>"}, with the
        slots of the config's optimizer (Adam: m, v; see gan_diffusion.optim)."""
        return {f"{net}/{k}": v for net, opt in self._optimizers.items()
                for k, v in self.backend_optimizers.optimizer_state(opt, self._tensors[net]).items()}

    def load_optimizer_state(self, state: dict[str, np.ndarray]) -> None:
        """Inverse of `optimizer_state`."""
        for net, opt in self._optimizers.items():
            prefix = f"{net}/"
            self.backend_optimizers.load_optimizer_state(
                opt, self._tensors[net],
                {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})

    # -- shared ------------------------------------------------------------------------
    def fit(self, data: Any, epochs: int, *, on_epoch_end: EpochCallback | None = None,
            progress: bool | None = None) -> History:
        """Train `epochs` more epochs on an `ArrayDataset`.

        Args:
            data: `gan_diffusion.data.ArrayDataset` whose image shape matches the config.
            epochs: number of epochs to run now (continuing from `self.epoch`).
            on_epoch_end: called as `fn(model, stats)` after every epoch (checkpoints, grids).
            progress: show a tqdm bar (None: only on a terminal).

        Returns:
            History with per-epoch wall time, images/s and mean losses.

        Example:
            >>> history = model.fit(load_dataset("digits"), epochs=2)
        """
        from tqdm.auto import tqdm

        from gan_diffusion.data import steps_per_epoch

        self._check_data(data)
        steps = steps_per_epoch(len(data), self.config.batch_size, self.config.drop_last)
        if steps == 0:
            raise ConfigError(f"dataset {data.name} has {len(data)} images, fewer than one batch "
                              f"of {self.config.batch_size}; lower batch_size")
        history = History()
        for _ in range(int(epochs)):
            sums: dict[str, float] = {}
            counts: dict[str, int] = {}  # a loss may come from some steps only (WGAN-GP's g_loss)
            n_images = n_steps = 0
            bar = tqdm(total=steps, desc=f"epoch {self.epoch + 1}", leave=False,
                       disable=None if progress is None else not progress)
            start, cpu_start = time.perf_counter(), cpuload.snapshot()
            for images, labels in self.batches(data, self.epoch):
                losses = self.train_step(images, labels)
                self._check_finite(losses, n_steps + 1, steps)
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                    counts[k] = counts.get(k, 0) + 1
                n_images += int(images.shape[0])
                n_steps += 1
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
            seconds = time.perf_counter() - start
            load = cpuload.others(cpu_start, cpuload.snapshot())
            bar.close()
            self.epoch += 1
            stats = EpochStats(self.epoch, seconds, n_steps, n_images, n_images / seconds,
                               {k: v / counts[k] for k, v in sums.items()},
                               load["other_cores"], load["loadavg"])
            history.append(stats)
            if on_epoch_end is not None:
                on_epoch_end(self, stats)
        return history

    def _check_finite(self, losses: dict[str, float], batch: int, steps: int) -> None:
        """The divergence guard: DivergenceError at the first non-finite loss, before any
        checkpoint of the epoch is written (so the last good one is kept)."""
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        if bad:
            raise DivergenceError(
                f"training diverged: {', '.join(f'{k} = {v}' for k, v in bad.items())} at step "
                f"{self.global_step} (epoch {self.epoch + 1}, batch {batch} of {steps}); lower the "
                "learning rate, or check the data for NaN")

    def _check_data(self, data: Any) -> None:
        shape = tuple(getattr(data, "image_shape", ()))
        name = getattr(data, "name", "?")
        if shape != tuple(self.config.image_shape):
            raise ConfigError(f"dataset {name} has images of shape {shape}, "
                              f"but the model was built for {tuple(self.config.image_shape)}; "
                              "build the model with image_shape=data.image_shape or resize the data")
        k = self.num_classes
        if k and getattr(data, "labels", None) is None:
            raise ConfigError(f"the {self.config.model} model is conditional (num_classes={k}) but "
                              f"dataset {name} has no labels; use a labelled dataset or num_classes=0")
        if k and data.num_classes > k:
            raise ConfigError(f"dataset {name} has {data.num_classes} classes but the model was built "
                              f"for num_classes={k}; build it with num_classes=data.num_classes")

    @property
    def num_classes(self) -> int:
        """Classes the model is conditioned on (0: unconditional)."""
        return int(getattr(self.config, "num_classes", 0))

    def labels(self, labels: Any) -> Any:
        """Labels as the backend's tensor for a conditional model, None for an unconditional
        one (whose labels are ignored). Diffusion models override it: their labels may be None
        (unconditional prediction for classifier-free guidance)."""
        if not self.num_classes:
            return None
        if labels is None:
            raise ValueError(f"this conditional {self.config.model} needs a label per image")
        return self.backend_layers.labels_to_input(labels)

    def check_labels(self, labels: Any, n: int) -> np.ndarray | None:
        """Sampling labels as int64 (n,): None cycles through the classes, an int repeats.

        Raises ConfigError for labels given to an unconditional model, or out of range.
        """
        k = self.num_classes
        if not k:
            if labels is not None:
                raise ConfigError(f"this {self.config.model} model is unconditional: labels are not "
                                  "accepted (build it with num_classes=K to condition on classes)")
            return None
        if labels is None:
            return np.arange(n, dtype=np.int64) % k
        y = np.asarray(labels)
        if y.ndim == 0:
            y = np.full(n, y)
        if y.shape != (n,) or y.dtype.kind not in "iu":
            raise ConfigError(f"labels must be one integer or {n} integers (one per image), got "
                              f"{y.dtype} {y.shape}")
        if y.min() < 0 or y.max() >= k:
            raise ConfigError(f"labels must be in [0, {k - 1}] (num_classes={k}), got "
                              f"{int(y.min())}..{int(y.max())}")
        return y.astype(np.int64)

    def sample(self, n: int, seed: int = 0, labels: Any = None, batch_size: int = 256,
               **kwargs: Any) -> np.ndarray:
        """Generate `n` images (uint8 NHWC) from latent noise drawn with `seed`.

        Args:
            n: number of images.
            seed: latent noise seed (the same seed gives the same images in every backend).
            labels: conditional models only: one class for all, or one per image
                (default: the classes in turn, 0, 1, ..., K-1, 0, ...).

        Example:
            >>> images = model.sample(64, seed=0)             # (64, H, W, C) uint8
            >>> sevens = cgan.sample(8, labels=7)
        """
        if kwargs:
            raise ConfigError(f"{self.config.model}.sample got unknown arguments {sorted(kwargs)}")
        if n <= 0:
            raise ConfigError(f"sample needs n >= 1, got {n}")
        y = self.check_labels(labels, n)
        return self._generate_uint8(noise.latent(n, self.config.latent_dim, seed), y, batch_size)

    def class_grid(self, per_class: int = 10, seed: int = 0) -> np.ndarray:
        """Images for a per-class grid: row c holds `per_class` images of class c, and column
        j uses the same latent vector in every row, so only the class changes down a column.

        Returns:
            uint8 (num_classes * per_class, H, W, C), class-major; tile with nrow=per_class.
        """
        k = self.num_classes
        if not k:
            raise ConfigError(f"this {self.config.model} model is unconditional: no class grid")
        z = np.tile(noise.latent(per_class, self.config.latent_dim, seed), (k, 1))  # (k*per, dim)
        return self._generate_uint8(z, np.repeat(np.arange(k, dtype=np.int64), per_class))

    def preview_grid(self, n: int = 64, seed: int = 0) -> tuple[np.ndarray, int | None]:
        """What a run folder's sample grids show: (images, images per row)."""
        if self.num_classes:
            return self.class_grid(10, seed), 10
        return self.sample(n, seed), None

    def _generate_uint8(self, z: np.ndarray, labels: np.ndarray | None, batch_size: int = 256
                        ) -> np.ndarray:
        from gan_diffusion.data import from_model_range

        out = [self.generate(z[i:i + batch_size], None if labels is None else labels[i:i + batch_size])
               for i in range(0, len(z), batch_size)]
        return from_model_range(np.concatenate(out).astype(np.float32))

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"model": self.config.model, "config": self.config.to_dict(),
                "epoch": self.epoch, "global_step": self.global_step,
                "backend": self.backend_name, "library_version": __version__}

    def save(self, path: str | os.PathLike, run: dict[str, Any] | None = None) -> None:
        """Write weights, optimizer state, epoch and step atomically to `path` (.npz).

        Args:
            run: what a training run commits with the weights (its history, per-epoch
                evaluations: gan_diffusion/callbacks.py), stored as the metadata's "run".
        """
        meta = self.checkpoint_meta() if run is None else {**self.checkpoint_meta(), "run": run}
        save_checkpoint(path, self.get_weights(), self.optimizer_state(), meta)

    def restore(self, path: str | os.PathLike) -> dict[str, Any]:
        """Load a checkpoint written by either backend and continue where it stopped.

        Returns:
            the checkpoint's metadata (its "run" entry holds a training run's history).
        """
        weights, optimizer, meta = load_checkpoint(path)
        self.load_state(weights, optimizer, meta, source=path)
        return meta

    def load_state(self, weights: dict[str, np.ndarray], optimizer: dict[str, np.ndarray],
                   meta: dict[str, Any], source: Any = "checkpoint") -> None:
        """Take the contents of a checkpoint (`load_checkpoint`'s three parts)."""
        if meta.get("model") != self.config.model:
            raise CheckpointError(f"{source} holds a {meta.get('model')!r} model, not "
                                  f"{self.config.model!r}")
        try:  # through the config class: renamed fields, defaults of fields added since
            theirs = type(self.config).from_dict(meta.get("config", {})).to_dict()
        except ConfigError as exc:
            raise CheckpointError(f"{source} has an unreadable config: {exc}") from None
        ours = self.config.to_dict()
        differ = sorted(k for k in ours if k not in ("compile",) and theirs.get(k) != ours[k])
        if differ:
            raise CheckpointError(
                f"{source} was written with a different config: "
                + ", ".join(f"{k}={theirs.get(k)!r} (ours {ours[k]!r})" for k in differ)
                + "; build the model from the checkpoint with gan_diffusion.backends.load_model")
        self.set_weights(weights)
        self.load_optimizer_state(optimizer)
        self.epoch = int(meta["epoch"])
        self.global_step = int(meta["global_step"])
