"""The canonical layout against the real classes, seeded random weights, and the diffusers
checkpoint-folder reader and writer with every kind of bad folder (one named error each,
nothing written)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from gan_diffusion.errors import CheckpointError
from gan_diffusion.sd import architectures, layout
from gan_diffusion.sd.checkpoint import load_weights, read_folder, save_folder

ARCHS = {"v1": architectures.V1, "v2": architectures.V2_BASE, "tiny": architectures.tiny(),
         "tiny-v2": architectures.tiny("v2")}


def reference_shapes(arch):
    """Every state-dict key and shape of diffusers' / transformers' own classes (meta device)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    kw = lambda d: {k: v for k, v in d.items() if not k.startswith("_")}  # noqa: E731
    with torch.device("meta"):
        models = {"unet": UNet2DConditionModel(**kw(arch.unet)), "vae": AutoencoderKL(**kw(arch.vae)),
                  "text_encoder": CLIPTextModel(CLIPTextConfig(**kw(arch.text_encoder)))}
    out = {}
    for name, m in models.items():
        prefix = "text_model." if name == "text_encoder" else ""
        out.update({f"{name}/{prefix}{k}": tuple(v.shape) for k, v in m.state_dict().items()})
    return out


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_layout_is_the_real_classes_state_dict(name):
    assert layout.shapes(ARCHS[name]) == reference_shapes(ARCHS[name])


def test_v1_sizes():
    n = layout.num_parameters(architectures.V1)
    assert n == {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480}
    assert architectures.V1.version == "v1" and architectures.V2_BASE.version == "v2"


def test_random_weights_are_a_function_of_seed_and_key():
    arch = architectures.tiny()
    a, b = layout.random_weights(arch, 5), layout.random_weights(arch, 5)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    vae_only = layout.random_weights(arch, 5, components=("vae",))
    assert all(np.array_equal(vae_only[k], a[k]) for k in vae_only)   # order-free draws
    c = layout.random_weights(arch, 6)
    assert not np.array_equal(a["unet/conv_in.weight"], c["unet/conv_in.weight"])
    w = a["unet/down_blocks.0.resnets.0.conv1.weight"]
    assert w.dtype == np.float32 and abs(w.std() * np.sqrt(np.prod(w.shape[1:])) - 1) < 0.05
    gamma = a["unet/down_blocks.0.resnets.0.norm1.weight"]
    assert abs(gamma.mean() - 1) < 0.1 and 0.05 < gamma.std() < 0.2      # not all ones


def test_unknown_architecture_fields_are_refused():
    with pytest.raises(CheckpointError, match="up_block_types.*not supported"):
        architectures.SDArchitecture.from_dicts(unet={"up_block_types": ["AttnUpBlock2D"]})


# -- the folder -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    arch = architectures.tiny()
    path = save_folder(tmp_path_factory.mktemp("ckpt") / "tiny", arch, layout.random_weights(arch, 1))
    return path


def copy(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / "copy")


def test_round_trip(folder):
    ws = read_folder(folder)
    ref = layout.random_weights(architectures.tiny(), 1)
    assert set(ws.weights) == set(ref) and all(np.array_equal(ws.weights[k], ref[k]) for k in ref)
    assert ws.arch == architectures.tiny() and ws.tokenizer_dir == folder / "tokenizer"
    assert ws.source["kind"] == "diffusers" and ws.id.startswith("sha256:")
    assert read_folder(folder).id == ws.id


@pytest.mark.parametrize("missing", ["model_index.json", "unet/config.json",
                                     "unet/diffusion_pytorch_model.safetensors",
                                     "vae/diffusion_pytorch_model.safetensors",
                                     "text_encoder/model.safetensors", "tokenizer/merges.txt",
                                     "tokenizer/vocab.json", "scheduler/scheduler_config.json"])
def test_a_missing_file_is_named_with_the_layout(folder, tmp_path, missing):
    path = copy(folder, tmp_path)
    (path / missing).unlink()
    with pytest.raises(CheckpointError) as err:
        read_folder(path)
    assert missing.split("/")[-1] in str(err.value) and "expected a diffusers" in str(err.value)


