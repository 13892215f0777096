"""`gan-diffusion train --model ldm --stage autoencoder|diffusion|both` end to end (torch; the
TF path of the same code is covered by tests/backends/test_parity_ldm.py): the two stages'
run folders and records, exact resume of each stage (after a SIGKILL at any stage, too), the
autoencoder recorded by sha256, and the bad-input errors (exit 2, one line, naming the run)."""
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from gan_diffusion import cli
from gan_diffusion.checkpoint import load_checkpoint, weights_digest

TINY = ["--backend", "torch", "--model", "ldm", "--dataset", "digits", "--image-size", "16",
        "--limit", "32", "--batch-size", "16", "--threads", "1", "--conditional", "--no-progress",
        "--set", "ae_channels=[8,16,16]", "--set", "base_channels=8", "--set", "norm_groups=4",
        "--set", "context_dim=8", "--set", "sample_steps=2", "--set", "ae_epochs=2"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # tiny nets (tests/conftest.py)


def train(*args, capsys=None):
    """cli.main in this process: (exit code, stdout, stderr)."""
    code = cli.main(["train", *map(str, args)])
    if capsys is None:
        return code, "", ""
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def record(run):
    return json.loads((run / "config.json").read_text())


def losses(run):
    return [e["losses"] for e in json.loads((run / "history.json").read_text())["epochs"]]


def weights(run):
    return load_checkpoint(run / "checkpoints" / "latest.npz")[0]


def ae_digest(run):
    return weights_digest({k: v for k, v in weights(run).items() if k.startswith("ae/")})


def same_run(got, want):
    """Histories equal (the same losses epoch by epoch) and the final weights equal."""
    assert len(losses(got)) == len(losses(want))
    for a, b in zip(losses(got), losses(want)):
        assert a == pytest.approx(b, abs=1e-6)
    wa, wb = weights(got), weights(want)
    assert set(wa) == set(wb) and max(np.abs(wa[k] - wb[k]).max() for k in wa) < 1e-6


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted --stage both run: 2 autoencoder epochs, then 2 diffusion epochs."""
    run = tmp_path_factory.mktemp("ldm") / "both"
    assert train(*TINY, "--stage", "both", "--epochs", 2, "--out", run)[0] == 0
    return run


def test_both_stages_write_two_runs_and_record_the_autoencoder(reference, capsys):
    ae, rec = reference / "autoencoder", record(reference)
    sub = record(ae)
    assert sub["options"]["stage"] == "autoencoder" and sub["options"]["epochs"] == 2
    assert sub["stage_of"] == {"run": str(reference), "epochs": 2}
    assert sub["model_config"]["stage"] == "autoencoder" and len(losses(ae)) == 2
    assert set(losses(ae)[0]) == {"loss", "recon", "kl"} and losses(ae)[1]["loss"] < losses(ae)[0]["loss"]
    assert rec["options"]["stage"] == "both" and rec["model_config"]["stage"] == "diffusion"
    config = rec["model_config"]
    assert config["autoencoder_sha256"] == ae_digest(ae) == ae_digest(reference)   # the frozen copy
    assert config["latent_scale"] > 0 and config["ae_channels"] == [8, 16, 16] and config["num_classes"] == 10
    assert sorted(p.name for p in (reference / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]
    assert (ae / "samples" / "epoch_0002.png").exists()
    out = reference.parent / "grid.png"
    assert cli.main(["sample", "--run", str(reference), "--n", "10", "--steps", "3", "--guidance", "2",
                     "--out", str(out)]) == 0 and out.exists()
    assert "1 per class" in capsys.readouterr().out
    code, out_, err = train("--out", reference, "--resume", capsys=capsys)   # nothing to do, no write
    assert code == 0 and "nothing to do" in out_


def test_each_stage_alone_resumes_exactly(reference, tmp_path, capsys):
    """--stage autoencoder (1 epoch, then resumed to 2) and --stage diffusion on it (1, then 2)
    reproduce the uninterrupted --stage both run exactly."""
    ae, diff = tmp_path / "ae", tmp_path / "diff"
    assert train(*TINY, "--stage", "autoencoder", "--epochs", 1, "--out", ae)[0] == 0
    assert train("--out", ae, "--resume", "--epochs", 2)[0] == 0
    same_run(ae, reference / "autoencoder")
    assert train(*TINY, "--stage", "diffusion", "--autoencoder", ae, "--epochs", 1, "--out", diff)[0] == 0
    code, _, err = train("--out", diff, "--resume", "--epochs", 2, capsys=capsys)
    assert code == 0, err
    same_run(diff, reference)
    rec = record(diff)
    assert rec["options"]["autoencoder"] == str(ae) and rec["options"]["stage"] == "diffusion"
    assert rec["model_config"] == record(reference)["model_config"]      # same autoencoder, same scale


def test_rerun_of_a_both_run_repeats_both_stages(reference, tmp_path):
    again = tmp_path / "again"
    assert train("--rerun", reference / "config.json", "--out", again)[0] == 0
    same_run(again / "autoencoder", reference / "autoencoder")
    same_run(again, reference)
    assert record(again)["rerun_of"]["path"] == str(reference / "config.json")
    assert record(again / "autoencoder")["rerun_of"]["path"] == str(reference / "autoencoder" / "config.json")
    assert record(again / "autoencoder")["stage_of"] == {"run": str(again), "epochs": 2}


@pytest.mark.slow
@pytest.mark.parametrize("point", ["epoch-done@1",      # autoencoder stage, epoch 1 of 2 committed
                                   "epoch-trained@3",   # diffusion stage begun, nothing committed
                                   "epoch-done@3"])     # diffusion stage, epoch 1 of 2 committed
def test_killed_both_run_resumes_exactly(point, reference, tmp_path, capsys):
    run = tmp_path / "run"
    env = {**os.environ, "GAN_DIFFUSION_FAULT": point, "TF_CPP_MIN_LOG_LEVEL": "2"}
    killed = subprocess.run([sys.executable, "-m", "gan_diffusion", "train", *TINY, "--stage", "both",
                             "--epochs", "2", "--out", str(run)], env=env, capture_output=True, text=True,
                            timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    code, out, err = train("--out", run, "--resume", capsys=capsys)
    assert code == 0, err
    same_run(run / "autoencoder", reference / "autoencoder")
    same_run(run, reference)
    assert record(run)["model_config"] == record(reference)["model_config"]


@pytest.fixture(scope="module")
def finished_ae(reference):
    return reference / "autoencoder"


def fails(capsys, *args):
    """Exit code 2 and one line on stderr; returns the line."""
    code, _, err = train(*args, capsys=capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_diffusion_stage_needs_a_finished_fitting_autoencoder(finished_ae, tmp_path, capsys):
    out = tmp_path / "d"
    assert "needs --autoencoder RUN" in fails(capsys, *TINY, "--stage", "diffusion", "--out", out)
    empty = tmp_path / "empty"
    empty.mkdir()
    line = fails(capsys, *TINY, "--stage", "diffusion", "--autoencoder", empty, "--out", out)
    assert f"the autoencoder run {empty} holds no finished run" in line
    unfinished = tmp_path / "unfinished"
    shutil.copytree(finished_ae, unfinished)
    rec = record(unfinished)
    rec["options"]["epochs"] = 3
    (unfinished / "config.json").write_text(json.dumps(rec))
    line = fails(capsys, *TINY, "--stage", "diffusion", "--autoencoder", unfinished, "--out", out)
    assert f"the autoencoder run {unfinished} is not finished (epoch 2 of 3)" in line
    line = fails(capsys, *TINY, "--image-size", 28, "--stage", "diffusion",      # the last --image-size wins
                 "--autoencoder", finished_ae, "--out", out)
    assert (f"the autoencoder run {finished_ae} was trained on images of shape (16, 16, 1), but this "
            "run's data (digits) has shape (28, 28, 1)") in line
    line = fails(capsys, *TINY, "--stage", "diffusion", "--autoencoder", finished_ae.parent, "--out", out)
    assert f"{finished_ae.parent} is not an ldm autoencoder run" in line
    line = fails(capsys, *TINY, "--set", "latent_channels=3", "--stage", "diffusion", "--autoencoder",
                 finished_ae, "--out", out)
    assert "--set latent_channels=3 (the autoencoder's: 4)" in line
    assert "applies to --stage diffusion only" in fails(capsys, *TINY, "--stage", "autoencoder",
                                                        "--autoencoder", finished_ae, "--out", out)
    assert "apply to --model ldm only" in fails(capsys, "--model", "dcgan", "--stage", "autoencoder",
                                                "--out", out)
    assert "--set stage: use --stage" in fails(capsys, *TINY, "--set", "stage=diffusion", "--out", out)
    assert not out.exists()                                   # nothing half-written


def test_resume_and_rerun_refuse_another_autoencoder(reference, tmp_path, capsys):
    ae, diff = tmp_path / "ae", tmp_path / "diff"
    shutil.copytree(reference / "autoencoder", ae)
    rec = record(ae)
    del rec["stage_of"]
    (ae / "config.json").write_text(json.dumps(rec))
    assert train(*TINY, "--stage", "diffusion", "--autoencoder", ae, "--epochs", 1, "--out", diff)[0] == 0
    assert train("--out", ae, "--resume", "--epochs", 3)[0] == 0      # the autoencoder changes
    line = fails(capsys, "--out", diff, "--resume", "--epochs", 2)
    assert f"--resume: the autoencoder run {ae} now holds other weights" in line
    line = fails(capsys, "--rerun", diff / "config.json", "--out", tmp_path / "again")
    assert f"--rerun: the autoencoder run {ae} holds other weights" in line
    assert "--autoencoder" in fails(capsys, "--out", diff, "--resume", "--autoencoder", reference, "--epochs", 2)


def test_both_with_init_shares_the_two_initial_states(finished_ae, tmp_path, capsys):
    """--stage both --init P (what compare gives every run): the autoencoder stage's initial
    state goes to P-autoencoder.npz and the U-Net's to P; a second run loads both and repeats
    the first exactly. A diffusion stage loads only the U-Net of P (its autoencoder is its
    own) and refuses a P of another config or a P that is not an initial state."""
    init, a, b = tmp_path / "init.npz", tmp_path / "a", tmp_path / "b"
    args = [*TINY, "--set", "ae_epochs=1", "--epochs", 1, "--init", init]
    assert train(*args, "--out", a)[0] == 0
    assert init.exists() and (tmp_path / "init-autoencoder.npz").exists()
    for run in (a, a / "autoencoder"):
        assert record(run)["rng"]["init_checkpoint"]["action"] == "written"
    code, _, err = train(*args, "--out", b, capsys=capsys)
    assert code == 0, err
    assert record(b / "autoencoder")["rng"]["init_checkpoint"]["action"] == "loaded"
    assert record(b)["rng"]["init_checkpoint"]["action"].startswith("loaded (U-Net")
    assert record(b)["rng"]["shared_init_sha256"] == record(a)["rng"]["shared_init_sha256"]
    same_run(b / "autoencoder", a / "autoencoder")
    same_run(b, a)
    # another autoencoder (the reference run's): the U-Net of P, the scale of its own latents
    c = tmp_path / "c"
    code, _, err = train(*TINY, "--stage", "diffusion", "--autoencoder", finished_ae, "--epochs", 1,
                         "--init", init, "--out", c, capsys=capsys)     # its ae_epochs=2 is let pass
    assert code == 0, err
    unet = {k for k in weights(a) if not k.startswith("ae/")}
    w0 = load_checkpoint(init)[0]
    assert record(c)["rng"]["shared_init_sha256"] == weights_digest({k: w0[k] for k in unet})
    assert record(c)["model_config"]["autoencoder_sha256"] == ae_digest(finished_ae) != ae_digest(a)
    assert record(c)["model_config"]["latent_scale"] == record(finished_ae.parent)["model_config"]["latent_scale"]
    out = tmp_path / "d"
    line = fails(capsys, *TINY, "--stage", "diffusion", "--autoencoder", finished_ae, "--set",
                 "base_channels=16", "--init", init, "--out", out)
    assert f"--init {init} was written with a different config: base_channels=8 (ours 16)" in line
    line = fails(capsys, *TINY, "--stage", "diffusion", "--autoencoder", finished_ae,
                 "--init", a / "checkpoints" / "latest.npz", "--out", out)
    assert "is not the initial state of an ldm diffusion stage" in line
    assert not out.exists()
