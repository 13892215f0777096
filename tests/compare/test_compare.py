"""The comparison harness (`gan-diffusion compare`) end to end on a tiny setting, its tables
against the run records, resume, the HTML report in headless Chromium, TensorBoard logs."""
import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import run_cli

# 2 seeds x 2 backends of a narrow DCGAN on 96 digits, 2 epochs: 4 subprocess runs.
TINY = ["--models", "dcgan", "--dataset", "digits", "--limit", "96", "--epochs", "2",
        "--seeds", "2", "--batch-size", "32", "--set", "g_features=8", "--set", "d_features=8",
        "--n-eval", "100", "--threads", "1"]


def cli(*args, check=True, timeout=600):
    # no FID Inception weights in reach (a developer's torch hub may hold them): quality is
    # then scored with the shipped LeNet-MNIST, what CI and a fresh machine use
    env = {k: v for k, v in os.environ.items() if k != "GAN_DIFFUSION_WEIGHTS_DIR"}
    env["TORCH_HOME"] = os.devnull + "/no-torch-home"
    return run_cli(*args, env=env, check=check, timeout=timeout)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "out"
    result = cli("compare", *TINY, "--out", str(out))
    return out, result.stdout


def runs_of(out):
    return {(be, s): out / "runs" / "dcgan" / be / f"seed{s}" for be in ("tf", "torch") for s in (0, 1)}


