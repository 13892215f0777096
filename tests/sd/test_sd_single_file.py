"""The CompVis single-file reader (sd/single_file.py), checked against an independent inverse
mapping written here: canonical (diffusers) names -> CompVis names, as diffusers'
scripts/convert_diffusers_to_original_stable_diffusion.py maps them, generalised to any number
of blocks and layers. A CompVis .safetensors / .ckpt is built from seeded random canonical
weights, read back, and every array must be bit-identical (np.array_equal, float32). Then
every kind of bad file: a pickle that would run code, truncation, the other SD version,
missing text-encoder keys, no diffusers."""
from __future__ import annotations

import builtins
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from gan_diffusion.errors import CheckpointError
from gan_diffusion.sd import architectures, layout
from gan_diffusion.sd.checkpoint import check_weights, load_weights
from gan_diffusion.sd.single_file import read_single_file
from gan_diffusion.sd.vocab import write_stand_in_vocabulary

TINY, TINY_V2 = architectures.tiny(), architectures.tiny("v2")
CLIP_TEXT = "cond_stage_model.transformer.text_model."


# -- the inverse mapping: canonical -> CompVis -----------------------------------------------
RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
          "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
UNET_TOP = {"conv_in": "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0",
            "time_embedding.linear_2": "time_embed.2", "conv_norm_out": "out.0", "conv_out": "out.2"}
VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def unet_name(key: str, cfg: dict) -> str:
    """"down_blocks.1.resnets.0.norm1.weight" -> "input_blocks.4.0.in_layers.0.weight" (L = 2)."""
    head, param = key.rsplit(".", 1)
    if head in UNET_TOP:
        return f"{UNET_TOP[head]}.{param}"
    L, p = int(cfg["layers_per_block"]), key.split(".")
    if p[0] == "mid_block":               # resnets.0 -> 0, attentions.0 -> 1, resnets.1 -> 2
        j, rest = int(p[2]), p[3:]
        if p[1] == "resnets":
            return ".".join([f"middle_block.{2 * j}", RESNET[rest[0]], *rest[1:]])
        return ".".join(["middle_block.1", *rest])
    i, kind = int(p[1]), p[2]
    if p[0] == "down_blocks":
        if kind == "downsamplers":        # the block after the last resnet of level i
            return f"input_blocks.{(i + 1) * (L + 1)}.0.op.{param}"
        block = f"input_blocks.{1 + i * (L + 1) + int(p[3])}"
    else:                                  # up_blocks: L + 1 resnets per level
        if kind == "upsamplers":          # after the resnet (.0) and the attention (.1), if any
            sub = 2 if cfg["up_block_types"][i] == "CrossAttnUpBlock2D" else 1
            return f"output_blocks.{i * (L + 1) + L}.{sub}.conv.{param}"
        block = f"output_blocks.{i * (L + 1) + int(p[3])}"
    rest = p[4:]
    if kind == "resnets":
        return ".".join([block, "0", RESNET[rest[0]], *rest[1:]])
    return ".".join([block, "1", *rest])   # attentions: the transformer's own names


def vae_name(key: str, cfg: dict) -> str:
    """"decoder.up_blocks.0.resnets.1.conv1.weight" -> "decoder.up.3.block.1.conv1.weight"."""
    n, p = len(cfg["block_out_channels"]), key.split(".")
    if p[0] in ("quant_conv", "post_quant_conv"):
        return key
    side, rest = p[0], p[1:]
    if rest[0] in ("conv_in", "conv_out"):
        return key
    if rest[0] == "conv_norm_out":
        return f"{side}.norm_out.{rest[1]}"
    if rest[0] == "mid_block":
        if rest[1] == "resnets":
            return ".".join([f"{side}.mid.block_{int(rest[2]) + 1}", *_nin(rest[3:])])
        head = ".".join(rest[3:-1])           # attentions.0.<name>.<param>
        return f"{side}.mid.attn_1.{VAE_ATTN[head]}.{rest[-1]}"
    level = int(rest[1]) if side == "encoder" else n - 1 - int(rest[1])   # decoder counts down
    name = "down" if side == "encoder" else "up"
    if rest[2] in ("downsamplers", "upsamplers"):
        return f"{side}.{name}.{level}.{'downsample' if side == 'encoder' else 'upsample'}.conv.{rest[-1]}"
    return ".".join([f"{side}.{name}.{level}.block.{rest[3]}", *_nin(rest[4:])])


