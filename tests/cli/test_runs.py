"""Run records that cannot lie (gan_diffusion/runs.py): resume and rerun keep the recorded
options, data and versions or refuse; one writer per run folder; the history is committed
with the checkpoint, so a kill at any write leaves a resumable, complete run."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from gan_diffusion import cli
from gan_diffusion.checkpoint import load_checkpoint, save_checkpoint
from gan_diffusion.utils import runlock

TINY = ["--backend", "torch", "--dataset", "digits", "--limit", "64", "--batch-size", "32",
        "--set", "g_features=8", "--set", "d_features=8", "--no-progress"]


def train(*args, capsys=None):
    """cli.main in this process: (exit code, stdout, stderr)."""
    code = cli.main(["train", *map(str, args)])
    if capsys is None:
        return code, "", ""
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def record(run):
    return json.loads((run / "config.json").read_text())


def epochs_of(run):
    return [e["epoch"] for e in json.loads((run / "history.json").read_text())["epochs"]]


@pytest.fixture()
def run2(tmp_path, capsys):
    """A finished 2-epoch torch DCGAN run on 64 digits."""
    run = tmp_path / "run"
    code, _, err = train(*TINY, "--epochs", 2, "--out", run, capsys=capsys)
    assert code == 0, err
    return run


def test_resume_takes_every_option_from_the_record(run2, capsys):
    code, out, err = train("--out", run2, "--resume", "--epochs", 3, capsys=capsys)
    assert code == 0, err
    rec = record(run2)
    assert rec["data"]["size"] == 64 and rec["data"]["name"] == "digits"   # not the defaults
    assert rec["options"]["epochs"] == 3 and rec["model_config"]["g_features"] == 8
    assert epochs_of(run2) == [1, 2, 3]
    assert [s["from_epoch"] for s in rec["sessions"]] == [0, 2]
    _, _, meta = load_checkpoint(run2 / "checkpoints" / "latest.npz")
    assert [e["epoch"] for e in meta["run"]["history"]["epochs"]] == [1, 2, 3]


@pytest.mark.parametrize("args,message", [
    (["--limit", 100], "--limit 100 (recorded: 64)"),
    (["--dataset", "mnist"], "--dataset mnist (recorded: digits)"),
    (["--batch-size", 16], "--batch-size 16 (recorded: 32)"),
    (["--backend", "tf"], "--backend tf (recorded: torch)"),
    (["--model", "vae"], "--model vae (recorded: dcgan)"),
    (["--seed", 3], "--seed 3 (recorded: 0)"),
    (["--set", "g_features=16"], "--set g_features=16 (recorded: 8)"),
    (["--threads", 1], "--threads 1 (recorded: not given (the default))"),
    (["--learning-rate", 0.1], "--learning-rate 0.1 (recorded: 0.0002)"),
    (["--optimizer", "sgd"], "--optimizer sgd (recorded: adam)"),
    (["--image-size", 32], "--image-size 32 (recorded: not given (the default))"),
    (["--split", "test"], "--split test (recorded: train)"),
    (["--color-mode", "RGB"], "--color-mode RGB (recorded: not given (the default))"),
    (["--conditional"], "--conditional on (recorded: off)"),
    (["--native-rng"], "--native-rng on (recorded: off)"),
    (["--tensorboard"], "--tensorboard on (recorded: off)"),
    (["--init", "x.npz"], "--init x.npz (recorded: not given (the default))"),
])
def test_resume_refuses_a_conflicting_option(run2, capsys, args, message):
    before = (run2 / "config.json").read_bytes()
    code, out, err = train("--out", run2, "--resume", "--epochs", 3, *args, capsys=capsys)
    assert code == 2 and message in err and "Only --epochs" in err
    assert (run2 / "config.json").read_bytes() == before and epochs_of(run2) == [1, 2]


def test_resume_accepts_options_equal_to_the_record(run2, capsys):
    code, _, err = train(*TINY, "--seed", 0, "--backend", "pytorch", "--out", run2, "--resume",
                         "--epochs", 3, capsys=capsys)
    assert code == 0, err


def test_resume_that_trains_nothing_writes_nothing(run2, capsys):
    def files():  # contents, and inode and mtime: a rewrite with the same bytes counts too
        return {p: (p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns)
                for p in run2.rglob("*") if p.is_file() and p.name != ".lock"}

    before = files()
    code, out, _ = train("--out", run2, "--resume", "--epochs", 2, capsys=capsys)
    assert code == 0 and "nothing to do" in out
    assert files() == before


def test_resume_refuses_other_versions_unless_allowed(run2, capsys):
    rec = record(run2)
    rec["sessions"][-1]["versions"]["numpy"] = "0.0.1"
    (run2 / "config.json").write_text(json.dumps(rec))
    code, _, err = train("--out", run2, "--resume", "--epochs", 3, capsys=capsys)
    assert code == 2 and f"numpy {np.__version__} (recorded: 0.0.1)" in err
    code, _, err = train("--out", run2, "--resume", "--epochs", 3, "--allow-version-change",
                         capsys=capsys)
    assert code == 0, err
    assert record(run2)["sessions"][-1]["versions"]["numpy"] == np.__version__  # told, not hidden
    rec = record(run2)
    rec["versions"]["numpy"] = "0.0.1"        # a rerun compares with the record's own versions
    (run2 / "other.json").write_text(json.dumps(rec))
    code, _, err = train("--rerun", run2 / "other.json", "--out", run2.parent / "b", capsys=capsys)
    assert code == 2 and f"numpy {np.__version__} (recorded: 0.0.1)" in err
    assert not (run2.parent / "b").exists()


def test_resume_of_a_vae_run_needs_no_model_flag(tmp_path, capsys):
    run = tmp_path / "vae"
    code, _, err = train("--backend", "torch", "--model", "vae", "--limit", 64, "--batch-size", 32,
                         "--epochs", 1, "--no-progress", "--out", run, capsys=capsys)
    assert code == 0, err
    code, out, err = train("--out", run, "--resume", "--epochs", 2, capsys=capsys)
    assert code == 0, err
    evals = json.loads((run / "eval.json").read_text())["epochs"]
    assert [e["epoch"] for e in evals] == [1, 2] and "neg_elbo" in out


def _folder_dataset(root, n=8):
    for i in range(n):
        d = root / f"c{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((28, 28), 20 * i, np.uint8)).save(d / f"{i}.png")
    return f"folder:{root}"


def test_resume_of_a_folder_run_needs_no_dataset_flag(tmp_path, capsys):
    data = _folder_dataset(tmp_path / "data")             # not the default data set (digits)
    run = tmp_path / "run"
    assert train("--backend", "torch", "--dataset", data, "--batch-size", 4, "--set", "g_features=8",
                 "--set", "d_features=8", "--epochs", 1, "--no-progress", "--out", run,
                 capsys=capsys)[0] == 0
    code, out, err = train("--out", run, "--resume", "--epochs", 2, capsys=capsys)
    assert code == 0, err
    assert f"on {data} (8 images" in out and epochs_of(run) == [1, 2]
    assert record(run)["data"]["name"] == data and record(run)["options"]["batch_size"] == 4


def test_resume_and_rerun_find_the_data_where_the_record_says(tmp_path, monkeypatch):
    from gan_diffusion.run_options import RunOptions, resolve

    monkeypatch.setenv("GAN_DIFFUSION_DATA_DIR", str(tmp_path / "elsewhere"))
    rec = {"model": "dcgan", "options": {"dataset": "mnist", "epochs": 1}, "data": {"data_dir": str(tmp_path)}}
    (tmp_path / "config.json").write_text(json.dumps(rec))
    assert resolve(RunOptions(out=str(tmp_path), resume=True))[0].data_dir == str(tmp_path)
    assert resolve(RunOptions(out="b", rerun=str(tmp_path / "config.json")))[0].data_dir == str(tmp_path)
    given = RunOptions(out=str(tmp_path), resume=True, data_dir="/data")   # --data-dir wins
    assert resolve(given)[0].data_dir == "/data"
    rec["data"]["data_dir"] = str(tmp_path / "gone")         # not on this machine: the default
    (tmp_path / "config.json").write_text(json.dumps(rec))
    assert resolve(RunOptions(out=str(tmp_path), resume=True))[0].data_dir is None


def test_rerun_repeats_exactly_or_refuses(tmp_path, capsys):
    data = _folder_dataset(tmp_path / "data")
    a, b = tmp_path / "a", tmp_path / "b"
    opts = ["--backend", "torch", "--dataset", data, "--batch-size", 4, "--set", "g_features=8",
            "--set", "d_features=8", "--epochs", 1, "--no-progress"]
    assert train(*opts, "--out", a, capsys=capsys)[0] == 0
    code, _, err = train("--rerun", a / "config.json", "--out", b, capsys=capsys)
    assert code == 0, err
    ha, hb = (json.loads((r / "history.json").read_text())["epochs"][0]["losses"] for r in (a, b))
    assert ha == hb and record(b)["rerun_of"]["path"] == str(a / "config.json")

    code, _, err = train("--rerun", a / "config.json", "--epochs", 2, "--out", tmp_path / "c",
                         capsys=capsys)
    assert code == 2 and "--epochs 2 (recorded: 1)" in err
    assert not (tmp_path / "c").exists()                       # nothing half-written

    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(tmp_path / "data" / "c0" / "0.png")
    code, _, err = train("--rerun", a / "config.json", "--out", tmp_path / "d", capsys=capsys)
    assert code == 2 and "training data differ" in err and "sha256" in err
    assert not (tmp_path / "d").exists()


def test_rerun_refuses_other_initial_weights(tmp_path, capsys):
    init = tmp_path / "init.npz"
    a = tmp_path / "a"
    assert train(*TINY, "--epochs", 1, "--init", init, "--out", a, capsys=capsys)[0] == 0
    weights, optimizer, meta = load_checkpoint(init)   # same config, other weights
    name = sorted(weights)[0]
    weights[name] = weights[name] + np.float32(0.01)
    save_checkpoint(init, weights, optimizer, meta)
    code, _, err = train("--rerun", a / "config.json", "--out", tmp_path / "b", capsys=capsys)
    assert code == 2 and "initial weights differ" in err


HOLD = textwrap.dedent("""
    import sys, time
    from gan_diffusion.utils.runlock import acquire
    acquire(sys.argv[1]); print("held", flush=True); time.sleep(120)
