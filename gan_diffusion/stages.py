"""Two-stage training runs of latent diffusion (`--model ldm --stage ...`), on top of
gan_diffusion/runs.py; docs/ldm.md, "Stages".

    --stage autoencoder --out A                   an ordinary run folder: the KL autoencoder
    --stage diffusion --autoencoder A --out D      an ordinary run folder: the latent U-Net on
                                                  the frozen autoencoder of the finished run A
    --stage both --out R                          R/autoencoder is the autoencoder's run
                                                  (ae_epochs epochs), then R itself is the
                                                  diffusion run on it (--epochs epochs)

A diffusion run's model config records the autoencoder: autoencoder_sha256 (the sha256 of its
canonical weights) and latent_scale (1 / std of the training latents, computed when the run
starts); its checkpoints hold the autoencoder's weights too, so they sample on their own. It
takes the autoencoder's fields (image shape, widths, ...) from A's config and refuses an
autoencoder that is missing, unfinished, not an ldm autoencoder or built for other images. A
resume or rerun refuses an autoencoder whose weights differ from the recorded ones.

`--stage both` keeps the both-run's options in R/autoencoder/config.json ("stage_of": the run
it belongs to and the diffusion stage's --epochs), so `--resume --out R` continues whichever
stage was interrupted: the autoencoder run (resumed, or started again if it committed no
epoch), then the diffusion run (resumed, or started).
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

from gan_diffusion.errors import ConfigError, GanDiffusionError
from gan_diffusion.run_options import (DEFAULTS, RECORDED, RunOptions, conflicts, parse_set, read_record,
                                       recorded_options, resolve)

AUTOENCODER_DIR = "autoencoder"   # R/autoencoder: the autoencoder run of `--stage both --out R`
CHECKPOINT = Path("checkpoints") / "latest.npz"
_HOW = ("data_dir", "download", "progress", "allow_version_change")   # not part of a record


# -- which runs are staged ------------------------------------------------------------------
def ldm_stage(opts: RunOptions) -> str | None:
    """The --stage of an ldm run (given, or from the record of a resume or rerun); None for
    any other run (and for records this cannot read: the ordinary path names the problem)."""
    out = Path(opts.out)
    try:
        if opts.resume:
            if (out / "config.json").is_file() and (out / CHECKPOINT).is_file():
                record = read_record(out / "config.json", "--resume")
            elif (out / AUTOENCODER_DIR / "config.json").is_file():
                record = read_record(out / AUTOENCODER_DIR / "config.json", "--resume")
                return "both" if record.get("stage_of") else None
            else:
                return None
        elif opts.rerun:
            record = read_record(opts.rerun, "--rerun")
        else:
            return (opts.stage or "both") if opts.model == "ldm" else None
    except (GanDiffusionError, OSError):
        return None
    if (record.get("model") or record["options"].get("model")) != "ldm":
        return None
    return record["options"].get("stage") or "both"


def train_ldm(given: RunOptions, train_single: Any) -> Any:
    """Train an ldm run: one stage through `train_single` (gan_diffusion.runs.train_single,
    passed in: runs imports this module), or both stages."""
    stage = ldm_stage(given)
    if not (given.resume or given.rerun):
        check_stage_options(given, stage)
    if stage != "both":
        return train_single(given)
    out = Path(given.out)
    existed = out.exists()
    from gan_diffusion.utils.runlock import run_lock

    with run_lock(out):   # re-entrant: each stage's train_single takes it (or its own) again
        try:
            if given.resume:
                return _resume_both(given, train_single)
            if given.rerun:
                return _rerun_both(given, train_single)
            return _new_both(given, train_single)
        except BaseException:
            if not existed and not (out / "config.json").exists() and not (out / AUTOENCODER_DIR).exists():
                shutil.rmtree(out, ignore_errors=True)   # nothing half-written
            raise


def check_stage_options(opts: RunOptions, stage: str) -> None:
    """What a new ldm run's --stage needs: --autoencoder exactly for --stage diffusion."""
    if stage == "diffusion" and not opts.autoencoder:
        raise ConfigError("--stage diffusion needs --autoencoder RUN: the folder of a finished "
                          "--stage autoencoder run (or train both stages with --stage both)")
    if stage != "diffusion" and opts.autoencoder:
        raise ConfigError(f"--autoencoder applies to --stage diffusion only (--stage {stage}"
                          + (": the autoencoder is trained in OUT/autoencoder)" if stage == "both" else ")"))


