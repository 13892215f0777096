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
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs 2 pytest-xdist workers on 2 cores: one intra-op thread each (torch and
    # TF, and the CLI children they start unless a test passes --threads), and OpenMP threads
    # that sleep rather than spin when a core is taken, so that the workers do not slow each
    # other down (README, "make test"). Set before either framework is imported.
    for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ.setdefault(name, "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402

import gan_diffusion  # noqa: E402

BACKENDS = ("tf", "torch")

# the test files that build Stable Diffusion at full size (about 4 GB in torch, 10 GB in TF):
# under `pytest -n 2 --dist loadgroup` they share one worker, one after another, so that two
# of them never hold memory at once; every other file is a group of its own (module fixtures
# are built once, on one worker)
SERIAL_LANE = ("tests/sd/", "tests/compare/test_eurosat_study.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """One xdist group per test file, SERIAL_LANE's files in one group (used by --dist
    loadgroup; without xdist the marker does nothing)."""
    root = config.rootpath
    for item in items:
        path = item.path.relative_to(root).as_posix()
        group = "full-size-sd" if path.startswith(SERIAL_LANE) else path
        item.add_marker(pytest.mark.xdist_group(group))


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
