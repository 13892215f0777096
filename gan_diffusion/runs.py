"""Training runs: `RunOptions` in, a run folder out (what `gan-diffusion train` calls).

    from gan_diffusion.runs import RunOptions, train_run
    train_run(RunOptions(out="runs/a", backend="torch", dataset="mnist", epochs=5))
    train_run(RunOptions(out="runs/a", epochs=8, resume=True))       # the rest from the record
    train_run(RunOptions(out="runs/b", rerun="runs/a/config.json"))  # the same run, or refusal

A run folder has one writer at a time (OUT/.lock, gan_diffusion/utils/runlock.py) and holds:
    config.json              the record: options, model config, data (with its sha256),
                             versions, machine, load, threads, rng, one entry per session
    checkpoints/latest.npz   weights, optimizer state and the run's history: the commit
                             point of every epoch (gan_diffusion/callbacks.py)
    history.json, eval.json  derived from the checkpoint; a resume rewrites them if they lag
    train.log, samples/epoch_NNNN.png, tensorboard/, VAE figures

Records that cannot lie: a resume takes every option from the record (only the total
`epochs` may change; a conflicting option is an error naming both values) and refuses other
data (sha256) or other library/framework versions; a rerun refuses any difference; a resume
that trains nothing writes nothing.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gan_diffusion.callbacks import RunContext, SampleGrid, default_callbacks, vae_eval_data, write_derived
from gan_diffusion.errors import ConfigError, DivergenceError, GanDiffusionError
from gan_diffusion.protocols import History
from gan_diffusion.utils.io import TMP_SUFFIX, atomic_write_json, remove_stale_temp_files
from gan_diffusion.utils.runlock import describe, run_lock


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
    tensorboard: bool | None = None
    # -- not part of the record ------------------------------------------------------------
    data_dir: str | None = None
    download: bool = False
    progress: bool | None = None
    resume: bool = False
    rerun: str | None = None           # a config.json to repeat exactly
    allow_version_change: bool = False  # resume/rerun under other versions (recorded)


_FIELDS = [f.name for f in dataclasses.fields(RunOptions)]
RECORDED = tuple(_FIELDS[1:_FIELDS.index("tensorboard") + 1])  # backend ... tensorboard
DEFAULTS = {"model": "dcgan", "dataset": "digits", "split": "train", "epochs": 5,
            "compile": False, "conditional": False, "native_rng": False, "tensorboard": False,
            "set": []}
CONFIG_FLAGS = ("batch_size", "seed", "optimizer", "learning_rate")  # also model config fields
NOT_SETTABLE = {"image_shape": "image_shape comes from the data: use --image-size N (and "
                "--color-mode L|RGB) instead of --set image_shape",
                "model": "--set model is not a config field: use --model"}


# -- options --------------------------------------------------------------------------------
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
    parse_set(opts.set)
    out = Path(opts.out)
    if out.exists() and not out.is_dir():
        raise GanDiffusionError(f"--out {out} is an existing file, not a folder; choose a folder path")
    return opts


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
            found.append(f"{flag} {mine} (recorded: {theirs})")
    return found


def resolve(given: RunOptions) -> tuple[RunOptions, dict[str, Any] | None]:
    """The options to run with, and the record they come from (resume, rerun) or None."""
    how = {k: getattr(given, k) for k in ("data_dir", "download", "progress", "resume", "rerun",
                                         "allow_version_change")}
    if given.resume or given.rerun:
        path = Path(given.out) / "config.json" if given.resume else Path(given.rerun)
        what = "--resume" if given.resume else "--rerun"
        record = read_record(path, what)
        base = recorded_options(record, given.out)
        differ = conflicts(given, base, record, ("epochs",) if given.resume else ())
        if differ:
            fix = ("only --epochs (the new total) may change on resume" if given.resume else
                   "drop them to repeat the recorded run, or start a new run without --rerun")
            raise ConfigError(f"{what} takes every option from the record {path}, but the command "
                              f"line differs: {'; '.join(differ)}. {fix[0].upper()}{fix[1:]}")
        epochs = given.epochs if given.resume and given.epochs is not None else base.epochs
        return dataclasses.replace(base, epochs=epochs or DEFAULTS["epochs"], **how), record
    filled = {k: DEFAULTS[k] for k in DEFAULTS if getattr(given, k) is None}
    return dataclasses.replace(given, **filled), None


# -- checks against the record ----------------------------------------------------------------
def check_same(what: str, recorded: dict[str, Any], current: dict[str, Any], source: str,
               fix: str) -> None:
    differ = [f"{k} {current.get(k)} (recorded: {recorded.get(k)})"
              for k in sorted(set(recorded) & set(current)) if recorded[k] != current[k]]
    if differ:
        raise GanDiffusionError(f"{what} differ from the record {source}: {'; '.join(differ)}; {fix}")


def check_data(record: dict[str, Any], data: Any, digest: str, source: str) -> None:
    rec = record.get("data", {})
    current = {"name": data.name, "size": len(data), "image_shape": list(data.image_shape)}
    if "sha256" in rec:
        current["sha256"] = digest
    check_same("the training data", {k: rec[k] for k in current if k in rec}, current, source,
               "the run can only continue on the data it was recorded with (check --data-dir)")


# -- the run ---------------------------------------------------------------------------------
def train_run(options: RunOptions) -> RunContext:
    """Train (or resume, or repeat) one run and write its folder; see the module docstring.

    Raises:
        GanDiffusionError: bad options, a conflict with the record, a folder in use; the
            folder is left as it was (a folder this call created is removed again).
        DivergenceError: a non-finite loss; the last good checkpoint is kept.
    """
    options = validate(options)
    out = Path(options.out)
    if options.resume and not (out / "checkpoints" / "latest.npz").is_file():
        raise GanDiffusionError(f"--resume: {out} holds no checkpoint (checkpoints/latest.npz); "
                                "pass the --out of a run that finished at least one epoch")
    if not options.resume and (out / "checkpoints" / "latest.npz").exists():
        raise GanDiffusionError(f"{out} already holds a run; pass --resume to continue it "
                                "or choose another --out")
    existed = out.exists()
    with run_lock(out) as lock:
        try:
            return _train(options, lock)
        except BaseException:
            if not existed and not (out / "config.json").exists():
                shutil.rmtree(out, ignore_errors=True)   # nothing half-written
            raise


def _train(given: RunOptions, lock: Any) -> RunContext:
    from gan_diffusion.backends import get_backend
    from gan_diffusion.checkpoint import weights_digest
    from gan_diffusion.data import load_dataset, resolve_data_dir
    from gan_diffusion.families.vae import VAEBase
    from gan_diffusion.registry import get_spec
    from gan_diffusion.runinfo import run_info

    opts, source = resolve(given)
    out = Path(opts.out)
    src_name = str(Path(opts.out) / "config.json" if opts.resume else opts.rerun)
    if lock.stale:
        print(f"note: the previous writer of {out} ({describe(lock.stale)}) did not exit cleanly")
    for p in remove_stale_temp_files(out):
        print(f"note: removed {p}, left by an interrupted write")
    if opts.model is None:
        raise ConfigError("no model given")
    backend = get_backend(opts.backend)
    threads = backend.set_threads(opts.threads)  # before the framework runs its first op
    data = load_dataset(opts.dataset, split=opts.split, data_dir=opts.data_dir, download=opts.download,
                        image_size=opts.image_size, limit=opts.limit, color_mode=opts.color_mode)
    digest = data.digest()
    current = run_info(backend, threads)
    if source is not None:
        check_data(source, data, digest, src_name)
        if not opts.allow_version_change:  # resume: as the last session ran; rerun: as recorded
            versions = ((source.get("sessions") or [source])[-1] if opts.resume else source).get("versions", {})
            check_same("the versions", versions, current["versions"], src_name,
                       "run it with the recorded versions, or pass --allow-version-change "
                       "(recorded in the run)")
        config = get_spec(opts.model).config_cls.from_dict(source["model_config"])
    else:
        config = make_run_config(opts, data)
    model = backend.build(opts.model, config=config)
    rng: dict[str, Any] = {"mode": "native" if opts.native_rng else "controlled"}
    if opts.native_rng:  # framework RNG for init and training noise (gan_diffusion/compare/native.py)
        from gan_diffusion.compare.native import apply_native_rng
        rng.update(apply_native_rng(model, backend))
    run = RunContext(out, model, data, opts.epochs, History(), {},
                     backend_package=backend.package.__name__)
    eval_data = None
    if isinstance(model, VAEBase):  # negative ELBO, PSNR, SSIM on held-out images every epoch
        eval_data = vae_eval_data(opts.dataset, opts.split, data, opts.data_dir, opts.image_size)
    if opts.resume:
        restore(run)
        rng = source.get("rng", rng)
    else:
        rng.update(initial_state(model, opts.init))
        rng["init_sha256"] = weights_digest(model.get_weights())
        if source is not None:
            check_same("the initial weights", {"init_sha256": source.get("rng", {}).get("init_sha256")},
                       {"init_sha256": rng["init_sha256"]}, src_name,
                       f"the recorded run started from other weights (--init {opts.init})")
    for sub in ("", "checkpoints", "samples") + (("tensorboard",) if opts.tensorboard else ()):
        check_writable(out / sub)

    remaining = opts.epochs - model.epoch
    if remaining <= 0:
        print(f"nothing to do: {out} already has {model.epoch} epoch(s) (--epochs {opts.epochs})")
        return run
    session = {"started": current["started"], "from_epoch": model.epoch, "to_epoch": opts.epochs,
               **{k: current[k] for k in ("argv", "versions", "threads", "load", "git_commit")},
               "host": current["machine"]["hostname"], "pid": os.getpid()}
    if opts.resume:
        record = dict(source)
        record["options"] = {**record["options"], "epochs": opts.epochs}
        record["sessions"] = record.get("sessions", []) + [session]
    else:
        record = {"model": opts.model, "model_config": config.to_dict(),
                  "options": {k: getattr(opts, k) for k in RECORDED},
                  "data": {"name": data.name, "description": data.description, "size": len(data),
                           "image_shape": list(data.image_shape), "sha256": digest,
                           "data_dir": str(resolve_data_dir(opts.data_dir))},
                  "seed": config.seed, "backend": backend.name, "rng": rng, **current,
                  "sessions": [session]}
        if opts.rerun:
            record["rerun_of"] = {"path": str(opts.rerun), "started": source.get("started")}
    atomic_write_json(out / "config.json", record)
    print(f"training {opts.model} on {data.name} ({len(data)} images {data.image_shape}; "
          f"{data.description}) with backend {backend.name}, threads {threads}, "
          f"epochs {model.epoch + 1}..{opts.epochs} -> {out}", flush=True)

    callbacks = default_callbacks(model, eval_data, bool(opts.tensorboard))
    with open(out / "train.log", "a") as run.log:
        try:
            for cb in callbacks:
                cb.on_train_begin(run)

            def on_epoch_end(m: Any, stats: Any) -> None:
                run.history.append(stats)
                for cb in callbacks:
                    cb.on_epoch_end(run, stats)

            model.fit(data, remaining, on_epoch_end=on_epoch_end, progress=opts.progress)
        except DivergenceError as exc:
            kept = (f"the last good checkpoint (epoch {model.epoch}) is kept in {run.checkpoint}"
                    if run.checkpoint.exists() else "no epoch finished, so nothing was saved")
            raise DivergenceError(f"{exc}; {kept}") from None
        finally:
            for cb in callbacks:
                cb.close()
    for cb in callbacks:
        cb.on_train_end(run)
    return run


def make_run_config(opts: RunOptions, data: Any) -> Any:
    """The model config of a new run: the model's defaults, the flags, then --set fields."""
    from gan_diffusion.registry import make_config

    overrides = parse_set(opts.set)
    overrides.update({k: getattr(opts, k) for k in CONFIG_FLAGS if getattr(opts, k) is not None})
    if opts.compile:
        overrides["compile"] = True
    if opts.conditional:
        if data.labels is None:
            raise ConfigError(f"--conditional needs a labelled dataset; {data.name} has no labels")
        overrides["num_classes"] = data.num_classes
    return make_config(opts.model, image_shape=data.image_shape, **overrides)


