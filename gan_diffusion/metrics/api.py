"""The metrics API on images: FID, KID, Inception Score and precision/recall from uint8 arrays,
image folders, dataset names or cached statistics, with a feature extractor picked by name.

    from gan_diffusion import metrics
    metrics.fid(real_uint8, fake_uint8)                    # Score, extractor picked by "auto"
    metrics.fid("mnist", "samples/")                       # dataset name (cached stats) vs a folder
    metrics.kid(real, fake, extractor="lenet-mnist", backend="tf")
    metrics.isc(fake)                                       # Inception Score (or IS-LeNet(MNIST))
    precision, recall = metrics.prc(real, fake)
    metrics.compute_metrics(real, fake, fid=True, kid=True)  # features extracted once

Inputs (`real`, `fake`, `images`):
    - uint8 NHWC array (N, H, W, C), C in {1, 3} (float arrays in [0, 1] are accepted too);
    - a folder of images (flat, or class sub-folders; one size and mode), read with PIL;
    - a dataset name of gan_diffusion.data, with an optional split: "mnist" (= "mnist:train"),
      "mnist:test", "cifar10", "cifar10:test", "digits", ... (read from the data dir);
    - a FeatureStats statistics file (.npz) or object (FID only: mean and covariance).
    An existing path wins over a dataset name.

Reference statistics of dataset names are cached as .npz (mean, covariance, n, extractor id,
preprocessing, source) in `stats_cache_dir()`; a cached file is reused only when its extractor
id and preprocessing equal the current extractor's, and recomputed (overwritten) otherwise.

Nothing here imports TensorFlow or PyTorch until features must be extracted.
"""
from __future__ import annotations

import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np

from gan_diffusion.errors import ConfigError
from gan_diffusion.metrics._checks import MetricInputError
from gan_diffusion.metrics.extractors import (DATASET_SHAPES, DEFAULTS, ExtractorEntry,
                                              auto_extractor, backend_name, check_shape,
                                              entry_for_id, get_extractor_entry, load_extractor)
from gan_diffusion.metrics.frechet import FeatureStats, fid_from_stats
from gan_diffusion.metrics.inception_score import inception_score
from gan_diffusion.metrics.kid import kernel_inception_distance
from gan_diffusion.metrics.precision_recall import precision_recall
from gan_diffusion.metrics.score import Score

CACHE_DIR_ENV = "GAN_DIFFUSION_CACHE_DIR"
ImageSource = Union[np.ndarray, str, os.PathLike, FeatureStats]


def stats_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Folder of cached reference statistics: `cache_dir` itself when given, else
    $GAN_DIFFUSION_CACHE_DIR/fid-stats, else $XDG_CACHE_HOME/gan_diffusion/fid-stats
    (~/.cache/gan_diffusion/fid-stats). Never inside the data dir, which may be read-only."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    base = os.environ.get(CACHE_DIR_ENV)
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        base = os.path.join(xdg, "gan_diffusion")
    return Path(base).expanduser() / "fid-stats"


# -- inputs ---------------------------------------------------------------------------------
@dataclass
class Source:
    """One resolved input: images in memory, a dataset (loaded on demand) or statistics."""

    kind: str                                  # "images", "dataset" or "stats"
    description: str
    images: np.ndarray | None = None           # (N, H, W, C) for "images" (and loaded datasets)
    stats: FeatureStats | None = None
    dataset: tuple[str, str] | None = None     # (name, split)

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        if self.images is not None:
            return tuple(int(v) for v in self.images.shape[1:])
        if self.dataset is not None:
            return DATASET_SHAPES.get(self.dataset[0])
        return None


_DATASET_RE = re.compile(r"^([a-z0-9_-]+)(?::(train|test))?$")