def test_bin_weights_fp16_and_legacy_vae_names_load(folder, tmp_path):
    """.bin (torch pickle, weights_only), half precision and diffusers < 0.14's VAE attention
    names with conv-shaped weights all arrive as the canonical float32 arrays."""
    path = copy(folder, tmp_path)
    ref = read_folder(folder).weights
    vae = {k.split("/", 1)[1]: torch.from_numpy(v.copy()) for k, v in ref.items() if k.startswith("vae/")}
    legacy = {}
    for k, v in vae.items():
        for new, old in (("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn")):
            if f".attentions.0.{new}." in k:
                k = k.replace(f".{new}.", f".{old}.")
                v = v[:, :, None, None] if v.ndim == 2 else v
        legacy[k] = v
    (path / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    torch.save(legacy, path / "vae" / "diffusion_pytorch_model.bin")
    from safetensors.numpy import save_file
    unet = {k.split("/", 1)[1]: v.astype(np.float16) for k, v in ref.items() if k.startswith("unet/")}
    save_file(unet, str(path / "unet" / "diffusion_pytorch_model.safetensors"))
    got = read_folder(path).weights
    for k in ref:
        want = ref[k].astype(np.float16).astype(np.float32) if k.startswith("unet/") else ref[k]
        assert got[k].dtype == np.float32 and np.array_equal(got[k], want), k


def test_bfloat16_safetensors_load_exactly(folder, tmp_path):
    """safetensors.numpy cannot return bfloat16; the reader widens it from the raw bytes, to
    exactly what torch's own .float() gives, and keeps the other dtypes of the same file."""
    from safetensors.torch import save_file

    path = copy(folder, tmp_path)
    ref = read_folder(folder).weights
    text = {k.split("/", 1)[1]: torch.from_numpy(v.copy()).bfloat16()
            for k, v in ref.items() if k.startswith("text_encoder/")}
    name = next(iter(text))
    text[name] = text[name].half()                  # one float16 tensor among the bfloat16 ones
    save_file(text, str(path / "text_encoder" / "model.safetensors"))
    got = read_folder(path).weights
    for k, v in text.items():
        want = v.float().numpy()
        assert got[f"text_encoder/{k}"].dtype == np.float32
        assert np.array_equal(got[f"text_encoder/{k}"], want), k
    assert not np.array_equal(got[f"text_encoder/{name}"], ref[f"text_encoder/{name}"])  # rounded


def test_a_sharded_component_loads_and_every_shard_is_hashed(folder, tmp_path):
    """diffusers' sharded layout (an .index.json and its shards): the arrays are the same, the
    weights id covers each shard's bytes, and a shard name outside the folder is refused."""
    from safetensors.numpy import save_file

    path = copy(folder, tmp_path)
    ref = read_folder(folder)
    unet = path / "unet"
    state = {k.split("/", 1)[1]: v for k, v in ref.weights.items() if k.startswith("unet/")}
    names = sorted(state)
    shards = {"diffusion_pytorch_model-00001-of-00002.safetensors": names[::2],
              "diffusion_pytorch_model-00002-of-00002.safetensors": names[1::2]}
    for shard, keys in shards.items():
        save_file({k: state[k] for k in keys}, str(unet / shard))
    index = unet / "diffusion_pytorch_model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": {k: s for s, ks in shards.items() for k in ks}}))
    (unet / "diffusion_pytorch_model.safetensors").unlink()
    ws = read_folder(path)
    assert all(np.array_equal(ws.weights[k], ref.weights[k]) for k in ref.weights)
    assert {f"unet/{s}" for s in shards} <= set(ws.source["files"])
    changed = {k: state[k] for k in names[1::2]}
    changed[names[1]] = changed[names[1]] + 1
    save_file(changed, str(unet / "diffusion_pytorch_model-00002-of-00002.safetensors"))
    assert read_folder(path).id != ws.id              # same index, other shard bytes
    index.write_text(json.dumps({"weight_map": {names[0]: "../vae/diffusion_pytorch_model.safetensors"}}))
    with pytest.raises(CheckpointError, match="names the shard '../vae/.*which is not a file in"):
        read_folder(path)
    index.write_text(json.dumps({"metadata": {}}))
    with pytest.raises(CheckpointError, match="names no shards"):
        read_folder(path)


