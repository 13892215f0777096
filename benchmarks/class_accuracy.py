"""Does a conditional model draw the class it is asked for? Print per-class accuracy.

Samples `--per-class` images of every class from a trained MNIST run (either backend can
sample any run) and classifies them with the project's shipped LeNet-MNIST classifier
(gan_diffusion/weights/lenet_mnist.npz, 99.57% MNIST test accuracy; docs/feature_nets.md).
With `--data-dir` the classifier's accuracy on the real MNIST test set is printed too, so the
figure can be judged.

    python -m benchmarks.class_accuracy --run runs/cdcgan-torch [--backend tf] [--per-class 100]
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    import numpy as np

    from gan_diffusion.backends import load_model
    from gan_diffusion.metrics.extractors import load_extractor

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="run folder of a conditional MNIST model")
    p.add_argument("--backend", default=None, help="sample with this backend (default: the run's)")
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-dir", default=None, help="also print the classifier's MNIST test accuracy")
    args = p.parse_args()

    run = Path(args.run)
    record = json.loads((run / "config.json").read_text())
    backend = args.backend or record["backend"]
    model = load_model(run / "checkpoints" / "latest.npz", backend)
    k = model.num_classes
    if not k:
        raise SystemExit(f"{run} holds an unconditional model: nothing to check")
    clf, clf_backend = load_extractor("lenet-mnist", backend)
    if args.data_dir:
        from gan_diffusion.data import load_dataset

        test = load_dataset("mnist", split="test", data_dir=args.data_dir)
        acc = float((clf.logits(test.images).argmax(1) == test.labels).mean())
        print(f"classifier: {clf.extractor_id} ({clf_backend}), MNIST test accuracy {acc:.4f}")
    labels = np.repeat(np.arange(k), args.per_class)
    images = model.sample(len(labels), seed=args.seed, labels=labels)
    pred = clf.logits(images).argmax(1)
    per_class = [(pred[labels == c] == c).mean() for c in range(k)]
    print(f"run {run} (trained with {record['backend']}, epoch {model.epoch}), sampled with "
          f"{backend}, {args.per_class} per class, seed {args.seed}")
    print("class    " + " ".join(f"{c:>5d}" for c in range(k)))
    print("accuracy " + " ".join(f"{a:5.2f}" for a in per_class))
    print(f"overall: {(pred == labels).mean():.4f} of generated digits classified as the requested "
          f"class (chance {1 / k:.2f})")


if __name__ == "__main__":
    main()
