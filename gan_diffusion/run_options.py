"""What defines a training run, and where it comes from: the command line, or a record.

`RunOptions` is what `gan-diffusion train` parses and `gan_diffusion.runs.train_run` takes.
`resolve` turns given options into the options to run with: a new run fills in DEFAULTS; a
resume or a rerun takes every option from the record and refuses any given option that
differs from it (a resume may change only the total `epochs`). docs/runs.md has the rules.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from gan_diffusion.errors import ConfigError, GanDiffusionError


@dataclasses.dataclass
class RunOptions:
    """One training run. The fields up to `tensorboard` define the run and are recorded in
    config.json["options"]; None means "not given" (DEFAULTS, the model config's defaults or,
    on resume and rerun, the record). The fields after it say how to run it."""

    out: str
    backend: str | None = None         # tf | torch (default: $GAN_DIFFUSION_BACKEND)
    model: str | None = None           # a registered model (default dcgan)
    dataset: str | None = None         # digits, mnist, cifar10, celeba, eurosat, folder:PATH
    split: str | None = None
    image_size: int | None = None
    limit: int | None = None           # the first N images
    epochs: int | None = None          # the run's total
    batch_size: int | None = None
    seed: int | None = None
    threads: int | None = None         # intra-op threads (default: all cores)
    compile: bool | None = None        # torch.compile
    conditional: bool | None = None    # condition on the dataset's labels
    optimizer: str | None = None
    learning_rate: float | None = None
    color_mode: str | None = None      # "L" or "RGB": convert every image
    set: list[str] | None = None       # ["field=json value", ...] model config fields
    init: str | None = None            # initial-state checkpoint (read, or written if absent)
    native_rng: bool | None = None     # framework RNG for init and training noise
    stage: str | None = None           # ldm: autoencoder | diffusion | both (default both)
    autoencoder: str | None = None     # ldm --stage diffusion: the autoencoder's run folder
    budget_minutes: float | None = None  # stop at the first epoch end past this much training
                                       # time (epochs: the cap); docs/runs.md "Time budgets"
    tensorboard: bool | None = None
    # -- not part of the record ------------------------------------------------------------
    data_dir: str | None = None
    download: bool = False
    progress: bool | None = None
    resume: bool = False
    rerun: str | None = None           # a config.json to repeat exactly
    allow_version_change: bool = False  # resume/rerun under other versions (recorded)
    stage_of: dict | None = None       # set by gan_diffusion.stages: the --stage both run an
                                       # autoencoder run belongs to (recorded as "stage_of")


_FIELDS = [f.name for f in dataclasses.fields(RunOptions)]
RECORDED = tuple(_FIELDS[1:_FIELDS.index("tensorboard") + 1])  # backend ... tensorboard
DEFAULTS = {"model": "dcgan", "dataset": "digits", "split": "train", "epochs": 5,
            "compile": False, "conditional": False, "native_rng": False, "tensorboard": False,
            "set": []}
CONFIG_FLAGS = ("batch_size", "seed", "optimizer", "learning_rate")  # also model config fields
NOT_SETTABLE = {"image_shape": "image_shape comes from the data: use --image-size N (and "
                "--color-mode L|RGB) instead of --set image_shape",
                "model": "--set model is not a config field: use --model",
                "stage": "--set stage: use --stage autoencoder|diffusion|both (ldm)",
                "autoencoder_sha256": "--set autoencoder_sha256: it is recorded from the autoencoder "
                                      "that --autoencoder RUN (ldm) names"}
STAGES = ("autoencoder", "diffusion", "both")   # ldm's --stage (gan_diffusion/stages.py)


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """["latent_dim=64", "compile=true"] -> {"latent_dim": 64, "compile": True}."""
    out = {}
    for item in items or []:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects NAME=VALUE, got {item!r}")
        if key in NOT_SETTABLE:
            raise ConfigError(NOT_SETTABLE[key])
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def validate(opts: RunOptions) -> RunOptions:
    """Check what can be checked before anything is imported, read or written."""
    for name in ("epochs", "limit", "batch_size", "threads", "image_size"):
        value = getattr(opts, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
    if opts.resume and opts.rerun:
        raise ConfigError("--resume continues the run in --out; --rerun repeats a recorded run in a "
                          "new --out: pass one of them")
    if opts.color_mode not in (None, "L", "RGB"):
        raise ConfigError(f"--color-mode must be L (grey) or RGB, got {opts.color_mode!r}")
    if opts.stage not in (None, *STAGES):
        raise ConfigError(f"--stage must be one of {', '.join(STAGES)}, got {opts.stage!r}")
    check_budget(opts.budget_minutes, [opts.model])
    if opts.model not in (None, "ldm") and (opts.stage or opts.autoencoder):
        raise ConfigError(f"--stage and --autoencoder apply to --model ldm only, not {opts.model}")
    parse_set(opts.set)
    if opts.model is not None:
        from gan_diffusion.registry import get_spec, list_models

        if not get_spec(opts.model).trainable:
            raise ConfigError(f"model {opts.model!r} is not trainable; trainable models: "
                              f"{', '.join(list_models(trainable=True))} (sample it with "
                              "`gan-diffusion sd`)")
    out = Path(opts.out)
    try:
        is_file = out.exists() and not out.is_dir()
    except OSError as exc:   # e.g. a parent folder that may not be read, a name too long
        raise GanDiffusionError(f"cannot use --out {out} ({exc.strerror}); choose a folder path "
                                "you may write") from None
    if is_file:
        raise GanDiffusionError(f"--out {out} is an existing file, not a folder; choose a folder path")
    return opts


def check_budget(value: Any, models: list[str | None], ae_epochs: str = "--set ae_epochs=N") -> None:
    """--budget-minutes (train, and compare for all its models): None, or a positive number
    for one-stage models only. `ae_epochs`: how the command sets ldm's autoencoder epochs."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"--budget-minutes must be a positive number of minutes, got {value!r}")
    if "ldm" in models:
        raise ConfigError("--budget-minutes applies to one-stage models; ldm trains two stages: "
                          f"give its length with --epochs and {ae_epochs}")


