"""Command line: `gan-diffusion train | sample | compare | info | fid | fid-stats | sd` (also `python -m gan_diffusion`).

Model defaults come from the typed configs (one table for the API and the CLI); flags
left unset keep those defaults. Every run folder holds config.json (the full record:
options, model config, versions, seed, threads, machine), history.json, train.log,
samples/epoch_NNNN.png and checkpoints/latest.npz. `train --rerun RUN/config.json` repeats
a recorded run. A VAE run also writes eval.json (negative ELBO, bits/dim, PSNR and SSIM on
held-out images after every epoch), reconstructions.png, interpolations.png and, for
latent_dim 2, manifold.png and latent_scatter.png (docs/vae.md). `train --model ldm --stage
autoencoder|diffusion|both` trains latent diffusion's stages (gan_diffusion/stages.py,
docs/ldm.md). `train` is parsing plus one call: the run itself is gan_diffusion/runs.py.

Train flags default to None ("not given"): a new run fills in the defaults (run_options.DEFAULTS,
the model config), `--resume` and `--rerun` take every option from the record and refuse a
conflicting one.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from gan_diffusion.errors import GanDiffusionError

def cmd_train(args: argparse.Namespace) -> int:
    """Parse into RunOptions, then gan_diffusion.runs.train_run (all the run logic is there)."""
    from gan_diffusion.runs import RunOptions, train_run

    fields = {f.name for f in dataclasses.fields(RunOptions)}
    train_run(RunOptions(**{k: v for k, v in vars(args).items() if k in fields}))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from gan_diffusion.backends import load_model
    from gan_diffusion.utils.images import save_grid

    run = Path(args.run)
    for path in (args.out, args.trajectory, args.forward_strip):
        if path is not None and Path(path).is_dir():
            raise GanDiffusionError(f"{path} is a folder; pass the path of a .png file to write")
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
    print(f"datasets: {', '.join(DATASETS)}, folder:PATH, or tfds:NAME[:SPLIT] (a prepared tensorflow-datasets set)")
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
    t.add_argument("--model", default=None, choices=list_models(trainable=True), help="default: dcgan")
    t.add_argument("--dataset", default=None, help="digits (embedded, offline; the default), mnist, "
                   "cifar10, celeba, eurosat, folder:PATH, tfds:NAME[:SPLIT]")
    t.add_argument("--split", default=None, help="train (default) or test")
    t.add_argument("--color-mode", default=None, choices=("L", "RGB"), help="convert every image to "
                   "grey (L) or RGB (needed for folders that mix both)")
    t.add_argument("--data-dir", default=None, help="dataset cache (default: $GAN_DIFFUSION_DATA_DIR "
                   "or ~/.cache/gan_diffusion/data)")
    t.add_argument("--download", action="store_true", help="download missing files (MNIST), "
                   "checksum-verified")
    t.add_argument("--image-size", type=int, default=None, help="resize images to this side")
    t.add_argument("--limit", type=int, default=None, help="use only the first N images")
    t.add_argument("--epochs", type=int, default=None, help="total epochs of the run (default 5; "
                   "the only option a --resume may change)")
    t.add_argument("--budget-minutes", type=float, default=None, metavar="M", help="stop at the "
                   "first epoch end after M minutes of training (--epochs stays the cap); a "
                   "--resume may change it; a budgeted run cannot be --rerun")
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    t.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the networks (torch)")
    t.add_argument("--conditional", action="store_true", default=None, help="class-conditional model: condition on "
                   "the dataset's labels (sets num_classes; ddpm: with classifier-free guidance)")
    t.add_argument("--optimizer", default=None, choices=OPTIMIZERS,
                   help="optimizer of both networks (default: the model's, Adam); its other "
                   "settings via --set momentum=0.9 etc.")
    t.add_argument("--learning-rate", type=float, default=None)
    t.add_argument("--set", action="append", metavar="NAME=VALUE", help="any model config field")
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--resume", action="store_true", help="continue the run in --out with its "
                   "recorded options (a conflicting option is an error; only --epochs and "
                   "--budget-minutes may change)")
    t.add_argument("--rerun", metavar="CONFIG_JSON", help="repeat the run recorded in a config.json "
                   "exactly (same data, versions and initial weights), or refuse")
    t.add_argument("--allow-version-change", action="store_true", help="let --resume/--rerun run "
                   "under other library or framework versions than recorded (recorded per session)")
    t.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: on a terminal only)")
    t.add_argument("--init", metavar="CHECKPOINT", default=None, help="start from the initial "
                   "state (epoch-0 checkpoint) in this file; if it does not exist yet, write this "
                   "run's initial state there, so later runs (other backends) start identically")
    t.add_argument("--native-rng", action="store_true", default=None, help="draw initial weights and training "
                   "noise with the framework's own RNG instead of the shared NumPy streams")
    t.add_argument("--stage", default=None, choices=("autoencoder", "diffusion", "both"),
                   help="ldm: train the KL autoencoder, the latent diffusion U-Net on a finished "
                   "autoencoder (--autoencoder RUN), or both (OUT/autoencoder, then OUT; the default)")
    t.add_argument("--autoencoder", default=None, metavar="RUN", help="ldm --stage diffusion: the "
                   "run folder of a finished --stage autoencoder run (its sha256 is recorded)")
    t.add_argument("--tensorboard", action="store_true", default=None, help="write TensorBoard event files "
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
    c.add_argument("--models", default=None, help="comma-separated registered models, and the "
                   "evaluation-only sd-img2img (Stable Diffusion image-to-image of the evaluation "
                   "images, compare/img2img.py) (default: all registered of dcgan,wgan-gp,vae,ddpm)")
    c.add_argument("--backends", default=None, help="comma-separated backends (default: tf,torch)")
    c.add_argument("--preset", default=None, choices=("quick", "paper"), help="quick: minutes on "
                   "2 cores on the embedded digits; paper: MNIST, 50 epochs, 3 seeds")
    c.add_argument("--dataset", default=None, help="as for train (default: digits)")
    c.add_argument("--data-dir", default=None)
    c.add_argument("--epochs", type=int, default=None)
    c.add_argument("--budget-minutes", type=float, default=None, metavar="M", help="the same "
                   "wall-clock budget per run: each trains until M minutes of training, at an "
                   "epoch end (--epochs: the cap; default without it 1000)")
    c.add_argument("--seeds", type=int, default=None, help="number of seeds (0..N-1) per model "
                   "and backend")
    c.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    c.add_argument("--image-size", type=int, default=None)
    c.add_argument("--batch-size", type=int, default=None)
    c.add_argument("--threads", type=int, default=None, help="intra-op threads per run "
                   "(default: all cores; quick preset: 2)")
    c.add_argument("--omp-wait", default=None, choices=("passive", "default"), help="OpenMP "
                   "wait policy of every run: default (the runtime's: spin, then sleep; the "
                   "fastest on a quiet machine) or passive (torch degrades far less when other "
                   "jobs share the cores, but runs 8-90 %% slower on a quiet one)")
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
    from gan_diffusion.sd.commands import add_parsers as add_sd_parsers
    add_sd_parsers(sub)      # sd txt2img, sd img2img (gan_diffusion/sd/commands.py)
    return p


# optional dependency -> the pyproject extra that installs it (ModuleNotFoundError's advice)
_EXTRAS = {"tensorflow": "tf", "keras": "tf", "torch": "torch", "tensorboard": "tf",
           "diffusers": "diffusers", "transformers": "diffusers", "safetensors": "diffusers",
           "keras_cv": "sd-tf", "tensorflow_datasets": "tfds"}


def main(argv: list[str] | None = None) -> int:
    from gan_diffusion.errors import DivergenceError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DivergenceError as exc:  # not bad input: the run itself failed
        print(f"gan-diffusion: error: {exc}", file=sys.stderr)
        return 1
    except (GanDiffusionError, ValueError, FileNotFoundError) as exc:
        print(f"gan-diffusion: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional dependency this command needs
        top = (exc.name or "").split(".")[0]
        extra = _EXTRAS.get(top)
        how = f"pip install 'gan_diffusion[{extra}]'" if extra else f"pip install {top}"
        print(f"gan-diffusion: error: this command needs {top}, which is not installed: {how}",
              file=sys.stderr)
        return 2
    except OSError as exc:  # a path that may not be read or written, a full disk, ...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"gan-diffusion: error: {where}{exc.strerror or exc}; check the path, its "
              "permissions and the free space", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
