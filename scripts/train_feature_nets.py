"""Train the offline feature networks (LeNet on MNIST, small CNN on CIFAR-10 JPEG) with PyTorch.

Reproducible: the seed fixes the initial weights (NumPy, models.classifiers), the epoch order
(data.batch_indices) and the augmentation (NumPy); the record beside the weights holds the
full config, versions, machine, threads, per-epoch history, test accuracy and the sha256 of
the written weights (pin it in models/classifiers.py). Weights are written atomically.

    python scripts/train_feature_nets.py --net lenet-mnist --data-dir DATA [--threads 2]
    python scripts/train_feature_nets.py --net cnn-cifar10 --data-dir DATA [--epochs 12]
    python scripts/train_feature_nets.py --net cnn-cifar10 --limit 5000 --epochs 1 --out /tmp/x.npz
                                                    # time one epoch on a subset first

PyTorch is used because it is the faster backend on this CPU; the weights are canonical, so
both backends load them (tests/metrics/test_classifiers.py checks the TF/torch agreement).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


@dataclasses.dataclass
class TrainConfig:
    """One training run; defaults per network in DEFAULTS."""

    net: str
    epochs: int
    batch_size: int
    lr: float                # peak of the one-cycle schedule (SGD, Nesterov momentum)
    momentum: float = 0.9
    weight_decay: float = 5e-4   # on conv/dense kernels only
    label_smoothing: float = 0.1
    warmup: float = 0.2      # fraction of the steps spent ramping the LR up
    pad: int = 2             # random translation (reflect padding + crop), pixels
    flip: bool = False       # random horizontal flips
    seed: int = 0
    limit: int | None = None  # first N training images only (timing runs)
    dtype: str = "float32"   # dtype of the written weights


DEFAULTS = {
    "lenet-mnist": dict(epochs=4, batch_size=128, lr=0.1, pad=2, flip=False),
    "cnn-cifar10": dict(epochs=12, batch_size=256, lr=0.2, pad=2, flip=True,
                        label_smoothing=0.1),
}


def evaluate(clf, images: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> float:
    """Top-1 accuracy of a (torch or TF) Classifier in inference mode."""
    return float((clf.logits(images, batch_size).argmax(axis=1) == labels).mean())


def train(cfg: TrainConfig, data_dir: str | None, out: Path, threads: int) -> dict:
    import torch
    import torch.nn.functional as F

    from gan_diffusion import get_backend
    from gan_diffusion.data import batch_indices, load_dataset
    from gan_diffusion.models import classifiers as spec_mod
    from gan_diffusion.runinfo import run_info
    from gan_diffusion.torch_backend.classifiers import Classifier
    from gan_diffusion.utils.io import atomic_write_json

    backend = get_backend("torch")
    thread_info = backend.set_threads(threads)
    spec = spec_mod.get_classifier(cfg.net)
    started = time.perf_counter()
    train_ds = load_dataset(spec.dataset, "train", data_dir=data_dir, limit=cfg.limit)
    test_ds = load_dataset(spec.dataset, "test", data_dir=data_dir)
    load_s = time.perf_counter() - started
    print(f"{cfg.net}: {len(train_ds)} train / {len(test_ds)} test images {train_ds.image_shape} "
          f"loaded in {load_s:.1f} s; threads {thread_info}", flush=True)

    clf = Classifier(spec)                             # channels-last memory (faster on CPU)
    clf.init_random(cfg.seed)
    kernels = [p for p in clf.parameters() if p.ndim > 1]
    others = [p for p in clf.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": kernels, "weight_decay": cfg.weight_decay},
                           {"params": others, "weight_decay": 0.0}],
                          lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    n = len(train_ds)
    steps = n // cfg.batch_size
    total = steps * cfg.epochs
    history, step = [], 0
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, epoch, 0xA06])          # augmentation stream
        clf.train(True)
        loss_sum, correct, seen = 0.0, 0, 0
        for idx in batch_indices(n, cfg.batch_size, cfg.seed, epoch):
            images = spec_mod.augment(train_ds.images[idx], rng, cfg.pad, cfg.flip)
            x = clf.preprocess(images)                                  # (B, C, H, W) in [-1, 1]
            y = torch.from_numpy(train_ds.labels[idx])
            for group in opt.param_groups:
                group["lr"] = spec_mod.one_cycle_lr(step, total, cfg.lr, cfg.warmup)
            _, logits = clf.forward(x)
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.detach().argmax(1) == y).sum())
            seen += len(idx)
        train_s = time.perf_counter() - t0
        test_acc = evaluate(clf, test_ds.images, test_ds.labels)
        history.append({"epoch": epoch + 1, "train_s": round(train_s, 1),
                        "img_per_s": round(seen / train_s, 1), "loss": loss_sum / seen,
                        "train_acc": correct / seen, "test_acc": test_acc})
        print(f"epoch {epoch + 1}/{cfg.epochs}: {train_s:.0f} s ({seen / train_s:.0f} img/s), "
              f"loss {loss_sum / seen:.4f}, train acc {correct / seen:.4f}, test acc {test_acc:.4f}",
              flush=True)
    train_total = time.perf_counter() - started

    # write, re-read the written file and evaluate what is shipped
    record = {"config": dataclasses.asdict(cfg), "history": history,
              "train_images": len(train_ds), "test_images": len(test_ds),
              "data": {"train": train_ds.description, "test": test_ds.description},
              "total_s": round(train_total, 1), "load_s": round(load_s, 1),
              **run_info(backend, thread_info)}
    meta = {"test_accuracy_torch": history[-1]["test_acc"], "config": dataclasses.asdict(cfg),
            "trained_with": "torch", "versions": record["versions"]}
    sha = spec_mod.save_weights(out, spec, clf.get_weights(), meta, dtype=cfg.dtype)
    check = Classifier(spec)
    check.load_weights(out)
    record["weights"] = {"file": str(out), "sha256": sha, "bytes": out.stat().st_size,
                         "dtype": cfg.dtype,
                         "test_accuracy_of_file": evaluate(check, test_ds.images, test_ds.labels)}
    atomic_write_json(out.with_suffix(".json"), record)
    print(f"wrote {out} ({out.stat().st_size} bytes, sha256 {sha}); test accuracy of the written "
          f"weights {record['weights']['test_accuracy_of_file']:.4f}; total {train_total / 60:.1f} min",
          flush=True)
    return record


def main(argv: list[str] | None = None) -> int:
    from gan_diffusion.models.classifiers import CLASSIFIERS, WEIGHTS_DIR

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--net", required=True, choices=sorted(CLASSIFIERS))
    p.add_argument("--data-dir", default=None, help="dataset folder (default: $GAN_DIFFUSION_DATA_DIR)")
    p.add_argument("--out", default=None, help="weights .npz (default: the package's "
                   "gan_diffusion/weights/<file>); the record goes beside it as .json")
    p.add_argument("--threads", type=int, default=2)
    for f in dataclasses.fields(TrainConfig):
        if f.name != "net":
            p.add_argument(f"--{f.name.replace('_', '-')}", default=None,
                           type=(lambda s: s.lower() in ("1", "true", "yes")) if f.type == "bool"
                           else int if f.type in ("int", "int | None") else
                           float if f.type == "float" else str)
    args = p.parse_args(argv)
    fields = {**DEFAULTS[args.net]}
    for f in dataclasses.fields(TrainConfig):
        if f.name != "net" and getattr(args, f.name) is not None:
            fields[f.name] = getattr(args, f.name)
    cfg = TrainConfig(net=args.net, **fields)
    out = Path(args.out) if args.out else WEIGHTS_DIR / CLASSIFIERS[args.net].weights_file
    print(json.dumps(dataclasses.asdict(cfg)), flush=True)
    train(cfg, args.data_dir, out, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
