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

The intra-class distance (ICD; the GAN-against-VAE study's diversity measure) uses the
same classifier: the mean Euclidean distance between the penultimate features of two
different images of one class, averaged over the classes. A model that draws the same
image for a class scores 0 for it; real images give the ceiling, reported beside it.
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


def intra_class_distance(features: np.ndarray, labels: np.ndarray) -> tuple[float, list]:
    """(mean over classes of the mean pairwise L2 distance of features (N, F) within each
    class, [that distance per class 0..K-1, None for a class with fewer than 2 images])."""
    from scipy.spatial.distance import pdist

    labels = np.asarray(labels)
    per = [float(pdist(features[labels == k].astype(np.float64)).mean())
           if np.sum(labels == k) >= 2 else None for k in range(int(labels.max()) + 1)]
    present = [v for v in per if v is not None]
    return (float(np.mean(present)) if present else float("nan")), per


def class_scores(images: np.ndarray, labels: np.ndarray, classifier: str, backend: str,
                 real: np.ndarray | None = None, real_labels: np.ndarray | None = None
                 ) -> dict[str, dict[str, Any]]:
    """{"class_accuracy": class_accuracy's dict, "icd": the intra-class distance (Score-like:
    value, n, name, extractor, real_value, per_class)}, from one pass of the classifier."""
    from gan_diffusion.metrics.extractors import load_extractor
    from gan_diffusion.models.classifiers import get_classifier

    clf, _ = load_extractor(classifier, backend)      # the shipped, sha256-verified weights
    spec = get_classifier(classifier)
    feats, logits = clf.features_and_logits(images)
    labels = np.asarray(labels)
    pred = np.argmax(logits, axis=1)
    acc_real = icd_real = None
    if real is not None and real_labels is not None:
        real_feats, real_logits = clf.features_and_logits(real)
        acc_real = float(np.mean(np.argmax(real_logits, axis=1) == np.asarray(real_labels)))
        icd_real = intra_class_distance(real_feats, real_labels)[0]
    icd, per = intra_class_distance(feats, labels)
    common = {"n": int(len(images)), "extractor": classifier}
    return {"class_accuracy": {"value": float(np.mean(pred == labels)), **common,
                               "name": f"class accuracy [{spec.label}]", "real_value": acc_real,
                               "per_class": [float(np.mean(pred[labels == k] == k))
                                             if np.any(labels == k) else None
                                             for k in range(int(np.max(labels)) + 1)]},
            "icd": {"value": icd, **common, "name": f"intra-class distance [{spec.label}]",
                    "real_value": icd_real, "per_class": per}}


def class_accuracy(images: np.ndarray, labels: np.ndarray, classifier: str, backend: str,
                   real: np.ndarray | None = None, real_labels: np.ndarray | None = None
                   ) -> dict[str, Any]:
    """Accuracy of `classifier` on `images` (uint8 NHWC) against the asked `labels` (N,).

    Returns:
        A Score-like dict: value (fraction in [0, 1]), n, name, extractor, and real_value (the
        classifier's accuracy on `real` with `real_labels`, or None without them).
    """
    return class_scores(images, labels, classifier, backend, real, real_labels)["class_accuracy"]