def test_a_truncated_safetensors_file_is_named(folder, tmp_path):
    path = copy(folder, tmp_path)
    f = path / "vae" / "diffusion_pytorch_model.safetensors"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="diffusion_pytorch_model.safetensors could not be read as safetensors"):
        read_folder(path)


def test_a_wrong_shape_names_the_layer_and_both_shapes(folder, tmp_path):
    from safetensors.numpy import load_file, save_file

    path = copy(folder, tmp_path)
    f = path / "unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(str(f))
    key = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"
    state[key] = np.zeros((32, 48), np.float32)
    save_file(state, str(f))
    with pytest.raises(CheckpointError, match=rf"layer unet/{key} has shape \(32, 48\), sd-v1 "
                                              r"expects \(32, 32\)"):
        read_folder(path)
    del state[key]
    save_file(state, str(f))
    with pytest.raises(CheckpointError, match="1 missing .e.g. unet/down_blocks"):
        read_folder(path)


def test_a_v2_checkpoint_loaded_as_v1_says_so(tmp_path):
    """A v2 folder (config and shapes) under sd-v1: refused before reading 3 GB of weights,
    naming the version and the fix; v1 configs over v2-shaped weights name the layer."""
    arch = architectures.V2_BASE
    path = tmp_path / "v2"
    for c in ("unet", "vae", "text_encoder", "scheduler", "tokenizer"):
        (path / c).mkdir(parents=True)
    for c, name in (("unet", "config.json"), ("vae", "config.json"), ("text_encoder", "config.json"),
                    ("scheduler", "scheduler_config.json")):
        (path / c / name).write_text(json.dumps(getattr(arch, c)))
    (path / "model_index.json").write_text(json.dumps({k: ["x", "y"] for k in
                                                       ("unet", "vae", "text_encoder", "tokenizer", "scheduler")}))
    (path / "tokenizer" / "vocab.json").write_text("{}")
    (path / "tokenizer" / "merges.txt").write_text("")
    with pytest.raises(CheckpointError, match="Stable Diffusion v2 checkpoint .unet cross_attention_dim "
                                              "1024.*not sd-v1.*build it as sd-v2"):
        read_folder(path, "sd-v1")
    from gan_diffusion.sd.checkpoint import check_weights
    v2 = {k: np.zeros(s, np.float32) for k, s in layout.shapes(arch).items()}
    with pytest.raises(CheckpointError, match=r"layer unet/down_blocks.0.attentions.0.proj_in.weight "
                                              r"has shape \(320, 320\), sd-v1 expects \(320, 320, 1, 1\); "
                                              r"this looks like an sd-v2 checkpoint: build it as sd-v2"):
        check_weights(v2, architectures.V1, "x")


def test_bad_json_and_specs(folder, tmp_path):
    path = copy(folder, tmp_path)
    (path / "vae" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="vae/config.json is not valid JSON"):
        read_folder(path)
    with pytest.raises(CheckpointError, match="random:SEED' with a non-negative integer"):
        load_weights("random:abc")
    with pytest.raises(CheckpointError, match="no such folder or file"):
        load_weights(str(tmp_path / "nothing"))


def test_save_folder_refuses_a_full_folder_and_leaves_nothing_on_failure(folder, tmp_path):
    arch = architectures.tiny()
    weights = layout.random_weights(arch, 1)
    with pytest.raises(CheckpointError, match="not an empty folder"):
        save_folder(folder, arch, weights)
    broken = dict(weights)
    broken.pop("vae/quant_conv.bias")
    with pytest.raises(CheckpointError, match="missing"):
        save_folder(tmp_path / "new", arch, broken)
    assert list(tmp_path.iterdir()) == []