def resolve_source(x: ImageSource, what: str = "images") -> Source:
    """Turn an array, folder, .npz statistics file, dataset name or FeatureStats into a Source.

    Raises:
        MetricInputError / DataError: wrong array, missing path, unknown name (naming the fix).
    """
    from gan_diffusion.data import DATASETS, load_image_folder

    if isinstance(x, Source):
        return x
    if isinstance(x, FeatureStats):
        return Source("stats", f"statistics ({x.n} samples, {x.extractor or 'unknown extractor'})",
                      stats=x)
    if isinstance(x, np.ndarray):
        return Source("images", f"array of {len(x)} images", images=check_images(x, what))
    if not isinstance(x, (str, os.PathLike)):
        raise MetricInputError(
            f"{what}: expected a uint8 NHWC array, a folder, a .npz statistics file, a dataset "
            f"name or FeatureStats, got {type(x).__name__}")
    path = Path(x).expanduser()
    if path.is_dir():
        ds = load_image_folder(path)
        return Source("images", f"folder {path} ({len(ds)} images)", images=ds.images)
    if path.is_file():
        if path.suffix != ".npz":
            raise MetricInputError(f"{what}: {path} is a file but not a .npz statistics file; "
                                   "pass a folder of images, a .npz written by fid-stats, or a "
                                   "dataset name")
        st = FeatureStats.load(path)
        return Source("stats", f"statistics {path} ({st.n} samples)", stats=st)
    m = _DATASET_RE.match(str(x).lower())
    names = list(DATASETS)
    if m and m.group(1) in names:
        name, split = m.group(1), m.group(2) or DEFAULTS["split"]
        return Source("dataset", f"{name} {split} split", dataset=(name, split))
    raise MetricInputError(
        f"{what}: {str(x)!r} is neither an existing folder or .npz statistics file nor a dataset "
        f"name ({', '.join(names)}, optionally with ':train' / ':test'); check the path")


def check_images(x: np.ndarray, what: str = "images") -> np.ndarray:
    """Validate an NHWC image batch: uint8 (or float in [0, 1]), C in {1, 3}, N >= 1."""
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or x.shape[0] < 1:
        raise MetricInputError(
            f"{what} must be an NHWC batch (N, H, W, C) with C 1 or 3 and N >= 1, got shape "
            f"{x.shape}; add axes with x[None] / x[..., None]")
    if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
        raise MetricInputError(f"{what} must be uint8 (or float in [0, 1]), got {x.dtype}")
    return x


def _load_dataset_images(src: Source, data_dir, limit: int | None) -> None:
    from gan_diffusion.data import load_dataset

    if src.images is None:
        name, split = src.dataset
        ds = load_dataset(name, split, data_dir=data_dir, limit=limit)
        src.images = ds.images
        src.description = f"{ds.description} ({len(ds)} images)"


# -- extractor choice -----------------------------------------------------------------------
def select_extractor(extractor: str | ExtractorEntry, sources: list[Source]) -> ExtractorEntry:
    """The extractor for these inputs: the named one (checked against statistics files), or
    "auto": the one that made the statistics files, else Inception when its weights are
    present, else the offline network for the images' shape."""
    stat_entries = []
    for src in sources:
        if src.kind == "stats":
            entry = entry_for_id(src.stats.extractor)
            if entry is None:
                raise MetricInputError(
                    f"{src.description} were computed with an unknown extractor "
                    f"{src.stats.extractor!r}; recompute them with gan-diffusion fid-stats")
            stat_entries.append(entry)
    if isinstance(extractor, ExtractorEntry):
        chosen = extractor
    elif extractor != "auto":
        chosen = get_extractor_entry(extractor)
    elif stat_entries:
        chosen = stat_entries[0]
    else:
        shapes = {src.image_shape for src in sources}
        if None in shapes:   # a dataset of unknown shape: look at its images
            shapes = {s for s in shapes if s is not None}
        if len(shapes) > 1:
            raise MetricInputError(f"the inputs have different image shapes {sorted(shapes)}; "
                                   "compare images of one shape")
        chosen = auto_extractor(next(iter(shapes), None))
    for entry, src in zip(stat_entries, [s for s in sources if s.kind == "stats"]):
        if entry.name != chosen.name:
            raise MetricInputError(
                f"{src.description} were computed with {entry.name} ({src.stats.extractor}), "
                f"but the extractor is {chosen.name}; use statistics of one extractor")
    return chosen


