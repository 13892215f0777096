"""Conditional class accuracy: do a conditional model's samples show the class they were asked
for? The harness's evaluation samples of a conditional model are drawn with the labels
0, 1, ..., K-1, 0, 1, ... (worker.evaluation_outputs records them). A shipped classifier
(models/classifiers.py), trained on the same classes, labels them. Accuracy is the fraction
that it labels as asked.

    dataset        images      classifier     classes
    digits, mnist  28x28 grey  lenet-mnist    the digits 0-9 (the embedded digits use MNIST's labels)
    cifar10        32x32 RGB   cnn-cifar10    CIFAR-10's ten classes, in its folder order

The same classifier's accuracy on the real reference images is reported beside it, as the
ceiling the samples can reach: the LeNet is trained on MNIST, not on the embedded digits.
Other datasets, shapes or unconditional models get no accuracy. The score is named after its
classifier ("class accuracy [LeNet(MNIST)]"), like FID.
"""
from __future__ import annotations

from typing import Any

import numpy as np

CLASSIFIERS = {"digits": "lenet-mnist", "mnist": "lenet-mnist", "cifar10": "cnn-cifar10"}


def classifier_for(dataset: str, image_shape: tuple[int, ...]) -> str | None:
    """The shipped classifier that labels samples of `dataset` at `image_shape`, or None."""
    from gan_diffusion.models.classifiers import get_classifier

    name = CLASSIFIERS.get(str(dataset).lower())
    if name is None or tuple(get_classifier(name).image_shape) != tuple(image_shape):
        return None
    return name


def class_accuracy(images: np.ndarray, labels: np.ndarray, classifier: str, backend: str,
                   real: np.ndarray | None = None, real_labels: np.ndarray | None = None
                   ) -> dict[str, Any]:
    """Accuracy of `classifier` on `images` (uint8 NHWC) against the asked `labels` (N,).

    Returns:
        A Score-like dict: value (fraction in [0, 1]), n, name, extractor, and real_value (the
        classifier's accuracy on `real` with `real_labels`, or None without them).
    """
    from gan_diffusion.metrics.extractors import load_extractor
    from gan_diffusion.models.classifiers import get_classifier

    clf, _ = load_extractor(classifier, backend)      # the shipped, sha256-verified weights
    spec = get_classifier(classifier)
    pred = np.argmax(clf.logits(images), axis=1)
    labels = np.asarray(labels)
    value = float(np.mean(pred == labels))
    real_value = None
    if real is not None and real_labels is not None:
        real_value = float(np.mean(np.argmax(clf.logits(real), axis=1) == np.asarray(real_labels)))
    return {"value": value, "n": int(len(images)), "name": f"class accuracy [{spec.label}]",
            "extractor": classifier, "real_value": real_value,
            "per_class": [float(np.mean(pred[labels == k] == k)) if np.any(labels == k) else None
                          for k in range(int(np.max(labels)) + 1)]}
