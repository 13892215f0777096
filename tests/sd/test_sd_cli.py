"""`gan-diffusion sd txt2img | img2img` on a tiny random checkpoint folder: what it writes, that
it reproduces the API, and every bad input (exit 2, one message naming the problem, nothing
written)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

from gan_diffusion.cli import main
from gan_diffusion.sd import architectures, layout
from gan_diffusion.sd.checkpoint import save_folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    arch = architectures.tiny()
    return save_folder(tmp_path_factory.mktemp("sd") / "tiny", arch, layout.random_weights(arch, 2))


def sd(*args):
    return run_cli("sd", *args, check=False)


def test_txt2img_writes_images_grid_and_record(tiny, tmp_path):
    import gan_diffusion

    out = tmp_path / "out"
    r = sd("txt2img", "--backend", "torch", "--weights", str(tiny), "--prompt", "a red cube",
           "--prompt", "a blue sphere", "--n", "2", "--seed", "5", "--steps", "3", "--size", "32",
           "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "wrote 4 images, grid.png and record.json" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "image_0000.png", "image_0001.png",
                                                     "image_0002.png", "image_0003.png", "record.json"]
    rec = json.loads((out / "record.json").read_text())
    assert rec["weights"]["id"].startswith("sha256:") and rec["weights"]["kind"] == "diffusers"
    assert rec["scheduler"]["class"] == "DDIMScheduler" and rec["scheduler"]["config"]["steps_offset"] == 1
    assert [(i["prompt"], i["seed"]) for i in rec["images"]] == [
        ("a red cube", 5), ("a red cube", 6), ("a blue sphere", 5), ("a blue sphere", 6)]
    assert rec["images"][0]["timesteps"] == [667, 334, 1]
    assert set(rec["seconds"]["per_image"][0]) >= {"text", "unet", "decode", "total"}
    assert "versions" in rec and "load" in rec and "machine" in rec
    # the files are what the API makes for the same prompt and seed
    model = gan_diffusion.get_backend("torch").build("sd-v1", weights=str(tiny))
    api = model.sample(1, seed=6, prompt="a blue sphere", steps=3, size=32)[0]
    assert np.array_equal(np.asarray(Image.open(out / "image_0003.png")), api)


def test_img2img_resizes_and_converts_and_says_so(tiny, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 24), dtype=np.uint8)).save(src / "g.png")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(src / "rgb.png")
    out = tmp_path / "out"
    long_prompt = " ".join(["word"] * 90)
    r = sd("img2img", "--backend", "torch", "--weights", str(tiny), "--prompt", long_prompt,
           "--negative-prompt", " ".join(["bad"] * 80), "--input", str(src), "--strength", "0.5", "--steps", "4", "--size", "32", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "g.png: converted from mode L to RGB" in r.stdout
    assert "g.png: resized from 40x24 to 32x32 (Lanczos)" in r.stdout
    assert "rgb.png" not in r.stdout                         # nothing to change: nothing said
    assert "truncated to 77 tokens, dropped: 'd word word" in r.stdout  # cut inside a word
    rec = json.loads((out / "record.json").read_text())
    assert [i["timesteps"] for i in rec["images"]] == [[251, 1]] * 2   # the last int(4 * 0.5) of 751..1
    assert "negative prompt 0: truncated to 77 tokens, dropped: '" in r.stdout
    assert len(rec["notes"]) == 6    # 2 for g.png, each truncation once per image


BAD = [
    (["--size", "30"], "--size 30 is not a multiple of 8"),
    (["--backend", "tf", "--size", "96"], "--size 96 is not a multiple of 64 (the tf backend's"),
    (["--steps", "0"], "--steps must be a positive integer"),
    (["--steps", "1001"], "--steps 1001 is more than the schedule's 1000 timesteps"),
    (["--seed", "-1"], "--seed must be a non-negative integer, got -1"),
    (["--tokenizer", "tok"], "applies to single-file checkpoints only"),
    (["--out-under-file"], "cannot be created"),
    (["--no-prompt"], "no prompt: pass --prompt TEXT"),
    (["--mode", "img2img", "--strength", "0"], "--strength must be in (0, 1], got 0.0"),
    (["--mode", "img2img", "--strength", "1.5"], "--strength must be in (0, 1], got 1.5"),
    (["--mode", "img2img", "--input", "missing.png"], "input image"),
    (["--mode", "img2img", "--corrupt-input"], "cannot decode image"),
    (["--out-is-file"], "exists and is not an empty folder"),
    (["--weights", "random:x"], "random weights are 'random:SEED'"),
    (["--weights", "nowhere"], "no such folder or file"),
    (["--partial"], "text_encoder/model.safetensors is missing"),
]


@pytest.mark.parametrize("change,message", BAD, ids=[m[:30] for _, m in BAD])
def test_bad_input_exits_2_with_one_message(tiny, tmp_path, capsys, change, message):
    change = list(change)
    mode = "txt2img"
    if "--mode" in change:
        i = change.index("--mode")
        mode = change.pop(i + 1)
        change.pop(i)
    args = {"--backend": "torch", "--weights": str(tiny), "--prompt": "x", "--size": "32",
            "--steps": "2", "--out": str(tmp_path / "out")}
    if mode == "img2img":
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "in.png")
        args["--input"] = str(tmp_path / "in.png")
    if "--no-prompt" in change:
        change.remove("--no-prompt")
        del args["--prompt"]
    if "--out-under-file" in change:
        change.remove("--out-under-file")
        (tmp_path / "afile").write_text("x")
        args["--out"] = str(tmp_path / "afile" / "out")
    if "--corrupt-input" in change:
        change.remove("--corrupt-input")
        (tmp_path / "in.png").write_bytes(b"not a png")
    if "--out-is-file" in change:
        change.remove("--out-is-file")
        (tmp_path / "out").write_text("x")
    if "--partial" in change:
        change.remove("--partial")
        partial = shutil.copytree(tiny, tmp_path / "partial")
        (partial / "text_encoder" / "model.safetensors").unlink()
        args["--weights"] = str(partial)
    if "--input" in change:
        change[change.index("--input") + 1] = str(tmp_path / "missing.png")
    args.update(dict(zip(change[::2], change[1::2])))
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["sd", mode, *[x for kv in args.items() for x in kv]])
    err = capsys.readouterr().err
    # one message (a missing file's is followed by the expected folder layout), no traceback
    assert code == 2 and message in err and "Traceback" not in err, err
    assert err.startswith("gan-diffusion: error: ") and err.count("error:") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before          # nothing written


def test_a_missing_optional_dependency_names_the_extra(monkeypatch, capsys):
    from gan_diffusion.sd import commands

    def needs_keras_cv(args):
        raise ModuleNotFoundError("No module named 'keras_cv'", name="keras_cv")

    monkeypatch.setattr(commands, "cmd_sd", needs_keras_cv)
    assert main(["sd", "txt2img", "--prompt", "x", "--out", "o"]) == 2
    err = capsys.readouterr().err
    assert err == ("gan-diffusion: error: this command needs keras_cv, which is not installed: "
                   "pip install 'gan_diffusion[sd-tf]'\n")


def test_bad_input_in_a_real_process_has_no_traceback(tiny, tmp_path):
    r = sd("txt2img", "--backend", "torch", "--weights", str(tmp_path / "none"), "--prompt", "x",
           "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("gan-diffusion: error: weights")
    assert not (tmp_path / "o").exists()