# -- features and statistics ----------------------------------------------------------------
def extract(images: np.ndarray, extractor: str = "auto", backend: str | None = None,
            batch_size: int | None = None, progress: bool | None = None, desc: str = "features"
            ) -> tuple[np.ndarray, np.ndarray, str, ExtractorEntry, str]:
    """Features and logits of NHWC images, batch by batch, with a tqdm bar.

    Args:
        images: uint8 NHWC (N, H, W, C).
        extractor: registry name or "auto".
        backend: "torch" / "tf" / None (torch if installed).
        batch_size: None: the extractor's default (DEFAULTS / EXTRACTORS table).
        progress: tqdm bar on stderr; None: only on a terminal.

    Returns:
        (features (N, D) float32, logits (N, K) float32, extractor id, entry, backend).

    Example:
        >>> feats, logits, ext_id, entry, be = extract(mnist_uint8, "lenet-mnist")
    """
    images = check_images(images)
    entry = (extractor if isinstance(extractor, ExtractorEntry) else
             auto_extractor(images.shape[1:]) if extractor == "auto" else
             get_extractor_entry(extractor))
    check_shape(entry, images.shape[1:], desc)
    ext, be = load_extractor(entry.name, backend)
    bs = int(batch_size or entry.batch_size)
    if bs < 1:
        raise ConfigError(f"batch_size must be >= 1, got {bs}")
    from tqdm.auto import tqdm

    feats, logits = [], []
    with tqdm(total=len(images), desc=f"{desc} ({entry.name}, {be})", unit="img",
              disable=(not sys.stderr.isatty()) if progress is None else not progress,
              file=sys.stderr, leave=False) as bar:
        for start in range(0, len(images), bs):
            chunk = images[start:start + bs]
            if entry.name == "inception":
                f, l = ext.features_and_logits(chunk, batch_size=bs, unbiased=True)
            else:
                f, l = ext.features_and_logits(chunk, batch_size=bs)
            feats.append(f)
            logits.append(l)
            bar.update(len(chunk))
        bar.refresh()  # show the final count even when the run was faster than tqdm's interval
    return (np.concatenate(feats), np.concatenate(logits), ext.extractor_id, entry, be)


@dataclass
class _Settings:
    backend: str | None
    batch_size: int | None
    progress: bool | None
    data_dir: Any
    cache_dir: Any
    limit: int | None


def _features(src: Source, entry: ExtractorEntry, s: _Settings, what: str
              ) -> tuple[np.ndarray, np.ndarray, str, str]:
    """(features, logits, extractor id, backend) of an images or dataset source."""
    if src.kind == "stats":
        raise MetricInputError(
            f"{what}: {src.description} hold only a mean and covariance; KID, IS and "
            f"precision/recall need the images: pass an array, a folder or a dataset name")
    if src.kind == "dataset":
        _load_dataset_images(src, s.data_dir, s.limit)
    f, l, ext_id, _, be = extract(src.images, entry, s.backend, s.batch_size, s.progress, what)
    return f, l, ext_id, be


def _cache_path(entry: ExtractorEntry, name: str, split: str, limit: int | None,
                cache_dir) -> Path:
    part = f"-first{limit}" if limit else ""
    return stats_cache_dir(cache_dir) / f"{name}-{split}{part}-{entry.name}.npz"


