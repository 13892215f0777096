"""Bad input, as a hostile new user gives it: exit code 2, one line naming the problem and
the fix, no traceback, and nothing half-written. The CLI runs in this process (cli.main);
tests/cli/test_cli.py checks the same contract in real subprocesses."""
import gzip
import json
import os
import stat

import numpy as np
import pytest
from PIL import Image

from gan_diffusion import cli
from gan_diffusion.checkpoint import save_checkpoint
from gan_diffusion.utils.io import atomic_write_text, remove_stale_temp_files

TINY = ["--backend", "torch", "--limit", "64", "--batch-size", "32", "--set", "g_features=8",
        "--set", "d_features=8", "--no-progress", "--epochs", "1"]


def fails(capsys, *argv, code=2):
    """Run the CLI; assert the exit code and a one-line message; return the message."""
    assert cli.main([str(a) for a in argv]) == code
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gan-diffusion: error: "), cap.err
    assert "Traceback" not in cap.err + cap.out
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    assert cli.main(["train", *TINY, "--out", str(run)]) == 0
    return run


# -- train: options ------------------------------------------------------------------------
@pytest.mark.parametrize("args,message", [
    (["--set", "image_shape=[28,28,1]"], "image_shape comes from the data: use --image-size"),
    (["--set", "latent_dim=1.5"], "dcgan config field latent_dim must be an integer, got 1.5"),
    (["--set", "nosuchfield=1"], "unknown dcgan config field(s) ['nosuchfield']"),
    (["--set", "latent_dim"], "--set expects NAME=VALUE"),
    (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
    (["--epochs", "-3"], "--epochs must be a positive integer, got -3"),
    (["--limit", "0"], "--limit must be a positive integer"),
    (["--resume", "--rerun", "x.json"], "pass one of them"),
    (["--resume"], "holds no checkpoint"),
    (["--rerun", "missing.json"], "missing.json does not exist"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
])
def test_bad_train_options(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    line = fails(capsys, "train", *TINY, *args, "--out", out)
    assert message in line
    assert not out.exists()                                       # nothing half-written


def test_rerun_of_a_damaged_record(capsys, tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    assert "is not valid JSON" in fails(capsys, "train", "--rerun", tmp_path / "config.json",
                                        "--out", tmp_path / "b")
    (tmp_path / "config.json").write_text("[1, 2]")
    assert "is not a run record" in fails(capsys, "train", "--rerun", tmp_path / "config.json",
                                          "--out", tmp_path / "b")


def test_out_is_a_file_or_cannot_be_created(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    assert "is an existing file, not a folder" in fails(capsys, "train", *TINY, "--out", f)
    assert "cannot create the run folder" in fails(capsys, "train", *TINY, "--out", f / "sub")
    assert f.read_text() == "x"
    long = tmp_path / ("n" * 300)                       # the OS refuses even to look it up
    assert "cannot use --out" in fails(capsys, "train", *TINY, "--out", long)
    assert "File name too long" in fails(capsys, "sample", "--run", long, "--out", tmp_path / "g.png")


def test_unwritable_checkpoints_found_before_training(capsys, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoints").write_text("a file where the folder belongs")
    assert cli.main(["train", *TINY, "--out", str(out)]) == 2
    cap = capsys.readouterr()
    assert f"cannot write in {out / 'checkpoints'}" in cap.err and "epoch 1" not in cap.out
    assert sorted(p.name for p in out.iterdir()) == [".lock", "checkpoints"]   # no record written


def test_a_second_fresh_run_into_a_finished_folder(capsys, finished_run):
    assert "already holds a run; pass --resume" in fails(capsys, "train", *TINY, "--out", finished_run)


# -- train: data ---------------------------------------------------------------------------
def _folder(root, images):
    for name, img in images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        img.save(root / name)


def test_mixed_colour_folder_names_the_flag_that_fixes_it(capsys, tmp_path):
    grey, rgb = Image.new("L", (28, 28), 90), Image.new("RGB", (28, 28), (200, 10, 10))
    _folder(tmp_path / "d", {"a/0.png": rgb, "a/1.png": rgb, "b/2.png": grey, "b/3.png": rgb})
    line = fails(capsys, "train", *TINY, "--dataset", f"folder:{tmp_path / 'd'}", "--batch-size", 2,
                 "--out", tmp_path / "x")
    assert "has PIL mode 'L'" in line and "--color-mode RGB" in line
    assert cli.main(["train", *TINY, "--dataset", f"folder:{tmp_path / 'd'}", "--batch-size", "2",
                     "--color-mode", "RGB", "--out", str(tmp_path / "ok")]) == 0
    assert json.loads((tmp_path / "ok" / "config.json").read_text())["data"]["image_shape"] == [28, 28, 3]


@pytest.mark.parametrize("bad,message", [
    (lambda p: p.write_bytes(p.read_bytes()[:40]), "2.jpg"),             # truncated JPEG
    (lambda p: p.write_text("this is not an image"), "2.jpg"),           # text named .jpg
])
def test_broken_image_files_are_named(capsys, tmp_path, bad, message):
    img = Image.new("RGB", (28, 28), (1, 2, 3))
    _folder(tmp_path / "d", {f"a/{i}.jpg": img for i in range(4)})
    bad(tmp_path / "d" / "a" / "2.jpg")
    assert message in fails(capsys, "train", *TINY, "--dataset", f"folder:{tmp_path / 'd'}",
                            "--out", tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("damage", ["truncated", "altered"])
def test_damaged_mnist_files_fail_their_checksum(capsys, tmp_path, damage):
    mnist = tmp_path / "data" / "mnist"
    mnist.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        raw = gzip.compress(b"\x00\x00\x08\x03" + bytes(1000))
        (mnist / name).write_bytes(raw[:20] if damage == "truncated" else raw)
    line = fails(capsys, "train", *TINY, "--dataset", "mnist", "--data-dir", tmp_path / "data",
                 "--out", tmp_path / "x")
    assert "train-" in line and "sha256" in line.lower()


def test_nan_in_float_images_is_named(tmp_path):
    from gan_diffusion import metrics
    from gan_diffusion.errors import GanDiffusionError

    real = np.random.default_rng(0).integers(0, 256, (20, 28, 28, 1), dtype=np.uint8)
    fake = np.random.default_rng(1).random((20, 28, 28, 1))
    fake[3, 4, 5, 0] = np.nan
    with pytest.raises(GanDiffusionError, match=r"1 non-finite value\(s\) \(NaN or inf\) in 1 image"):
        metrics.fid(real, fake, extractor="lenet-mnist")


# -- checkpoints and sample ----------------------------------------------------------------
def _checkpoint_with_meta(path, raw_meta):
    np.savez(path, **{"weights/x": np.zeros(2), "__meta__": np.array(raw_meta)})


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_bytes(os.urandom(3000)), "is corrupt, truncated or not"),
    (lambda p, src=None: None, "is corrupt, truncated or not"),          # truncated: see below
    (lambda p: np.savez(p, x=np.array([{"a": 1}], dtype=object)), "is corrupt"),   # pickle payload
    (lambda p: _checkpoint_with_meta(p, "{broken json"), "metadata that is not valid JSON"),
    (lambda p: _checkpoint_with_meta(p, "[1, 2]"), "metadata that is a JSON list, not an object"),
])
def test_bad_checkpoints_when_sampling(capsys, tmp_path, finished_run, make, message):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text((finished_run / "config.json").read_text())
    ckpt = run / "checkpoints" / "latest.npz"
    good = (finished_run / "checkpoints" / "latest.npz").read_bytes()
    ckpt.write_bytes(good[: len(good) // 2])                        # the truncated case
    make(ckpt)
    line = fails(capsys, "sample", "--run", run, "--out", tmp_path / "g.png")
    assert message in line and str(ckpt) in line
    assert not (tmp_path / "g.png").exists()


def test_sample_out_is_a_folder(capsys, tmp_path, finished_run):
    assert "is a folder; pass the path of a .png file" in fails(
        capsys, "sample", "--run", finished_run, "--out", tmp_path)


# -- files ---------------------------------------------------------------------------------
def test_atomic_writes_honour_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        save_checkpoint(tmp_path / "c.npz", {"w": np.zeros(2)}, {}, {"model": "m"})
    finally:
        os.umask(old)
    for name in ("a.txt", "c.npz"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640


def test_stale_temp_files_are_removed_on_resume(capsys, finished_run):
    stale = finished_run / "checkpoints" / ".latest.npz.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    assert cli.main(["train", "--out", str(finished_run), "--resume", "--epochs", "1"]) == 0
    assert f"removed {stale}" in capsys.readouterr().out and not stale.exists()
    assert remove_stale_temp_files(finished_run) == []


def test_the_record_keeps_only_relevant_environment_variables(finished_run, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_API_TOKEN", "secret")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/root/.terraformrc")     # Terraform's, not TF's
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert cli.main(["train", *TINY, "--out", str(tmp_path / "r")]) == 0
    env = json.loads((tmp_path / "r" / "config.json").read_text())["env"]
    assert env["OMP_NUM_THREADS"] == "2"
    assert not {"MY_API_TOKEN", "TF_CLI_CONFIG_FILE", "HOME", "PATH"} & set(env)
