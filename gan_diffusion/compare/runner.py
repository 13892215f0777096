"""`gan-diffusion compare`: run the (model, backend, seed) matrix, then tables, plots, report.

Layout of OUT:
    compare.json                     options, command, wall time of the last invocation
    init/<model>/seed<k>-<key>.npz   controlled mode: the initial state every backend starts
                                     from (written by the first run, loaded by the others)
    runs/<model>/<backend>/seed<k>/  a `gan-diffusion train` run folder (config.json,
                                     history.json, train.log, samples/, checkpoints/,
                                     tensorboard/) plus spec.json, worker.log,
                                     eval_samples.npz, run.json ("finished": true), quality.json
    reference.npz                    the real images FID/KID compare against
    tables/*.md, *.csv               the tables (tables.md: all of them)
    plots/*.png                      the figures
    report.html                      one self-contained page
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from gan_diffusion.compare.presets import OMP_WAIT, CompareOptions
from gan_diffusion.compare.quality import extractor_note
from gan_diffusion.compare.tables import run_folder
from gan_diffusion.errors import BackendNotAvailableError, ConfigError
from gan_diffusion.utils import runlock
from gan_diffusion.utils.cpuload import QUIET_CORES
from gan_diffusion.utils.io import atomic_write_json
from gan_diffusion.utils.runlock import RunFolderLocked


def _key_hash(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]


def init_path(out: Path, opts: CompareOptions, model: str, seed: int) -> Path:
    """The shared initial state of (model, seed) under this comparison's settings."""
    return Path(out) / "init" / model / f"seed{seed}-{_key_hash(opts.run_key(model))}.npz"


def train_options(opts: CompareOptions, out: Path, model: str, backend: str, seed: int
                  ) -> dict[str, Any]:
    """The gan_diffusion.runs.RunOptions of one run, as JSON (the worker's spec)."""
    return {"out": str(run_folder(out, model, backend, seed)), "backend": backend, "model": model,
            "dataset": opts.dataset, "epochs": opts.epochs, "seed": seed, "threads": opts.threads,
            "limit": opts.limit, "batch_size": opts.batch_size, "image_size": opts.image_size,
            "data_dir": opts.data_dir, "tensorboard": True, "progress": False,
            "budget_minutes": opts.budget_minutes,
            "set": [f"{k}={json.dumps(v)}" for k, v in opts.overrides.get(model, {}).items()],
            **({"native_rng": True} if opts.native_rng
               else {"init": str(init_path(out, opts, model, seed))})}


