"""Offline feature networks (LeNet-MNIST, CNN-CIFAR-10) in PyTorch. Mirrors
tf_backend/classifiers.py line for line; the architecture is models/classifiers.py.

Example:
    >>> clf = build("lenet-mnist")                     # shipped weights, sha256-verified
    >>> clf.features(mnist_uint8).shape                # NHWC uint8 in, penultimate features out
    (16, 128)
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from gan_diffusion.models import classifiers as spec_mod
from gan_diffusion.models.classifiers import ClassifierSpec
from gan_diffusion.models.plan import check_weights
from gan_diffusion.torch_backend.layers import Network, assign, canonical_tensors, to_canonical


class Classifier:
    """A classifier split into `body` (image -> features) and `head` (features -> logits).

    Attributes:
        spec: the framework-free ClassifierSpec.
        body, head: plan Networks; (N, C, H, W) -> (N, F) and (N, F) -> (N, 10).
        extractor_id: "<name>@<sha256 prefix>" with the shipped weights, "<name>[label]" otherwise.
    """

    backend_name = "torch"

    def __init__(self, spec: ClassifierSpec):
        self.spec = spec
        self.body = Network(list(spec.body), spec.bn_momentum, spec.bn_eps)   # (N, C, H, W) -> (N, F)
        self.head = Network(list(spec.head), spec.bn_momentum, spec.bn_eps)   # (N, F) -> (N, 10)
        self._tensors = {f"{spec.network}/{k}": v for net in (self.body, self.head)
                         for k, v in canonical_tensors(net.plan, net.layers).items()}
        self.body.to(memory_format=torch.channels_last)  # NHWC memory: ~1.7x faster convs on CPU
        self.train(False)
        self.extractor_id = spec_mod.extractor_id(spec, None, "uninitialised")

    # -- weights ------------------------------------------------------------------------
    def get_weights(self) -> dict[str, np.ndarray]:
        """Canonical weights (float32 NumPy, channels-last; docs/weights.md)."""
        return {name: to_canonical(t, kind) for name, (t, kind) in self._tensors.items()}

    def set_weights(self, weights: dict[str, np.ndarray], label: str = "custom",
                    sha256: str | None = None) -> None:
        """Load canonical weights; `label`/`sha256` name their origin in `extractor_id`."""
        check_weights(weights, self.spec.weight_shapes(), self.spec.name)
        for name, (t, kind) in self._tensors.items():
            assign(t, kind, weights[name])
        self.extractor_id = spec_mod.extractor_id(self.spec, sha256, label)

    def init_random(self, seed: int = 0) -> None:
        """The seeded NumPy initial weights of the spec (training start, tests)."""
        self.set_weights(self.spec.init_weights(seed), label=f"random:seed={seed}")

    def load_weights(self, path: str | os.PathLike | None = None) -> dict:
        """Load the shipped weights (path None; sha256-verified) or a file; returns its metadata."""
        weights, meta, sha = spec_mod.load_weights(self.spec, path)
        self.set_weights(weights, label=f"file:{Path(path).name}" if path else "shipped", sha256=sha)
        return meta

    # -- the network --------------------------------------------------------------------
    def train(self, mode: bool = True) -> None:
        """Training mode (BatchNorm batch statistics) or inference mode."""
        self.body.train(mode)
        self.head.train(mode)

    def parameters(self) -> list[torch.nn.Parameter]:
        return [*self.body.parameters(), *self.head.parameters()]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, H, W) in [-1, 1] -> features (N, F), logits (N, 10), in the current mode."""
        feats = self.body(x)
        return feats, self.head(feats)

    # -- images -------------------------------------------------------------------------
    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """NHWC uint8 (or float in [0, 1]) -> (N, C, H, W) float32 in [-1, 1]."""
        x = spec_mod.as_model_input(images, self.spec)                     # (N, H, W, C)
        return torch.from_numpy(x).permute(0, 3, 1, 2)                     # NCHW view of NHWC memory

    @torch.inference_mode()
    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference: (N, C, H, W) -> features (N, F), logits (N, 10)."""
        return self.forward(x)

    def features_and_logits(self, images: np.ndarray, batch_size: int = 500
                            ) -> tuple[np.ndarray, np.ndarray]:
        """Features (N, F) and logits (N, 10), float32, computed batch by batch in inference mode."""
        n = len(images)
        feats = np.empty((n, self.spec.feature_dim), np.float32)
        logits = np.empty((n, self.spec.num_classes), np.float32)
        self.train(False)
        for s in spec_mod.batches(n, batch_size):
            f, l = self._forward(self.preprocess(images[s]))                 # (b, F), (b, 10)
            feats[s], logits[s] = f.numpy(), l.numpy()
        return feats, logits

    def features(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Penultimate features (N, F) float32 of NHWC images."""
        return self.features_and_logits(images, batch_size)[0]

    def logits(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """Class logits (N, 10) float32 of NHWC images."""
        return self.features_and_logits(images, batch_size)[1]


def build(name: str, weights: str | os.PathLike | None = "shipped", seed: int = 0) -> Classifier:
    """A classifier `name` ("lenet-mnist", "cnn-cifar10") with `weights`: "shipped" (the
    package's, sha256-verified), "random" (seeded init), a path, or None (uninitialised)."""
    clf = Classifier(spec_mod.get_classifier(name))
    if weights == "random":
        clf.init_random(seed)
    elif weights is not None:
        clf.load_weights(None if weights == "shipped" else weights)
    return clf
