"""gan_diffusion: classic image generators in TensorFlow/Keras and PyTorch behind one API.

The core (this package) never imports a framework. Backends are imported lazily by name:

Example:
    >>> import gan_diffusion
    >>> be = gan_diffusion.get_backend("torch")          # or "tf"
    >>> model = be.build("dcgan", image_shape=(28, 28, 1))
    >>> images = model.sample(16, seed=0)                 # uint8, (16, 28, 28, 1)
"""
from gan_diffusion._version import __version__
from gan_diffusion.backends import BACKEND_ENV, Backend, available_backends, get_backend
from gan_diffusion.errors import BackendNotAvailableError, GanDiffusionError, UnknownNameError
from gan_diffusion.registry import list_models

__all__ = [
    "__version__",
    "BACKEND_ENV",
    "Backend",
    "available_backends",
    "get_backend",
    "list_models",
    "GanDiffusionError",
    "BackendNotAvailableError",
    "UnknownNameError",
]
