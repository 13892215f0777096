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


def make_eurosat_folder(root, per_class=3, size=64, fmt="jpg", classes=None, seed=0):
    """A synthetic EuroSAT RGB tree `root/2750/<Class>/<Class>_N.<fmt>` (N = 1..per_class),
    the layout of the real archive, readable with `load_dataset("eurosat", data_dir=root)`.

    Each class has its own base colour (EUROSAT_CLASSES[k]: hue k/10) plus seeded smooth
    noise, so the classes are told apart by any feature network and the images are not
    constant.

    Args:
        root: data folder to write into (created if needed).
        per_class: images per class.
        size: side of the square images (the real data: 64).
        fmt: "jpg" (JPEG quality 95, as the real files are JPEG) or "png" (lossless, so the
            decoded pixels equal the written ones).
        classes: class folder names to write (default: all of
            gan_diffusion.data.EUROSAT_CLASSES; pass fewer to build a broken folder).
        seed: noise seed.

    Returns:
        The `root/2750` folder.

    Example:
        >>> folder = make_eurosat_folder(tmp_path, per_class=2)
        >>> load_dataset("eurosat", data_dir=tmp_path).images.shape
        (20, 64, 64, 3)
    """
    import colorsys

    import numpy as np
    from PIL import Image

    from gan_diffusion.data import EUROSAT_CLASSES

    if fmt not in ("jpg", "png"):
        raise ValueError(f"fmt must be 'jpg' or 'png', got {fmt!r}")
    folder = Path(root) / "2750"
    rng = np.random.default_rng(seed)
    for i, cls in enumerate(EUROSAT_CLASSES if classes is None else classes):
        k = EUROSAT_CLASSES.index(cls) if cls in EUROSAT_CLASSES else i    # its label's colour
        base = np.array(colorsys.hsv_to_rgb(k / 10, 0.6, 0.8)) * 255          # (3,)
        (folder / cls).mkdir(parents=True, exist_ok=True)
        for n in range(1, per_class + 1):
            coarse = Image.fromarray(rng.normal(0, 40, (8, 8)).astype(np.float32))   # "F"
            smooth = np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC))
            noise = smooth[..., None] + rng.normal(0, 8, (size, size, 3))      # (size, size, 3)
            img = np.clip(np.rint(base + noise), 0, 255).astype(np.uint8)
            path = folder / cls / f"{cls}_{n}.{fmt}"
            Image.fromarray(img).save(path, **({"quality": 95} if fmt == "jpg" else {}))
    return folder
