"""Plain helper functions shared by the tests (fixtures and environment settings are in
conftest.py). tests/ is on sys.path (pyproject: [tool.pytest.ini_options] pythonpath).
"""
import os
import subprocess
import sys
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent   # tests/ (fixtures/ data lives here)
REPO_ROOT = TESTS_DIR.parent                    # the repository: pyproject.toml, gan_diffusion/, scripts/


def small_dcgan(shape, **kw):
    """Config overrides for a small, fast DCGAN used in tests."""
    return {**dict(image_shape=shape, g_features=16, d_features=16, batch_size=8), **kw}


def run_cli(*args, env=None, check=True, timeout=600):
    """`python -m gan_diffusion ARGS` in a subprocess, as a user runs it.

    Args:
        env: the child's environment (default: this process's), TF_CPP_MIN_LOG_LEVEL=2 added.
        check: raise AssertionError with the output's tail on a non-zero exit.
    Returns:
        the CompletedProcess (text stdout / stderr).
    """
    env = {**(os.environ if env is None else env), "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run([sys.executable, "-m", "gan_diffusion", *args], capture_output=True,
                         text=True, env=env, timeout=timeout)
    if check and out.returncode:
        raise AssertionError(f"exit {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out