def test_compare_end_to_end(compared):
    out, stdout = compared
    for (be, seed), run in runs_of(out).items():
        record = json.loads((run / "run.json").read_text())
        assert record["finished"] is True and record["peak_rss_mb"] > 50
        config = json.loads((run / "config.json").read_text())
        assert config["backend"] == be and config["seed"] == seed
        assert config["threads"]["intra_op"] == 1 and config["options"]["tensorboard"]
        assert len(json.loads((run / "history.json").read_text())["epochs"]) == 2
        with np.load(run / "eval_samples.npz", allow_pickle=False) as f:
            assert f["images"].shape == (100, 28, 28, 1) and f["images"].dtype == np.uint8
        quality = json.loads((run / "quality.json").read_text())
        assert quality["extractor"] == "lenet-mnist"
        fid = quality["scores"]["fid"]
        assert fid["name"] == "FID-LeNet(MNIST)" and fid["extractor"].startswith("lenet-mnist@")
        assert fid["n_fake"] == 100 and fid["n_real"] == 100 and fid["value"] > 0
    for name in ("timing", "epoch_times", "quality", "framework_effect", "runs"):
        assert (out / "tables" / f"{name}.md").exists() and (out / "tables" / f"{name}.csv").exists()
    for name in ("quality", "epoch_times", "dcgan_losses", "dcgan_samples"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 5000
    assert "report" in stdout and (out / "report.html").exists()


def test_controlled_mode_same_start_same_training(compared):
    """Controlled: the init checkpoint makes both backends start bit-identically (and seeds
    differ); the same data and noise then give the same losses and nearly the same samples."""
    out, _ = compared
    runs = runs_of(out)
    rng = {k: json.loads((r / "config.json").read_text())["rng"] for k, r in runs.items()}
    for seed in (0, 1):
        assert rng[("tf", seed)]["init_sha256"] == rng[("torch", seed)]["init_sha256"]
        actions = {rng[(be, seed)]["init_checkpoint"]["action"] for be in ("tf", "torch")}
        assert actions == {"written", "loaded"}
    assert rng[("tf", 0)]["init_sha256"] != rng[("tf", 1)]["init_sha256"]
    for seed in (0, 1):
        h = {be: json.loads((runs[(be, seed)] / "history.json").read_text())["epochs"]
             for be in ("tf", "torch")}
        for a, b in zip(h["tf"], h["torch"]):
            for k in a["losses"]:
                assert a["losses"][k] == pytest.approx(b["losses"][k], abs=1e-3)
        with np.load(runs[("tf", seed)] / "eval_samples.npz") as f, \
                np.load(runs[("torch", seed)] / "eval_samples.npz") as g:
            diff = np.abs(f["images"].astype(int) - g["images"].astype(int))
        assert diff.mean() < 1.0   # 6 steps from the same state: the same images to round-off


def test_tables_agree_with_run_records(compared):
    from scipy import stats

    out, _ = compared
    runs = runs_of(out)
    hist = {k: json.loads((r / "history.json").read_text())["epochs"] for k, r in runs.items()}
    rec = {k: json.loads((r / "run.json").read_text()) for k, r in runs.items()}
    qual = {k: json.loads((r / "quality.json").read_text())["scores"] for k, r in runs.items()}

    timing = {row["backend"]: row for row in read_csv(out / "tables" / "timing.csv")}
    for be in ("tf", "torch"):
        row = timing[be]
        first = [hist[(be, s)][0]["seconds"] for s in (0, 1)]
        steady = [hist[(be, s)][1]["seconds"] for s in (0, 1)]   # median of epochs 2..2
        ips = [hist[(be, s)][1]["images_per_sec"] for s in (0, 1)]
        rss = [rec[(be, s)]["peak_rss_mb"] for s in (0, 1)]
        assert float(row["first_epoch_s_mean"]) == pytest.approx(np.mean(first), rel=1e-9)
        assert float(row["first_epoch_s_std"]) == pytest.approx(np.std(first, ddof=1), rel=1e-9)
        assert float(row["steady_epoch_s_mean"]) == pytest.approx(np.mean(steady), rel=1e-9)
        assert float(row["images_per_sec_mean"]) == pytest.approx(np.mean(ips), rel=1e-9)
        assert float(row["peak_rss_mb_mean"]) == pytest.approx(np.mean(rss), rel=1e-9)
        assert row["n_seeds"] == "2"

    epochs = read_csv(out / "tables" / "epoch_times.csv")
    assert len(epochs) == 8
    for row in epochs:
        e = hist[(row["backend"], int(row["seed"]))][int(row["epoch"]) - 1]
        assert float(row["seconds"]) == pytest.approx(e["seconds"], rel=1e-12)

    quality = {row["backend"]: row for row in read_csv(out / "tables" / "quality.csv")}
    for be in ("tf", "torch"):
        fids = [qual[(be, s)]["fid"]["value"] for s in (0, 1)]
        assert float(quality[be]["fid_mean"]) == pytest.approx(np.mean(fids), rel=1e-9)
        assert float(quality[be]["fid_std"]) == pytest.approx(np.std(fids, ddof=1), rel=1e-9)

    effect = {row["metric"]: row for row in read_csv(out / "tables" / "framework_effect.csv")}
    a = [hist[("tf", s)][1]["seconds"] for s in (0, 1)]
    b = [hist[("torch", s)][1]["seconds"] for s in (0, 1)]
    row = effect["steady_epoch_s"]
    assert float(row["diff"]) == pytest.approx(np.mean(a) - np.mean(b), rel=1e-9)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (float(row["ci_low"]), float(row["ci_high"])) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert row["exceeds_seed_sd"] == str(abs(np.mean(a) - np.mean(b)) > max(np.std(a, ddof=1), np.std(b, ddof=1)))
    md = (out / "tables" / "framework_effect.md").read_text()
    assert "Welch" in md and "tf − torch" in md


def test_rerun_skips_finished_and_restarts_killed_runs(compared, tmp_path):
    src, _ = compared
    out = tmp_path / "out"
    shutil.copytree(src, out)
    killed = out / "runs" / "dcgan" / "torch" / "seed1"
    (killed / "run.json").unlink()                    # as if killed after its last epoch
    (killed / "history.json").write_text('{"epochs": [')  # ... while writing a file
    kept = {p: p.stat().st_mtime_ns for p in out.glob("runs/dcgan/*/seed*/run.json")}
    result = cli("compare", *TINY, "--out", str(out))
    assert result.stdout.count("finished earlier, skipped") == 3
    assert "[4/4 dcgan torch seed 1] unfinished run found" in result.stdout
    assert json.loads((killed / "run.json").read_text())["finished"]
    assert len(json.loads((killed / "history.json").read_text())["epochs"]) == 2
    assert {p: p.stat().st_mtime_ns for p in kept} == kept    # finished runs untouched
    again = cli("compare", *TINY, "--out", str(out))
    assert again.stdout.count("finished earlier, skipped") == 4
    before = json.loads((out / "compare.json").read_text())
    cli("compare", "--out", str(out), "--report-only")          # options from compare.json
    after = json.loads((out / "compare.json").read_text())
    assert after["wall_seconds"] == before["wall_seconds"] and "--report-only" not in after["command_line"]
    assert "report_rebuilt_at" in after and (out / "report.html").exists()
    other = cli("compare", *[a if a != "2" or i != TINY.index("--epochs") + 1 else "3"
                             for i, a in enumerate(TINY)], "--out", str(out), check=False)
    assert other.returncode == 2 and "epochs=2 (now 3)" in other.stderr


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    if os.environ.get("GAN_DIFFUSION_REQUIRE_CHROMIUM"):
        pytest.fail("GAN_DIFFUSION_REQUIRE_CHROMIUM is set but no chromium is installed "
                    "(apt-get install -y chromium)")
    pytest.skip("headless Chromium not installed (apt-get install -y chromium; `make test` "
                "installs it)")


def browser(exe, profile, *args):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}"]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=120)


