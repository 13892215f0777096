"""`gan-diffusion fid` and `gan-diffusion fid-stats` (added to the CLI by `add_parsers`).

    gan-diffusion fid PATH_A PATH_B [--extractor auto|inception|lenet-mnist|cnn-cifar10|...]
                      [--backend torch|tf] [--kid] [--isc] [--prc] [--json OUT.json]
    gan-diffusion fid-stats DATASET [--split train|test] [--limit N] [--out FILE.npz]

PATH_A / PATH_B: image folders, .npz statistics files (from fid-stats) or dataset names
("mnist", "cifar10:test"). Defaults come from gan_diffusion.metrics.extractors.DEFAULTS, the
table the Python API uses too.
"""
from __future__ import annotations

import argparse

from gan_diffusion.metrics.extractors import DEFAULTS, EXTRACTORS


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--extractor", default=DEFAULTS["extractor"], choices=["auto", *EXTRACTORS],
                   help="feature network (default auto: Inception if its weights are on disk, "
                   "else lenet-mnist for 28x28x1, cnn-cifar10 for 32x32x3, "
                   "cnn-cifar10-resized32 for other RGB sizes)")
    p.add_argument("--backend", default=DEFAULTS["backend"],
                   help="torch|tf for feature extraction (default: torch if installed)")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"],
                   help="extraction batch size (default: the extractor's)")
    p.add_argument("--data-dir", default=None, help="data folder for dataset names "
                   "(default: $GAN_DIFFUSION_DATA_DIR)")
    p.add_argument("--cache-dir", default=None, help="statistics cache (default: "
                   "$GAN_DIFFUSION_CACHE_DIR/fid-stats or ~/.cache/gan_diffusion/fid-stats)")
    p.add_argument("--limit", type=int, default=None, help="first N images of dataset names only")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: on a terminal only)")


def cmd_fid(args: argparse.Namespace) -> int:
    from gan_diffusion.metrics.api import compute_metrics
    from gan_diffusion.utils.io import atomic_write_json

    scores = compute_metrics(
        args.path_a, args.path_b, fid=True, kid=args.kid, isc=args.isc, prc=args.prc,
        extractor=args.extractor, backend=args.backend, batch_size=args.batch_size,
        progress=args.progress, data_dir=args.data_dir, cache_dir=args.cache_dir,
        limit=args.limit, kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size)
    first = next(iter(scores.values()))
    p = first.params
    print(f"A: {p['real']}\nB: {p['fake']}")
    print(f"extractor: {first.extractor} ({EXTRACTORS[p['extractor_name']].description}); "
          f"backend: {p['backend'] or 'none (statistics only)'}")
    for score in scores.values():
        print(score)
    if args.json:
        atomic_write_json(args.json, {k: s.to_dict() for k, s in scores.items()})
    return 0


def cmd_fid_stats(args: argparse.Namespace) -> int:
    from gan_diffusion.metrics.api import dataset_stats

    st, path, cached = dataset_stats(
        args.dataset, args.split, extractor=args.extractor, backend=args.backend,
        batch_size=args.batch_size, progress=args.progress, data_dir=args.data_dir,
        cache_dir=args.cache_dir, limit=args.limit, out=args.out, refresh=args.refresh)
    print(f"{'reused' if cached else 'wrote'} {path}: {st.n} samples of {st.source or args.dataset}, "
          f"{st.dim} features, extractor {st.extractor}, preprocessing {st.preprocessing!r}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the `fid` and `fid-stats` subcommands to the gan-diffusion parser."""
    f = sub.add_parser("fid", help="FID (and KID, IS, precision/recall) between two image sets")
    f.add_argument("path_a", metavar="PATH_A", help="reference: folder, .npz statistics or "
                   "dataset name (mnist, cifar10:test, ...)")
    f.add_argument("path_b", metavar="PATH_B", help="compared set, same kinds as PATH_A")
    _common(f)
    f.add_argument("--kid", action="store_true", help="also KID (needs images, not statistics)")
    f.add_argument("--isc", action="store_true", help="also the Inception Score of PATH_B")
    f.add_argument("--prc", action="store_true", help="also precision and recall")
    f.add_argument("--kid-subsets", type=int, default=DEFAULTS["kid_subsets"])
    f.add_argument("--kid-subset-size", type=int, default=DEFAULTS["kid_subset_size"])
    f.add_argument("--json", default=None, help="also write the scores to this JSON file")
    f.set_defaults(func=cmd_fid)

    s = sub.add_parser("fid-stats", help="reference feature statistics of a dataset (.npz, cached)")
    s.add_argument("dataset", help="dataset name, e.g. mnist or cifar10 (or mnist:test)")
    s.add_argument("--split", default=None, help=f"train|test (default {DEFAULTS['split']})")
    _common(s)
    s.add_argument("--out", default=None, help="write here (default: the cache file)")
    s.add_argument("--refresh", action="store_true", help="recompute even if a valid cache exists")
    s.set_defaults(func=cmd_fid_stats)
