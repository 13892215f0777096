"""Command line: `gan-diffusion train | sample | compare | info | fid | fid-stats` (also `python -m gan_diffusion`).

Model defaults come from the typed configs (one table for the API and the CLI); flags
left unset keep those defaults. Every run folder holds config.json (the full record:
options, model config, versions, seed, threads, machine), history.json, train.log,
samples/epoch_NNNN.png and checkpoints/latest.npz. `train --rerun RUN/config.json` repeats
a recorded run. A VAE run also writes eval.json (negative ELBO, bits/dim, PSNR and SSIM on
held-out images after every epoch), reconstructions.png, interpolations.png and, for
latent_dim 2, manifold.png and latent_scatter.png (docs/vae.md).
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from gan_diffusion.errors import GanDiffusionError

GRID_SEED, GRID_N = 0, 64
VAE_EVAL_MAX = 10000          # images the VAE is evaluated on after every epoch
VAE_MANIFOLD_N, VAE_MANIFOLD_SCALE = 21, 2.0   # latent_dim 2: 21 x 21 decodes of z in [-2, 2]^2


def _parse_set(items: list[str]) -> dict[str, Any]:
    """["latent_dim=64", "compile=true"] -> {"latent_dim": 64, "compile": True}."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise GanDiffusionError(f"--set expects name=value, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _train_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options that define a run (what `--rerun` replays)."""
    keys = ("backend", "model", "dataset", "split", "image_size", "limit", "epochs", "batch_size",
            "seed", "threads", "compile", "conditional", "optimizer", "learning_rate", "set",
            "init", "native_rng", "tensorboard")
    return {k: getattr(args, k) for k in keys}


def _vae_eval_data(args: argparse.Namespace, data: Any) -> tuple[Any, str]:
    """What a VAE run is evaluated on after every epoch: the test split of mnist/cifar10
    (at most VAE_EVAL_MAX images), else the first VAE_EVAL_MAX training images."""
    from gan_diffusion.data import DataError, load_dataset

    if args.split == "train" and str(args.dataset).lower() in ("mnist", "cifar10"):
        try:
            return load_dataset(args.dataset, split="test", data_dir=args.data_dir,
                                image_size=args.image_size, limit=VAE_EVAL_MAX), "test"
        except DataError as exc:
            print(f"no test split to evaluate on ({exc}); evaluating on training images")
    return data.subset(VAE_EVAL_MAX), "train"


def _vae_figures(model: Any, out: Path, data: Any) -> list[Path]:
    """Reconstructions, interpolations and, for latent_dim 2, the latent manifold and the
    latent scatter of `data` (the evaluation images), written into the run folder."""
    import numpy as np

    from gan_diffusion.utils.images import save_grid
    from gan_diffusion.utils.latent_plots import save_latent_scatter, save_manifold

    x = data.images[:32]
    y = data.labels[:32] if model.num_classes else None
    recon = model.reconstruct(x, y)
    pairs = np.concatenate([x[:16], recon[:16], x[16:32], recon[16:32]])  # rows: x, recon, x, recon
    written = [out / "reconstructions.png", out / "interpolations.png"]
    save_grid(written[0], pairs, 16)
    paths = [model.interpolate(data.images[2 * i], data.images[2 * i + 1], 10,
                               None if y is None else (y[2 * i], y[2 * i + 1])) for i in range(4)]
    save_grid(written[1], np.concatenate(paths), 10)
    if model.config.latent_dim == 2 and not model.num_classes:
        written.append(out / "manifold.png")
        save_manifold(written[-1], *model.manifold(VAE_MANIFOLD_N, VAE_MANIFOLD_SCALE),
                      title=f"decoded z, epoch {model.epoch}")
        if data.labels is not None:
            written.append(out / "latent_scatter.png")
            save_latent_scatter(written[-1], model.latent_means(data), data.labels,
                                title=f"z_mean of {len(data)} {data.name} images, epoch {model.epoch}")
    return written


def cmd_train(args: argparse.Namespace) -> int:
    from gan_diffusion.backends import get_backend
    from gan_diffusion.checkpoint import weights_digest
    from gan_diffusion.data import load_dataset, resolve_data_dir
    from gan_diffusion.protocols import History
    from gan_diffusion.registry import get_spec, make_config
    from gan_diffusion.runinfo import run_info
    from gan_diffusion.utils.images import make_grid, save_grid
    from gan_diffusion.utils.io import atomic_write_json
    from gan_diffusion.vae_base import VAEBase

    if args.rerun:
        recorded = json.loads(Path(args.rerun).read_text())["options"]
        for k, v in recorded.items():
            setattr(args, k, v)
    out = Path(args.out)
    ckpt = out / "checkpoints" / "latest.npz"
    if ckpt.exists() and not args.resume:
        raise GanDiffusionError(f"{out} already holds a run; pass --resume to continue it "
                                "or choose another --out")
    if args.resume and not ckpt.exists():
        raise GanDiffusionError(f"--resume: no checkpoint at {ckpt}")

    backend = get_backend(args.backend)
    threads = backend.set_threads(args.threads)  # before the framework runs its first op
    data = load_dataset(args.dataset, split=args.split, data_dir=args.data_dir,
                        download=args.download, image_size=args.image_size, limit=args.limit)
    if args.resume:
        record = json.loads((out / "config.json").read_text())
        config = get_spec(record["model"]).config_cls.from_dict(record["model_config"])
    else:
        overrides = _parse_set(args.set)
        for flag in ("batch_size", "seed", "optimizer", "learning_rate"):
            if getattr(args, flag, None) is not None:
                overrides[flag] = getattr(args, flag)
        if args.compile:
            overrides["compile"] = True
        if getattr(args, "conditional", False):
            if data.labels is None:
                raise GanDiffusionError(f"--conditional needs a labelled dataset; {data.name} has "
                                        "no labels")
            overrides["num_classes"] = data.num_classes
        config = make_config(args.model, image_shape=data.image_shape, **overrides)
    model = backend.build(args.model, config=config)
    history = History()
    rng = {"mode": "native" if args.native_rng else "controlled"}
    if args.native_rng:  # framework RNG for init and training noise (gan_diffusion/compare/native.py)
        from gan_diffusion.compare.native import apply_native_rng
        rng.update(apply_native_rng(model, backend))
    if args.resume:
        model.restore(ckpt)
        if (out / "history.json").exists():
            history = History.load(out / "history.json")
        rng = {**json.loads((out / "config.json").read_text()).get("rng", {}), **rng}
    else:
        if args.init and Path(args.init).exists():  # the initial state another run wrote
            model.restore(args.init)
            if model.epoch or model.global_step:
                raise GanDiffusionError(f"--init {args.init} is a checkpoint of epoch {model.epoch}, "
                                        "not an initial state; use --resume to continue a run")
            rng["init_checkpoint"] = {"path": str(args.init), "action": "loaded"}
        elif args.init:  # the first run of a comparison records its initial state for the others
            model.save(args.init)
            rng["init_checkpoint"] = {"path": str(args.init), "action": "written"}
        rng["init_sha256"] = weights_digest(model.get_weights())

    eval_data, eval_split, evals = None, "", []
    if isinstance(model, VAEBase):  # negative ELBO, PSNR, SSIM on held-out images every epoch
        eval_data, eval_split = _vae_eval_data(args, data)
        if args.resume and (out / "eval.json").exists():
            evals = json.loads((out / "eval.json").read_text())["epochs"]

    record = {"model": args.model, "model_config": config.to_dict(), "options": _train_options(args),
              "data": {"name": data.name, "description": data.description, "size": len(data),
                       "image_shape": list(data.image_shape),
                       "data_dir": str(resolve_data_dir(args.data_dir))},
              "seed": config.seed, "backend": backend.name, "rng": rng, **run_info(backend, threads)}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", record)
    log = open(out / "train.log", "a")
    writer = None
    if args.tensorboard:  # the backend's tensorboard.py: tf.summary or torch's SummaryWriter
        tb = importlib.import_module(f"{backend.package.__name__}.tensorboard")
        writer = tb.EventWriter(out / "tensorboard")
    remaining = args.epochs - model.epoch
    print(f"training {args.model} on {data.name} ({len(data)} images {data.image_shape}; "
          f"{data.description}) with backend {backend.name}, threads {threads}, "
          f"epochs {model.epoch + 1}..{args.epochs} -> {out}", flush=True)

    def on_epoch_end(m, stats):
        m.save(ckpt)
        images, nrow = m.preview_grid(GRID_N, seed=GRID_SEED)  # conditional: a row per class
        save_grid(out / "samples" / f"epoch_{stats.epoch:04d}.png", images, nrow)
        if writer is not None:  # TensorBoard: losses, time, images/s and the grid, per epoch
            writer.scalars(stats.epoch, {**{f"loss/{k}": v for k, v in stats.losses.items()},
                                         "time/epoch_seconds": stats.seconds,
                                         "time/images_per_sec": stats.images_per_sec})
            writer.image("samples", make_grid(images, nrow), stats.epoch)
            writer.flush()
        history.append(stats)
        history.save(out / "history.json")
        line = stats.log_line(args.epochs)
        if eval_data is not None:
            ev = m.evaluate(eval_data)
            evals.append({"epoch": stats.epoch, **ev})
            atomic_write_json(out / "eval.json", {"split": eval_split, "images": len(eval_data),
                                                  "epochs": evals})
            line += (f"  | {eval_split} neg_elbo {ev['neg_elbo']:.4f}  bpd {ev['bpd']:.4f}  "
                     f"psnr {ev['psnr']:.2f}  ssim {ev['ssim']:.4f}")
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    try:
        if remaining > 0:
            model.fit(data, remaining, on_epoch_end=on_epoch_end, progress=args.progress)
        else:
            print(f"nothing to do: {out} already has {model.epoch} epoch(s)")
    finally:
        log.close()
        if writer is not None:
            writer.close()
    if eval_data is not None:
        written = _vae_figures(model, out, eval_data)
        print(f"wrote {', '.join(p.name for p in written)} ({eval_split} images) to {out}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from gan_diffusion.checkpoint import load_model
    from gan_diffusion.utils.images import save_grid

    run = Path(args.run)
    config_path, ckpt = run / "config.json", run / "checkpoints" / "latest.npz"
    if not config_path.exists() or not ckpt.exists():
        raise GanDiffusionError(f"{run} is not a finished training run (needs config.json and "
                                "checkpoints/latest.npz); pass the --out folder of `train`")
    backend = args.backend or json.loads(config_path.read_text())["backend"]
    model = load_model(ckpt, backend)
    diffusion = {k: getattr(args, k) for k in ("steps", "sampler", "guidance", "eta")
                 if getattr(args, k) is not None}      # diffusion models only
    is_diffusion = hasattr(model, "denoise")
    if (diffusion or args.trajectory or args.forward_strip) and not is_diffusion:
        raise GanDiffusionError("--steps/--sampler/--guidance/--eta/--trajectory/--forward-strip apply "
                                f"to diffusion models only; this run is a {model.config.model}")
    nrow = None
    if args.labels is not None:
        labels = [int(v) for v in args.labels.split(",")]
        images = model.sample(args.n, seed=args.seed, labels=labels[0] if len(labels) == 1 else labels,
                              **diffusion)
        what = f"labels {args.labels}"
    elif model.num_classes:
        nrow = max(1, args.n // model.num_classes)
        images = model.class_grid(nrow, seed=args.seed, **diffusion)
        what = f"{nrow} per class, a row per class"
    else:
        images, what = model.sample(args.n, seed=args.seed, **diffusion), "unconditional"
    save_grid(args.out, images, nrow)
    if diffusion:
        what += ", " + ", ".join(f"{k} {v}" for k, v in diffusion.items())
    print(f"wrote {len(images)} samples ({what}; {backend}, epoch {model.epoch}, seed {args.seed}) "
          f"to {args.out}")
    if args.trajectory:  # x_T -> x_0 of 8 samples, 10 frames each
        kw = {k: v for k, v in diffusion.items() if k != "guidance" or model.num_classes}
        from gan_diffusion.utils.images import make_grid, save_png

        save_png(args.trajectory, make_grid(model.trajectory(8, seed=args.seed, frames=10, **kw), 10),
                 scale=2)
        print(f"wrote the denoising trajectory (8 samples x 10 frames, x_T left) to {args.trajectory}")
    if args.forward_strip:  # q(x_t | x_0) of 8 training images at 8 timesteps
        from gan_diffusion.data import load_dataset

        record = json.loads(config_path.read_text())
        opts = record["options"]
        data = load_dataset(opts["dataset"], split=opts["split"],
                            data_dir=args.data_dir or record["data"]["data_dir"],
                            image_size=opts["image_size"], limit=8)
        save_grid(args.forward_strip, model.forward_strip(data.images[:8], seed=args.seed), 8)
        print(f"wrote the forward-noising strip (8 images at t = 0 ... 999) to {args.forward_strip}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from gan_diffusion.compare.runner import cmd_compare as run

    return run(args)


def cmd_info(args: argparse.Namespace) -> int:
    from gan_diffusion import __version__
    from gan_diffusion.backends import available_backends
    from gan_diffusion.data import DATASETS, resolve_data_dir
    from gan_diffusion.registry import list_models

    print(f"gan_diffusion {__version__}")
    print(f"backends installed: {', '.join(available_backends()) or 'none'}")
    print(f"models: {', '.join(list_models())}")
    print(f"datasets: {', '.join(DATASETS)}, or folder:PATH")
    print(f"data dir: {resolve_data_dir(args.data_dir)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from gan_diffusion.optim import OPTIMIZERS
    from gan_diffusion.registry import list_models

    p = argparse.ArgumentParser(prog="gan-diffusion", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and write a run folder")
    t.add_argument("--backend", default=None, help="tf|tensorflow|torch|pytorch "
                   "(default: $GAN_DIFFUSION_BACKEND)")
    t.add_argument("--model", default="dcgan", choices=list_models())
    t.add_argument("--dataset", default="digits",
                   help="digits (embedded, offline), mnist, cifar10, celeba, eurosat, folder:PATH")
    t.add_argument("--split", default="train")
    t.add_argument("--data-dir", default=None, help="dataset cache (default: $GAN_DIFFUSION_DATA_DIR "
                   "or ~/.cache/gan_diffusion/data)")
    t.add_argument("--download", action="store_true", help="download missing files (MNIST), "
                   "checksum-verified")
    t.add_argument("--image-size", type=int, default=None, help="resize images to this side")
    t.add_argument("--limit", type=int, default=None, help="use only the first N images")
    t.add_argument("--epochs", type=int, default=5, help="total epochs of the run")
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    t.add_argument("--compile", action="store_true", help="torch.compile the networks (torch)")
    t.add_argument("--conditional", action="store_true", help="class-conditional model: condition on "
                   "the dataset's labels (sets num_classes; ddpm: with classifier-free guidance)")
    t.add_argument("--optimizer", default=None, choices=OPTIMIZERS,
                   help="optimizer of both networks (default: the model's, Adam); its other "
                   "settings via --set momentum=0.9 etc.")
    t.add_argument("--learning-rate", type=float, default=None)
    t.add_argument("--set", action="append", metavar="NAME=VALUE", help="any model config field")
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--resume", action="store_true", help="continue the run in --out")
    t.add_argument("--rerun", metavar="CONFIG_JSON", help="repeat the run recorded in a config.json")
    t.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: on a terminal only)")
    t.add_argument("--init", metavar="CHECKPOINT", default=None, help="start from the initial "
                   "state (epoch-0 checkpoint) in this file; if it does not exist yet, write this "
                   "run's initial state there, so later runs (other backends) start identically")
    t.add_argument("--native-rng", action="store_true", help="draw initial weights and training "
                   "noise with the framework's own RNG instead of the shared NumPy streams")
    t.add_argument("--tensorboard", action="store_true", help="write TensorBoard event files "
                   "(scalars per epoch, sample grids) to OUT/tensorboard with the framework's writer")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="sample a grid from a trained run")
    s.add_argument("--run", required=True, help="run folder written by `train`")
    s.add_argument("--n", type=int, default=64, help="images (conditional: per-class grid of "
                   "n // classes columns unless --labels)")
    s.add_argument("--labels", default=None, help="conditional models: one class for all images, "
                   "or n comma-separated classes")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--backend", default=None, help="sample with this backend (default: the run's)")
    s.add_argument("--steps", type=int, default=None, help="diffusion: sampler steps (default: the "
                   "config's sample_steps for DDIM, all T for DDPM)")
    s.add_argument("--sampler", default=None, choices=("ddim", "ddpm"), help="diffusion: sampler")
    s.add_argument("--guidance", type=float, default=None, help="diffusion, conditional: classifier-free "
                   "guidance w, eps_u + w (eps_c - eps_u); 0 unconditional, 1 conditional")
    s.add_argument("--eta", type=float, default=None, help="diffusion: DDIM eta (0 deterministic)")
    s.add_argument("--trajectory", default=None, metavar="PNG", help="diffusion: also save the "
                   "denoising trajectory x_T -> x_0 of 8 samples")
    s.add_argument("--forward-strip", default=None, metavar="PNG", help="diffusion: also save the "
                   "forward-noising strip of 8 training images")
    s.add_argument("--data-dir", default=None, help="dataset cache for --forward-strip")
    s.add_argument("--out", required=True, help="PNG file")
    s.set_defaults(func=cmd_sample)

    c = sub.add_parser("compare", help="train every (model, backend, seed), then tables, plots "
                       "and an HTML report (docs/compare.md)")
    c.add_argument("--models", default=None, help="comma-separated registered models (default: "
                   "all registered of dcgan,wgan-gp,vae,ddpm)")
    c.add_argument("--backends", default=None, help="comma-separated backends (default: tf,torch)")
    c.add_argument("--preset", default=None, choices=("quick", "paper"), help="quick: minutes on "
                   "2 cores on the embedded digits; paper: MNIST, 50 epochs, 3 seeds")
    c.add_argument("--dataset", default=None, help="as for train (default: digits)")
    c.add_argument("--data-dir", default=None)
    c.add_argument("--epochs", type=int, default=None)
    c.add_argument("--seeds", type=int, default=None, help="number of seeds (0..N-1) per model "
                   "and backend")
    c.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    c.add_argument("--image-size", type=int, default=None)
    c.add_argument("--batch-size", type=int, default=None)
    c.add_argument("--threads", type=int, default=None, help="intra-op threads per run "
                   "(default: all cores; quick preset: 2)")
    c.add_argument("--n-eval", type=int, default=None, help="generated and real images for FID/KID")
    c.add_argument("--native-rng", action="store_true", help="each framework's own RNG for "
                   "initial weights and training noise (default: controlled, shared draws)")
    c.add_argument("--extractor", default=None, help="quality feature extractor (default: "
                   "gan_diffusion.compare.quality.DEFAULT_EXTRACTOR)")
    c.add_argument("--score-backend", default=None, help="framework extracting quality features "
                   "(default: the first of --backends)")
    c.add_argument("--set", action="append", metavar="[MODEL.]NAME=VALUE",
                   help="model config field for all models, or for one (dcgan.g_features=32)")
    c.add_argument("--out", required=True, help="comparison folder (rerunning resumes it)")
    c.add_argument("--report-only", action="store_true", help="only rebuild tables, plots and "
                   "report from the finished runs (with the options recorded in OUT/compare.json)")
    c.set_defaults(func=cmd_compare)

    i = sub.add_parser("info", help="backends, models, datasets and data dir")
    i.add_argument("--data-dir", default=None)
    i.set_defaults(func=cmd_info)

    from gan_diffusion.metrics.commands import add_parsers as add_metric_parsers
    add_metric_parsers(sub)  # fid, fid-stats (gan_diffusion/metrics/commands.py)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (GanDiffusionError, ValueError, FileNotFoundError) as exc:
        print(f"gan-diffusion: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
