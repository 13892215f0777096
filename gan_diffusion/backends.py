"""Backend lookup: names, aliases, lazy import, and the `Backend` facade.

`import gan_diffusion` never imports TensorFlow or PyTorch; `get_backend(name)` imports the
backend package `gan_diffusion.<name>_backend` on first use.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

from gan_diffusion.errors import BackendNotAvailableError, ConfigError, UnknownNameError

BACKEND_ENV = "GAN_DIFFUSION_BACKEND"

# alias -> canonical backend name
ALIASES = {"tf": "tf", "tensorflow": "tf", "keras": "tf", "torch": "torch", "pytorch": "torch"}
# canonical name -> (package, framework module that must be importable, pip extra)
_BACKENDS = {
    "tf": ("gan_diffusion.tf_backend", "tensorflow", "tf"),
    "torch": ("gan_diffusion.torch_backend", "torch", "torch"),
}


def canonical_backend_name(name: str) -> str:
    """Map an alias ("tensorflow", "pytorch", ...) to "tf" or "torch".

    Raises:
        UnknownNameError: listing the valid names.
    """
    key = str(name).strip().lower()
    if key not in ALIASES:
        raise UnknownNameError("backend", name, ALIASES)
    return ALIASES[key]


def available_backends() -> list[str]:
    """Canonical names of the backends whose framework is installed (imports nothing)."""
    return [n for n, (_, fw, _) in _BACKENDS.items() if importlib.util.find_spec(fw) is not None]


class Backend:
    """One framework behind the common API.

    Attributes:
        name: "tf" or "torch".
        package: the imported backend package (same module names in both).
    """

    def __init__(self, name: str, package: Any):
        self.name = name
        self.package = package
        self.framework = _BACKENDS[name][1]

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"

    def build(self, model: str, image_shape: tuple[int, int, int] | None = None,
              config: Any = None, **overrides: Any) -> Any:
        """Build a registered model.

        Args:
            model: registry name, e.g. "dcgan" (see `gan_diffusion.list_models()`).
            image_shape: (H, W, C) of the training images.
            config: a ready config object (then `image_shape`/`overrides` must be empty).
            **overrides: config fields, e.g. `latent_dim=64, seed=1`.

        Returns:
            The model object: a Generator, Trainer and Sampler at once.

        Example:
            >>> be.build("dcgan", image_shape=(32, 32, 3), g_features=32)
        """
        from gan_diffusion.registry import get_spec, make_config

        spec = get_spec(model)
        if config is None:
            config = make_config(model, image_shape=image_shape, **overrides)
        elif image_shape is not None or overrides:
            raise ConfigError("pass either config=... or image_shape/overrides, not both")
        elif not isinstance(config, spec.config_cls):
            raise ConfigError(f"model {model!r} needs a {spec.config_cls.__name__}, "
                              f"got {type(config).__name__}")
        module = importlib.import_module(f"{self.package.__name__}.{spec.module}")
        return module.build(config)

    def set_threads(self, intra_op: int | None = None, inter_op: int | None = None) -> dict:
        """Pin the framework's thread pools; returns the counts in force."""
        return self.package.runtime.set_threads(intra_op, inter_op)

    def versions(self) -> dict:
        """Framework versions, for run records."""
        return self.package.runtime.versions()


_LOADED: dict[str, Backend] = {}


def get_backend(name: str | None = None) -> Backend:
    """Return the backend called `name` ("tf"/"tensorflow" or "torch"/"pytorch").

    Args:
        name: backend name or alias; if None, the env var GAN_DIFFUSION_BACKEND is used.

    Returns:
        A `Backend`, importing its framework on first use.

    Raises:
        UnknownNameError: unknown name (the message lists the valid ones).
        BackendNotAvailableError: the framework is not installed (names the pip extra).

    Example:
        >>> be = get_backend("tf")
    """
    if name is None:
        name = os.environ.get(BACKEND_ENV)
        if not name:
            raise ConfigError(f"no backend given: pass get_backend('tf') or get_backend('torch'), "
                              f"or set {BACKEND_ENV}")
    key = canonical_backend_name(name)
    if key in _LOADED:
        return _LOADED[key]
    package, framework, extra = _BACKENDS[key]
    if importlib.util.find_spec(framework) is None:
        raise BackendNotAvailableError(
            f"backend {key!r} needs {framework}, which is not installed; "
            f"install it with: pip install 'gan_diffusion[{extra}]'")
    _LOADED[key] = Backend(key, importlib.import_module(package))
    return _LOADED[key]


def load_model(path: str | os.PathLike, backend: str) -> Any:
    """Build the model a checkpoint describes on `backend` and restore it.

    Example:
        >>> model = load_model("runs/dcgan/checkpoints/latest.npz", "torch")  # written by TF
    """
    from gan_diffusion.checkpoint import load_checkpoint
    from gan_diffusion.registry import get_spec

    weights, optimizer, meta = load_checkpoint(path)  # read once
    config = get_spec(meta["model"]).config_cls.from_dict(meta["config"])
    model = get_backend(backend).build(meta["model"], config=config)
    model.load_state(weights, optimizer, meta, source=path)
    return model