# -- --stage both ----------------------------------------------------------------------------
def _ae_epochs(opts: RunOptions) -> int:
    from gan_diffusion.models.ldm import LDMConfig

    value = parse_set(opts.set).get("ae_epochs", LDMConfig.ae_epochs)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"ldm config field ae_epochs must be a positive integer, got {value!r}")
    return value


def _new_both(given: RunOptions, train_single: Any) -> Any:
    out = Path(given.out)
    for path in (out / CHECKPOINT, out / AUTOENCODER_DIR / CHECKPOINT):
        if path.exists():
            raise GanDiffusionError(f"{out} already holds a run ({path} exists); pass --resume to "
                                    "continue it or choose another --out")
    opts = resolve(given)[0]                                  # the defaults filled in
    stage_of = {"run": str(out), "epochs": opts.epochs}
    train_single(dataclasses.replace(opts, out=str(out / AUTOENCODER_DIR), stage="autoencoder",
                                     epochs=_ae_epochs(opts), stage_of=stage_of,
                                     init=autoencoder_init(opts.init)))
    return train_single(dataclasses.replace(given, stage="both"))


def _resume_both(given: RunOptions, train_single: Any) -> Any:
    out, ae_out = Path(given.out), Path(given.out) / AUTOENCODER_DIR
    if (out / CHECKPOINT).is_file():                          # the diffusion stage has begun
        return train_single(given)
    sub = read_record(ae_out / "config.json", "--resume")
    stage_of = sub["stage_of"]
    parent = dataclasses.replace(recorded_options(sub, str(out)), stage="both", epochs=stage_of["epochs"])
    record = {**sub, "options": {k: getattr(parent, k) for k in RECORDED}}
    differ = conflicts(given, parent, record, ("epochs",))
    if differ:
        raise ConfigError(f"--resume takes every option from the record {ae_out / 'config.json'}, but "
                          f"the command line differs: {'; '.join(differ)}. Only --epochs (the new "
                          "total of the diffusion stage) may change on resume")
    how = {k: getattr(given, k) for k in _HOW}
    if how["data_dir"] is None and Path(sub.get("data", {}).get("data_dir") or "").is_dir():
        how["data_dir"] = sub["data"]["data_dir"]             # where the recorded run found its data
    if (ae_out / CHECKPOINT).is_file():
        train_single(RunOptions(out=str(ae_out), resume=True, **how))
    else:                                                     # it committed no epoch: start it again
        train_single(dataclasses.replace(recorded_options(sub, str(ae_out)), stage_of=stage_of, **how))
    epochs = given.epochs if given.epochs is not None else stage_of["epochs"]
    return train_single(dataclasses.replace(parent, epochs=epochs or DEFAULTS["epochs"], **how))


def _rerun_both(given: RunOptions, train_single: Any) -> Any:
    resolve(given)                                            # refuse conflicting options first
    source = Path(given.rerun)
    record = read_record(source, "--rerun")
    out = Path(given.out)
    how = {k: getattr(given, k) for k in _HOW}
    train_single(RunOptions(out=str(out / AUTOENCODER_DIR), rerun=str(source.parent / AUTOENCODER_DIR / "config.json"),
                            stage_of={"run": str(out), "epochs": record["options"].get("epochs")}, **how))
    return train_single(given)


def autoencoder_init(init: str | None) -> str | None:
    """--stage both --init P: the autoencoder stage's initial state P-autoencoder.npz beside P
    (the diffusion stage's is P itself: its U-Net; shared_init)."""
    if not init:
        return None
    p = Path(init)
    return str(p.with_name(f"{p.stem}-autoencoder{p.suffix or '.npz'}"))


