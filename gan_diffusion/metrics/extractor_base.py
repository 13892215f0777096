"""What the feature extractors of both backends share, framework-free: canonical weights,
batching images into features and logits, ids, weight files, `build`.

    FeatureExtractor       get/set_weights, init_random, features_and_logits, features, logits
    InceptionExtractorBase + load_fid_weights, unbiased logits, build(weights, seed)
    ClassifierBase         + load_weights, train(False) while extracting, build(name, weights, seed)

A backend class (tf_backend/inception.py, torch_backend/classifiers.py, ...) adds only its
framework's part: the network, `preprocess` (NHWC NumPy -> framework tensor), `_forward`
(tensor -> features, logits tensors with a `.numpy()`), and the `_to_canonical` / `_assign`
functions of its layers module. The numbers therefore come from the backends alone.

Nothing here imports TensorFlow or PyTorch.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from gan_diffusion.errors import ConfigError
from gan_diffusion.models import classifiers as clf_spec
from gan_diffusion.models import inception as inc_spec
from gan_diffusion.models.plan import check_weights


def batches(n: int, batch_size: int) -> list[slice]:
    """Consecutive slices of at most `batch_size` covering range(n)."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


class FeatureExtractor:
    """NHWC images -> features (N, feature_dim) and logits (N, num_classes), batch by batch.

    Subclasses set `_tensors` ({canonical name: (framework variable, kind)}), the hooks below,
    and `extractor_id`.
    """

    backend_name: str                               # "tf" / "torch"
    batch_size: int                                 # default batch size of `features` etc.
    feature_dim: int
    num_classes: int
    _tensors: dict[str, tuple[Any, str]]
    _to_canonical: Callable[[Any, str], np.ndarray]  # the backend layers module's functions
    _assign: Callable[[Any, str, np.ndarray], None]

    # -- hooks ----------------------------------------------------------------------------
    def preprocess(self, images: np.ndarray) -> Any:
        """NHWC uint8 (or float in [0, 1]) -> the network's input tensor."""
        raise NotImplementedError

    def _forward(self, x: Any) -> tuple[Any, Any]:
        """Input tensor -> features (b, F), logits (b, K) tensors (inference)."""
        raise NotImplementedError

    def _weight_shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def _extractor_id(self, sha256: str | None, label: str) -> str:
        raise NotImplementedError

    def _random_weights(self, seed: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    # -- weights --------------------------------------------------------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        """Canonical weights (float32 NumPy, channels-last; docs/weights.md)."""
        return {name: self._to_canonical(v, kind) for name, (v, kind) in self._tensors.items()}

    def set_weights(self, weights: dict[str, np.ndarray], label: str = "custom",
                    sha256: str | None = None) -> None:
        """Load canonical weights; `label`/`sha256` name their origin in `extractor_id`."""
        check_weights(weights, self._weight_shapes(), self._name)
        for name, (v, kind) in self._tensors.items():
            self._assign(v, kind, weights[name])
        self.extractor_id = self._extractor_id(sha256, label)

    def init_random(self, seed: int = 0) -> None:
        """Seeded NumPy random weights, the same in both backends (tests, training start)."""
        self.set_weights(self._random_weights(seed), label=f"random:seed={seed}")

    # -- images ---------------------------------------------------------------------------
    def features_and_logits(self, images: np.ndarray, batch_size: int | None = None
                            ) -> tuple[np.ndarray, np.ndarray]:
        """Features (N, F) and logits (N, K), float32, computed batch by batch
        (batch_size None: the extractor's default, `self.batch_size`)."""
        n = len(images)
        feats = np.empty((n, self.feature_dim), np.float32)
        logits = np.empty((n, self.num_classes), np.float32)
        for s in batches(n, batch_size or self.batch_size):
            f, l = self._forward(self.preprocess(images[s]))                 # (b, F), (b, K)
            feats[s], logits[s] = f.numpy(), l.numpy()
        return feats, logits

    def features(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Features (N, F) float32 of NHWC images (uint8, or float in [0, 1]).

        Example:
            >>> ext.features(np.zeros((4, 32, 32, 3), np.uint8), batch_size=2).shape
            (4, 2048)
        """
        return self.features_and_logits(images, batch_size)[0]

    def logits(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Class logits (N, K) float32 of NHWC images."""
        return self.features_and_logits(images, batch_size)[1]


class InceptionExtractorBase(FeatureExtractor):
    """FID Inception-v3: pool3 features (N, 2048), fc logits (N, 1008); batch size 50.

    Attributes:
        extractor_id: "inception-v3-fid-2015-12-05" with the official weights, otherwise that
            id with a [label] suffix, so features of other weights are never mixed up with it.
    """

    batch_size = 50
    feature_dim = inc_spec.FEATURE_DIM
    num_classes = inc_spec.NUM_CLASSES
    _name = "FID Inception"

    def __init__(self, tensors: dict[str, tuple[Any, str]]):
        self._tensors = tensors
        self.extractor_id = inc_spec.extractor_id(None, "uninitialised")

    def _weight_shapes(self) -> dict[str, tuple[int, ...]]:
        return inc_spec.weight_shapes()

    def _extractor_id(self, sha256: str | None, label: str) -> str:
        return inc_spec.extractor_id(sha256, label)

    def _random_weights(self, seed: int) -> dict[str, np.ndarray]:
        return inc_spec.init_random(seed)   # not the real weights: tests only

    def load_fid_weights(self, path: str | os.PathLike | None = None, **find) -> Path:
        """Load pytorch-fid weights: a canonical .npz, or a .pth (needs torch, imported lazily).

        Args:
            path: the file; None: `find_inception_weights(**find)` (verified, maybe downloaded).
            **find: weights_dir=..., download=... for the search.

        Returns:
            The file read.
        """
        path = Path(path) if path is not None else inc_spec.find_inception_weights(**find)
        weights, sha = inc_spec.read_fid_weights(path)
        self.set_weights(weights, label=f"file:{path.name}", sha256=sha)
        return path

    def features_and_logits(self, images: np.ndarray, batch_size: int | None = None,
                            unbiased: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """pool3 features (N, 2048) and fc logits (N, 1008), float32, computed batch by batch.

        unbiased=True leaves out the fc bias, as the original Inception Score code (which
        multiplies pool3 by the softmax weights only) and torchmetrics' default do.
        """
        feats, logits = super().features_and_logits(images, batch_size)
        if unbiased:
            logits -= self._to_canonical(*self._tensors[f"{inc_spec.NETWORK}/fc/bias"])  # (1008,)
        return feats, logits

    def logits(self, images: np.ndarray, batch_size: int | None = None,
               unbiased: bool = False) -> np.ndarray:
        """fc logits (N, 1008) float32, for the Inception Score (see `features_and_logits`)."""
        return self.features_and_logits(images, batch_size, unbiased)[1]

    @classmethod
    def build(cls, weights: str | os.PathLike | None = "fid", seed: int = 0, **find):
        """An extractor with `weights`: "fid" (search, verify, maybe download the official
        file), "random" (seeded `init_random`), or the path of a .pth / canonical .npz."""
        ext = cls()
        if weights == "random":
            ext.init_random(seed)
        elif weights is not None:
            ext.load_fid_weights(None if weights == "fid" else weights, **find)
        return ext


class ClassifierBase(FeatureExtractor):
    """An offline classifier (models/classifiers.py): features (N, F), logits (N, 10);
    batch size 500.

    Attributes:
        spec: the framework-free ClassifierSpec.
        extractor_id: "<name>@<sha256 prefix>" with the shipped weights, "<name>[label]" otherwise.
    """

    batch_size = 500

    def __init__(self, spec: clf_spec.ClassifierSpec, tensors: dict[str, tuple[Any, str]]):
        self.spec = spec
        self._tensors = tensors
        self.extractor_id = clf_spec.extractor_id(spec, None, "uninitialised")

    @property
    def feature_dim(self) -> int:
        return self.spec.feature_dim

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    @property
    def _name(self) -> str:
        return self.spec.name

    def _weight_shapes(self) -> dict[str, tuple[int, ...]]:
        return self.spec.weight_shapes()

    def _extractor_id(self, sha256: str | None, label: str) -> str:
        return clf_spec.extractor_id(self.spec, sha256, label)

    def _random_weights(self, seed: int) -> dict[str, np.ndarray]:
        return self.spec.init_weights(seed)

    def train(self, mode: bool = True) -> None:
        """Training mode (BatchNorm batch statistics) or inference mode."""
        raise NotImplementedError

    def load_weights(self, path: str | os.PathLike | None = None) -> dict:
        """Load the shipped weights (path None; sha256-verified) or a file; returns its metadata."""
        weights, meta, sha = clf_spec.load_weights(self.spec, path)
        self.set_weights(weights, label=f"file:{Path(path).name}" if path else "shipped", sha256=sha)
        return meta

    def features_and_logits(self, images: np.ndarray, batch_size: int | None = None
                            ) -> tuple[np.ndarray, np.ndarray]:
        """Features (N, F) and logits (N, 10), float32, computed batch by batch in inference mode."""
        self.train(False)
        return super().features_and_logits(images, batch_size)

    @classmethod
    def build(cls, name: str, weights: str | os.PathLike | None = "shipped", seed: int = 0):
        """A classifier `name` ("lenet-mnist", "cnn-cifar10") with `weights`: "shipped" (the
        package's, sha256-verified), "random" (seeded init), a path, or None (uninitialised)."""
        clf = cls(clf_spec.get_classifier(name))
        if weights == "random":
            clf.init_random(seed)
        elif weights is not None:
            clf.load_weights(None if weights == "shipped" else weights)
        return clf
