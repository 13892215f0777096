"""Test settings: offline, quiet, and both backends available; the shared fixtures.

Plain helper functions are in tests/helpers.py (`from helpers import ...`).

Both frameworks are test requirements (see requirements/cpu.txt): a missing one is an error,
never a silent skip.
"""
import os

os.environ["HF_HUB_OFFLINE"] = "1"                 # hub calls fail fast
os.environ["GAN_DIFFUSION_NO_DOWNLOAD"] = "1"      # nothing downloads during tests
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402

import gan_diffusion  # noqa: E402

BACKENDS = ("tf", "torch")


@pytest.fixture(scope="session")
def backends():
    """{"tf": Backend, "torch": Backend}"""
    return {name: gan_diffusion.get_backend(name) for name in BACKENDS}
