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


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch at one intra-op thread for a module (`pytestmark =
    pytest.mark.usefixtures("one_torch_thread")`). Tiny nets gain nothing from threads; on
    shared cores torch's 2-thread barrier made a 16x16 U-Net call 60x slower (0.34 s vs 6 ms)
    while other jobs ran."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
