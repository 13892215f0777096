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

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gan_diffusion.callbacks import RunContext, SampleGrid, default_callbacks, vae_eval_data, write_derived
from gan_diffusion.errors import ConfigError, DivergenceError, GanDiffusionError
from gan_diffusion.protocols import History
from gan_diffusion.run_options import CONFIG_FLAGS, RECORDED, RunOptions, parse_set, resolve, validate
from gan_diffusion.utils.io import TMP_SUFFIX, atomic_write_json, atomic_write_text, remove_stale_temp_files
from gan_diffusion.utils.runlock import describe, run_lock

__all__ = ["RunOptions", "train_run"]


# -- checks against the record ----------------------------------------------------------------
def check_same(what: str, recorded: dict[str, Any], current: dict[str, Any], source: str,
               fix: str) -> None:
    differ = [f"{k} {current.get(k)} (recorded: {recorded.get(k)})"
              for k in sorted(set(recorded) & set(current)) if recorded[k] != current[k]]
    if differ:
        raise GanDiffusionError(f"{what} differ from the record {source}: {'; '.join(differ)}; {fix}")


def check_data(record: dict[str, Any], data: Any, source: str) -> None:
    rec = record.get("data", {})
    current = {"name": data.name, "size": len(data), "image_shape": list(data.image_shape)}
    if "sha256" in rec:
        current["sha256"] = data.digest()
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
    from gan_diffusion import stages

    options = validate(options)
    if stages.ldm_stage(options) is not None:   # latent diffusion: its stages (gan_diffusion/stages.py)
        return stages.train_ldm(options, train_single)
    return train_single(options)


def train_single(options: RunOptions) -> RunContext:
    """One run folder (`train_run` after validation; each stage of an ldm run is one)."""
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
    opts, source = resolve(given)
    out = Path(opts.out)
    if lock.stale:
        print(f"note: the previous writer of {out} ({describe(lock.stale)}) did not exit cleanly")
    for p in remove_stale_temp_files(out):
        print(f"note: removed {p}, left by an interrupted write")
    backend, data, current = _environment(opts, source)
    run, rng, eval_data = _starting_state(opts, source, backend, data)
    for sub in ("", "checkpoints", "samples") + (("tensorboard",) if opts.tensorboard else ()):
        check_writable(out / sub)
    remaining = opts.epochs - run.model.epoch
    if remaining <= 0:
        print(f"nothing to do: {out} already has {run.model.epoch} epoch(s) (--epochs {opts.epochs})")
        return run
    budget_s = None if opts.budget_minutes is None else 60.0 * opts.budget_minutes
    if budget_s is not None and (spent := training_seconds(run)) >= budget_s:
        print(f"nothing to do: {out} already trained {spent:.1f} s in "
              f"{run.model.epoch} epoch(s), its budget of {opts.budget_minutes} min")
        return run
    previous = (out / "config.json").read_text() if opts.resume else None
    atomic_write_json(out / "config.json", new_record(opts, source, run, backend, rng, current))
    print(f"training {opts.model} on {data.name} ({len(data)} images {data.image_shape}; "
          f"{data.description}) with backend {backend.name}, threads {current['threads']}, "
          f"epochs {run.model.epoch + 1}..{opts.epochs} -> {out}", flush=True)
    start = run.committed_epoch
    try:
        fit(run, default_callbacks(run.model, eval_data, bool(opts.tensorboard)), remaining,
            opts.progress, budget_s)
    except BaseException:
        if previous is not None and run.committed_epoch == start:
            atomic_write_text(out / "config.json", previous)  # a resume that committed nothing
        raise                                                 # leaves the record as it was
    return run


def _source_name(opts: RunOptions) -> str:
    return str(Path(opts.out) / "config.json" if opts.resume else opts.rerun)


def _environment(opts: RunOptions, source: dict[str, Any] | None) -> tuple[Any, Any, dict[str, Any]]:
    """The backend (threads pinned), the data and this session's run_info, checked against
    the record: (backend, data, run_info)."""
    from gan_diffusion.backends import get_backend
    from gan_diffusion.data import load_dataset
    from gan_diffusion.runinfo import run_info

    backend = get_backend(opts.backend)
    threads = backend.set_threads(opts.threads)  # before the framework runs its first op
    data = load_dataset(opts.dataset, split=opts.split, data_dir=opts.data_dir, download=opts.download,
                        image_size=opts.image_size, limit=opts.limit, color_mode=opts.color_mode)
    current = run_info(backend, threads)
    if source is not None:
        check_data(source, data, _source_name(opts))
        if not opts.allow_version_change:  # resume: as the last session ran; rerun: as recorded
            recorded = ((source.get("sessions") or [source])[-1] if opts.resume else source)
            check_same("the versions", recorded.get("versions", {}), current["versions"],
                       _source_name(opts), "run it with the recorded versions, or pass "
                       "--allow-version-change (recorded in the run)")
    return backend, data, current


