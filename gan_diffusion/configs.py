"""Typed model configs: dataclasses saved to and reloaded from JSON.

Every model config derives from `Config`. Defaults live in the dataclass fields and are
the single table that both the Python API and the CLI read. `Config` checks every value
against its field's annotation before the model's own `validate()`.

A model config is made of parts: its network fields, then the training fields of
`TrainConfig` (optimizer and data loader), e.g. `class VAEConfig(TrainConfig, VAENetConfig)`.
Dataclasses collect fields along the reversed MRO, so the bases are listed last part
first; this keeps the field order of `to_dict()` that configs had before the parts were
shared. A model re-declares a shared field only to change its default (e.g. WGAN-GP's Adam
learning rate); the field keeps its place.
"""
from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from gan_diffusion.errors import ConfigError
from gan_diffusion.optim import check_optimizer

C = TypeVar("C", bound="Config")


@dataclasses.dataclass
class Config:
    """Base of all model configs: validation plus a JSON round trip."""

    model: ClassVar[str] = ""
    renamed_fields: ClassVar[dict[str, str]] = {}  # old name -> new, read by from_dict

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check_type(self, f.name, _field_types(type(self))[f.name])
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


def check_choice(config: Config, name: str, choices: tuple | dict) -> None:
    """ConfigError naming model, field, the valid values and the value unless it is one."""
    value = getattr(config, name)
    if value not in choices:
        raise ConfigError(f"{config.model} {name} must be one of {tuple(choices)}, got {value!r}")


def check_positive(config: Config, *names: str) -> None:
    """ConfigError unless every named field is > 0."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{config.model} config field {name} must be a positive number, "
                              f"got {value!r}")


DTYPES = ("float32", "float64")


@dataclasses.dataclass
class TrainConfig(Config):
    """The optimizer and data-loader fields every model shares, and their checks.

    Defaults are torch.optim.Adam's and batch 64; a model re-declares the fields whose
    defaults differ (its docstring says whose defaults they are).

    Attributes:
        optimizer: "adam", "sgd", "rmsprop" or "adagrad" (gan_diffusion.optim), with
            learning_rate, beta1/beta2 (Adam), epsilon (Adam, RMSprop, Adagrad),
            momentum/nesterov (SGD; momentum also RMSprop), rho (RMSprop decay) and
            initial_accumulator (Adagrad). One rule for all weights, torch's update.
        batch_size, drop_last: training batches (drop_last: skip a last partial batch).
        seed: seeds the weights, the data order and the noise (gan_diffusion.noise).
        dtype: "float32", or "float64" for parity checks free of float32 round-off.
        compile: torch.compile the networks (torch backend only; TF always uses tf.function).
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    momentum: float = 0.0
    nesterov: bool = False
    rho: float = 0.9
    initial_accumulator: float = 0.1
    batch_size: int = 64
    drop_last: bool = True
    seed: int = 0
    dtype: str = "float32"
    compile: bool = False

    def validate(self) -> None:
        super().validate()
        check_positive(self, "batch_size")
        check_optimizer(self)
        if self.dtype not in DTYPES:
            raise ConfigError(f"{self.model} config field dtype must be one of {DTYPES}, "
                              f"got {self.dtype!r}")


def check_num_classes(config: Config) -> None:
    """ConfigError unless num_classes is 0 (unconditional) or at least 2."""
    if config.num_classes < 0 or config.num_classes == 1:
        raise ConfigError(f"{config.model} config field num_classes must be 0 (unconditional) "
                          f"or >= 2, got {config.num_classes!r}")


_TYPE_NAMES = {int: ("an integer", "integers"), float: ("a number", "numbers"),
               bool: ("true or false", "booleans"), str: ("a string", "strings")}


def _field_types(cls: type) -> dict[str, Any]:
    """The resolved annotations of a config class (strings under `from __future__`)."""
    if "_resolved_types" not in cls.__dict__:
        cls._resolved_types = typing.get_type_hints(cls)
    return cls._resolved_types


def _matches(value: Any, kind: Any) -> bool:
    """Whether `value` fits annotation `kind` (int, float, bool, str, tuples, X | None)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if kind is type(None):
        return value is None
    if origin is tuple:
        element = args[0] if args else Any
        return isinstance(value, (tuple, list)) and all(_matches(v, element) for v in value)
    if isinstance(value, bool) or kind is bool:
        return isinstance(value, bool) and kind in (bool, Any)
    if kind is float:
        return isinstance(value, (int, float))
    return kind is Any or isinstance(value, kind)


def _describe(kind: Any, plural: bool = False) -> str:
    """'an integer', 'a tuple of integers', 'a number or null', ..."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a, plural) for a in args)
    if origin is tuple:
        return f"a tuple of {_describe(args[0] if args else Any, plural=True)}"
    return _TYPE_NAMES.get(kind, (str(kind), str(kind)))[plural]


def check_type(config: Config, name: str, kind: Any) -> None:
    """ConfigError naming model, field, expected type and value unless the value fits.

    int takes Python integers (not bool, not 1.5, not NumPy's), float ints and floats (not
    bool), bool and str only themselves, a tuple annotation a tuple or list of such elements (lengths
    are the model's `validate()`'s to check), `X | None` also None.
    """
    value = getattr(config, name)
    if not _matches(value, kind):
        raise ConfigError(f"{config.model} config field {name} must be {_describe(kind)}, "
                          f"got {value!r} ({type(value).__name__})")
