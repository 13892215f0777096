"""`gan-diffusion train --model ddpm` and `sample --steps/--sampler/--guidance` end to end
(torch; the TF path of the same code is covered by tests/backends/test_parity_ddpm.py).
Training runs in a subprocess, the sample commands in-process through `gan_diffusion.cli.main`."""
import json

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

from gan_diffusion.cli import main

TINY = ["--set", "base_channels=8", "--set", "norm_groups=4", "--set", "sample_steps=3",
        "--batch-size", "16", "--limit", "64", "--threads", "1"]


def train(*args):
    return run_cli("train", *args)   # a subprocess, as a user runs it (tests/helpers.py)


pytestmark = pytest.mark.usefixtures("one_torch_thread")   # tiny nets (tests/conftest.py)


@pytest.fixture(scope="module")
def ddpm_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "ddpm"
    out = train("--backend", "torch", "--model", "ddpm", "--dataset", "digits", "--conditional",
                "--epochs", "1", "--out", str(run), *TINY)
    assert "epoch 1/1" in out.stdout and "loss" in out.stdout
    return run


def test_train_conditional_ddpm(ddpm_run):
    config = json.loads((ddpm_run / "config.json").read_text())["model_config"]
    assert config["model"] == "ddpm" and config["num_classes"] == 10 and config["base_channels"] == 8
    grid = np.asarray(Image.open(ddpm_run / "samples" / "epoch_0001.png"))   # a row per class
    assert grid.shape[0] > 0.9 * grid.shape[1]


def test_sample_with_diffusion_flags_and_figures(ddpm_run, tmp_path, capsys):
    code = main(["sample", "--run", str(ddpm_run), "--n", "20", "--steps", "4", "--sampler", "ddpm",
                 "--guidance", "3", "--trajectory", str(tmp_path / "traj.png"),
                 "--forward-strip", str(tmp_path / "strip.png"), "--out", str(tmp_path / "s.png")])
    out = capsys.readouterr().out
    assert code == 0 and "2 per class" in out and "steps 4, sampler ddpm, guidance 3.0" in out
    traj = np.asarray(Image.open(tmp_path / "traj.png"))
    strip = np.asarray(Image.open(tmp_path / "strip.png"))
    assert traj.shape[1] > 1.1 * traj.shape[0] and strip.shape[1] == strip.shape[0]  # 8x10, 8x8 tiles
    assert main(["sample", "--run", str(ddpm_run), "--n", "2", "--steps", "2000",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "steps must be an integer in [1, 1000]" in capsys.readouterr().err


def test_gan_rejects_diffusion_flags(backends, tmp_path, capsys):
    run = tmp_path / "gan"
    model = backends["torch"].build("dcgan", image_shape=(28, 28, 1), g_features=8, d_features=8)
    model.save(run / "checkpoints" / "latest.npz")
    (run / "config.json").write_text(json.dumps({"backend": "torch"}))
    assert main(["sample", "--run", str(run), "--steps", "5", "--out", str(tmp_path / "x.png")]) == 2
    assert "apply to diffusion models only" in capsys.readouterr().err
