"""Config base: TrainConfig shared by every model, type checks, old configs, DDPM parts."""
from __future__ import annotations

import dataclasses
import json
import typing

import numpy as np
import pytest
from helpers import REPO_ROOT, TESTS_DIR

from gan_diffusion.configs import TrainConfig
from gan_diffusion.errors import ConfigError
from gan_diffusion.models.ddpm import DDPMConfig, DDPMSchedulerConfig
from gan_diffusion.registry import get_spec, list_models, make_config

# to_dict() of every model's default config, written by gan_diffusion 0.1.0 (before TrainConfig)
OLD = json.loads((TESTS_DIR / "fixtures" / "configs_0.1.0.json").read_text())
GAN_BN = ("bn_momentum", "bn_epsilon")  # the GANs' BatchNorm fields now follow TrainConfig's
# fields added since 0.1.0, at defaults that behave as the old configs did (DDIM's eta 0)
NEW_FIELDS = {"ddpm": {"eta": 0.0}}


NEW_SINCE_0_1_0 = {"ldm", "stylegan2", "mlp-gan"}   # registered later: no 0.1.0 config to compare with


def test_every_trainable_model_is_covered():
    assert sorted(OLD) == sorted(set(list_models(trainable=True)) - NEW_SINCE_0_1_0)


@pytest.mark.parametrize("name", sorted(OLD))
def test_old_config_round_trips_with_the_same_defaults(name, tmp_path):
    old = OLD[name]
    now = {**old, **NEW_FIELDS.get(name, {})}
    assert make_config(name).to_dict() == now                      # every default kept
    cfg = get_spec(name).config_cls.from_dict(old)
    assert cfg.to_dict() == now
    assert cfg.to_json() == json.dumps(now, indent=2, sort_keys=True)  # saved: old keys + added
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    assert type(cfg).load(path) == cfg


@pytest.mark.parametrize("name", sorted(OLD))
def test_field_order_is_kept(name):
    new = [k for k in make_config(name).to_dict() if k not in NEW_FIELDS.get(name, {})]
    old = list(OLD[name])
    if name in ("dcgan", "wgan-gp"):  # the one change: BatchNorm after the training fields
        assert new[new.index("compile") + 1:][:2] == list(GAN_BN)
        new, old = ([k for k in keys if k not in GAN_BN] for keys in (new, old))
    assert new == old


def test_renamed_field_still_loads():
    old = {**OLD["dcgan"], "adam_epsilon": 1e-7}
    del old["epsilon"]
    assert make_config("dcgan").from_dict(old).epsilon == 1e-7


@pytest.mark.parametrize("name", sorted(OLD))
def test_training_fields_come_from_train_config(name):
    cls = get_spec(name).config_cls
    assert issubclass(cls, TrainConfig)
    train = [f.name for f in dataclasses.fields(TrainConfig)]
    assert len(train) == 14 and set(train) <= {f.name for f in dataclasses.fields(cls)}
    with pytest.raises(ConfigError, match=f"{name} config field batch_size must be a positive"):
        make_config(name, batch_size=0)
    with pytest.raises(ConfigError, match=f"{name} config field dtype must be one of"):
        make_config(name, dtype="float16")
    with pytest.raises(ConfigError, match="nesterov needs optimizer 'sgd'"):
        make_config(name, nesterov=True)


def test_type_error_message_names_model_field_type_and_value():
    with pytest.raises(ConfigError) as err:
        make_config("dcgan", latent_dim=1.5)
    assert str(err.value) == "dcgan config field latent_dim must be an integer, got 1.5 (float)"
    with pytest.raises(ConfigError, match=r"ddpm config field channel_mults must be a tuple of "
                                          r"integers, got \(1, 2.5\) \(tuple\)"):
        make_config("ddpm", channel_mults=[1, 2.5])
    with pytest.raises(ConfigError, match=r"vae config field drop_last must be true or false, got 1"):
        make_config("vae", drop_last=1)


def _bad_values(kind):
    """Values of the wrong type for an annotation, and one of the right type that differs."""
    return {int: [1.5, True, "2", None], float: [True, "0.1", None], bool: [1, 0, "true", None],
            str: [3, None, b"adam"]}.get(kind, [3, "x", [1.5]])


@pytest.mark.parametrize("name", sorted(OLD))
def test_every_field_rejects_a_wrong_type(name):
    cls = get_spec(name).config_cls
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        for value in _bad_values(hints[f.name]):
            with pytest.raises(ConfigError, match=f"^{name} config field {f.name} must be .* got "):
                cls.from_dict({f.name: value})


@pytest.mark.parametrize("name", sorted(OLD))
def test_right_types_are_accepted(name):
    cfg = make_config(name, image_shape=(32, 32, 3), seed=3, learning_rate=1,
                      epsilon=np.float64(1e-6))
    assert cfg.image_shape == (32, 32, 3) and cfg.seed == 3 and cfg.learning_rate == 1
    with pytest.raises(ConfigError, match="seed must be an integer, got np.int64"):
        make_config(name, seed=np.int64(3))  # it would not save as JSON
    assert make_config(name, image_shape=[28, 28, 1]).image_shape == (28, 28, 1)  # JSON lists


def test_ddpm_scheduler_config_and_two_files(tmp_path):
    cfg = make_config("ddpm", timesteps=200, sample_steps=20, schedule="cosine", base_channels=16,
                      learning_rate=1e-3)
    sched = cfg.scheduler_config()
    assert isinstance(sched, DDPMSchedulerConfig)
    assert (sched.timesteps, sched.sample_steps, sched.schedule) == (200, 20, "cosine")
    assert "timesteps" not in cfg.model_config() and cfg.model_config()["base_channels"] == 16
    cfg.save_parts(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_config.json", "scheduler_config.json"]
    assert DDPMConfig.load_parts(tmp_path) == cfg
    assert DDPMSchedulerConfig.load(tmp_path / "scheduler_config.json") == sched
    assert set(cfg.model_config()) | set(sched.to_dict()) == set(cfg.to_dict())
    with pytest.raises(ConfigError, match="sample_steps 20 exceeds timesteps 10"):
        sched.replace(timesteps=10)


def test_test_extra_covers_every_third_party_test_import():
    """pyproject's `test` extra (with the core dependencies) installs what tests/ imports."""
    import re
    import sys
    import tomllib

    root = REPO_ROOT
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]

    def packages(reqs):
        out = set()
        for req in reqs:
            name = re.match(r"[A-Za-z0-9_.-]+(\[[^]]*\])?", req).group(0)
            if name.startswith("gan_diffusion["):
                out |= packages(r for extra in name[14:-1].split(",") for r in extras[extra])
            else:
                out.add(name.lower())
        return out

    installed = packages(project["dependencies"] + extras["test"])
    module_package = {"PIL": "pillow", "tensorflow": "tensorflow-cpu", "sklearn": "scikit-learn",
                      "keras_cv": "keras-cv", "tensorflow_datasets": "tensorflow-datasets"}
    local = {"gan_diffusion", "benchmarks", "conftest", "helpers"} | set(sys.stdlib_module_names)
    imported = {m for f in (root / "tests").rglob("*.py")
                for m in re.findall(r"^\s*(?:from|import) ([A-Za-z_]\w*)", f.read_text(), re.M)}
    missing = {m for m in imported - local if module_package.get(m, m).lower() not in installed}
    assert not missing
