"""`gan-diffusion fid` and `gan-diffusion fid-stats`, end to end in subprocesses (LeNet-MNIST
on the embedded digits, written as PNG folders)."""
import json
import os

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

from gan_diffusion.data import load_dataset
from gan_diffusion.metrics import FeatureStats, fid


def cli(*args, env_extra=None, check=True):
    return run_cli(*args, env={**os.environ, **(env_extra or {})}, check=check)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("fid_cli")
    images = load_dataset("digits").images
    for name, part in (("a", images[:300]), ("b", images[300:600])):
        (root / name).mkdir()
        for i, img in enumerate(part):
            Image.fromarray(img[..., 0]).save(root / name / f"{i:03d}.png")
    env = {"GAN_DIFFUSION_CACHE_DIR": str(root / "cache"), "TORCH_HOME": str(root / "torch"),
           "GAN_DIFFUSION_WEIGHTS_DIR": ""}
    return root, images, env


def test_fid_between_folders_with_kid_and_json(folders):
    root, images, env = folders
    out = cli("fid", str(root / "a"), str(root / "b"), "--kid", "--kid-subset-size", "100",
              "--prc", "--json", str(root / "scores.json"), "--progress", env_extra=env)
    lines = out.stdout.splitlines()
    assert any(l.startswith("extractor: lenet-mnist@") and "not comparable with Inception" in l
               for l in lines), out.stdout
    assert "backend: torch" in out.stdout
    fid_line = next(l for l in lines if l.startswith("FID-LeNet(MNIST)="))
    scores = json.loads((root / "scores.json").read_text())
    assert set(scores) == {"fid", "kid", "precision", "recall"}
    assert scores["fid"]["name"] == "FID-LeNet(MNIST)" and scores["fid"]["n_real"] == 300
    assert scores["kid"]["name"] == "KID-LeNet(MNIST)"
    expected = fid(images[:300], images[300:600], extractor="lenet-mnist").value
    assert scores["fid"]["value"] == pytest.approx(expected, rel=1e-6)
    assert f"{scores['fid']['value']:.6g}" in fid_line
    for role in ("real", "fake"):                                       # the tqdm bars
        assert f"{role} (lenet-mnist, torch): 100%" in out.stderr and "300/300" in out.stderr


def test_fid_stats_then_fid_against_the_file(folders):
    root, images, env = folders
    npz = root / "digits.npz"
    out = cli("fid-stats", "digits", "--out", str(npz), "--backend", "tf", env_extra=env)
    assert out.stdout.startswith(f"wrote {npz}: 1797 samples") and "lenet-mnist@" in out.stdout
    st = FeatureStats.load(npz)
    assert st.n == 1797 and st.dim == 128 and "digits" in st.source
    again = cli("fid-stats", "digits", "--out", str(npz), env_extra=env)
    assert again.stdout.startswith(f"reused {npz}")
    out = cli("fid", str(npz), str(root / "b"), env_extra=env)
    value = float(next(l for l in out.stdout.splitlines()
                       if l.startswith("FID-LeNet(MNIST)=")).split("=")[1].split()[0])
    assert value == pytest.approx(fid(images, images[300:600]).value, rel=1e-4)


def test_errors_exit_2_with_one_line(folders):
    root, _, env = folders
    out = cli("fid", str(root / "missing"), str(root / "b"), env_extra=env, check=False)
    assert out.returncode == 2 and "neither an existing folder" in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    grey = root / "grey64"   # grey 64x64: the resized LeNet, but not the CIFAR-10 CNN
    grey.mkdir()
    for i in range(2):
        Image.fromarray(np.full((64, 64), 40 * i, np.uint8)).save(grey / f"x{i}.png")
    out = cli("fid", str(grey), str(grey), "--extractor", "cnn-cifar10", env_extra=env, check=False)
    assert out.returncode == 2 and "64x64x1" in out.stderr and "lenet-mnist-resized28" in out.stderr