# -- the diffusion stage's autoencoder ------------------------------------------------------------
def autoencoder_digest(weights: dict[str, Any]) -> str:
    """The config's autoencoder_sha256 of an ldm checkpoint's canonical weights."""
    from gan_diffusion.checkpoint import weights_digest
    from gan_diffusion.models.ldm import autoencoder_part

    return weights_digest(autoencoder_part(weights))


def autoencoder_run(opts: RunOptions) -> Path:
    """The autoencoder run folder of a diffusion-stage run."""
    return Path(opts.out) / AUTOENCODER_DIR if opts.stage == "both" else Path(opts.autoencoder)


def read_autoencoder_run(folder: Path) -> tuple[Path, dict[str, Any], Any]:
    """(checkpoint, canonical weights, LDMConfig) of a finished ldm autoencoder run, or a
    GanDiffusionError naming the run and what to do."""
    from gan_diffusion.checkpoint import load_checkpoint
    from gan_diffusion.models.ldm import LDMConfig

    ckpt = folder / CHECKPOINT
    if not ckpt.is_file() or not (folder / "config.json").is_file():
        raise GanDiffusionError(f"the autoencoder run {folder} holds no finished run (needs config.json "
                                f"and {CHECKPOINT}); train it first: gan-diffusion train --model ldm "
                                f"--stage autoencoder --out {folder}")
    weights, _, meta = load_checkpoint(ckpt)
    config = meta.get("config", {})
    if meta.get("model") != "ldm" or config.get("stage") != "autoencoder":
        raise GanDiffusionError(f"{folder} is not an ldm autoencoder run (it holds a {meta.get('model')!r} "
                                f"model, stage {config.get('stage')!r}); pass a --stage autoencoder run")
    total = read_record(folder / "config.json", "--autoencoder")["options"].get("epochs")
    if total is not None and int(meta["epoch"]) < int(total):
        raise GanDiffusionError(f"the autoencoder run {folder} is not finished (epoch {meta['epoch']} of "
                                f"{total}); finish it first: gan-diffusion train --resume --out {folder}")
    return ckpt, weights, LDMConfig.from_dict(config)


