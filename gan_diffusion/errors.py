"""Exception types shared by the core and the backends."""
from __future__ import annotations

from collections.abc import Iterable


class GanDiffusionError(Exception):
    """Base class of the library's own errors."""


class UnknownNameError(GanDiffusionError, ValueError):
    """A model, backend, dataset or optimizer name that is not registered."""

    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid {kind}s: {', '.join(self.valid)}")


class BackendNotAvailableError(GanDiffusionError, ImportError):
    """The framework behind a backend is not installed."""


class ConfigError(GanDiffusionError, ValueError):
    """A config value, field name or shape that the model cannot accept."""


class CheckpointError(GanDiffusionError, ValueError):
    """A checkpoint that is missing, corrupt, or belongs to another model."""


class DivergenceError(GanDiffusionError):
    """Training produced a non-finite loss; nothing of the failing epoch was saved."""