def _nin(rest: list[str]) -> list[str]:
    return ["nin_shortcut" if rest[0] == "conv_shortcut" else rest[0], *rest[1:]]


def compvis_key(key: str, arch, text: str = CLIP_TEXT) -> str:
    """The CompVis name of one canonical key (CLIP text encoder under `text`)."""
    component, name = key.split("/", 1)
    if component == "unet":
        return "model.diffusion_model." + unet_name(name, arch.unet)
    if component == "vae":
        return "first_stage_model." + vae_name(name, arch.vae)
    return text + name.removeprefix("text_model.")


def compvis_array(key: str, value: np.ndarray) -> np.ndarray:
    """CompVis' VAE attention projections are 1x1 convolutions: (c, c) -> (c, c, 1, 1)."""
    if key.startswith("vae/") and ".attentions." in key and value.ndim == 2:
        return value[:, :, None, None]
    return value


def to_compvis(arch, weights: dict[str, np.ndarray], text: str = CLIP_TEXT) -> dict[str, np.ndarray]:
    out = {compvis_key(k, arch, text): compvis_array(k, v) for k, v in weights.items()
           if not (text == "open_clip" and k.startswith("text_encoder/"))}
    assert len(out) == len(weights) or text == "open_clip"     # the mapping is one-to-one
    out["betas"] = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float32) ** 2
    out["alphas_cumprod"] = np.cumprod(1 - out["betas"])       # DDPM buffers: ignored
    if text != "open_clip":
        out[text + "embeddings.position_ids"] = np.arange(77, dtype=np.int64)[None]
    return out


def open_clip(arch, weights: dict[str, np.ndarray], seed: int = 9) -> dict[str, np.ndarray]:
    """SD 2's OpenCLIP text tower (cond_stage_model.model.*): fused q/k/v in_proj, open_clip
    names, one more resblock than diffusers keeps, and a text_projection (both dropped)."""
    pre, t = "cond_stage_model.model.", lambda name: weights["text_encoder/text_model." + name]
    n, d = arch.text_encoder["num_hidden_layers"], arch.text_encoder["hidden_size"]
    out = {pre + "token_embedding.weight": t("embeddings.token_embedding.weight"),
           pre + "positional_embedding": t("embeddings.position_embedding.weight"),
           pre + "ln_final.weight": t("final_layer_norm.weight"),
           pre + "ln_final.bias": t("final_layer_norm.bias")}
    names = {"self_attn.out_proj": "attn.out_proj", "layer_norm1": "ln_1", "layer_norm2": "ln_2",
             "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
    for i in range(n):
        src, dst = f"encoder.layers.{i}.", f"{pre}transformer.resblocks.{i}."
        for param in ("weight", "bias"):
            out[f"{dst}attn.in_proj_{param}"] = np.concatenate(
                [t(f"{src}self_attn.{q}_proj.{param}") for q in "qkv"])
            for a, b in names.items():
                out[f"{dst}{b}.{param}"] = t(f"{src}{a}.{param}")
    rng = np.random.default_rng(seed)
    extra = {k.replace(f"resblocks.{n - 1}.", f"resblocks.{n}."): rng.standard_normal(v.shape, np.float32)
             for k, v in out.items() if f"resblocks.{n - 1}." in k}
    return {**out, **extra, pre + "text_projection": rng.standard_normal((d, d), np.float32),
            pre + "logit_scale": np.float32(4.6)[None]}


def ema_copy(compvis: dict[str, np.ndarray], seed: int = 7) -> dict[str, np.ndarray]:
    """model_ema.* as Lightning's LitEma names them: the U-Net key with its dots removed."""
    rng = np.random.default_rng(seed)
    out = {"model_ema." + "".join(k.split(".")[1:]): rng.standard_normal(v.shape, np.float32)
           for k, v in compvis.items() if k.startswith("model.diffusion_model.")}
    out["model_ema.decay"], out["model_ema.num_updates"] = np.float32(0.9999), np.int32(1000)
    return out


def save_ckpt(path: Path, state: dict[str, np.ndarray], **extra) -> Path:
    """A Lightning-style .ckpt: {"state_dict": {...}, "global_step": 1, ...}."""
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
    torch.save({"state_dict": sd, "global_step": 1, "epoch": 0, **extra}, path)
    return path


def save_st(path: Path, state: dict[str, np.ndarray]) -> Path:
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(path))
    return path


