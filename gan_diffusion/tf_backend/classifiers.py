"""Offline feature networks (LeNet-MNIST, CNN-CIFAR-10) in TensorFlow/Keras. Mirrors
torch_backend/classifiers.py line for line; the architecture is models/classifiers.py.

Example:
    >>> clf = build("lenet-mnist")                     # shipped weights, sha256-verified
    >>> clf.features(mnist_uint8).shape                # NHWC uint8 in, penultimate features out
    (16, 128)
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from gan_diffusion.metrics.extractor_base import ClassifierBase
from gan_diffusion.models import classifiers as spec_mod
from gan_diffusion.models.classifiers import ClassifierSpec
from gan_diffusion.tf_backend.layers import Network, assign, canonical_tensors, to_canonical


class Classifier(ClassifierBase):
    """A classifier split into `body` (image -> features) and `head` (features -> logits);
    weights, batching and ids: metrics.extractor_base.ClassifierBase.

    Attributes:
        body, head: plan Networks; (N, H, W, C) -> (N, F) and (N, F) -> (N, 10).
    """

    backend_name = "tf"
    _to_canonical = staticmethod(to_canonical)
    _assign = staticmethod(assign)

    def __init__(self, spec: ClassifierSpec):
        self.body = Network(list(spec.body), spec.bn_momentum, spec.bn_eps, spec.image_shape,
                            f"{spec.network}_body")                          # (N, H, W, C) -> (N, F)
        self.head = Network(list(spec.head), spec.bn_momentum, spec.bn_eps, (spec.feature_dim,),
                            f"{spec.network}_head")                          # (N, F) -> (N, 10)
        super().__init__(spec, {f"{spec.network}/{k}": v for net, plan in ((self.body, spec.body),
                                                                           (self.head, spec.head))
                                for k, v in canonical_tensors(list(plan), net).items()})
        self.train(False)
        self._inference = tf.function(self.forward, input_signature=[
            tf.TensorSpec([None, *spec.image_shape], tf.float32)])

    # -- the network --------------------------------------------------------------------
    def train(self, mode: bool = True) -> None:
        """Training mode (BatchNorm batch statistics) or inference mode."""
        self.training = bool(mode)

    def parameters(self) -> list[keras.Variable]:
        return [*self.body.trainable_variables, *self.head.trainable_variables]

    def forward(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(N, H, W, C) in [-1, 1] -> features (N, F), logits (N, 10), in the current mode."""
        feats = self.body(x, training=self.training)
        return feats, self.head(feats, training=self.training)

    # -- images -------------------------------------------------------------------------
    def preprocess(self, images: np.ndarray) -> tf.Tensor:
        """NHWC uint8 (or float in [0, 1]) -> (N, H, W, C) float32 in [-1, 1]."""
        x = spec_mod.as_model_input(images, self.spec)                     # (N, H, W, C)
        return tf.convert_to_tensor(x)

    def _forward(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Inference: (N, H, W, C) -> features (N, F), logits (N, 10) (a traced tf.function)."""
        return self._inference(x)


build = Classifier.build