def read_record(path: str | os.PathLike, what: str) -> dict[str, Any]:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise GanDiffusionError(f"{what}: {path} does not exist; pass the config.json of a run "
                                "folder written by `gan-diffusion train`") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise GanDiffusionError(f"{what}: {path} is not valid JSON ({exc}); it is damaged") from None
    if not isinstance(record, dict) or not isinstance(record.get("options"), dict):
        raise GanDiffusionError(f"{what}: {path} is not a run record (no \"options\" object)")
    return record


def recorded_options(record: dict[str, Any], out: str) -> RunOptions:
    opts = {k: record["options"].get(k) for k in RECORDED}
    opts["model"] = opts["model"] or record.get("model")
    opts["backend"] = record.get("backend") or opts["backend"]  # the backend that ran it
    return RunOptions(out=out, **opts)


def _recorded_value(name: str, base: RunOptions, record: dict[str, Any]) -> Any:
    value = getattr(base, name)
    if value is None and name in CONFIG_FLAGS:   # e.g. seed: not given, the config's default
        return record.get("model_config", {}).get(name)
    return DEFAULTS.get(name) if value is None else value


def conflicts(given: RunOptions, base: RunOptions, record: dict[str, Any], may_differ: tuple[str, ...]
              ) -> list[str]:
    """The given options that differ from the recorded ones, as "--name given (recorded: x)"."""
    from gan_diffusion.backends import canonical_backend_name

    config = record.get("model_config", {})
    found = []
    for name in RECORDED:
        mine = getattr(given, name)
        if mine is None or name in may_differ:
            continue
        theirs = _recorded_value(name, base, record)
        if name == "set":  # each given field must hold the recorded config's value
            found += [f"--set {k}={json.dumps(v)} (recorded: {json.dumps(config.get(k))})"
                      for k, v in parse_set(mine).items()
                      if json.dumps(config.get(k), sort_keys=True) != json.dumps(v, sort_keys=True)]
            continue
        if name == "backend":
            mine = canonical_backend_name(mine)
        if mine != theirs and not (name == "dataset" and str(mine).lower() == str(theirs).lower()):
            flag = f"--{name.replace('_', '-')}"
            found.append(f"{flag} {_shown(mine)} (recorded: {_shown(theirs)})")
    return found


def _shown(value: Any) -> str:
    """An option's value in a message: on/off for flags, "not given" for None."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return "not given (the default)" if value is None else str(value)


def resolve(given: RunOptions) -> tuple[RunOptions, dict[str, Any] | None]:
    """The options to run with, and the record they come from (resume, rerun) or None."""
    how = {k: getattr(given, k) for k in ("data_dir", "download", "progress", "resume", "rerun",
                                         "allow_version_change", "stage_of")}
    if given.resume or given.rerun:
        path = Path(given.out) / "config.json" if given.resume else Path(given.rerun)
        what = "--resume" if given.resume else "--rerun"
        record = read_record(path, what)
        base = recorded_options(record, given.out)
        differ = conflicts(given, base, record, ("epochs", "budget_minutes") if given.resume else ())
        if given.rerun and base.budget_minutes is not None:
            raise ConfigError(f"--rerun: {path} trained to a time budget (--budget-minutes "
                              f"{base.budget_minutes}), which stops wherever the clock says, so a "
                              "rerun cannot repeat it exactly; start a new run with its options "
                              "and --epochs N, N the epochs its history.json holds")
        if differ:
            fix = ("only --epochs (the new total) and --budget-minutes may change on resume"
                   if given.resume else
                   "drop them to repeat the recorded run, or start a new run without --rerun")
            raise ConfigError(f"{what} takes every option from the record {path}, but the command "
                              f"line differs: {'; '.join(differ)}. {fix[0].upper()}{fix[1:]}")
        recorded_dir = record.get("data", {}).get("data_dir")
        if how["data_dir"] is None and recorded_dir and Path(recorded_dir).is_dir():
            how["data_dir"] = recorded_dir   # not given: where the recorded run found its data
        epochs = given.epochs if given.resume and given.epochs is not None else base.epochs
        budget = (given.budget_minutes if given.resume and given.budget_minutes is not None
                  else base.budget_minutes)
        resolved = dataclasses.replace(base, epochs=epochs or DEFAULTS["epochs"],
                                       budget_minutes=budget, **how)
        check_budget(resolved.budget_minutes, [resolved.model])
        return resolved, record
    filled = {k: DEFAULTS[k] for k in DEFAULTS if getattr(given, k) is None}
    if given.model == "ldm" and given.stage is None:
        filled["stage"] = "both"
    return dataclasses.replace(given, **filled), None