def initial_state(model: Any, init: str | None) -> dict[str, Any]:
    """--init: load the initial state another run wrote, or write this run's for the others."""
    if init and Path(init).exists():
        model.restore(init)
        if model.epoch or model.global_step:
            raise GanDiffusionError(f"--init {init} is a checkpoint of epoch {model.epoch}, not an "
                                    "initial state; use --resume to continue a run")
        return {"init_checkpoint": {"path": str(init), "action": "loaded"}}
    if init:  # the first run of a comparison records its initial state for the others
        model.save(init)
        return {"init_checkpoint": {"path": str(init), "action": "written"}}
    return {}


def restore(run: RunContext) -> None:
    """Load the checkpoint and the history committed with it; rewrite derived files that lag
    behind it (history.json, eval.json, the last sample grid). Refuses a lost epoch."""
    meta = run.model.restore(run.checkpoint)
    committed = meta.get("run")
    if committed is None:  # written before histories travelled in the checkpoint
        committed = legacy_committed(run.out, run.model.epoch)
    run.history = History.from_dict(committed["history"])
    run.records = committed.get("records", {})
    epochs = [e.epoch for e in run.history.epochs]
    if epochs != list(range(1, run.model.epoch + 1)):
        raise GanDiffusionError(f"{run.checkpoint} is at epoch {run.model.epoch} but its history has "
                                f"epochs {epochs}; the record is damaged: start the run again")
    stale = {p.name for p in (run.out / "history.json", run.out / "eval.json") if p.exists()}
    before = {n: (run.out / n).read_text() for n in stale}
    write_derived(run)
    for name in sorted(stale):
        if (run.out / name).read_text() != before[name]:
            print(f"note: {name} lagged behind the checkpoint (epoch {run.model.epoch}); rewritten from it")
    if run.model.epoch and not SampleGrid.path(run, run.model.epoch).exists():
        SampleGrid().write(run, run.model.epoch)


def legacy_committed(out: Path, epoch: int) -> dict[str, Any]:
    """A checkpoint without its history: take history.json if it matches the checkpoint."""
    path = out / "history.json"
    history = json.loads(path.read_text()) if path.exists() else {"epochs": []}
    history["epochs"] = [e for e in history["epochs"] if e["epoch"] <= epoch]
    if [e["epoch"] for e in history["epochs"]] != list(range(1, epoch + 1)):
        raise GanDiffusionError(f"{out}: the checkpoint is at epoch {epoch} but history.json has epochs "
                                f"{[e['epoch'] for e in history['epochs']]}: an epoch's record was lost "
                                "(written by an older version); start the run again")
    records = {}
    if (out / "eval.json").exists():
        records["eval"] = json.loads((out / "eval.json").read_text())
        records["eval"]["epochs"] = [e for e in records["eval"]["epochs"] if e["epoch"] <= epoch]
    return {"history": history, "records": records}


def check_writable(folder: Path) -> None:
    """Create `folder` and write a probe file in it, before any training time is spent."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", suffix=TMP_SUFFIX, dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise GanDiffusionError(f"cannot write in {folder} ({exc.strerror}); fix its permissions "
                                "or choose another --out") from None
