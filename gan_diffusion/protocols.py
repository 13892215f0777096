"""The backend-neutral contracts every model implements, and the training History.

A model object returned by `Backend.build` is a `Generator`, a `Trainer` and a `Sampler`.
Later model families extend them without changing them: the VAE adds encode/decode,
diffusion models (DDPM/DDIM) take `steps=`/`sampler=`/`guidance=` through
`sample(**kwargs)`, conditional models use `labels`, and Stable Diffusion (a `Generator` and
`Sampler` only: it is not trained here) takes `prompt=`, `negative_prompt=`, `init_image=`,
`strength=`, `steps=`, `guidance=` and `size=` (families/stable_diffusion.py).
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Generator(Protocol):
    """The network(s) of a model, with weights in the canonical layout (docs/weights.md)."""

    def get_weights(self) -> dict[str, np.ndarray]:
        """All weights (trainable and statistics) as {"<net>/<layer>/<param>": array}."""

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Load weights from another instance, of either backend."""


@runtime_checkable
class Sampler(Protocol):
    def sample(self, n: int, seed: int = 0, labels: Any = None, **kwargs: Any) -> np.ndarray:
        """n images as uint8 NHWC; the same seed gives the same images."""


@runtime_checkable
class Trainer(Protocol):
    epoch: int
    global_step: int

    def train_step(self, images: Any, labels: Any = None, **noise: Any) -> dict[str, float]:
        """One optimisation step on one batch; returns the step's losses."""

    def fit(self, data: Any, epochs: int, **kwargs: Any) -> "History":
        """Train `epochs` more epochs on an ArrayDataset."""

    def save(self, path: str | os.PathLike) -> None:
        """Write a checkpoint (weights, optimizer state, epoch) atomically."""

    def restore(self, path: str | os.PathLike) -> None:
        """Continue exactly where `save` stopped."""


@dataclasses.dataclass
class EpochStats:
    """What one epoch cost and what it achieved."""

    epoch: int               # 1-based number of the epoch just finished
    seconds: float           # wall time of the epoch (data pipeline included)
    steps: int
    images: int
    images_per_sec: float
    losses: dict[str, float]  # mean over the epoch's steps
    other_cores: float | None = None  # mean cores other processes used meanwhile (utils/cpuload)
    loadavg: float | None = None      # 1-minute load average at the epoch's end

    def log_line(self, total: int | None = None) -> str:
        from gan_diffusion.utils.cpuload import describe

        of = f"/{total}" if total else ""
        losses = "  ".join(f"{k} {v:.4f}" for k, v in self.losses.items())
        return (f"epoch {self.epoch}{of}  time {self.seconds:.1f}s  "
                f"{self.images_per_sec:.1f} img/s  {losses}{describe(self.other_cores)}")


@dataclasses.dataclass
class History:
    """Per-epoch statistics of one or more `fit` calls."""

    epochs: list[EpochStats] = dataclasses.field(default_factory=list)

    def append(self, stats: EpochStats) -> None:
        self.epochs.append(stats)

    def extend(self, other: "History") -> None:
        self.epochs.extend(other.epochs)

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": [dataclasses.asdict(e) for e in self.epochs]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "History":
        return cls([EpochStats(**e) for e in data.get("epochs", [])])

    def save(self, path: str | os.PathLike) -> None:
        from gan_diffusion.utils.io import atomic_write_json

        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "History":
        return cls.from_dict(json.loads(Path(path).read_text()))