def test_report_renders_in_headless_chromium(compared, tmp_path):
    from PIL import Image

    exe = chromium()
    out, _ = compared
    page = (out / "report.html").resolve()
    text = page.read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert text.count("src='data:image/png;base64,") >= 4
    shot = out / "report_screenshot.png"
    r = browser(exe, tmp_path / "p1", "--window-size=1280,2000", "--hide-scrollbars",
                f"--screenshot={shot}", page.as_uri())
    assert shot.exists(), r.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert img.shape == (2000, 1280)
    assert img.std() > 20                       # not blank or uniform
    dark = (img < 128).mean()
    assert 0.01 < dark < 0.6                    # text and plots on a light page
    assert (img[:400] < 128).mean() > 0.005      # the title and context at the top are drawn
    dom = browser(exe, tmp_path / "p2", "--dump-dom", page.as_uri()).stdout
    assert "<title>gan_diffusion comparison report</title>" in dom
    for words in ("Framework effect (tf − torch) per model", "FID-LeNet(MNIST)",
                  "Training time: first epoch against steady state", "not comparable with Inception"):
        assert words in dom
    assert dom.count("<img") >= 4


def scalars_and_images(logdir):
    """{tag: [(step, value)]} and image tags of a TensorBoard log, for TF2 (tensor) and torch
    (simple_value) summaries alike."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    ea = EventAccumulator(str(logdir), size_guidance={"tensors": 0, "scalars": 0, "images": 0})
    ea.Reload()
    tags = ea.Tags()
    out = {t: [(e.step, e.value) for e in ea.Scalars(t)] for t in tags["scalars"]}
    images = set(tags["images"])
    for t in tags["tensors"]:
        events = ea.Tensors(t)
        if ea.SummaryMetadata(t).plugin_data.plugin_name == "images":
            images.add(t)
        else:
            out[t] = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in events]
    return out, images


@pytest.mark.parametrize("backend", ["tf", "torch"])
def test_tensorboard_event_files_hold_the_history(compared, backend):
    out, _ = compared
    run = out / "runs" / "dcgan" / backend / "seed0"
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    scalars, images = scalars_and_images(run / "tensorboard")
    history = json.loads((run / "history.json").read_text())["epochs"]
    expected = {"loss/d_loss", "loss/g_loss", "loss/d_real", "loss/d_fake", "time/epoch_seconds",
                "time/images_per_sec"}
    assert expected <= set(scalars)
    assert [s for s, _ in scalars["time/epoch_seconds"]] == [1, 2]
    for (step, value), e in zip(scalars["loss/g_loss"], history):
        assert step == e["epoch"] and value == pytest.approx(e["losses"]["g_loss"], rel=1e-6)
    for (_, value), e in zip(scalars["time/images_per_sec"], history):
        assert value == pytest.approx(e["images_per_sec"], rel=1e-6)
    assert "samples" in images


def test_torch_tensorboard_writer_does_not_load_tensorflow(tmp_path):
    code = ("import sys, numpy as np\n"
            "from gan_diffusion.torch_backend.tensorboard import EventWriter\n"
            f"w = EventWriter({str(tmp_path)!r}); w.scalars(1, {{'a': 1.0}}); "
            "w.image('g', np.zeros((4, 4, 1), np.uint8), 1); w.close()\n"
            "print('tensorflow' in sys.modules, 'torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "False False", out.stderr[-2000:]


def test_compare_errors_are_one_clear_line(tmp_path):
    bad = cli("compare", "--models", "dcgan,no-such-model", "--out", str(tmp_path / "x"), check=False)
    assert bad.returncode == 2 and "unknown model 'no-such-model'; valid models: " in bad.stderr
    assert "dcgan" in bad.stderr and "wgan-gp" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli("compare", "--models", "dcgan", "--set", "wgan-gp.d_features=8", "--out",
              str(tmp_path / "x"), check=False)
    assert bad.returncode == 2 and "'wgan-gp' is not among --models dcgan" in bad.stderr
    bad = cli("compare", "--models", "dcgan", "--backends", "tf,jax", "--out", str(tmp_path / "x"),
              check=False)
    assert bad.returncode == 2 and "unknown backend 'jax'" in bad.stderr


def test_report_only_rebuilds_from_the_runs_alone(compared, tmp_path):
    """--report-only without compare.json (e.g. runs copied from elsewhere) resolves the
    extractor again and rebuilds tables and report from the finished runs, training nothing."""
    out, _ = compared
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "compare.json").unlink()
    (copy / "report.html").unlink()
    result = cli("compare", *TINY, "--report-only", "--out", str(copy))
    assert "report rebuilt" in result.stdout and "training" not in result.stdout
    assert json.loads((copy / "compare.json").read_text())["options"]["extractor"] == "lenet-mnist"
    assert "FID-LeNet(MNIST)" in (copy / "tables" / "quality.md").read_text()
    assert (copy / "report.html").exists()
