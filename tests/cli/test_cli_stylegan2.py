"""`gan-diffusion train --model stylegan2`: a tiny run, its resume, and sampling the
checkpoint in both frameworks (subprocesses, as a user runs it)."""
import json

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

TINY = ["--model", "stylegan2", "--dataset", "digits", "--image-size", "16", "--limit", "16",
        "--batch-size", "8", "--set", "channel_base=64", "--set", "channel_max=8",
        "--set", "latent_dim=8", "--set", "w_dim=8", "--set", "mapping_layers=2"]


@pytest.mark.slow    # four subprocesses, ~100 s on the 2 shared cores
def test_stylegan2_train_resume_sample(tmp_path):
    run = tmp_path / "run"
    out = run_cli("train", "--backend", "torch", "--epochs", "1", "--out", str(run), *TINY)
    assert "epoch 1/1" in out.stdout and "r1" in out.stdout and "pl" in out.stdout
    assert json.loads((run / "config.json").read_text())["model_config"]["model"] == "stylegan2"
    run_cli("train", "--backend", "torch", "--epochs", "2", "--out", str(run), "--resume", *TINY)
    history = json.loads((run / "history.json").read_text())["epochs"]
    assert [e["epoch"] for e in history] == [1, 2]
    for be in ("torch", "tf"):
        run_cli("sample", "--run", str(run), "--n", "16", "--out", str(tmp_path / f"{be}.png"),
                "--backend", be)
    a, b = (np.asarray(Image.open(tmp_path / f"{be}.png"), np.int16) for be in ("torch", "tf"))
    assert a.shape == b.shape and a.std() > 0 and np.abs(a - b).max() <= 1