def assert_identical(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    bad = [k for k in want if type(got[k]) is not np.ndarray or got[k].dtype != np.float32
           or not np.array_equal(got[k], want[k])]
    assert not bad, f"{len(bad)} arrays differ, e.g. {bad[:3]}"


# -- the mapping itself -----------------------------------------------------------------------
def test_the_inverse_mapping_gives_the_well_known_v1_names():
    """Spot checks against SD v1's published CompVis names (v1-inference.yaml's layout)."""
    U, V, T = "model.diffusion_model.", "first_stage_model.", CLIP_TEXT
    pairs = [
        ("unet/down_blocks.0.resnets.0.norm1.weight", U + "input_blocks.1.0.in_layers.0.weight"),
        ("unet/down_blocks.0.attentions.1.proj_in.weight", U + "input_blocks.2.1.proj_in.weight"),
        ("unet/down_blocks.2.downsamplers.0.conv.weight", U + "input_blocks.9.0.op.weight"),
        ("unet/down_blocks.3.resnets.1.conv2.bias", U + "input_blocks.11.0.out_layers.3.bias"),
        ("unet/mid_block.resnets.1.time_emb_proj.weight", U + "middle_block.2.emb_layers.1.weight"),
        ("unet/mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight",
         U + "middle_block.1.transformer_blocks.0.attn2.to_k.weight"),
        ("unet/up_blocks.0.upsamplers.0.conv.weight", U + "output_blocks.2.1.conv.weight"),
        ("unet/up_blocks.1.upsamplers.0.conv.bias", U + "output_blocks.5.2.conv.bias"),
        ("unet/up_blocks.3.resnets.2.conv_shortcut.weight", U + "output_blocks.11.0.skip_connection.weight"),
        ("unet/up_blocks.3.attentions.2.norm.bias", U + "output_blocks.11.1.norm.bias"),
        ("unet/time_embedding.linear_2.bias", U + "time_embed.2.bias"),
        ("unet/conv_out.weight", U + "out.2.weight"),
        ("vae/encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
         V + "encoder.down.1.block.0.nin_shortcut.weight"),
        ("vae/encoder.down_blocks.0.downsamplers.0.conv.weight", V + "encoder.down.0.downsample.conv.weight"),
        ("vae/decoder.up_blocks.0.upsamplers.0.conv.bias", V + "decoder.up.3.upsample.conv.bias"),
        ("vae/decoder.up_blocks.3.resnets.2.conv2.weight", V + "decoder.up.0.block.2.conv2.weight"),
        ("vae/decoder.mid_block.resnets.0.norm1.bias", V + "decoder.mid.block_1.norm1.bias"),
        ("vae/encoder.mid_block.attentions.0.to_out.0.weight", V + "encoder.mid.attn_1.proj_out.weight"),
        ("vae/encoder.mid_block.attentions.0.group_norm.weight", V + "encoder.mid.attn_1.norm.weight"),
        ("vae/encoder.conv_norm_out.bias", V + "encoder.norm_out.bias"),
        ("vae/post_quant_conv.weight", V + "post_quant_conv.weight"),
        ("text_encoder/text_model.encoder.layers.11.mlp.fc1.weight", T + "encoder.layers.11.mlp.fc1.weight")]
    want = dict(pairs)
    assert {k: compvis_key(k, architectures.V1) for k in want} == want
    names = [compvis_key(k, architectures.V1) for k in layout.shapes(architectures.V1)]
    assert len(set(names)) == len(names) == 1130
    assert sum(n.startswith("model.diffusion_model.input_blocks.") for n in names) > 0


# -- round trips ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    return layout.random_weights(TINY, 0)


@pytest.mark.parametrize("fmt,text", [("safetensors", CLIP_TEXT), ("ckpt", CLIP_TEXT),
                                      ("safetensors", "cond_stage_model.transformer.")])
def test_tiny_round_trip_is_bit_identical(tiny, tmp_path, fmt, text):
    """.safetensors and a Lightning .ckpt; the text encoder with and without "text_model."."""
    state = to_compvis(TINY, tiny, text)
    path = (save_st if fmt == "safetensors" else save_ckpt)(tmp_path / f"tiny.{fmt}", state)
    ws = read_single_file(path, "sd-v1", arch=TINY)
    assert_identical(ws.weights, tiny)
    assert ws.tokenizer_dir is None and ws.arch is TINY
    assert ws.source["kind"] == "single-file" and ws.source["version"] == "custom (32)"
    assert ws.source["ema"] == {"in_file": False, "used": False}
    assert list(ws.source["files"]) == [path.name] and ws.id.startswith("sha256:")
    json.dumps(ws.source)


def test_tiny_v2_open_clip_round_trip(tmp_path):
    """SD 2's layout: linear proj_in/out and the OpenCLIP text tower (fused q/k/v, one layer
    more than diffusers keeps, a text_projection), read with diffusers' OpenCLIP converter."""
    weights = layout.random_weights(TINY_V2, 2)
    state = {**to_compvis(TINY_V2, weights, "open_clip"), **open_clip(TINY_V2, weights)}
    ws = read_single_file(save_st(tmp_path / "v2.safetensors", state), "sd-v2", arch=TINY_V2)
    assert_identical(ws.weights, weights)


def test_ema_non_ema_by_default_ema_on_request(tiny, tmp_path):
    state = to_compvis(TINY, tiny)
    ema = ema_copy(state)
    path = save_ckpt(tmp_path / "full-ema.ckpt", {**state, **ema})
    ws = read_single_file(path, arch=TINY)
    assert_identical(ws.weights, tiny)                 # diffusers' default: non-EMA
    assert ws.source["ema"] == {"in_file": True, "used": False}
    ws = read_single_file(path, arch=TINY, extract_ema=True)
    flat = lambda key: "model_ema." + "".join(compvis_key(key, TINY).split(".")[1:])  # noqa: E731
    assert_identical(ws.weights, {k: ema[flat(k)] if k.startswith("unet/") else v
                                  for k, v in tiny.items()})
    assert ws.source["ema"] == {"in_file": True, "used": True}


def test_half_precision_is_widened_exactly(tiny, tmp_path):
    state = {k: v.astype(np.float16) if v.dtype == np.float32 else v
             for k, v in to_compvis(TINY, tiny).items()}
    ws = read_single_file(save_st(tmp_path / "fp16.safetensors", state), arch=TINY)
    assert_identical(ws.weights, {k: v.astype(np.float16).astype(np.float32) for k, v in tiny.items()})


def test_tokenizer_dir_is_checked_and_recorded(tiny, tmp_path):
    path = save_st(tmp_path / "tiny.safetensors", to_compvis(TINY, tiny))
    tok = tmp_path / "tokenizer"
    write_stand_in_vocabulary(tok)
    ws = read_single_file(path, arch=TINY, tokenizer_dir=tok)
    assert ws.tokenizer_dir == tok
    assert set(ws.source["files"]) == {path.name, "tokenizer/vocab.json", "tokenizer/merges.txt"}
    assert ws.id != read_single_file(path, arch=TINY).id
    (tok / "merges.txt").unlink()
    with pytest.raises(CheckpointError, match="merges.txt is missing"):
        read_single_file(path, arch=TINY, tokenizer_dir=tok)


def test_load_weights_wants_a_tokenizer_for_a_single_file_only(tiny, tmp_path):
    """A single file holds no tokenizer: without one, real prompts would be spelt byte by byte
    by the stand-in vocabulary, so load_weights refuses (before reading the file); a folder or
    random weights bring their own, and a tokenizer given to them is refused too."""
    path = save_st(tmp_path / "tiny.safetensors", to_compvis(TINY, tiny))
    with pytest.raises(CheckpointError, match="is a single file and holds no tokenizer: pass --tokenizer"):
        load_weights(path)
    write_stand_in_vocabulary(tmp_path / "tok")
    with pytest.raises(CheckpointError, match="applies to single-file checkpoints only"):
        load_weights("random:0", tokenizer=tmp_path / "tok")


# -- bad files --------------------------------------------------------------------------------
class Payload:
    """Unpickling it (with plain pickle) creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


class Custom:
    """A plain custom class (no __reduce__): not a tensor or a container either."""

    def __init__(self):
        self.value = 1


@pytest.mark.parametrize("payload", ["reduce", "class", "in_state_dict"])
def test_a_pickle_of_other_objects_is_refused_and_never_run(tiny, tmp_path, payload):
    marker = tmp_path / "MARKER"
    state = to_compvis(TINY, tiny)
    extra = {"reduce": {"callbacks": Payload(marker)}, "class": {"hyper_parameters": Custom()},
             "in_state_dict": {}}[payload]
    path = save_ckpt(tmp_path / "evil.ckpt", state, **extra)
    if payload == "in_state_dict":
        sd = torch.load(path, weights_only=True)
        sd["state_dict"]["model.diffusion_model.x"] = Payload(marker)
        torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"GLOBAL .*(Custom|exec).*weights_only=True.*"
                       r"nothing else is ever unpickled"):
        read_single_file(path, arch=TINY)
    assert not marker.exists()
    if payload != "class":      # the payload is live: a plain unpickler would have run it
        torch.load(path, weights_only=False)
        assert marker.exists()


@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
def test_a_truncated_file_is_a_checkpoint_error(tiny, tmp_path, fmt):
    path = (save_st if fmt == "safetensors" else save_ckpt)(tmp_path / f"t.{fmt}", to_compvis(TINY, tiny))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="could not be read"):
        read_single_file(path, arch=TINY)


def test_the_other_version_is_refused_naming_both(tmp_path):
    """The widths of SD's cross-attention keys (320 x 1024: v2's OpenCLIP; 768: v1's CLIP)."""
    key = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    v2 = save_st(tmp_path / "v2.safetensors", {
        key: np.zeros((320, 1024), np.float32),
        "cond_stage_model.model.token_embedding.weight": np.zeros((8, 1024), np.float32)})
    with pytest.raises(CheckpointError, match=r"v2 single file \(cross-attention key width 1024: "
                       r"OpenCLIP.*not sd-v1 \(width 768\); build it as sd-v2"):
        read_single_file(v2, "sd-v1")
    tok = write_stand_in_vocabulary(tmp_path / "tokenizer")
    with pytest.raises(CheckpointError, match=r"v2 single file.*not sd-v1"):
        load_weights(v2, "sd-v1", tokenizer=tok)       # the checkpoint.py entry point
    v1 = save_st(tmp_path / "v1.safetensors", {key: np.zeros((320, 768), np.float32)})
    with pytest.raises(CheckpointError,
                       match=r"v1 single file.*768.*not sd-v2 \(width 1024\); build it as sd-v1"):
        read_single_file(v1, "sd-v2")


def test_a_whole_tiny_v2_file_under_the_v1_architecture_is_refused(tmp_path):
    weights = layout.random_weights(TINY_V2, 2)
    state = {**to_compvis(TINY_V2, weights, "open_clip"), **open_clip(TINY_V2, weights)}
    with pytest.raises(CheckpointError, match=r"width 48.*not sd-v1 \(width 32\)"):
        read_single_file(save_st(tmp_path / "v2.safetensors", state), "sd-v1", arch=TINY)


def test_missing_text_encoder_keys(tiny, tmp_path):
    state = to_compvis(TINY, tiny)
    no_text = {k: v for k, v in state.items() if not k.startswith("cond_stage_model.")}
    with pytest.raises(CheckpointError, match="no text encoder.*cond_stage_model.transformer"):
        read_single_file(save_st(tmp_path / "a.safetensors", no_text), arch=TINY)
    del state[CLIP_TEXT + "final_layer_norm.bias"]
    with pytest.raises(CheckpointError, match=re.escape(
            "1 missing (e.g. text_encoder/text_model.final_layer_norm.bias)")):
        read_single_file(save_st(tmp_path / "b.safetensors", state), arch=TINY)


def test_a_partial_unet_that_trips_the_converter_is_a_checkpoint_error(tiny, tmp_path):
    state = to_compvis(TINY, tiny)
    del state["model.diffusion_model.output_blocks.1.1.conv.bias"]   # up_blocks.0's upsampler
    with pytest.raises(CheckpointError, match=r"could not convert the file's unet \(KeyError: "
                       r"'output_blocks.1.1.conv.bias'\)"):
        read_single_file(save_st(tmp_path / "p.safetensors", state), arch=TINY)


def test_a_wrong_shape_names_the_layer(tiny, tmp_path):
    state = to_compvis(TINY, tiny)
    state["first_stage_model.decoder.up.0.block.0.conv2.weight"] = np.zeros((16, 16, 1, 1), np.float32)
    with pytest.raises(CheckpointError, match=r"vae/decoder.up_blocks.1.resnets.0.conv2.weight has "
                       r"shape \(16, 16, 1, 1\), sd-v1 expects \(16, 16, 3, 3\)"):
        read_single_file(save_st(tmp_path / "s.safetensors", state), arch=TINY)


def test_files_that_are_not_sd_single_files(tmp_path):
    other = save_st(tmp_path / "other.safetensors", {"encoder.weight": np.zeros(3, np.float32)})
    with pytest.raises(CheckpointError, match="has no U-Net.*not a CompVis Stable Diffusion file"):
        read_single_file(other)
    xl = save_st(tmp_path / "xl.safetensors", {
        "conditioner.embedders.0.transformer.text_model.final_layer_norm.bias": np.zeros(3, np.float32)})
    with pytest.raises(CheckpointError, match="SDXL"):
        read_single_file(xl)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_single_file(tmp_path / "missing.ckpt")
    (tmp_path / "w.npz").write_bytes(b"PK")
    with pytest.raises(CheckpointError, match=r"\.safetensors or a \.ckpt"):
        read_single_file(tmp_path / "w.npz")
    with pytest.raises(CheckpointError, match="unknown Stable Diffusion model 'sd-v3'"):
        read_single_file(other, "sd-v3")


def test_without_diffusers_the_error_says_what_to_install(tiny, tmp_path, monkeypatch):
    path = save_st(tmp_path / "tiny.safetensors", to_compvis(TINY, tiny))
    real = builtins.__import__

    def no_diffusers(name, *args, **kwargs):
        if name == "diffusers" or name.startswith("diffusers."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_diffusers)
    with pytest.raises(CheckpointError, match=re.escape("pip install 'gan_diffusion[diffusers]'")):
        read_single_file(path, arch=TINY)


# -- full size --------------------------------------------------------------------------------
def compvis_shape(key: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape + (1, 1) if key.startswith("vae/") and ".attentions." in key and len(shape) == 2 else shape


def test_full_size_v1_mapping_is_one_to_one():
    """SD v1 at full size (1130 keys, 1.07 G parameters): every CompVis key of the inverse
    mapping lands on its canonical key through diffusers' converters and check_weights. Each
    array is a zero-copy constant view (np.broadcast_to) holding its key's index, so the test
    holds no weights and still sees which array went where."""
    from gan_diffusion.sd.single_file import convert

    arch = architectures.V1
    canonical = layout.shapes(arch)
    index = {key: i for i, key in enumerate(canonical)}
    state = {compvis_key(k, arch): np.broadcast_to(np.float32(index[k]), compvis_shape(k, s))
             for k, s in canonical.items()}
    assert len(state) == len(canonical)
    weights, ema = convert(state, arch)
    check_weights(weights, arch, "full size")
    wrong = [k for k, v in weights.items() if v.shape != canonical[k] or v.size == 0
             or float(v.flat[0]) != index[k] or float(v.flat[-1]) != index[k]]
    assert not wrong and ema == {"in_file": False, "used": False}, wrong[:3]
