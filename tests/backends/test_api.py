"""Public API: lazy imports, backend names, registry and typed configs."""
import json
import subprocess
import sys

import pytest

import gan_diffusion
from gan_diffusion.backends import canonical_backend_name
from gan_diffusion.errors import BackendNotAvailableError, ConfigError, UnknownNameError
from gan_diffusion.models.dcgan import DCGANConfig
from gan_diffusion.protocols import Generator, Sampler, Trainer
from gan_diffusion.registry import make_config


def test_import_loads_no_framework():
    code = ("import sys, gan_diffusion, gan_diffusion.cli, gan_diffusion.data, gan_diffusion.families.base;"
            "gan_diffusion.list_models();"
            "bad = [m for m in ('tensorflow', 'torch', 'keras') if m in sys.modules];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("alias,name", [("tf", "tf"), ("tensorflow", "tf"), ("TF", "tf"),
                                        ("torch", "torch"), ("pytorch", "torch")])
def test_backend_aliases(alias, name):
    assert canonical_backend_name(alias) == name


def test_unknown_backend_lists_valid_names():
    with pytest.raises(UnknownNameError, match="valid backends: .*pytorch.*tensorflow"):
        gan_diffusion.get_backend("jax")


def test_backend_from_env(monkeypatch):
    monkeypatch.setenv(gan_diffusion.BACKEND_ENV, "pytorch")
    assert gan_diffusion.get_backend().name == "torch"
    monkeypatch.delenv(gan_diffusion.BACKEND_ENV)
    with pytest.raises(ConfigError, match="GAN_DIFFUSION_BACKEND"):
        gan_diffusion.get_backend()


def test_missing_framework_names_the_extra(monkeypatch):
    import importlib.util

    from gan_diffusion import backends as mod

    monkeypatch.setattr(mod, "_LOADED", {})
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "tensorflow" else real(n, *a))
    with pytest.raises(BackendNotAvailableError, match=r"pip install 'gan_diffusion\[tf\]'"):
        mod.get_backend("tf")
    assert "tf" not in mod.available_backends()


def test_unknown_model_lists_registry(backends):
    with pytest.raises(UnknownNameError, match="valid models: dcgan"):
        backends["torch"].build("stylegan", image_shape=(28, 28, 1))


def test_config_json_round_trip(tmp_path):
    cfg = make_config("dcgan", image_shape=(32, 32, 3), latent_dim=64, seed=7, learning_rate=1e-4)
    path = tmp_path / "config.json"
    cfg.save(path)
    assert json.loads(path.read_text())["model"] == "dcgan"
    again = DCGANConfig.load(path)
    assert again == cfg and again.image_shape == (32, 32, 3)


@pytest.mark.parametrize("bad,match", [
    (dict(image_shape=(30, 30, 1)), "not supported"),
    (dict(image_shape=(28, 28)), "height, width, channels"),
    (dict(latent_dim=0), "positive"),
    (dict(beta1=1.5), r"\[0, 1\)"),
    (dict(lattent_dim=3), "unknown dcgan config field"),
])
def test_bad_config_is_rejected(bad, match):
    with pytest.raises(ConfigError, match=match):
        make_config("dcgan", **bad)


@pytest.mark.parametrize("name", ["tf", "torch"])
def test_model_implements_protocols(backends, name):
    model = backends[name].build("dcgan", image_shape=(28, 28, 1), g_features=8, d_features=8)
    assert isinstance(model, Generator) and isinstance(model, Trainer) and isinstance(model, Sampler)
    images = model.sample(5, seed=3)
    assert images.dtype.name == "uint8" and images.shape == (5, 28, 28, 1)
    assert (images == model.sample(5, seed=3)).all()
    assert not (images == model.sample(5, seed=4)).all()
    with pytest.raises(ConfigError, match="unconditional"):
        model.sample(2, labels=[1, 2])


@pytest.mark.parametrize("name", ["tf", "torch"])
def test_set_weights_rejects_wrong_layout(backends, name):
    model = backends[name].build("dcgan", image_shape=(28, 28, 1), g_features=8, d_features=8)
    w = model.get_weights()
    w["generator/convt0/kernel"] = w["generator/convt0/kernel"].transpose(0, 1, 3, 2)
    with pytest.raises(ValueError, match="generator/convt0/kernel has shape"):
        model.set_weights(w)
    del w["generator/convt0/kernel"]
    with pytest.raises(ValueError, match="missing"):
        model.set_weights(w)
