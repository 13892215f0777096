"""The subprocess side of `compare`: one framework per process.

    python -m gan_diffusion.compare.worker run SPEC.json     one (model, backend, seed) run
    python -m gan_diffusion.compare.worker img2img SPEC.json one evaluation-only run
                                                             (sd-img2img, compare/img2img.py)
    python -m gan_diffusion.compare.worker score SPEC.json   FID/KID of finished runs

`run` trains with `gan_diffusion.runs.train_run` (the code of `gan-diffusion train`: the same run
folder and records: config.json, history.json, checkpoints, samples/, tensorboard/), holding
the run folder's lock throughout, then records the process's peak resident
memory, draws the evaluation samples (and a trajectory where the model provides one) with
the trained model, and writes RUN/run.json with "finished": true last. A run without that
file did not finish.
"""
from __future__ import annotations

import datetime as _dt
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from gan_diffusion.utils.io import atomic_write_json
from gan_diffusion.weightfile import read_npz, write_npz

EVAL_SEED = 1_000_003  # latent seed of the evaluation samples (not the preview grids' seed 0)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (Linux ru_maxrss is in KiB)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def save_images(path: Path, images: np.ndarray, **meta: Any) -> None:
    """uint8 images (and JSON metadata) as an .npz, atomically (read with allow_pickle=False)."""
    write_npz(path, {"images": images}, meta, compress=True)