""")


def test_one_writer_per_run_folder(tmp_path, capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = train(*TINY, "--epochs", 1, "--out", run, capsys=capsys)
        assert code == 2 and f"pid {holder.pid}" in err and "another process" in err
        assert runlock.holder(run)["pid"] == holder.pid
        assert sorted(p.name for p in run.iterdir()) == [".lock"]   # nothing written
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert runlock.holder(run) is None                 # the kernel dropped the dead writer's lock
    code, out, err = train(*TINY, "--epochs", 1, "--out", run, capsys=capsys)
    assert code == 0, err
    assert f"previous writer of {run} (pid {holder.pid}" in out and "did not exit cleanly" in out
    with runlock.run_lock(run) as lock:
        assert lock.stale is None                      # train released it cleanly
        with runlock.run_lock(run) as inner:           # re-entrant within a process
            assert inner is lock


def test_compare_respects_the_lock_of_its_folder(tmp_path, capsys):
    out = tmp_path / "cmp"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code = cli.main(["compare", "--models", "dcgan", "--backends", "torch", "--seeds", "1",
                         "--epochs", "1", "--limit", "64", "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and f"pid {holder.pid}" in err and "another process" in err
        assert sorted(p.name for p in out.iterdir()) == [".lock"]   # nothing written
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_divergence_stops_and_keeps_the_last_good_checkpoint(run2, capsys, monkeypatch):
    from gan_diffusion.torch_backend.dcgan import DCGAN

    step = DCGAN.train_step

    def diverging(self, *args, **kwargs):
        losses = step(self, *args, **kwargs)
        return {**losses, "d_loss": float("nan")} if self.global_step == 6 else losses

    monkeypatch.setattr(DCGAN, "train_step", diverging)
    before = (run2 / "checkpoints" / "latest.npz").read_bytes()
    record_before = (run2 / "config.json").read_bytes()
    code, _, err = train("--out", run2, "--resume", "--epochs", 4, capsys=capsys)
    assert code == 1
    assert "d_loss = nan at step 6 (epoch 3, batch 2 of 2)" in err
    assert "last good checkpoint (epoch 2) is kept" in err and "Traceback" not in err
    assert (run2 / "checkpoints" / "latest.npz").read_bytes() == before
    assert epochs_of(run2) == [1, 2]
    assert (run2 / "config.json").read_bytes() == record_before   # no session that committed nothing


# Every point an epoch's commit passes (gan_diffusion/callbacks.py, utils/faults.py).
FAULT_POINTS = ["epoch-trained", "rename:latest.npz", "checkpoint-committed", "rename:history.json",
                "history-written", "epoch-done"]


@pytest.fixture(scope="module")
def reference_losses(tmp_path_factory):
    run = tmp_path_factory.mktemp("ref") / "run"
    assert cli.main(["train", *TINY, "--epochs", "3", "--out", str(run)]) == 0
    return [e["losses"] for e in json.loads((run / "history.json").read_text())["epochs"]]


@pytest.mark.slow
@pytest.mark.parametrize("point", FAULT_POINTS)
def test_kill_at_every_write_then_resume_gives_the_complete_history(point, tmp_path, capsys,
                                                                    reference_losses):
    run = tmp_path / "run"
    env = {**os.environ, "GAN_DIFFUSION_FAULT": f"{point}@2", "TF_CPP_MIN_LOG_LEVEL": "2"}
    killed = subprocess.run([sys.executable, "-m", "gan_diffusion", "train", *TINY, "--epochs", "3",
                             "--out", str(run)], env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    code, out, err = train("--out", run, "--resume", "--epochs", 3, capsys=capsys)
    assert code == 0, err
    assert epochs_of(run) == [1, 2, 3]
    history = json.loads((run / "history.json").read_text())["epochs"]
    for got, want in zip([e["losses"] for e in history], reference_losses):   # exactly resumed
        assert got == pytest.approx(want, abs=1e-5)
    _, _, meta = load_checkpoint(run / "checkpoints" / "latest.npz")
    assert meta["run"]["history"]["epochs"] == history
    assert sorted(p.name for p in (run / "samples").iterdir()) == [f"epoch_000{i}.png" for i in (1, 2, 3)]
    assert not list(run.rglob("*.tmp"))                     # the killed write's leftovers are gone