def dataset_stats(dataset: str, split: str | None = None, extractor: str = "auto",
                  backend: str | None = None, batch_size: int | None = None,
                  progress: bool | None = None, data_dir=None, cache_dir=None,
                  limit: int | None = None, out: str | os.PathLike | None = None,
                  refresh: bool = False) -> tuple[FeatureStats, Path, bool]:
    """Reference statistics of a dataset split, from the cache when valid.

    The cache file (`out`, default stats_cache_dir()/<dataset>-<split>-<extractor>.npz) is
    reused when its extractor id and preprocessing equal the current extractor's; otherwise
    (or with refresh=True) the statistics are recomputed and written atomically.

    Returns:
        (stats, path of the file, whether it came from the cache).

    Example:
        >>> st, path, cached = dataset_stats("mnist", "train", extractor="lenet-mnist")
    """
    from gan_diffusion.data import DATASETS

    name, _, named_split = str(dataset).lower().partition(":")
    split = split or named_split or DEFAULTS["split"]
    if name not in DATASETS:
        raise MetricInputError(f"unknown dataset {dataset!r}; valid names: {', '.join(DATASETS)}")
    src = Source("dataset", f"{name} {split} split", dataset=(name, split))
    settings = _Settings(backend, batch_size, progress, data_dir, cache_dir, limit)
    entry = select_extractor(extractor, [src])
    path = Path(out) if out else _cache_path(entry, name, split, limit, cache_dir)
    if path.is_file() and not refresh:
        try:
            cached = FeatureStats.load(path)
        except MetricInputError as exc:
            warnings.warn(f"ignoring unreadable cached statistics {path}: {exc}", stacklevel=2)
            cached = None
        if (cached is not None and cached.extractor == entry.expected_id
                and cached.preprocessing == entry.preprocessing):
            return cached, path, True
    f, _, ext_id, _ = _features(src, entry, settings, f"{name} {split}")
    st = FeatureStats.from_features(f, ext_id, entry.preprocessing, name=f"{name} {split}",
                                    source=src.description)
    try:
        st.save(path)
    except OSError as exc:
        warnings.warn(f"could not cache statistics at {path} ({exc}); set {CACHE_DIR_ENV} to a "
                      "writable folder", stacklevel=2)
    return st, path, False


def _stats(src: Source, entry: ExtractorEntry, s: _Settings, what: str) -> FeatureStats:
    if src.kind == "stats":
        return src.stats
    if src.kind == "dataset":
        name, split = src.dataset
        st, _, _ = dataset_stats(name, split, entry, s.backend, s.batch_size, s.progress,
                                 s.data_dir, s.cache_dir, s.limit)
        src.description = st.source or src.description
        return st
    f, _, ext_id, _ = _features(src, entry, s, what)
    return FeatureStats.from_features(f, ext_id, entry.preprocessing, name=what,
                                      source=src.description)