def child_env(threads: int, omp_wait: str = "default") -> dict[str, str]:
    """The environment of every worker: thread pools pinned, the OpenMP wait policy (presets.
    OMP_WAIT; "default" removes any inherited one), quiet TF, unbuffered output."""
    t = str(threads)
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if OMP_WAIT[omp_wait]:
        env["OMP_WAIT_POLICY"] = OMP_WAIT[omp_wait]
    return {**env, "OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t,
            "TF_NUM_INTRAOP_THREADS": t, "TF_NUM_INTEROP_THREADS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


# TensorFlow start-up lines printed before absl logging honours TF_CPP_MIN_LOG_LEVEL: kept in
# the worker's log, not echoed.
_QUIET = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on")


def launch(kind: str, spec: dict[str, Any], spec_path: Path, log_path: Path, env: dict[str, str],
           prefix: str) -> int:
    """Run one worker subprocess, echoing its output (prefixed) and appending it to log_path."""
    atomic_write_json(spec_path, spec)
    cmd = [sys.executable, "-m", "gan_diffusion.compare.worker", kind, str(spec_path)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log, subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if not any(noise in line for noise in _QUIET):
                print(f"{prefix}{line.rstrip()}", flush=True)
    return proc.returncode


def run_state(folder: Path, key: dict[str, Any]) -> str:
    """"finished", "absent" or "partial" (a run that was killed or failed).

    Raises:
        ConfigError: a finished run made with other settings (names the fields and the fix).
    """
    if not folder.exists():
        return "absent"
    try:
        run = json.loads((folder / "run.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return "partial"
    if not run.get("finished"):
        return "partial"
    theirs = run.get("spec", {}).get("key", {})
    differ = sorted(k for k in set(key) | set(theirs) if key.get(k) != theirs.get(k))
    if differ:
        raise ConfigError(f"{folder} holds a finished run made with other settings: "
                          + ", ".join(f"{k}={theirs.get(k)!r} (now {key.get(k)!r})" for k in differ)
                          + "; use another --out, or delete that run folder to redo it")
    return "finished"


def eval_split(dataset: str) -> str:
    """The split real images for FID come from: the test split where the dataset has one."""
    return "test" if dataset.lower() in ("mnist", "cifar10") else "train"


def eval_image_shape(opts: CompareOptions) -> tuple[int, int, int]:
    """(H, W, C) of the comparison's evaluation images (loads one image)."""
    from gan_diffusion.data import load_dataset

    ds = load_dataset(opts.dataset, split=eval_split(opts.dataset), data_dir=opts.data_dir,
                      image_size=opts.image_size, limit=1)
    return tuple(ds.image_shape)


def prepare_reference(opts: CompareOptions, out: Path) -> Path:
    """OUT/reference.npz: n_eval real images (a seeded random subset of the evaluation split)."""
    from gan_diffusion.compare.worker import load_images, save_images
    from gan_diffusion.data import load_dataset

    path = out / "reference.npz"
    meta = {"dataset": opts.dataset, "split": eval_split(opts.dataset), "n_eval": opts.n_eval,
            "image_size": opts.image_size, "seed": 0}
    if path.exists():
        if load_images(path)[1].get("request") == meta:
            return path
    ds = load_dataset(opts.dataset, split=meta["split"], data_dir=opts.data_dir,
                      image_size=opts.image_size)
    idx = np.sort(np.random.default_rng(0).permutation(len(ds))[:opts.n_eval])
    save_images(path, ds.images[idx], request=meta, n=int(len(idx)), description=ds.description,
                labels=None if ds.labels is None else ds.labels[idx].tolist())
    return path


def run_compare(opts: CompareOptions, out: str | os.PathLike, report_only: bool = False) -> int:
    """Run (or resume) a comparison and write its tables, figures and report.

    Args:
        opts: resolved options (gan_diffusion.compare.presets.resolve).
        out: the comparison folder.
        report_only: only rebuild tables, figures and report from the finished runs.

    Returns:
        0 when every run finished, 1 when some failed (their errors are printed; the report
        covers the finished ones).
    """
    from gan_diffusion.backends import available_backends
    from gan_diffusion.compare.quality import resolve_extractor

    out = Path(out)
    start = time.perf_counter()
    if not report_only or not opts.extractor:  # "auto" -> a concrete name, before any run
        opts.extractor = resolve_extractor(opts.extractor, eval_image_shape(opts))
    missing = [b for b in opts.backends if b not in available_backends()]
    if missing and not report_only:
        raise BackendNotAvailableError(f"backend(s) {missing} are not installed; install "
                                       f"gan_diffusion[{','.join(missing)}] or drop them from --backends")
    with runlock.run_lock(out):  # one compare per folder; each run folder is locked by its worker
        return _run_locked(opts, out, report_only, start)


def _run_locked(opts: CompareOptions, out: Path, report_only: bool, start: float) -> int:
    from gan_diffusion.compare.models import traits
    from gan_diffusion.compare.quality import STAND_INS

    env = child_env(opts.threads, opts.omp_wait)
    failures: list[str] = []
    matrix = [(m, s, b) for m in opts.models for s in range(opts.seeds) for b in opts.backends]
    if not report_only:
        print(f"compare: {len(opts.models)} model(s) x {len(opts.backends)} backend(s) x "
              f"{opts.seeds} seed(s) = {len(matrix)} runs on {opts.dataset}, {opts.epochs} epoch(s), "
              f"{opts.threads} thread(s), {'native RNG' if opts.native_rng else 'controlled'} -> {out}",
              flush=True)
        for i, (model, seed, backend) in enumerate(matrix, 1):
            folder = run_folder(out, model, backend, seed)
            tag = f"[{i}/{len(matrix)} {model} {backend} seed {seed}]"
            state = run_state(folder, opts.run_key(model))
            if state == "finished":
                print(f"{tag} finished earlier, skipped", flush=True)
                continue
            if state == "partial":  # killed or failed: start it again from scratch
                writer = runlock.holder(folder)
                if writer is not None:  # not dead: another compare is running it now
                    raise RunFolderLocked(f"{folder} is being written by another process "
                                          f"({runlock.describe(writer)}); one compare per --out")
                print(f"{tag} unfinished run found (killed or failed): restarting it", flush=True)
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            entry = traits(model)
            spec = {"model": model, "backend": backend, "seed": seed, "run_dir": str(folder),
                    "n_eval": opts.n_eval,
                    "eval_data": {"dataset": opts.dataset, "split": eval_split(opts.dataset),
                                  "data_dir": opts.data_dir, "image_size": opts.image_size},
                    "key": opts.run_key(model)}
            if entry.evaluation_only:   # nothing to train: edit real images (compare/img2img.py)
                kind = "img2img"
                spec.update(config=opts.overrides.get(model, {}), threads=opts.threads)
            else:
                kind = "run"
                spec.update(train_options=train_options(opts, out, model, backend, seed),
                            sample_kwargs=entry.sample_kwargs, trajectory=entry.trajectory,
                            evaluate=list(entry.evaluate), timed_sample_kwargs=entry.timed_sample_kwargs)
            t = time.perf_counter()
            code = launch(kind, spec, folder / "spec.json", folder / "worker.log", env, "    ")
            if code:
                failures.append(f"{model} {backend} seed {seed}: exit {code} (see {folder / 'worker.log'})")
                print(f"{tag} FAILED (exit {code})", flush=True)
            else:
                print(f"{tag} done in {time.perf_counter() - t:.0f} s", flush=True)
        finished = [run_folder(out, m, b, s) for m, s, b in matrix
                    if (run_folder(out, m, b, s) / "run.json").exists()]
        if finished:
            ref = prepare_reference(opts, out)
            score_spec = {"runs": [str(f) for f in finished], "reference": str(ref),
                          "extractor": opts.extractor, "dataset": opts.dataset,
                          "backend": None if opts.extractor in STAND_INS
                          else (opts.score_backend or opts.backends[0])}
            if launch("score", score_spec, out / "score_spec.json", out / "score.log", env, "    "):
                failures.append(f"scoring failed (see {out / 'score.log'})")
    command = " ".join(["gan-diffusion"] + sys.argv[1:])
    if report_only and (out / "compare.json").exists():  # the command that made the runs
        command = json.loads((out / "compare.json").read_text()).get("command_line", command)
    report, tabs = build_outputs(opts, out, command)
    for t in tabs:
        if t.name in ("quality", "framework_effect", "model_effect"):
            print("\n" + t.markdown(), flush=True)
    wall = time.perf_counter() - start
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    record = {"options": opts.__dict__, "command_line": command, "wall_seconds": wall,
              "failures": failures, "finished_at": now}
    if report_only and (out / "compare.json").exists():  # keep what the runs' invocation recorded
        record = {**json.loads((out / "compare.json").read_text()), "report_rebuilt_at": now}
    atomic_write_json(out / "compare.json", record)
    print(f"compare: {'report rebuilt' if report_only else 'done'} in {wall:.0f} s; "
          f"tables in {out / 'tables'}, report {report}", flush=True)
    for f in failures:
        print(f"compare: FAILED {f}", file=sys.stderr)
    return 1 if failures else 0


def shared_init_digest(r: Any) -> str:
    """What a run shares with the other backends' runs of its (model, seed): its initial
    weights' sha256; for ldm --stage both, the autoencoder stage's initial weights and the
    diffusion stage's U-Net (stages.shared_init; each backend trains its own autoencoder)."""
    rng = r.record.get("rng", {})
    digest = rng.get("shared_init_sha256", rng.get("init_sha256", "?"))
    first = r.path / "autoencoder" / "config.json"
    if first.is_file():
        digest += "+" + json.loads(first.read_text()).get("rng", {}).get("init_sha256", "?")
    return digest


def init_check(results: list) -> str:
    """Whether each (model, seed) started from bit-identical weights in every backend."""
    by: dict[tuple[str, int], set[str]] = {}
    for r in results:
        if r.record.get("evaluation_only"):   # sd-img2img: no initial weights to share
            continue
        by.setdefault((r.model, r.seed), set()).add(shared_init_digest(r))
    same = sum(len(v) == 1 for v in by.values())
    return (f"{same} of {len(by)} (model, seed) pairs started from bit-identical weights in all "
            "backends (sha256 of the canonical weights, recorded by every run)")


def build_outputs(opts: CompareOptions, out: Path, command: str = "") -> tuple[Path, list]:
    """Tables (Markdown + CSV), figures and report.html from the finished runs.

    Returns:
        (path of report.html, the tables).
    """
    from gan_diffusion.compare import plots, report, tables

    results = tables.collect(out, opts.models, opts.backends, opts.seeds)
    tabs = tables.build_tables(results, opts.backends, opts.extractor, paired=not opts.native_rng)
    tables.write_tables(tabs, out / "tables")
    figures = plots.make_figures(results, opts.extractor, out / "plots", out / "reference.npz")
    first = results[0].record if results else {}
    versions = {k: v for r in results for k, v in r.record.get("versions", {}).items()}
    context = {
        "generated": _dt.datetime.now().isoformat(timespec="seconds"),
        "command": command,
        "preset": opts.preset or "none",
        "runs": f"{len(results)} finished of {len(opts.models) * len(opts.backends) * opts.seeds} "
                f"({', '.join(opts.models)} x {', '.join(opts.backends)} x {opts.seeds} seeds)",
        "data": first.get("data", {}).get("description", opts.dataset)
                + (f"; {first['data']['size']} training images" if first else ""),
        "epochs": (f"as many as fit in {opts.budget_minutes:g} min of training per run (at most "
                   f"{opts.epochs}; the Epochs columns give each run's)" if opts.budget_minutes
                   else opts.epochs),
        "mode": ("native RNG: each framework's own generator for initial weights and training "
                 "noise (data order shared)" if opts.native_rng else
                 "controlled: the same initial weights (one checkpoint loaded by every backend), "
                 "data order and noise streams in both backends; " + init_check(results)),
        "threads": f"{opts.threads} intra-op, 1 inter-op per run, one run at a time; OpenMP "
                   f"wait policy {OMP_WAIT[opts.omp_wait] or 'the runtime default'} "
                   f"(--omp-wait {opts.omp_wait})",
        "machine": "{platform}, {cpu_count} cores".format(**first["machine"]) if first else "?",
        "versions": ", ".join(f"{k} {v}" for k, v in sorted(versions.items())),
    }
    notes = ["Timings come from a machine that may be shared with other jobs; compare the "
             "framework effect with its interval and with the seed-to-seed spread, not single numbers."]
    notes.insert(0, extractor_note(opts.extractor))
    busy = sum(r.busy_epochs for r in results)
    if busy:
        notes.insert(0, f"Busy machine: {busy} of {sum(len(r.epochs) for r in results)} epochs "
                     f"ran while other processes used {QUIET_CORES} cores or more on average "
                     "(marked * in the epoch table, counted in the timing table); their times "
                     "measure the contention as much as the framework.")
    if opts.dataset == "digits":
        notes.append("Data: the embedded scikit-learn digits (8x8 upscaled to 28x28), NOT MNIST.")
    return report.write_report(out / "report.html", tabs, figures, context, notes), tabs


def cmd_compare(args: Any) -> int:
    """The `compare` subcommand (gan_diffusion/cli.py)."""
    from gan_diffusion.compare.presets import resolve

    record = Path(args.out) / "compare.json"
    if args.report_only and record.exists():  # the options the runs were made with
        recorded = json.loads(record.read_text())["options"]
        recorded.setdefault("omp_wait", "default")   # recorded before --omp-wait existed
        return run_compare(CompareOptions(**recorded), args.out, report_only=True)
    opts = resolve(args.preset, models=args.models, backends=args.backends, sets=args.set,
                   dataset=args.dataset, epochs=args.epochs, seeds=args.seeds, n_eval=args.n_eval,
                   threads=args.threads, limit=args.limit, image_size=args.image_size,
                   batch_size=args.batch_size, native_rng=args.native_rng or None,
                   extractor=args.extractor, score_backend=args.score_backend,
                   data_dir=args.data_dir, budget_minutes=args.budget_minutes,
                   omp_wait=args.omp_wait)
    return run_compare(opts, args.out, report_only=args.report_only)
