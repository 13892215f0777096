"""Name-keyed feature extractors and the one table of metric defaults (API and CLI).

    name                   label               network                       images      features
    inception              Inception           FID Inception-v3 (2015-12-05) any size    pool3 2048
    lenet-mnist            LeNet(MNIST)        shipped LeNet, MNIST          28x28 grey  fc 128
    cnn-cifar10            CNN(CIFAR-10)       shipped CNN, CIFAR-10 JPEG    32x32 RGB   pooled 192
    cnn-cifar10-resized32  CNN(CIFAR-10)@32px  that CNN after a resize to    any RGB     pooled 192
                                               32x32 (metrics/resized.py)
    lenet-mnist-resized28  LeNet(MNIST)@28px   the LeNet after a resize to   any grey    fc 128
                                               28x28 (metrics/resized.py)

Scores are named after the extractor: "FID" only for Inception; "FID-LeNet(MNIST)",
"FID-CNN(CIFAR-10)", "FID-CNN(CIFAR-10)@32px" and "FID-LeNet(MNIST)@28px" for the offline
networks, whose numbers are not comparable with Inception FIDs (or with each other).
`extractor="auto"` picks Inception when its weight file is already on disk (never
downloading), else the offline network for the image shape: 28x28x1 -> lenet-mnist, 32x32x3
-> cnn-cifar10, any other HxWx3 -> cnn-cifar10-resized32, any other HxWx1 ->
lenet-mnist-resized28 (e.g. MNIST at 32x32 for StyleGAN2, whose side is a power of two).

Nothing here imports TensorFlow or PyTorch: `load_extractor` imports the backend module on use.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from gan_diffusion.errors import ConfigError, UnknownNameError
from gan_diffusion.metrics.resized import ResizedExtractor, resized_id
from gan_diffusion.models import classifiers as clf_spec
from gan_diffusion.models import inception as inc_spec

# One table of defaults, read by gan_diffusion.metrics.api and the `fid` / `fid-stats` CLI.
DEFAULTS: dict[str, Any] = {
    "extractor": "auto",
    "backend": None,          # None: torch if installed, else tf (see default_backend)
    "batch_size": None,       # None: the extractor's own (below)
    "split": "train",         # reference split of a dataset name ("mnist" = "mnist:train")
    "kid_subsets": 100,       # KID: subsets (torch-fidelity's default)
    "kid_subset_size": 1000,  # KID: samples per subset (clipped to the set sizes, with a warning)
    "kid_seed": 0,
    "isc_splits": 10,         # Inception Score: splits
    "prc_k": 3,               # precision/recall: k-th neighbour (Kynkaanniemi et al.)
}


@dataclass(frozen=True)
class ExtractorEntry:
    """One registered feature extractor.

    Attributes:
        name: registry name (what `extractor=` and `--extractor` take).
        label: how scores are named: "FID" for Inception, else "FID-<label>".
        module: backend module with `build(...)` (gan_diffusion.<backend>_backend.<module>).
        id_prefix: what its extractor ids start with (to recognise statistics files).
        dataset: the dataset it was trained on / is meant for (None: any).
        image_shape: the (H, W, C) it takes (None: any size, 1 or 3 channels; a None
            entry: any value there, e.g. (None, None, 3) any size of RGB).
        feature_dim: length of a feature vector.
        batch_size: default batch size for extraction.
        preprocessing: what happens to images before the network (stored with statistics).
        description: one line for listings and reports.
        network: the classifier it builds (models/classifiers.py; None: `name`).
        resize_to: side the images are resized to before the network (None: no resize;
            metrics/resized.py does it in NumPy/PIL, the same for both backends).
    """

    name: str
    label: str
    module: str
    id_prefix: str
    dataset: str | None
    image_shape: tuple[int, int, int] | None
    feature_dim: int
    batch_size: int
    preprocessing: str
    description: str
    network: str | None = None
    resize_to: int | None = None

    def score_name(self, metric: str) -> str:
        """"FID" / "KID" / "IS" / "precision" for Inception, "FID-LeNet(MNIST)" etc. otherwise."""
        base = {"fid": "FID", "kid": "KID", "is": "IS"}.get(metric, metric)
        return base if self.name == "inception" else f"{base}-{self.label}"

    @property
    def expected_id(self) -> str:
        """The extractor id its default weights give (without building it): the official
        Inception id, or "<name>@<sha256 prefix>" of the shipped classifier weights."""
        if self.name == "inception":
            return inc_spec.EXTRACTOR_ID
        spec = clf_spec.get_classifier(self.network or self.name)
        inner = clf_spec.extractor_id(spec, spec.weights_sha256, "shipped")
        return resized_id(self.name, spec.name, inner) if self.resize_to else inner

    def build(self, backend: str) -> Any:
        """Build the extractor object in `backend` ("tf" or "torch") with its weights."""
        module = importlib.import_module(f"gan_diffusion.{backend}_backend.{self.module}")
        if self.name == "inception":
            return module.build("fid")
        clf = module.build(self.network or self.name, "shipped")
        return ResizedExtractor(clf, self.resize_to, self.name) if self.resize_to else clf


def _classifier_entry(name: str, batch_size: int) -> ExtractorEntry:
    spec = clf_spec.get_classifier(name)
    return ExtractorEntry(
        name, spec.label, "classifiers", spec.name, spec.dataset, spec.image_shape,
        spec.feature_dim, batch_size, spec.preprocessing,
        f"{spec.label}: the project's own {spec.dataset} classifier (shipped weights), "
        f"{spec.feature_dim} penultimate features; not comparable with Inception FID")


def _resized_entry(network: str, batch_size: int, what: str, features: str) -> ExtractorEntry:
    """"<network>-resized<side>": the shipped classifier on images of any size (its channels)
    resized to its side first (metrics/resized.py)."""
    spec = clf_spec.get_classifier(network)
    side, _, c = spec.image_shape
    name, label = f"{network}-resized{side}", f"{spec.label}@{side}px"
    return ExtractorEntry(
        name, label, "classifiers", name, spec.dataset, (None, None, c), spec.feature_dim,
        batch_size,
        f"HxWx{c} uint8 -> centre crop to square, PIL BICUBIC resize to {side}x{side} -> x/127.5-1",
        f"{label}: the shipped {what} on {'RGB' if c == 3 else 'grey'} images of any size "
        f"resized to {side}x{side} (centre crop to square, PIL BICUBIC), {spec.feature_dim} "
        f"{features} features; not comparable with Inception FID, nor with FID-{spec.label} of "
        f"native {side}x{side} images",
        network=network, resize_to=side)


EXTRACTORS: dict[str, ExtractorEntry] = {
    "inception": ExtractorEntry(
        "inception", "Inception", "inception", inc_spec.EXTRACTOR_ID, None, None,
        inc_spec.FEATURE_DIM, 50,
        "HxWx{1,3} -> [0,1] -> bilinear 299x299 (align_corners=False) -> 2x-1",
        "FID Inception-v3 (pytorch-fid's port of the 2015-12-05 TF graph), pool3 features; "
        "needs pt_inception-2015-12-05-6726825d.pth"),
    "lenet-mnist": _classifier_entry("lenet-mnist", 1000),
    "cnn-cifar10": _classifier_entry("cnn-cifar10", 500),
    "cnn-cifar10-resized32": _resized_entry("cnn-cifar10", 500, "CIFAR-10 CNN", "pooled"),
    "lenet-mnist-resized28": _resized_entry("lenet-mnist", 1000, "MNIST LeNet", "fc"),
}

# Offline extractor per image shape, for extractor="auto" without the Inception weights;
# RGB images of any other size get AUTO_RGB_FALLBACK.
AUTO_BY_SHAPE = {(28, 28, 1): "lenet-mnist", (32, 32, 3): "cnn-cifar10"}
AUTO_RGB_FALLBACK = "cnn-cifar10-resized32"
AUTO_GREY_FALLBACK = "lenet-mnist-resized28"   # grey images of any other size
# Image shapes of dataset names (to pick an extractor without loading the data; celeba and
# eurosat at their default size).
DATASET_SHAPES = {"mnist": (28, 28, 1), "digits": (28, 28, 1), "cifar10": (32, 32, 3),
                  "celeba": (64, 64, 3), "eurosat": (64, 64, 3)}


def get_extractor_entry(name: str) -> ExtractorEntry:
    """The registered extractor `name`; UnknownNameError lists the valid ones (and "auto")."""
    if name not in EXTRACTORS:
        raise UnknownNameError("extractor", name, [*EXTRACTORS, "auto"])
    return EXTRACTORS[name]


def entry_for_id(extractor_id: str) -> ExtractorEntry | None:
    """The entry whose ids start like `extractor_id` (from a statistics file), or None; the
    longest prefix wins ("cnn-cifar10-resized32@..." is not "cnn-cifar10")."""
    found = [e for e in EXTRACTORS.values() if extractor_id.startswith(e.id_prefix)]
    return max(found, key=lambda e: len(e.id_prefix), default=None)


def inception_weights_present() -> bool:
    """Whether the official FID Inception weight file is on disk (searched, never downloaded;
    a file with the wrong checksum counts as absent)."""
    try:
        inc_spec.find_inception_weights(download=False)
    except inc_spec.PretrainedWeightsError:
        return False
    return True


def offline_extractor(shape: tuple[int, ...] | None) -> str | None:
    """The offline network for images of `shape` (H, W, C): its own (AUTO_BY_SHAPE), else the
    resizing fallback for its channels, else None."""
    if shape is None:
        return None
    if shape in AUTO_BY_SHAPE:
        return AUTO_BY_SHAPE[shape]
    channels = shape[-1] if len(shape) == 3 else None
    return {1: AUTO_GREY_FALLBACK, 3: AUTO_RGB_FALLBACK}.get(channels)


def auto_extractor(image_shape: tuple[int, ...] | None) -> ExtractorEntry:
    """extractor="auto": Inception when its weights are present, else the offline network for
    the image shape (28x28x1 -> lenet-mnist, 32x32x3 -> cnn-cifar10, any other HxWx3 ->
    cnn-cifar10-resized32, any other HxWx1 -> lenet-mnist-resized28).

    Raises:
        ConfigError: no Inception weights and no offline network for this shape (an unknown
            shape, or neither 1 nor 3 channels).
    """
    if inception_weights_present():
        return EXTRACTORS["inception"]
    shape = tuple(int(v) for v in image_shape) if image_shape is not None else None
    name = offline_extractor(shape)
    if name is not None:
        return EXTRACTORS[name]
    what = "these inputs" if shape is None else f"{'x'.join(map(str, shape))} images"
    raise ConfigError(
        f"extractor='auto' found no FID Inception weights ({inc_spec.WEIGHTS_FILE}; looked in: "
        f"{', '.join(map(str, inc_spec.search_dirs()))}) and there is no offline extractor for "
        f"{what} (offline ones: 28x28x1 -> lenet-mnist, 32x32x3 -> cnn-cifar10, other HxWx3 "
        f"-> {AUTO_RGB_FALLBACK}, other HxWx1 -> {AUTO_GREY_FALLBACK}). Put the "
        f"weights file in ${inc_spec.WEIGHTS_DIR_ENV} or the torch hub cache (from "
        f"{inc_spec.WEIGHTS_URL}), or pass an explicit extractor= / --extractor")


def default_backend() -> str:
    """The backend for feature extraction when none is given: torch if installed, else tf.

    torch first because it reads the official Inception .pth natively (TF needs torch or a
    converted .npz for it) and imports faster (~1.6 s vs ~3.7 s); TF extracts the small networks'
    features faster once loaded (docs/feature_nets.md). The features agree between backends
    to ~1e-6 relative (tests/metrics/test_classifiers.py, tests/metrics/test_inception.py), so
    scores do not depend on the choice.
    """
    from gan_diffusion.backends import available_backends

    found = available_backends()
    for name in ("torch", "tf"):
        if name in found:
            return name
    from gan_diffusion.errors import BackendNotAvailableError

    raise BackendNotAvailableError(
        "feature extraction needs torch or tensorflow, and neither is installed; install one "
        "with pip install 'gan_diffusion[torch]' (or '[tf]'), or pass precomputed statistics (.npz)")


_LOADED: dict[tuple[str, str], Any] = {}


def backend_name(backend: str | None) -> str:
    """Canonical backend name ("tf"/"torch") of an alias, or `default_backend()` for None."""
    from gan_diffusion.backends import canonical_backend_name

    return canonical_backend_name(backend) if backend else default_backend()


def load_extractor(name: str, backend: str | None = None) -> tuple[Any, str]:
    """The extractor object `name` in `backend` (built once per process), and the backend name.

    Example:
        >>> ext, be = load_extractor("lenet-mnist")          # torch if installed
        >>> ext.features(images).shape, ext.extractor_id      # ((N, 128), 'lenet-mnist@...')
    """
    from gan_diffusion.backends import get_backend

    entry = get_extractor_entry(name)
    be = backend_name(backend)
    get_backend(be)  # clear BackendNotAvailableError when the framework is missing
    key = (entry.name, be)
    if key not in _LOADED:
        _LOADED[key] = entry.build(be)
    return _LOADED[key], be


def check_shape(entry: ExtractorEntry, image_shape: tuple[int, ...], what: str) -> None:
    """ConfigError unless `entry` accepts images of `image_shape` (naming the fix)."""
    shape = tuple(int(v) for v in image_shape)
    if entry.image_shape is None:
        if len(shape) != 3 or shape[-1] not in (1, 3):
            raise ConfigError(f"{what}: the {entry.name} extractor takes HxWx1 or HxWx3 images, "
                              f"got {shape}")
        return
    if None in entry.image_shape:   # e.g. (None, None, 3): any size, RGB
        fits = len(shape) == 3 and all(e in (None, v) for e, v in zip(entry.image_shape, shape))
        if not fits:
            want = "x".join("*" if e is None else str(e) for e in entry.image_shape)
            hint = offline_extractor(shape)
            raise ConfigError(
                f"{what} are {'x'.join(map(str, shape))} images, but the {entry.name} extractor "
                f"takes {want} (any size, {entry.image_shape[-1]} channels) only; "
                + (f"use extractor='{hint}'" if hint else "use extractor='inception' (needs its "
                   "weights)"))
        return
    if shape != tuple(entry.image_shape):
        hint = offline_extractor(shape)
        raise ConfigError(
            f"{what} are {'x'.join(map(str, shape))} images, but the {entry.name} extractor takes "
            f"{'x'.join(map(str, entry.image_shape))} ({entry.dataset}) only and does not resize; "
            + (f"use extractor='{hint}'" if hint else "use extractor='inception' (any size, needs "
               "its weights)"))
