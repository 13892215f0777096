"""Offline feature networks (LeNet-MNIST, CNN-CIFAR-10) in PyTorch. Mirrors
tf_backend/classifiers.py line for line; the architecture is models/classifiers.py.

Example:
    >>> clf = build("lenet-mnist")                     # shipped weights, sha256-verified
    >>> clf.features(mnist_uint8).shape                # NHWC uint8 in, penultimate features out
    (16, 128)
"""
from __future__ import annotations

import numpy as np
import torch

from gan_diffusion.metrics.extractor_base import ClassifierBase
from gan_diffusion.models import classifiers as spec_mod
from gan_diffusion.models.classifiers import ClassifierSpec
from gan_diffusion.torch_backend.layers import Network, assign, canonical_tensors, to_canonical


class Classifier(ClassifierBase):
    """A classifier split into `body` (image -> features) and `head` (features -> logits);
    weights, batching and ids: metrics.extractor_base.ClassifierBase.

    Attributes:
        body, head: plan Networks; (N, C, H, W) -> (N, F) and (N, F) -> (N, 10).
    """

    backend_name = "torch"
    _to_canonical = staticmethod(to_canonical)
    _assign = staticmethod(assign)

    def __init__(self, spec: ClassifierSpec):
        self.body = Network(list(spec.body), spec.bn_momentum, spec.bn_eps)   # (N, C, H, W) -> (N, F)
        self.head = Network(list(spec.head), spec.bn_momentum, spec.bn_eps)   # (N, F) -> (N, 10)
        super().__init__(spec, {f"{spec.network}/{k}": v for net in (self.body, self.head)
                                for k, v in canonical_tensors(net.plan, net.layers).items()})
        self.body.to(memory_format=torch.channels_last)  # NHWC memory: ~1.7x faster convs on CPU
        self.train(False)

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


build = Classifier.build
