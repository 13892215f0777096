"""Offline feature networks, framework-free: a LeNet for MNIST and a small CNN for CIFAR-10.

The FID Inception weights cannot be downloaded everywhere, so the project trains two small
classifiers itself (scripts/train_feature_nets.py) and ships their weights in the package
(gan_diffusion/weights/*.npz, sha256-pinned below). Their penultimate activations are the
features of "FID-LeNet(MNIST)" and "FID-CNN(CIFAR-10)"; these are NOT Inception FIDs and are
never reported as such.

Both backends (tf_backend/classifiers.py, torch_backend/classifiers.py) build the networks by
walking the same plans (models/plan.py), so layer names, order and canonical weights agree:

    lenet-mnist  28x28x1  conv5x5 16 - bn - relu - maxpool | conv5x5 32 - bn - relu - maxpool
                          | flatten (1568) - dense 128 - relu = features (128) | dense 10 = logits
    cnn-cifar10  32x32x3  conv3x3 32 (+bias) - relu | conv 32 - maxpool - bn - relu - conv 32 - bn - relu
                          | conv 64 - maxpool - bn - relu - conv 64 - bn - relu
                          | conv 192 - maxpool - bn - relu - conv 192 - bn - relu
                          | global average pool = features (192) | dense 10 = logits

(the CIFAR blocks are conv, pool, BN, ReLU, conv, BN, ReLU, as in Keller Jordan's airbench:
pooling before BatchNorm makes the BatchNorms 4x cheaper; the stem has no BatchNorm for the
same reason. ~64 MFLOP per image, 0.52 M weights.)
Canonical names: "<network>/<layer>/<param>", e.g. "lenet/conv0/kernel" (5, 5, 1, 16),
"cifar_cnn/logits/bias" (10,); see docs/weights.md.

Inputs: NHWC uint8 (or float in [0, 1]) of exactly the training shape, scaled to [-1, 1]
(`to_model_range`, the models' own range). No resizing: other shapes are an error.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gan_diffusion.data.download import sha256_file
from gan_diffusion.data.errors import DataError
from gan_diffusion.errors import ConfigError, UnknownNameError
from gan_diffusion.models.plan import Layer, check_weights, init_glorot, unit_floats, weight_shapes
from gan_diffusion.weightfile import read_npz, write_npz

NPZ_FORMAT = "gan_diffusion.classifier/1"
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"   # shipped in the package


class ClassifierWeightsError(DataError):
    """Classifier weights that are missing, corrupt, or not the shipped file (names the fix)."""


@dataclass(frozen=True)
class ClassifierSpec:
    """One offline feature network.

    Attributes:
        name: registry name ("lenet-mnist"); extractor ids start with it.
        network: canonical weight-name prefix ("lenet").
        label: how its scores are named ("LeNet(MNIST)" -> "FID-LeNet(MNIST)").
        dataset: the dataset it was trained on (gan_diffusion.data name).
        image_shape: (H, W, C) it accepts.
        body: layers from the image to the features (the last layer's output).
        head: layers from the features to the logits.
        weights_file: file name under gan_diffusion/weights/.
        weights_sha256: SHA-256 of the shipped file; loading it verifies this digest.
        bn_momentum, bn_eps: BatchNorm settings (torch convention for the momentum).
    """

    name: str
    network: str
    label: str
    dataset: str
    image_shape: tuple[int, int, int]
    body: tuple[Layer, ...]
    head: tuple[Layer, ...]
    weights_file: str
    weights_sha256: str
    bn_momentum: float = 0.1
    bn_eps: float = 1e-3
    num_classes: int = 10

    @property
    def feature_dim(self) -> int:
        return next(l.out_ch for l in reversed(self.body) if l.out_ch)

    @property
    def preprocessing(self) -> str:
        """What happens to images before the network (stored with feature statistics)."""
        h, w, c = self.image_shape
        return f"{h}x{w}x{c} uint8 -> x/127.5-1, no resize"

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """{canonical name: shape} of body and head."""
        return weight_shapes({self.network: list(self.body) + list(self.head)})

    def init_weights(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Seeded NumPy initial weights (Keras' Glorot-uniform defaults), both backends alike."""
        return init_glorot({self.network: list(self.body) + list(self.head)}, seed)

    @property
    def weights_path(self) -> Path:
        return WEIGHTS_DIR / self.weights_file


def _bn_relu(name: str, ch: int) -> list[Layer]:
    return [Layer(f"bn{name}", "bn", ch, ch), Layer(f"relu{name}", "relu")]


def lenet_plan(c1: int = 16, c2: int = 32, hidden: int = 128) -> tuple[list[Layer], list[Layer]]:
    """(body, head) of the MNIST LeNet: 28x28x1 -> features (hidden,) -> logits (10,)."""
    body = [Layer("conv0", "conv", 1, c1, 5, 1, 2), *_bn_relu("0", c1),     # (N, 28, 28, c1)
            Layer("pool0", "maxpool", kernel=2, stride=2),                 # (N, 14, 14, c1)
            Layer("conv1", "conv", c1, c2, 5, 1, 2), *_bn_relu("1", c2),    # (N, 14, 14, c2)
            Layer("pool1", "maxpool", kernel=2, stride=2),                 # (N, 7, 7, c2)
            Layer("flatten", "flatten"),                                   # (N, 49 c2), HWC order
            Layer("fc0", "dense", 7 * 7 * c2, hidden, bias=True),          # (N, hidden)
            Layer("relu_fc0", "relu")]
    head = [Layer("logits", "dense", hidden, 10, bias=True)]               # (N, 10)
    return body, head


def cifar_plan(widths: tuple[int, int, int] = (32, 64, 192), stem: int = 32
               ) -> tuple[list[Layer], list[Layer]]:
    """(body, head) of the CIFAR-10 CNN: 32x32x3 -> features (widths[-1],) -> logits (10,).

    Stem conv (with bias, no BN) and ReLU, then per block: conv (3x3, 'same') -> maxpool 2 ->
    BN -> ReLU -> conv -> BN -> ReLU; sides 32 -> 16 -> 8 -> 4; then the global average pool.
    """
    body = [Layer("stem", "conv", 3, stem, 3, 1, 1, bias=True),                 # (N, 32, 32, stem)
            Layer("relu_stem", "relu")]
    cin = stem
    for i, w in enumerate(widths):
        body += [Layer(f"conv{i}a", "conv", cin, w, 3, 1, 1),                 # (N, s, s, w)
                 Layer(f"pool{i}", "maxpool", kernel=2, stride=2),            # (N, s/2, s/2, w)
                 *_bn_relu(f"{i}a", w),
                 Layer(f"conv{i}b", "conv", w, w, 3, 1, 1), *_bn_relu(f"{i}b", w)]
        cin = w
    body.append(Layer("gap", "gap"))                                           # (N, widths[-1])
    head = [Layer("logits", "dense", cin, 10, bias=True)]                      # (N, 10)
    return body, head


def _spec(name, network, label, dataset, shape, plan, weights_file, sha) -> ClassifierSpec:
    body, head = plan
    return ClassifierSpec(name, network, label, dataset, shape, tuple(body), tuple(head),
                          weights_file, sha)


# SHA-256 of the shipped weight files (written by scripts/train_feature_nets.py).
LENET_MNIST_SHA256 = "11170afbe8054ebc605c8537c4ff9ec1f435900b678c84201a56727532a90dec"
CNN_CIFAR10_SHA256 = "ceb135ea3b60dfaaa0449f5077d20916e860d982655c18b8166ac7b8be684a78"

CLASSIFIERS: dict[str, ClassifierSpec] = {
    s.name: s for s in (
        _spec("lenet-mnist", "lenet", "LeNet(MNIST)", "mnist", (28, 28, 1), lenet_plan(),
              "lenet_mnist.npz", LENET_MNIST_SHA256),
        _spec("cnn-cifar10", "cifar_cnn", "CNN(CIFAR-10)", "cifar10", (32, 32, 3), cifar_plan(),
              "cnn_cifar10.npz", CNN_CIFAR10_SHA256),
    )
}


def get_classifier(name: str) -> ClassifierSpec:
    """The spec called `name`; UnknownNameError lists the valid ones."""
    if name not in CLASSIFIERS:
        raise UnknownNameError("classifier", name, CLASSIFIERS)
    return CLASSIFIERS[name]


# -- inputs ---------------------------------------------------------------------------------
def as_model_input(images: np.ndarray, spec: ClassifierSpec) -> np.ndarray:
    """NHWC uint8 (or float in [0, 1]) of the spec's shape -> float32 NHWC in [-1, 1].

    Raises:
        ConfigError: wrong rank, shape, dtype or value range, naming the fix.

    Example:
        >>> as_model_input(np.zeros((2, 28, 28, 1), np.uint8), get_classifier("lenet-mnist")).max()
        np.float32(-1.0)
    """
    x = np.asarray(images)
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(spec.image_shape):
        h, w, c = spec.image_shape
        raise ConfigError(
            f"the {spec.name} extractor takes NHWC images of shape (N, {h}, {w}, {c}) "
            f"({spec.dataset}-like), got {x.shape}; it does not resize. Use the extractor for "
            f"your image shape, or 'inception' (any size, needs its weights)")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    if np.issubdtype(x.dtype, np.floating):
        x = unit_floats(x, "convert model outputs in [-1, 1] with gan_diffusion.data.from_model_range first")
        return x * np.float32(2.0) - np.float32(1.0)
    raise ConfigError(f"images must be uint8 or float in [0, 1], got dtype {x.dtype}")


# -- weight files ---------------------------------------------------------------------------
def extractor_id(spec: ClassifierSpec, sha256: str | None, label: str) -> str:
    """"<name>@<first 12 hex of the file's sha256>" for the shipped weights, else
    "<name>[label]" (e.g. "lenet-mnist[random:seed=0]"), so statistics from other weights
    are never mixed up with the shipped ones."""
    if sha256 and spec.weights_sha256 and sha256 == spec.weights_sha256:
        return f"{spec.name}@{sha256[:12]}"
    return f"{spec.name}[{label}]"


def save_weights(path: str | os.PathLike, spec: ClassifierSpec, weights: dict[str, np.ndarray],
                 meta: dict | None = None, dtype: str = "float32") -> str:
    """Write canonical weights + JSON metadata as one .npz, atomically.

    Returns:
        The SHA-256 of the written file (to pin in `CLASSIFIERS`).
    """
    check_weights(weights, spec.weight_shapes(), spec.name)
    meta = {"format": NPZ_FORMAT, "classifier": spec.name, "dtype": dtype, **(meta or {})}
    arrays = {k: np.asarray(weights[k], dtype) for k in spec.weight_shapes()}
    return sha256_file(write_npz(path, arrays, meta, json_default=str))


def load_weights(spec: ClassifierSpec, path: str | os.PathLike | None = None
                 ) -> tuple[dict[str, np.ndarray], dict, str]:
    """Read classifier weights (float32) and metadata; path None: the shipped file, whose
    SHA-256 must equal `spec.weights_sha256`.

    Returns:
        (weights, meta, sha256 of the file).

    Raises:
        ClassifierWeightsError: missing, corrupt, foreign, or (shipped file) wrong digest.
    """
    shipped = path is None
    path = Path(spec.weights_path if shipped else path)
    if not path.is_file():
        fix = ("reinstall the package, or train it with scripts/train_feature_nets.py "
               f"--net {spec.name}" if shipped else "pass an existing file")
        raise ClassifierWeightsError(f"{spec.name} weights {path} not found; {fix}")
    sha = sha256_file(path)
    if shipped and sha != spec.weights_sha256:
        raise ClassifierWeightsError(
            f"{path} has sha256 {sha}, but the shipped {spec.name} weights have "
            f"{spec.weights_sha256 or '(none pinned yet)'}; the file is corrupt or was replaced: "
            f"reinstall the package (or pass path= to use other weights under another id)")
    arrays, meta = read_npz(path, what=f"{spec.name} weights", error=ClassifierWeightsError)
    if meta.get("format") != NPZ_FORMAT or meta.get("classifier") != spec.name:
        raise ClassifierWeightsError(
            f"{path} holds {meta.get('classifier')!r} weights in format {meta.get('format')!r}, "
            f"expected {spec.name!r} in {NPZ_FORMAT!r}")
    try:
        check_weights(arrays, spec.weight_shapes(), spec.name)
    except ValueError as exc:
        raise ClassifierWeightsError(f"{path}: {exc}") from None
    return {k: v.astype(np.float32) for k, v in arrays.items()}, meta, sha


# -- training helpers (NumPy; used by scripts/train_feature_nets.py) ------------------------
def augment(images: np.ndarray, rng: np.random.Generator, pad: int, flip: bool) -> np.ndarray:
    """Random translation by up to `pad` pixels (reflect padding, then a random crop) and,
    if `flip`, random horizontal flips; uint8 NHWC in, same shape out."""
    n, h, w, _ = images.shape
    out = images
    if pad:
        padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
        dy, dx = rng.integers(0, 2 * pad + 1, (2, n))
        rows = dy[:, None] + np.arange(h)[None, :]                      # (N, H)
        cols = dx[:, None] + np.arange(w)[None, :]                      # (N, W)
        out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    if flip:
        mask = rng.random(n) < 0.5
        out = out.copy() if out is images else out
        out[mask] = out[mask, :, ::-1]
    return out


def one_cycle_lr(step: int, total: int, peak: float, warmup: float = 0.2) -> float:
    """Triangular one-cycle schedule: linear 0 -> peak over `warmup` of the steps, then
    linear down to 0 at `total`."""
    up = max(1, int(round(warmup * total)))
    if step < up:
        return peak * (step + 1) / up
    return peak * max(0.0, (total - step) / max(1, total - up))