# -- the metrics ----------------------------------------------------------------------------
def compute_metrics(real: ImageSource | None, fake: ImageSource, *, fid: bool = True,
                    kid: bool = False, isc: bool = False, prc: bool = False,
                    extractor: str = DEFAULTS["extractor"], backend: str | None = DEFAULTS["backend"],
                    batch_size: int | None = DEFAULTS["batch_size"], progress: bool | None = None,
                    data_dir=None, cache_dir=None, limit: int | None = None,
                    kid_subsets: int = DEFAULTS["kid_subsets"],
                    kid_subset_size: int = DEFAULTS["kid_subset_size"],
                    kid_seed: int = DEFAULTS["kid_seed"], isc_splits: int = DEFAULTS["isc_splits"],
                    prc_k: int = DEFAULTS["prc_k"]) -> dict[str, Score]:
    """Several metrics of `fake` against `real`, extracting each set's features once.

    Args:
        real, fake: inputs (module docstring); `real` may be None when only isc=True.
        fid, kid, isc, prc: which metrics (isc uses `fake` only).
        extractor: "auto" or a registry name (metrics.extractors.EXTRACTORS).
        backend: "torch" / "tf"; None: torch if installed (features agree to ~1e-6).
        batch_size: extraction batch size; None: the extractor's default.
        progress: tqdm bars on stderr; None: only on a terminal.
        data_dir: data folder for dataset names (default: $GAN_DIFFUSION_DATA_DIR).
        cache_dir: statistics cache (default: stats_cache_dir()).
        limit: use only the first N images of dataset names.
        kid_*, isc_splits, prc_k: metric settings (defaults: metrics.extractors.DEFAULTS).

    Returns:
        {"fid": Score, "kid": Score, "is": Score, "precision": Score, "recall": Score} for the
        metrics asked for; each Score is named after its extractor ("FID-LeNet(MNIST)", ...)
        and carries n_real, n_fake, the extractor id and its settings.

    Example:
        >>> scores = compute_metrics("mnist:test", fake_uint8, kid=True)
        >>> print(scores["fid"], scores["kid"])
    """
    need_real = fid or kid or prc
    if need_real and real is None:
        raise MetricInputError("FID, KID and precision/recall need real images or statistics")
    srcs = {"fake": resolve_source(fake, "fake")}
    if need_real:
        srcs["real"] = resolve_source(real, "real")
    entry = select_extractor(extractor, list(srcs.values()))
    # the backend only matters when features are extracted (statistics need none)
    be = None if all(src.kind == "stats" for src in srcs.values()) else backend_name(backend)
    s = _Settings(be, batch_size, progress, data_dir, cache_dir, limit)
    out: dict[str, Score] = {}
    feats: dict[str, tuple] = {}

    def features(role: str) -> tuple:
        if role not in feats:
            f, l, ext_id, _ = _features(srcs[role], entry, s, role)
            feats[role] = (f, l, ext_id)
        return feats[role]

    def params(**kw) -> dict:
        return {"metric_label": entry.label, "extractor_name": entry.name, "backend": be,
                "real": srcs["real"].description if "real" in srcs else None,
                "fake": srcs["fake"].description, **kw}

    if fid:
        st = {}
        for role in ("real", "fake"):
            if (kid or prc or (isc and role == "fake")) and srcs[role].kind != "stats":
                f, _, ext_id = features(role)   # reuse the features extracted for the others
                st[role] = FeatureStats.from_features(f, ext_id, entry.preprocessing, name=role,
                                                      source=srcs[role].description)
            else:
                st[role] = _stats(srcs[role], entry, s, role)
        base = fid_from_stats(st["real"], st["fake"])
        out["fid"] = Score(entry.score_name("fid"), base.value, None, st["real"].n, st["fake"].n,
                           st["real"].extractor or st["fake"].extractor,
                           params(dim=base.params["dim"], preprocessing=entry.preprocessing))
    if kid:
        (fr, _, ext_id), (ff, _, _) = features("real"), features("fake")
        mean, std = kernel_inception_distance(fr, ff, kid_subsets, kid_subset_size, kid_seed)
        out["kid"] = Score(entry.score_name("kid"), mean, std, len(fr), len(ff), ext_id,
                           params(n_subsets=kid_subsets, seed=kid_seed, degree=3,
                                  subset_size=min(kid_subset_size, len(fr), len(ff))))
    if prc:
        (fr, _, ext_id), (ff, _, _) = features("real"), features("fake")
        p, r = precision_recall(fr, ff, prc_k)
        out["precision"] = Score(entry.score_name("precision"), p, None, len(fr), len(ff), ext_id,
                                 params(k=prc_k))
        out["recall"] = Score(entry.score_name("recall"), r, None, len(fr), len(ff), ext_id,
                              params(k=prc_k))
    if isc:
        _, logits, ext_id = features("fake")
        probs = _softmax(logits)
        mean, std = inception_score(probs, isc_splits)
        out["is"] = Score(entry.score_name("is"), mean, std, None, len(logits), ext_id,
                          params(splits=isc_splits, classes=probs.shape[1]))
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def fid(real: ImageSource, fake: ImageSource, extractor: str = DEFAULTS["extractor"],
        backend: str | None = DEFAULTS["backend"], batch_size: int | None = DEFAULTS["batch_size"],
        progress: bool | None = None, **kwargs) -> Score:
    """Frechet distance between the features of `real` and `fake` images.

    Args:
        real, fake: uint8 NHWC arrays (N, H, W, C), image folders, dataset names ("mnist",
            "cifar10:test") or statistics (.npz from fid-stats, FeatureStats).
        extractor: "auto" (Inception if its weights are on disk, else lenet-mnist for 28x28x1,
            cnn-cifar10 for 32x32x3, cnn-cifar10-resized32 for other RGB sizes), or a name of
            metrics.extractors.EXTRACTORS.
        backend: "torch" / "tf" / None (torch if installed).
        batch_size: extraction batch size (None: the extractor's default).
        progress: tqdm bar (None: only on a terminal).
        **kwargs: data_dir, cache_dir, limit (see compute_metrics).

    Returns:
        Score named "FID" (Inception) or "FID-LeNet(MNIST)" / "FID-CNN(CIFAR-10)" /
        "FID-CNN(CIFAR-10)@32px", with
        n_real, n_fake, the extractor id and params (backend, preprocessing, inputs).

    Example:
        >>> s = fid(real_uint8, fake_uint8)          # 28x28x1 without Inception weights
        >>> s.name, s.extractor                       # ('FID-LeNet(MNIST)', 'lenet-mnist@...')
    """
    return compute_metrics(real, fake, fid=True, extractor=extractor, backend=backend,
                           batch_size=batch_size, progress=progress, **kwargs)["fid"]