def config_overrides(opts: RunOptions, data: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    """The model config fields a new ldm run's stage fixes: its stage and, for a diffusion
    stage, every autoencoder field of the autoencoder run (a --set that differs is refused;
    so are images of another shape)."""
    from gan_diffusion.models.ldm import AUTOENCODER_RECORD

    if opts.stage == "autoencoder":
        return {"stage": "autoencoder"}
    folder = autoencoder_run(opts)
    _, _, ae = read_autoencoder_run(folder)
    if tuple(ae.image_shape) != tuple(data.image_shape):
        raise ConfigError(f"the autoencoder run {folder} was trained on images of shape "
                          f"{tuple(ae.image_shape)}, but this run's data ({data.name}) has shape "
                          f"{tuple(data.image_shape)}; train an autoencoder on these images, or "
                          "resize them (--image-size)")
    fields = {k: getattr(ae, k) for k in AUTOENCODER_RECORD if k != "image_shape"}
    differ = [f"--set {k}={json.dumps(_plain(v))} (the autoencoder's: {json.dumps(_plain(fields[k]))})"
              for k, v in overrides.items() if k in fields and _plain(v) != _plain(fields[k])]
    if differ:
        raise ConfigError(f"the diffusion stage takes the autoencoder's fields from {folder}, but "
                          f"{'; '.join(differ)}; drop them")
    return {"stage": "diffusion", **fields}


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def attach_autoencoder(model: Any, opts: RunOptions, data: Any, source: dict[str, Any] | None) -> None:
    """A new (or repeated) diffusion-stage run: load the autoencoder run's weights into the
    model, record their sha256 and the latent scale (computed from `data`, or taken from the
    --init file a first run of a comparison wrote, or from the record of a rerun)."""
    if model.stage != "diffusion":
        return
    from gan_diffusion.checkpoint import load_checkpoint

    folder = autoencoder_run(opts)
    ckpt, weights, _ = read_autoencoder_run(folder)
    if opts.init and Path(opts.init).exists() and not model.config.latent_scale:
        theirs = load_checkpoint(opts.init)[2].get("config", {})
        if theirs.get("autoencoder_sha256") == autoencoder_digest(weights):   # the same autoencoder: its exact scale
            model.config = model.config.replace(latent_scale=theirs.get("latent_scale", 0.0))
    digest = model.set_autoencoder(ckpt, data, name=str(folder))
    recorded = (source or {}).get("model_config", {}).get("autoencoder_sha256")
    if source is not None and digest != recorded:
        raise GanDiffusionError(f"--rerun: the autoencoder run {folder} holds other weights (sha256 "
                                f"{digest[:12]}...) than the recorded run used ({str(recorded)[:12]}...); "
                                "a rerun needs the recorded autoencoder")


def check_autoencoder(model: Any, opts: RunOptions) -> None:
    """A resumed diffusion-stage run: its autoencoder run must still hold the recorded weights."""
    if model.stage != "diffusion":
        return
    folder = autoencoder_run(opts)
    _, weights, _ = read_autoencoder_run(folder)
    digest = autoencoder_digest(weights)
    recorded = model.config.autoencoder_sha256
    if digest != recorded or autoencoder_digest(model.get_weights()) != recorded:
        raise GanDiffusionError(f"--resume: the autoencoder run {folder} now holds other weights "
                                f"(sha256 {digest[:12]}...) than this run was started with "
                                f"({recorded[:12]}...); resume needs the recorded autoencoder")


def shared_init(model: Any, init: str | None) -> dict[str, Any] | None:
    """--init of a diffusion stage: the shared initial state is its U-Net (and EMA); the
    autoencoder is this run's own (attach_autoencoder), so a run of a comparison whose
    autoencoder another backend trained loads only the U-Net of the file the first run wrote.
    Returns the rng record entries (init_checkpoint; shared_init_sha256: the U-Net's initial
    weights), or None for runs this does not apply to (gan_diffusion.runs.initial_state)."""
    from gan_diffusion.checkpoint import load_checkpoint, weights_digest
    from gan_diffusion.errors import CheckpointError

    if getattr(model, "stage", None) != "diffusion" or not init:
        return None
    # the run's own autoencoder's, and its fields that leave the U-Net as it is (ae_channels
    # stays: it sets the latent size)
    own = ("autoencoder_sha256", "latent_scale", "ae_res_blocks", "ae_attention", "recon_loss",
           "kl_weight", "ae_learning_rate", "ae_epochs")
    if Path(init).exists():
        weights, _, meta = load_checkpoint(init)
        if meta.get("model") != "ldm" or int(meta.get("epoch", -1)) or int(meta.get("global_step", 0)):
            raise CheckpointError(f"--init {init} is not the initial state of an ldm diffusion stage "
                                  f"(model {meta.get('model')!r}, epoch {meta.get('epoch')})")
        theirs = type(model.config).from_dict(meta.get("config", {})).to_dict()
        ours = model.config.to_dict()
        differ = sorted(k for k in ours if k not in own + ("compile",) and theirs.get(k) != ours[k])
        if differ:
            raise CheckpointError(f"--init {init} was written with a different config: " + ", ".join(
                f"{k}={theirs.get(k)!r} (ours {ours[k]!r})" for k in differ))
        own_ae = model.autoencoder_weights()
        model.set_weights({k: own_ae[k] if k in own_ae else weights[k] for k in model.get_weights()})
        action = "loaded (U-Net; this run's autoencoder)"
    else:
        model.save(init)
        action = "written"
    own_ae = model.autoencoder_weights()
    unet = {k: v for k, v in model.get_weights().items() if k not in own_ae}   # U-Net and EMA
    return {"init_checkpoint": {"path": str(init), "action": action},
            "shared_init_sha256": weights_digest(unet)}
