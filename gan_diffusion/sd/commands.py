"""`gan-diffusion sd txt2img | img2img` (added to the CLI by `add_parsers`).

    gan-diffusion sd txt2img --backend tf|torch --weights DIR|FILE|random:SEED --prompt TEXT
                  [--prompt TEXT ...] [--negative-prompt TEXT] [--n N] [--seed S]
                  [--steps 25] [--guidance 7.5] [--size 512] [--scheduler ddim] [--dtype float32]
                  --out DIR
    gan-diffusion sd img2img ... --input FILE_OR_FOLDER [--strength 0.8]

OUT gets one PNG per image (image_NNNN.png), grid.png and record.json: the weights' id and
source, the scheduler and its config, prompts, seeds, every setting, what was changed about
the inputs (resized or converted images, truncated prompts), timings (text encoding, U-Net
steps, VAE) and the machine record of training runs (versions, threads, load). The folder is
written beside its final name and renamed into place at the end, so a failure leaves nothing.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np

from gan_diffusion.errors import ConfigError, GanDiffusionError
from gan_diffusion.sd.architectures import ARCHITECTURES
from gan_diffusion.sd.config import SCHEDULERS, SD_DTYPES, SIZE_MULTIPLE

DEFAULTS = {"weights": "random:0", "n": 1, "seed": 0, "steps": 25, "guidance": 7.5, "size": 512,
            "strength": 0.8, "scheduler": "ddim", "dtype": "float32", "model": "sd-v1"}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    sd = sub.add_parser("sd", help="Stable Diffusion text-to-image and image-to-image")
    modes = sd.add_subparsers(dest="mode", required=True)
    for mode in ("txt2img", "img2img"):
        p = modes.add_parser(mode, help=("an image from each prompt" if mode == "txt2img" else
                                         "prompt-guided edits of input images"))
        p.add_argument("--backend", default=None, help="tf|torch (default: $GAN_DIFFUSION_BACKEND)")
        p.add_argument("--model", default=DEFAULTS["model"], choices=("sd-v1", "sd-v2"))
        p.add_argument("--weights", default=DEFAULTS["weights"], help="a diffusers checkpoint "
                       "folder, a CompVis .ckpt/.safetensors file, or random:SEED (seeded "
                       "full-size random weights; default random:0)")
        p.add_argument("--tokenizer", default="", help="for a single-file checkpoint (which "
                       "holds none): a folder with the CLIP vocab.json and merges.txt")
        p.add_argument("--prompt", action="append", default=None, help="a prompt (repeat for "
                       "several; one image per prompt and seed)")
        p.add_argument("--negative-prompt", default="", help="what guidance steers away from")
        p.add_argument("--n", type=int, default=DEFAULTS["n"], help="images per prompt")
        p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="image k of a prompt "
                       "uses seed + k")
        p.add_argument("--steps", type=int, default=DEFAULTS["steps"])
        p.add_argument("--guidance", type=float, default=DEFAULTS["guidance"],
                       help="classifier-free guidance scale (1: none)")
        p.add_argument("--size", type=int, default=DEFAULTS["size"], help="image side in pixels, "
                       "a multiple of 8 (tf: of 64)")
        p.add_argument("--scheduler", default=DEFAULTS["scheduler"], choices=tuple(SCHEDULERS))
        p.add_argument("--dtype", default=DEFAULTS["dtype"], choices=SD_DTYPES)
        p.add_argument("--device", default="cpu", help="torch: cpu, cuda or cuda:N")
        p.add_argument("--threads", type=int, default=None, help="intra-op threads")
        p.add_argument("--jit-compile", action="store_true", help="XLA (tf) / torch.compile")
        p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
        if mode == "img2img":
            p.add_argument("--input", required=True, help="an image file or a folder of images "
                           "(one output per input image, prompt and seed)")
            p.add_argument("--strength", type=float, default=DEFAULTS["strength"],
                           help="how much of the schedule to run, in (0, 1]")
        p.add_argument("--out", required=True, help="output folder (must not exist or be empty)")
        p.set_defaults(func=cmd_sd)


def _check(args: argparse.Namespace, backend: str) -> None:
    """Everything that can be refused before a model is built."""
    if not args.prompt:
        raise ConfigError("no prompt: pass --prompt TEXT (repeat it for several prompts)")
    for name in ("n", "steps", "size"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {args.seed}")
    timesteps = ARCHITECTURES[args.model].scheduler["num_train_timesteps"]
    if args.steps > timesteps:
        raise ConfigError(f"--steps {args.steps} is more than the schedule's {timesteps} timesteps")
    multiple = SIZE_MULTIPLE[backend]
    if args.size % multiple:
        lower = max(multiple, args.size // multiple * multiple)
        raise ConfigError(f"--size {args.size} is not a multiple of {multiple} (the {backend} "
                          f"backend's U-Net and VAE need it): use {lower} or {lower + multiple}")
    if args.mode == "img2img" and not 0 < args.strength <= 1:
        raise ConfigError(f"--strength must be in (0, 1], got {args.strength}")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GanDiffusionError(f"--out {out} exists and is not an empty folder; choose a new folder")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise GanDiffusionError(f"--out {out} cannot be created ({parent} is "
                                f"{'not a folder' if not parent.is_dir() else 'not writable'}); "
                                "choose a folder path you may write")


def cmd_sd(args: argparse.Namespace) -> int:
    import gan_diffusion
    from gan_diffusion.backends import BACKEND_ENV, canonical_backend_name
    from gan_diffusion.runinfo import run_info
    from gan_diffusion.utils.images import image_files, make_grid, save_png
    from gan_diffusion.utils.io import atomic_folder, atomic_write_json

    name = args.backend or os.environ.get(BACKEND_ENV)
    if not name:
        raise ConfigError(f"no backend: pass --backend tf or --backend torch (or set {BACKEND_ENV})")
    backend_name = canonical_backend_name(name)
    _check(args, backend_name)
    inputs = image_files(args.input) if args.mode == "img2img" else [None]
    backend = gan_diffusion.get_backend(backend_name)
    threads = backend.set_threads(args.threads) if args.threads else None
    t0 = time.perf_counter()
    model = backend.build(args.model, weights=args.weights, tokenizer=args.tokenizer, dtype=args.dtype,
                          scheduler=args.scheduler, jit_compile=args.jit_compile,
                          device=args.device)
    build_seconds = time.perf_counter() - t0

    jobs = [(p, k, f) for f in inputs for p in args.prompt for k in range(args.n)]
    images, items, notes, seconds = [], [], [], []
    for prompt, k, init in jobs:   # one image per call: its noise depends on its seed only
        kwargs = {"init_image": init, "strength": args.strength} if init is not None else {}
        with warnings.catch_warnings():   # a truncated prompt is reported in model.notes
            warnings.simplefilter("ignore", UserWarning)
            images.append(model.sample(1, seed=args.seed + k, prompt=prompt,
                                       negative_prompt=args.negative_prompt, steps=args.steps,
                                       guidance=args.guidance, size=args.size,
                                       progress=args.progress, **kwargs)[0])
        notes += model.notes
        seconds.append(model.last_result.seconds)
        items.append({"file": f"image_{len(items):04d}.png", "prompt": prompt,
                      "seed": args.seed + k, "input": None if init is None else str(init),
                      "timesteps": model.last_result.timesteps})

    out = Path(args.out)
    scheduler = model.make_scheduler()
    with atomic_folder(out) as stage:   # all or nothing
        for item, image in zip(items, images):
            save_png(stage / item["file"], image)
        save_png(stage / "grid.png", make_grid(np.stack(images), nrow=len(args.prompt) * args.n))
        atomic_write_json(stage / "record.json", {
            "command": f"sd {args.mode}", "model": args.model, "backend": backend_name,
            "weights": {"id": model.weights_id, **model.source},
            "config": model.config.to_dict(),
            "scheduler": {"name": args.scheduler, "class": type(scheduler).__name__,
                          "config": model.arch.scheduler},
            "settings": {k: getattr(args, k) for k in ("steps", "guidance", "size", "n", "seed",
                                                       "negative_prompt", "strength")
                         if hasattr(args, k)},
            "images": items, "notes": notes,
            "seconds": {"build": build_seconds, "per_image": seconds},
            **run_info(backend, threads)})
    for note in notes:
        print(f"note: {note}")
    per = sum(s["total"] for s in seconds) / len(seconds)
    print(f"wrote {len(images)} images, grid.png and record.json to {out} ({backend_name}, "
          f"weights {model.weights_id}, {args.scheduler} {args.steps} steps, {per:.1f} s/image)")
    return 0
