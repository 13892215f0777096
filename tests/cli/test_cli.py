"""The gan-diffusion command line, end to end, in subprocesses (one framework each)."""
import json

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

SMALL = ["--set", "g_features=8", "--set", "d_features=8", "--batch-size", "32", "--limit", "128"]


cli = run_cli


@pytest.mark.parametrize("backend", ["tf", "torch"])
def test_train_resume_sample(backend, tmp_path):
    run = tmp_path / "run"
    out = cli("train", "--backend", backend, "--dataset", "digits", "--epochs", "1",
              "--out", str(run), *SMALL)
    assert "epoch 1/1" in out.stdout and "img/s" in out.stdout
    record = json.loads((run / "config.json").read_text())
    assert record["backend"] == backend and record["seed"] == 0
    assert record["model_config"]["g_features"] == 8
    assert record["threads"]["intra_op"] >= 1
    assert {"python", "numpy", "gan_diffusion"} <= set(record["versions"])
    assert ("tensorflow" if backend == "tf" else "torch") in record["versions"]
    assert record["machine"]["cpu_count"] >= 1 and record["data"]["size"] == 128
    grid = np.asarray(Image.open(run / "samples" / "epoch_0001.png"))
    assert grid.ndim == 2 and grid.shape[0] >= 8 * 28 and grid.std() > 0

    again = cli("train", "--backend", backend, "--out", str(run), "--epochs", "1", check=False)
    assert again.returncode == 2 and "--resume" in again.stderr

    cli("train", "--backend", backend, "--dataset", "digits", "--epochs", "2", "--out", str(run),
        "--resume", *SMALL)
    history = json.loads((run / "history.json").read_text())["epochs"]
    assert [e["epoch"] for e in history] == [1, 2]
    assert (run / "samples" / "epoch_0002.png").exists()

    other = "torch" if backend == "tf" else "tf"
    for be in (backend, other):  # the checkpoint samples in either framework
        cli("sample", "--run", str(run), "--n", "16", "--out", str(tmp_path / f"{be}.png"),
            "--backend", be)
    a = np.asarray(Image.open(tmp_path / f"{backend}.png"), np.int16)
    b = np.asarray(Image.open(tmp_path / f"{other}.png"), np.int16)
    assert a.shape == b.shape and np.abs(a - b).max() <= 1  # same image, rounding aside


def test_rerun_from_record(tmp_path):
    cli("train", "--backend", "torch", "--dataset", "digits", "--epochs", "1",
        "--out", str(tmp_path / "a"), *SMALL)
    cli("train", "--rerun", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "b"))
    ha = json.loads((tmp_path / "a" / "history.json").read_text())["epochs"][0]["losses"]
    hb = json.loads((tmp_path / "b" / "history.json").read_text())["epochs"][0]["losses"]
    assert ha == hb


@pytest.mark.parametrize("args,message", [
    (["train", "--backend", "jax", "--out", "x"], "unknown backend 'jax'"),
    (["train", "--backend", "torch", "--dataset", "imagenet", "--out", "x"], "imagenet"),
    (["train", "--backend", "torch", "--dataset", "mnist", "--data-dir", "/nonexistent",
      "--out", "x"], "/nonexistent"),
    (["sample", "--run", "/nonexistent", "--out", "x.png"], "not a finished training run"),
])
def test_cli_errors_are_one_clear_line(args, message, tmp_path):
    out = cli(*args, check=False)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


def test_info_lists_backends_and_models():
    out = cli("info").stdout
    assert "dcgan" in out and "tf" in out and "torch" in out and "digits" in out


def test_conditional_run_with_optimizer_choice(tmp_path):
    run = tmp_path / "cgan"
    cli("train", "--backend", "torch", "--model", "wgan-gp", "--dataset", "digits", "--conditional",
        "--optimizer", "rmsprop", "--learning-rate", "5e-4", "--epochs", "1", "--out", str(run),
        "--set", "d_features=8", "--batch-size", "32", "--limit", "96")
    config = json.loads((run / "config.json").read_text())["model_config"]
    assert (config["num_classes"], config["optimizer"], config["learning_rate"]) == (10, "rmsprop", 5e-4)
    grid = np.asarray(Image.open(run / "samples" / "epoch_0001.png"))
    assert grid.shape[0] > grid.shape[1] * 0.9             # 10 rows (one per class) x 10 columns
    out = cli("sample", "--run", str(run), "--n", "4", "--labels", "3", "--out", str(tmp_path / "3.png"))
    assert "labels 3" in out.stdout
    out = cli("sample", "--run", str(run), "--n", "20", "--out", str(tmp_path / "grid.png"))
    assert "2 per class" in out.stdout and "20 samples" in out.stdout
    bad = cli("sample", "--run", str(run), "--n", "2", "--labels", "3,12", "--out",
              str(tmp_path / "x.png"), check=False)
    assert bad.returncode == 2 and "labels must be in [0, 9]" in bad.stderr
    flat = tmp_path / "flat"                                # a flat folder: no labels
    flat.mkdir()
    for i in range(2):
        Image.fromarray(np.full((28, 28), 40 * i, np.uint8)).save(flat / f"{i}.png")
    plain = cli("train", "--backend", "torch", "--dataset", f"folder:{flat}", "--conditional",
                "--out", str(tmp_path / "p"), check=False)
    assert plain.returncode == 2 and "--conditional needs a labelled dataset" in plain.stderr