def load_images(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """(uint8 images, metadata) of a `save_images` file (also the older layout, whose
    metadata entry was called "meta")."""
    from gan_diffusion.errors import GanDiffusionError

    arrays, meta = read_npz(path, what="image file", error=GanDiffusionError, require_meta=False,
                            fix="delete it; the comparison writes it again")
    if not meta and "meta" in arrays:
        meta = json.loads(str(arrays.pop("meta")))
    return arrays["images"], meta


def run(spec: dict[str, Any]) -> int:
    """Train one run, then draw its evaluation samples; writes RUN/run.json when done."""
    from gan_diffusion.runs import RunOptions, train_run
    from gan_diffusion.utils.runlock import run_lock

    out = Path(spec["run_dir"])
    with run_lock(out):  # held across training and evaluation: one writer per run folder
        start = time.perf_counter()
        train_run(RunOptions(**spec["train_options"]))
        train_wall, peak = time.perf_counter() - start, peak_rss_mb()  # before evaluation allocates
        return finish(spec, out, train_wall, peak)


def img2img(spec: dict[str, Any]) -> int:
    """An evaluation-only run: Stable Diffusion image-to-image of real evaluation images
    (compare/img2img.py). Writes config.json (the full record), history.json (no epochs:
    nothing is trained), eval_samples.npz and, last, run.json."""
    from gan_diffusion.compare.img2img import Img2ImgConfig, run_img2img
    from gan_diffusion.data import load_dataset
    from gan_diffusion.utils.runlock import run_lock

    out = Path(spec["run_dir"])
    d = spec["eval_data"]
    with run_lock(out):
        config = Img2ImgConfig.from_dict(spec["config"])
        data = load_dataset(d["dataset"], split=d["split"], data_dir=d.get("data_dir"),
                            image_size=d.get("image_size"))
        images, record = run_img2img(config, spec["backend"], data, spec["n_eval"], spec["seed"],
                                     spec.get("threads"), data.image_shape[:2], EVAL_SEED)
        peak = peak_rss_mb()
        save_images(out / "eval_samples.npz", images, seed=EVAL_SEED, model=spec["model"])
        atomic_write_json(out / "config.json", {
            "model": spec["model"], "backend": spec["backend"], "seed": spec["seed"],
            "evaluation_only": True, "data": {"description": data.description, "size": len(data),
                                              "split": d["split"]}, **record})
        atomic_write_json(out / "history.json", {"epochs": []})
        sample_s = record["seconds"]["sample"]
        atomic_write_json(out / "run.json", {
            "finished": True, "spec": spec, "peak_rss_mb": peak, "train_wall_s": 0.0,
            "evaluation_only": True,
            "sample": {"n": int(len(images)), "seconds": sample_s,
                       "images_per_sec": len(images) / sample_s if sample_s > 0 else None,
                       "kwargs": {}},
            "trajectory": False, "evaluate": {},
            "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
    return 0


def finish(spec: dict[str, Any], out: Path, train_wall: float, peak: float) -> int:
    """Evaluation samples and RUN/run.json of a trained run."""
    from gan_diffusion.backends import load_model

    usage = resource.getrusage(resource.RUSAGE_SELF)

    model = load_model(out / "checkpoints" / "latest.npz", spec["backend"])
    record = evaluation_outputs(model, spec, out)
    atomic_write_json(out / "run.json", {
        "finished": True, "spec": spec, "peak_rss_mb": peak, "train_wall_s": train_wall,
        "cpu_user_s": usage.ru_utime, "cpu_system_s": usage.ru_stime, **record,
        "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
    return 0


def evaluation_outputs(model: Any, spec: dict[str, Any], out: Path) -> dict[str, Any]:
    """What a trained model contributes to the comparison, written to `out`:
    eval_samples.npz (n_eval images, timed), trajectory.npz (models with a trajectory
    method) and the model's own evaluation (spec["evaluate"]). Returns the run.json fields."""
    kwargs = dict(spec.get("sample_kwargs", {}))
    k = int(getattr(getattr(model, "config", None), "num_classes", 0) or 0)
    labels = np.arange(spec["n_eval"]) % k if k else None   # conditional: 0..K-1 in turn
    for n in (8, 9):   # warm-up: TF's reduce_retracing relaxes to any batch after two shapes,
        model.sample(n, seed=EVAL_SEED, **kwargs)   # so the timed call below traces nothing
    t = time.perf_counter()
    fake = model.sample(spec["n_eval"], seed=EVAL_SEED, **kwargs,
                        **({"labels": labels} if k else {}))         # (n_eval, H, W, C) uint8
    sample_s = time.perf_counter() - t
    save_images(out / "eval_samples.npz", fake, seed=EVAL_SEED, sample_kwargs=kwargs,
                labels=None if labels is None else labels.tolist())
    timed = timed_sample(model, spec, k)
    trajectory = spec.get("trajectory")
    if trajectory and hasattr(model, trajectory):
        traj = np.asarray(getattr(model, trajectory)(8, seed=EVAL_SEED, **kwargs))  # (8 * frames, H, W, C)
        save_images(out / "trajectory.npz", traj.astype(np.uint8), method=trajectory, n=8)
    return {"sample": {"n": int(len(fake)), "seconds": sample_s,
                       "images_per_sec": len(fake) / sample_s if sample_s > 0 else None,
                       "kwargs": kwargs},
            **({"timed_sample": timed} if timed else {}),
            "trajectory": (out / "trajectory.npz").exists(),
            "evaluate": evaluate(model, spec) if spec.get("evaluate") else {},
            **stage_times(out)}


def timed_sample(model: Any, spec: dict[str, Any], k: int) -> dict[str, Any] | None:
    """spec["timed_sample_kwargs"] (diffusion: DDIM-50) timed on TIMED_IMAGES images after a
    one-step warm-up at that batch size (TF traces each new shape): {"n", "seconds",
    "ms_per_image", "kwargs"}, or None when the model has no such sampler."""
    from gan_diffusion.compare.models import TIMED_IMAGES

    kwargs = spec.get("timed_sample_kwargs")
    if not kwargs:
        return None
    n = TIMED_IMAGES
    extra = {"labels": np.arange(n) % k} if k else {}
    model.sample(n, seed=EVAL_SEED, **{**kwargs, "steps": 1}, **extra)     # warm-up
    t = time.perf_counter()
    model.sample(n, seed=EVAL_SEED, **kwargs, **extra)
    seconds = time.perf_counter() - t
    return {"n": n, "seconds": seconds, "ms_per_image": 1000.0 * seconds / n, "kwargs": kwargs}


def stage_times(out: Path) -> dict[str, Any]:
    """A two-stage run's first stage (ldm --stage both: OUT/autoencoder/history.json): its
    epochs and seconds, as {"stages": {"autoencoder": {...}}}; {} for one-stage runs."""
    from gan_diffusion.stages import AUTOENCODER_DIR

    path = out / AUTOENCODER_DIR / "history.json"
    if not path.is_file():
        return {}
    secs = [float(e["seconds"]) for e in json.loads(path.read_text())["epochs"]]
    return {"stages": {AUTOENCODER_DIR: {"epochs": len(secs), "seconds": float(sum(secs)),
                                         "steady_epoch_s": float(np.median(secs[1:])) if len(secs) > 1
                                         else None}}}


def evaluate(model: Any, spec: dict[str, Any]) -> dict[str, float]:
    """The model's own evaluation on the first n_eval images of the evaluation split, e.g.
    the VAE's negative ELBO per image: {name: value} for the names in spec["evaluate"]."""
    from gan_diffusion.data import load_dataset

    d = spec["eval_data"]
    data = load_dataset(d["dataset"], split=d["split"], data_dir=d.get("data_dir"),
                        image_size=d.get("image_size"), limit=spec["n_eval"])
    result = model.evaluate(data)
    return {k: float(result[k]) for k in spec["evaluate"]}


def score(spec: dict[str, Any]) -> int:
    """FID/KID of each listed run's evaluation samples against the reference images;
    writes RUN/quality.json (skips runs already scored with the same extractor)."""
    from gan_diffusion.compare.quality import score_samples

    from gan_diffusion.compare.accuracy import class_scores, classifier_for

    real, ref_meta = load_images(spec["reference"])
    for run_dir in map(Path, spec["runs"]):
        target = run_dir / "quality.json"
        if target.exists() and json.loads(target.read_text()).get("extractor") == spec["extractor"]:
            continue
        fake, meta = load_images(run_dir / "eval_samples.npz")
        scores = score_samples(fake, real, spec["extractor"], spec.get("backend"))
        clf = classifier_for(spec.get("dataset", ""), fake.shape[1:])
        if meta.get("labels") is not None and clf is not None:   # a conditional model's samples
            real_labels = ref_meta.get("labels")
            scores.update(class_scores(      # class accuracy and intra-class distance
                fake, np.asarray(meta["labels"]), clf, spec.get("backend") or "torch", real,
                None if real_labels is None else np.asarray(real_labels)))
        atomic_write_json(target, {"extractor": spec["extractor"], "scores": scores})
        fid = scores["fid"]
        print(f"scored {run_dir}: fid {fid['value']:.4g} [{fid['extractor']}], "
              f"kid {scores['kid']['value']:.4g}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    from gan_diffusion.errors import GanDiffusionError

    argv = sys.argv[1:] if argv is None else argv
    kinds = {"run": run, "img2img": img2img, "score": score}
    if len(argv) != 2 or argv[0] not in kinds:
        print("usage: python -m gan_diffusion.compare.worker run|img2img|score SPEC.json",
              file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[1]).read_text())
    try:
        return kinds[argv[0]](spec)
    except (GanDiffusionError, ValueError, FileNotFoundError) as exc:
        print(f"gan-diffusion compare worker: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
