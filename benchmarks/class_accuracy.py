"""Does a conditional GAN draw the class it is asked for? Print per-class accuracy.

Samples `--per-class` images of every class from a trained run (either backend can sample
any run) and classifies them with a logistic-regression classifier fitted on MNIST training
images (scikit-learn; its MNIST test accuracy is printed so the figure can be judged).
Until the project ships its own LeNet feature network (the FID issue), this is the check.

    python benchmarks/class_accuracy.py --run runs/cdcgan-torch [--backend tf] [--per-class 100]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def fit_classifier(data_dir: str | None, n_train: int):
    """Logistic regression on the first `n_train` MNIST training images; returns (clf, test acc)."""
    from sklearn.linear_model import LogisticRegression

    from gan_diffusion.data import load_dataset

    train = load_dataset("mnist", split="train", data_dir=data_dir, limit=n_train)
    test = load_dataset("mnist", split="test", data_dir=data_dir)
    clf = LogisticRegression(max_iter=300, C=0.05)
    clf.fit(train.images.reshape(len(train), -1) / 255.0, train.labels)
    accuracy = clf.score(test.images.reshape(len(test), -1) / 255.0, test.labels)
    return clf, float(accuracy)


def main() -> None:
    import numpy as np

    from gan_diffusion.checkpoint import load_model

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="run folder of a conditional MNIST model")
    p.add_argument("--backend", default=None, help="sample with this backend (default: the run's)")
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--n-train", type=int, default=20000, help="classifier training images")
    args = p.parse_args()

    run = Path(args.run)
    backend = args.backend or json.loads((run / "config.json").read_text())["backend"]
    model = load_model(run / "checkpoints" / "latest.npz", backend)
    k = model.num_classes
    if not k:
        raise SystemExit(f"{run} holds an unconditional model: nothing to check")
    start = time.perf_counter()
    clf, test_acc = fit_classifier(args.data_dir, args.n_train)
    print(f"classifier: logistic regression on {args.n_train} MNIST images, test accuracy "
          f"{test_acc:.4f} ({time.perf_counter() - start:.0f} s)")
    labels = np.repeat(np.arange(k), args.per_class)
    images = model.sample(len(labels), seed=args.seed, labels=labels)
    pred = clf.predict(images.reshape(len(images), -1) / 255.0)
    per_class = [(pred[labels == c] == c).mean() for c in range(k)]
    print(f"run {run} (trained with {json.loads((run / 'config.json').read_text())['backend']}, "
          f"epoch {model.epoch}), sampled with {backend}, {args.per_class} per class, seed {args.seed}")
    print("class    " + " ".join(f"{c:>5d}" for c in range(k)))
    print("accuracy " + " ".join(f"{a:5.2f}" for a in per_class))
    print(f"overall: {(pred == labels).mean():.4f} of generated digits classified as the requested "
          f"class (chance {1 / k:.2f})")


if __name__ == "__main__":
    main()
