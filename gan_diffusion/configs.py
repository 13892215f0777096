"""Typed model configs: dataclasses saved to and reloaded from JSON.

Every model config derives from `Config`. Defaults live in the dataclass fields and are
the single table that both the Python API and the CLI read.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from gan_diffusion.errors import ConfigError

C = TypeVar("C", bound="Config")


@dataclasses.dataclass
class Config:
    """Base of all model configs: validation plus a JSON round trip."""

    model: ClassVar[str] = ""
    renamed_fields: ClassVar[dict[str, str]] = {}  # old name -> new, read by from_dict

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError on a bad value (overridden per model)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, with the model name under "model"."""
        data = dataclasses.asdict(self)
        return {"model": self.model, **{k: list(v) if isinstance(v, tuple) else v
                                        for k, v in data.items()}}

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Rebuild from `to_dict()` output; unknown keys give a ConfigError naming them."""
        data = dict(data)
        model = data.pop("model", cls.model)
        if model != cls.model:
            raise ConfigError(f"config is for model {model!r}, not {cls.model!r}")
        for old, new in cls.renamed_fields.items():
            if old in data and new not in data:
                data[new] = data.pop(old)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown {cls.model} config field(s) {unknown}; "
                              f"valid fields: {sorted(names)}")
        for f in dataclasses.fields(cls):
            if f.name in data and isinstance(data[f.name], list):
                data[f.name] = tuple(data[f.name])
        return cls(**data)

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (validated)."""
        return self.from_dict({**self.to_dict(), **changes})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, path: str | os.PathLike) -> None:
        """Write the config as JSON (atomically)."""
        from gan_diffusion.utils.io import atomic_write_text

        atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls: type[C], path: str | os.PathLike) -> C:
        """Read a config written by `save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def check_image_shape(shape: Any, sizes: tuple[int, ...], channels: tuple[int, ...] = (1, 3)
                      ) -> tuple[int, int, int]:
    """Validate an (H, W, C) image shape against the sizes a model supports."""
    try:
        h, w, c = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ConfigError(f"image_shape must be (height, width, channels), got {shape!r}") from None
    if h != w or h not in sizes or c not in channels:
        raise ConfigError(f"image_shape {shape!r} is not supported: use square images of side "
                          f"{' or '.join(map(str, sizes))} with {' or '.join(map(str, channels))} "
                          f"channel(s), e.g. (28, 28, 1) or (64, 64, 3); resize the data "
                          f"(image_size=...) to fit")
    return (h, w, c)


def check_positive(config: Config, *names: str) -> None:
    """ConfigError unless every named field is > 0."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{config.model} config field {name} must be a positive number, "
                              f"got {value!r}")