def _starting_state(opts: RunOptions, source: dict[str, Any] | None, backend: Any, data: Any
                    ) -> tuple[RunContext, dict[str, Any], tuple[Any, str] | None]:
    """The model as training starts: restored (resume) or initialised (new run, rerun; a
    rerun must start from the recorded weights). Returns (run, rng record, VAE eval data)."""
    from gan_diffusion.checkpoint import weights_digest
    from gan_diffusion.registry import get_spec
    from gan_diffusion.families.vae import VAEBase

    config = (get_spec(opts.model).config_cls.from_dict(source["model_config"]) if source
              else make_run_config(opts, data))
    model = backend.build(opts.model, config=config)
    rng: dict[str, Any] = {"mode": "native" if opts.native_rng else "controlled"}
    if opts.native_rng:  # framework RNG for init and training noise (gan_diffusion/compare/native.py)
        from gan_diffusion.compare.native import apply_native_rng
        rng.update(apply_native_rng(model, backend))
    run = RunContext(Path(opts.out), model, data, opts.epochs, History(), {},
                     backend_package=backend.package.__name__)
    eval_data = None
    if isinstance(model, VAEBase):  # negative ELBO, PSNR, SSIM on held-out images every epoch
        eval_data = vae_eval_data(opts.dataset, opts.split, data, opts.data_dir, opts.image_size)
    if opts.resume:
        restore(run)
        if opts.model == "ldm":   # its autoencoder run must still hold the recorded weights
            from gan_diffusion.stages import check_autoencoder
            check_autoencoder(model, opts)
        return run, source.get("rng", rng), eval_data
    shared = None
    if opts.model == "ldm":       # a diffusion stage: the autoencoder, its sha256, the latent scale;
        from gan_diffusion.stages import attach_autoencoder, shared_init
        attach_autoencoder(model, opts, data, source)
        shared = shared_init(model, opts.init)   # and it shares its U-Net only
    rng.update(shared if shared is not None else initial_state(model, opts.init))
    rng["init_sha256"] = weights_digest(model.get_weights())
    if source is not None:
        check_same("the initial weights", {"init_sha256": source.get("rng", {}).get("init_sha256")},
                   {"init_sha256": rng["init_sha256"]}, _source_name(opts),
                   f"the recorded run started from other weights (--init {opts.init})")
    return run, rng, eval_data


def new_record(opts: RunOptions, source: dict[str, Any] | None, run: RunContext, backend: Any,
               rng: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """config.json as this session starts: a new record, or the resumed one with the new
    total and one more session."""
    from gan_diffusion.data import resolve_data_dir

    session = {"started": current["started"], "from_epoch": run.model.epoch, "to_epoch": opts.epochs,
               **{k: current[k] for k in ("argv", "versions", "threads", "load", "git_commit")},
               "host": current["machine"]["hostname"], "pid": os.getpid()}
    if opts.budget_minutes is not None:
        session["budget_minutes"] = opts.budget_minutes
    if opts.resume:   # the two options a resume may change
        return {**source, "options": {**source["options"], "epochs": opts.epochs,
                                      "budget_minutes": opts.budget_minutes},
                "sessions": source.get("sessions", []) + [session]}
    config, data = run.model.config, run.data
    record = {"model": opts.model, "model_config": config.to_dict(),
              "options": {k: getattr(opts, k) for k in RECORDED},
              "data": {"name": data.name, "description": data.description, "size": len(data),
                       "image_shape": list(data.image_shape), "sha256": data.digest(),
                       "data_dir": str(resolve_data_dir(opts.data_dir))},
              "seed": config.seed, "backend": backend.name, "rng": rng, **current,
              "sessions": [session]}
    if opts.rerun:
        record["rerun_of"] = {"path": str(opts.rerun), "started": source.get("started")}
    if opts.stage_of:
        record["stage_of"] = opts.stage_of   # the --stage both run (gan_diffusion/stages.py)
    return record


def training_seconds(run: RunContext) -> float:
    """The run's training time so far: the sum of its epochs' wall times (resumed ones too)."""
    return float(sum(e.seconds for e in run.history.epochs))


def fit(run: RunContext, callbacks: list[Any], epochs: int, progress: bool | None,
        budget_s: float | None = None) -> None:
    """`epochs` more epochs with the callbacks; a divergence names the checkpoint it kept.
    With `budget_s`, training stops at the first epoch end at which the run's epochs (resumed
    ones included) have taken that many seconds: epochs are whole, so it overshoots by less
    than one epoch."""
    with open(run.out / "train.log", "a") as run.log:
        try:
            for cb in callbacks:
                cb.on_train_begin(run)

            def on_epoch_end(model: Any, stats: Any) -> None:
                run.history.append(stats)
                for cb in callbacks:
                    cb.on_epoch_end(run, stats)

            if budget_s is None:
                run.model.fit(run.data, epochs, on_epoch_end=on_epoch_end, progress=progress)
            else:   # one epoch at a time, the clock read between them
                for _ in range(epochs):
                    run.model.fit(run.data, 1, on_epoch_end=on_epoch_end, progress=progress)
                    spent = training_seconds(run)
                    if spent >= budget_s:
                        print(f"time budget: {spent:.1f} s of training in "
                              f"{run.model.epoch} epoch(s) reach {budget_s / 60:g} min; stopping",
                              flush=True)
                        break
        except DivergenceError as exc:
            kept = (f"the last good checkpoint (epoch {run.model.epoch}) is kept in {run.checkpoint}"
                    if run.checkpoint.exists() else "no epoch finished, so nothing was saved")
            raise DivergenceError(f"{exc}; {kept}") from None
        finally:
            for cb in callbacks:
                cb.close()
    for cb in callbacks:
        cb.on_train_end(run)


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
    if opts.model == "ldm":   # the stage, and a diffusion stage's autoencoder fields
        from gan_diffusion.stages import config_overrides
        overrides.update(config_overrides(opts, data, overrides))
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
    run.committed_epoch = run.model.epoch
    existed = {name for name in ("history.json", "eval.json") if (run.out / name).exists()}
    for name in write_derived(run):   # only those that differ: a no-op resume rewrites nothing
        if name in existed:
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