def kid(real: ImageSource, fake: ImageSource, extractor: str = DEFAULTS["extractor"],
        backend: str | None = DEFAULTS["backend"], batch_size: int | None = DEFAULTS["batch_size"],
        progress: bool | None = None, n_subsets: int = DEFAULTS["kid_subsets"],
        subset_size: int = DEFAULTS["kid_subset_size"], seed: int = DEFAULTS["kid_seed"],
        **kwargs) -> Score:
    """Kernel Inception Distance (unbiased MMD^2, cubic kernel, mean and std over subsets).

    Inputs and extractor as `fid`, but no statistics files (KID needs the features).

    Example:
        >>> kid(real_uint8, fake_uint8).value
    """
    return compute_metrics(real, fake, fid=False, kid=True, extractor=extractor, backend=backend,
                           batch_size=batch_size, progress=progress, kid_subsets=n_subsets,
                           kid_subset_size=subset_size, kid_seed=seed, **kwargs)["kid"]


def isc(images: ImageSource, extractor: str = DEFAULTS["extractor"],
        backend: str | None = DEFAULTS["backend"], batch_size: int | None = DEFAULTS["batch_size"],
        progress: bool | None = None, splits: int = DEFAULTS["isc_splits"], **kwargs) -> Score:
    """Inception Score of images (with an offline classifier: "IS-LeNet(MNIST)" etc., the
    same formula on its 10-class softmax). Inception logits leave out the fc bias.

    Example:
        >>> isc(fake_uint8).value
    """
    return compute_metrics(None, images, fid=False, isc=True, extractor=extractor, backend=backend,
                           batch_size=batch_size, progress=progress, isc_splits=splits,
                           **kwargs)["is"]


def prc(real: ImageSource, fake: ImageSource, extractor: str = DEFAULTS["extractor"],
        backend: str | None = DEFAULTS["backend"], batch_size: int | None = DEFAULTS["batch_size"],
        progress: bool | None = None, k: int = DEFAULTS["prc_k"], **kwargs) -> tuple[Score, Score]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of `fake` against `real`.

    Returns:
        (precision Score, recall Score).

    Example:
        >>> p, r = prc(real_uint8, fake_uint8)
    """
    out = compute_metrics(real, fake, fid=False, prc=True, extractor=extractor, backend=backend,
                          batch_size=batch_size, progress=progress, prc_k=k, **kwargs)
    return out["precision"], out["recall"]
