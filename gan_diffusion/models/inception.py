"""The FID Inception-v3 feature network, framework-free: architecture, canonical layout, weights.

This is the network of pytorch-fid (`pytorch_fid.inception.fid_inception_v3`): torchvision's
Inception-v3 with the layer names of `torchvision.models.inception_v3`, 1008 classes, no
auxiliary head, and the blocks patched to match the TensorFlow graph of 2015-12-05 that the
original FID code (TTUR) used:

    FIDInceptionA / FIDInceptionC / FIDInceptionE_1  pool branch: 3x3 average pool, stride 1,
                                                     padding 1, padded zeros NOT counted
    FIDInceptionE_2 (Mixed_7c, the last block)       pool branch: 3x3 MAX pool, stride 1, pad 1

Both backends (tf_backend/inception.py, torch_backend/inception.py) build the same blocks from
the `Conv` specs below, so their layer names, order and weight shapes agree by construction.

Canonical weights (docs/weights.md; docs/inception.md) are keyed by the torchvision module
path with "/" for ".":

    inception/Mixed_5b/branch1x1/conv/kernel     (1, 1, 192, 64)  torch Mixed_5b.branch1x1.conv.weight
    inception/Mixed_5b/branch1x1/bn/gamma        (64,)            torch Mixed_5b.branch1x1.bn.weight
    inception/fc/kernel                          (2048, 1008)     torch fc.weight (transposed)

Nothing here imports TensorFlow or torch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gan_diffusion.data.download import (NO_DOWNLOAD_ENV, download_file, downloads_disabled,
                                         sha256_file)
from gan_diffusion.data.errors import DataError
from gan_diffusion.errors import ConfigError
from gan_diffusion.models.plan import check_weights, unit_floats
from gan_diffusion.weightfile import read_npz, read_state_dict, write_npz

# -- the weight file ----------------------------------------------------------------------
EXTRACTOR_ID = "inception-v3-fid-2015-12-05"
WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               "pt_inception-2015-12-05-6726825d.pth")
# Full SHA-256 of the release file (95,628,359 bytes); it starts with the 8 hex digits of the
# file name, the torch hub convention. torch-fidelity's weights-inception-2015-12-05-6726825d.pth
# is reported with the same digest.
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
WEIGHTS_DIR_ENV = "GAN_DIFFUSION_WEIGHTS_DIR"
NPZ_FORMAT = "gan_diffusion.inception/1"

# -- the network --------------------------------------------------------------------------
NETWORK = "inception"   # canonical name prefix
INPUT_SIZE = 299        # images are resized to 299x299 (bilinear, align_corners=False)
FEATURE_DIM = 2048      # pool3: the final average pool
NUM_CLASSES = 1008      # fc of the 2015-12-05 graph (1000 ImageNet classes + 8 unused)
BN_EPS = 1e-3


class PretrainedWeightsError(DataError):
    """Pretrained weights that are missing, corrupt, of another version, or unreadable.

    The message names the file, where it was looked for, and how to fix it.
    A `DataError`, so a `GanDiffusionError` and a `ValueError`.
    """


@dataclass(frozen=True)
class Conv:
    """One BasicConv2d (conv without bias -> BatchNorm(eps=0.001) -> ReLU).

    Attributes:
        name: module path with "/" (e.g. "Mixed_5b/branch5x5_2").
        in_ch, out_ch: channels.
        kernel: (kh, kw).
        stride: both axes.
        padding: torch-style (ph, pw); either (0, 0) ('valid') or ((kh-1)/2, (kw-1)/2) with
            stride 1, which is exactly Keras' symmetric 'same'.
    """

    name: str
    in_ch: int
    out_ch: int
    kernel: tuple[int, int]
    stride: int = 1
    padding: tuple[int, int] = (0, 0)

    @property
    def keras_padding(self) -> str:
        """'valid' or 'same'; both equal the torch padding for the convs of this network."""
        if self.padding == (0, 0):
            return "valid"
        kh, kw = self.kernel
        assert self.stride == 1 and self.padding == ((kh - 1) // 2, (kw - 1) // 2), self
        return "same"


def _conv(block: str, branch: str, in_ch: int, out_ch: int, kernel: int | tuple[int, int],
          stride: int = 1, padding: int | tuple[int, int] = 0) -> Conv:
    k = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    p = (padding, padding) if isinstance(padding, int) else tuple(padding)
    return Conv(f"{block}/{branch}" if block else branch, in_ch, out_ch, k, stride, p)


@dataclass(frozen=True)
class Block:
    """One Mixed_* block: its name, class (kind), input channels and width parameter."""

    name: str
    kind: str       # FIDInceptionA, InceptionB, FIDInceptionC, InceptionD, FIDInceptionE_1/_2
    in_ch: int
    width: int = 0  # pool_features (A) or channels_7x7 (C)

    @property
    def convs(self) -> dict[str, Conv]:
        """{branch name: Conv} in torchvision's order."""
        convs = _BLOCK_CONVS[self.kind](self.name, self.in_ch, self.width)
        return {c.name.rsplit("/", 1)[1]: c for c in convs}

    @property
    def out_ch(self) -> int:
        return {"FIDInceptionA": 224 + self.width, "InceptionB": 384 + 96 + self.in_ch,
                "FIDInceptionC": 768, "InceptionD": 320 + 192 + self.in_ch,
                "FIDInceptionE_1": 2048, "FIDInceptionE_2": 2048}[self.kind]


def _block_a(b: str, i: int, pool: int) -> list[Conv]:
    return [_conv(b, "branch1x1", i, 64, 1),
            _conv(b, "branch5x5_1", i, 48, 1), _conv(b, "branch5x5_2", 48, 64, 5, padding=2),
            _conv(b, "branch3x3dbl_1", i, 64, 1), _conv(b, "branch3x3dbl_2", 64, 96, 3, padding=1),
            _conv(b, "branch3x3dbl_3", 96, 96, 3, padding=1),
            _conv(b, "branch_pool", i, pool, 1)]


def _block_b(b: str, i: int, _: int) -> list[Conv]:
    return [_conv(b, "branch3x3", i, 384, 3, stride=2),
            _conv(b, "branch3x3dbl_1", i, 64, 1), _conv(b, "branch3x3dbl_2", 64, 96, 3, padding=1),
            _conv(b, "branch3x3dbl_3", 96, 96, 3, stride=2)]


def _block_c(b: str, i: int, c7: int) -> list[Conv]:
    row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))  # (kernel, padding) of the factorised 7x7
    return [_conv(b, "branch1x1", i, 192, 1),
            _conv(b, "branch7x7_1", i, c7, 1), _conv(b, "branch7x7_2", c7, c7, row[0], padding=row[1]),
            _conv(b, "branch7x7_3", c7, 192, col[0], padding=col[1]),
            _conv(b, "branch7x7dbl_1", i, c7, 1),
            _conv(b, "branch7x7dbl_2", c7, c7, col[0], padding=col[1]),
            _conv(b, "branch7x7dbl_3", c7, c7, row[0], padding=row[1]),
            _conv(b, "branch7x7dbl_4", c7, c7, col[0], padding=col[1]),
            _conv(b, "branch7x7dbl_5", c7, 192, row[0], padding=row[1]),
            _conv(b, "branch_pool", i, 192, 1)]


def _block_d(b: str, i: int, _: int) -> list[Conv]:
    return [_conv(b, "branch3x3_1", i, 192, 1), _conv(b, "branch3x3_2", 192, 320, 3, stride=2),
            _conv(b, "branch7x7x3_1", i, 192, 1),
            _conv(b, "branch7x7x3_2", 192, 192, (1, 7), padding=(0, 3)),
            _conv(b, "branch7x7x3_3", 192, 192, (7, 1), padding=(3, 0)),
            _conv(b, "branch7x7x3_4", 192, 192, 3, stride=2)]


def _block_e(b: str, i: int, _: int) -> list[Conv]:
    return [_conv(b, "branch1x1", i, 320, 1),
            _conv(b, "branch3x3_1", i, 384, 1),
            _conv(b, "branch3x3_2a", 384, 384, (1, 3), padding=(0, 1)),
            _conv(b, "branch3x3_2b", 384, 384, (3, 1), padding=(1, 0)),
            _conv(b, "branch3x3dbl_1", i, 448, 1), _conv(b, "branch3x3dbl_2", 448, 384, 3, padding=1),
            _conv(b, "branch3x3dbl_3a", 384, 384, (1, 3), padding=(0, 1)),
            _conv(b, "branch3x3dbl_3b", 384, 384, (3, 1), padding=(1, 0)),
            _conv(b, "branch_pool", i, 192, 1)]


_BLOCK_CONVS = {"FIDInceptionA": _block_a, "InceptionB": _block_b, "FIDInceptionC": _block_c,
                "InceptionD": _block_d, "FIDInceptionE_1": _block_e, "FIDInceptionE_2": _block_e}

# Stem: 299 -> 149 -> 147 -> 147 -> maxpool 73 -> 73 -> 71 -> maxpool 35 (spatial sides).
STEM = (_conv("", "Conv2d_1a_3x3", 3, 32, 3, stride=2),
        _conv("", "Conv2d_2a_3x3", 32, 32, 3),
        _conv("", "Conv2d_2b_3x3", 32, 64, 3, padding=1),
        # max_pool 3x3 stride 2
        _conv("", "Conv2d_3b_1x1", 64, 80, 1),
        _conv("", "Conv2d_4a_3x3", 80, 192, 3))
        # max_pool 3x3 stride 2

# Blocks after the stem; sides 35 (5b-5d), 17 (6a-6e), 8 (7a-7c) for a 299 input.
BLOCKS = (Block("Mixed_5b", "FIDInceptionA", 192, 32),
          Block("Mixed_5c", "FIDInceptionA", 256, 64),
          Block("Mixed_5d", "FIDInceptionA", 288, 64),
          Block("Mixed_6a", "InceptionB", 288),
          Block("Mixed_6b", "FIDInceptionC", 768, 128),
          Block("Mixed_6c", "FIDInceptionC", 768, 160),
          Block("Mixed_6d", "FIDInceptionC", 768, 160),
          Block("Mixed_6e", "FIDInceptionC", 768, 192),
          Block("Mixed_7a", "InceptionD", 768),
          Block("Mixed_7b", "FIDInceptionE_1", 1280),
          Block("Mixed_7c", "FIDInceptionE_2", 2048))


def conv_specs() -> list[Conv]:
    """All 94 BasicConv2d layers in torchvision's module order."""
    return list(STEM) + [c for block in BLOCKS for c in block.convs.values()]


# -- canonical layout ---------------------------------------------------------------------
_BN_TORCH = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
             "moving_variance": "running_var"}


def layout() -> list[tuple[str, str, tuple[int, ...]]]:
    """The canonical weights in order: (name, kind, shape); kind is conv, bn, dense or bias.

    Example:
        >>> layout()[0]
        ('inception/Conv2d_1a_3x3/conv/kernel', 'conv', (3, 3, 3, 32))
        >>> len(layout())   # 94 convs x (kernel + 4 BatchNorm arrays) + fc kernel and bias
        472
    """
    out = []
    for c in conv_specs():
        out.append((f"{NETWORK}/{c.name}/conv/kernel", "conv", (*c.kernel, c.in_ch, c.out_ch)))
        out += [(f"{NETWORK}/{c.name}/bn/{p}", "bn", (c.out_ch,)) for p in _BN_TORCH]
    out.append((f"{NETWORK}/fc/kernel", "dense", (FEATURE_DIM, NUM_CLASSES)))
    out.append((f"{NETWORK}/fc/bias", "bias", (NUM_CLASSES,)))
    return out


def weight_shapes() -> dict[str, tuple[int, ...]]:
    """{canonical name: shape} for the whole network."""
    return {name: shape for name, _, shape in layout()}


def torch_key(name: str) -> str:
    """Canonical name -> pytorch-fid / torchvision state_dict key.

    Example:
        >>> torch_key("inception/Mixed_7c/branch_pool/bn/moving_variance")
        'Mixed_7c.branch_pool.bn.running_var'
        >>> torch_key("inception/fc/kernel")
        'fc.weight'
    """
    *path, param = name.split("/")[1:]
    param = _BN_TORCH.get(param, {"kernel": "weight"}.get(param, param))
    return ".".join([*path, param])


def canonical_from_state_dict(state: dict[str, np.ndarray], source: str = "state_dict"
                              ) -> dict[str, np.ndarray]:
    """A pytorch-fid state_dict (NumPy arrays, torch layout) -> canonical float32 weights.

    Conv weights (out, in, kh, kw) are transposed to (kh, kw, in, out) and fc.weight
    (1008, 2048) to (2048, 1008); BatchNorm vectors are kept. `num_batches_tracked` entries
    are ignored.

    Raises:
        PretrainedWeightsError: a key is missing or unexpected, or a shape is wrong.
    """
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    expected = {torch_key(name): (name, kind, shape) for name, kind, shape in layout()}
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise PretrainedWeightsError(
            f"{source} is not a pytorch-fid FID Inception state_dict: missing {missing[:4]}"
            f"{'...' if len(missing) > 4 else ''}, unexpected {extra[:4]}{'...' if len(extra) > 4 else ''}; "
            f"use {WEIGHTS_FILE} from {WEIGHTS_URL}")
    out = {}
    for key, (name, kind, shape) in expected.items():
        a = np.asarray(state[key], dtype=np.float32)
        a = a.transpose(2, 3, 1, 0) if kind == "conv" else a.T if kind == "dense" else a
        if a.shape != shape:
            raise PretrainedWeightsError(f"{source}: {key} has shape {np.shape(state[key])}, "
                                         f"which does not fit the FID Inception layer {name} {shape}")
        out[name] = np.ascontiguousarray(a)
    return out


def state_dict_from_canonical(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Inverse of `canonical_from_state_dict` (NumPy arrays in torch layout, no counters)."""
    check_weights(weights, weight_shapes(), "FID Inception")
    out = {}
    for name, kind, _ in layout():
        a = np.asarray(weights[name], np.float32)
        out[torch_key(name)] = np.ascontiguousarray(
            a.transpose(3, 2, 0, 1) if kind == "conv" else a.T if kind == "dense" else a)
    return out


def init_random(seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random canonical weights, shared by both backends (for tests, not for FID).

    Kernels ~ N(0, 2 / fan_in) (He, so activations keep their scale through the ReLUs);
    BatchNorm gamma ~ U(0.8, 1.2), beta ~ N(0, 0.1), moving mean ~ N(0, 0.1), moving
    variance ~ U(0.5, 1.5); fc kernel ~ N(0, 1 / 2048), bias ~ N(0, 0.01).

    Example:
        >>> w = init_random(0)
        >>> w["inception/Mixed_5b/branch1x1/conv/kernel"].shape
        (1, 1, 192, 64)
    """
    rng = np.random.default_rng([seed, 0x1CE9])  # stream id: inception init
    out = {}
    for name, kind, shape in layout():
        param = name.rsplit("/", 1)[1]
        if kind in ("conv", "dense"):
            fan_in = int(np.prod(shape[:-1]))
            gain = 2.0 if kind == "conv" else 1.0
            value = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(gain / fan_in))
        elif param == "gamma":
            value = rng.uniform(0.8, 1.2, shape)
        elif param == "moving_variance":
            value = rng.uniform(0.5, 1.5, shape)
        elif param == "bias":
            value = rng.normal(0.0, 0.01, shape)
        else:  # beta, moving_mean
            value = rng.normal(0.0, 0.1, shape)
        out[name] = np.asarray(value, np.float32)
    return out


# -- weight files: canonical .npz, pytorch-fid .pth ------------------------------------------
def save_npz(path: str | os.PathLike, weights: dict[str, np.ndarray], source_sha256: str | None = None
             ) -> Path:
    """Write canonical weights as one .npz atomically (read back with `load_npz`).

    Args:
        path: target file.
        weights: canonical weights (checked against `layout()`).
        source_sha256: SHA-256 of the .pth they were converted from, kept in the metadata so
            that `load_npz` can tell the official weights from others.

    Returns:
        The path.

    Example:
        >>> save_npz("fid_inception.npz", init_random(0))  # doctest: +SKIP
    """
    check_weights(weights, weight_shapes(), "FID Inception")
    meta = {"format": NPZ_FORMAT, "extractor": EXTRACTOR_ID, "source_sha256": source_sha256}
    return write_npz(path, {k: np.asarray(weights[k], np.float32) for k in weight_shapes()}, meta)


def load_npz(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read canonical weights written by `save_npz` (allow_pickle=False: nothing executes).

    Returns:
        (weights, meta); meta["source_sha256"] is the SHA-256 of the original .pth, if known.

    Raises:
        PretrainedWeightsError: missing, corrupt or foreign file.
    """
    arrays, meta = read_npz(path, what="FID Inception weights", error=PretrainedWeightsError,
                            format=NPZ_FORMAT, fix="write it with save_npz, or convert the .pth "
                            "again with convert_fid_weights")
    try:
        check_weights(arrays, weight_shapes(), "FID Inception")
    except ValueError as exc:
        raise PretrainedWeightsError(f"{path}: {exc}") from None
    return arrays, meta


def read_fid_weights(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], str | None]:
    """Canonical weights from a pytorch-fid .pth or a canonical .npz, and the SHA-256 of the
    .pth they come from (None if unknown). Both backends load through this; only a .pth needs
    torch (imported lazily by `weightfile.read_state_dict`)."""
    path = Path(path)
    if path.suffix == ".npz":
        weights, meta = load_npz(path)
        return weights, meta.get("source_sha256")
    if not path.is_file():
        raise PretrainedWeightsError(f"{path} does not exist; pass the {WEIGHTS_FILE} "
                                     "file or call load_fid_weights() to search for it")
    state = read_state_dict(path, error=PretrainedWeightsError, fix=(
        f"delete it and download {WEIGHTS_URL} again; without torch, convert it once where "
        "torch is, with convert_fid_weights(pth, npz), and pass the .npz"))
    return canonical_from_state_dict(state, source=str(path)), sha256_file(path)


def convert_fid_weights(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Convert a pytorch-fid .pth into the canonical .npz that loads without torch.

    Example:
        >>> convert_fid_weights(find_inception_weights(), "fid_inception.npz")  # doctest: +SKIP
    """
    weights, sha = read_fid_weights(src)
    return save_npz(dst, weights, source_sha256=sha)


# -- finding the weight file --------------------------------------------------------------
def torch_hub_dir() -> Path:
    """torch hub's checkpoint folder, computed as torch does, without importing torch:
    $TORCH_HOME/hub/checkpoints, TORCH_HOME defaulting to $XDG_CACHE_HOME/torch or ~/.cache/torch."""
    cache = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    home = os.environ.get("TORCH_HOME") or os.path.join(cache, "torch")
    return Path(home).expanduser() / "hub" / "checkpoints"


def search_dirs(weights_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where `find_inception_weights` looks, in order: `weights_dir`, $GAN_DIFFUSION_WEIGHTS_DIR,
    the torch hub cache (shared with pytorch-fid)."""
    dirs = [Path(weights_dir).expanduser()] if weights_dir else []
    if os.environ.get(WEIGHTS_DIR_ENV):
        dirs.append(Path(os.environ[WEIGHTS_DIR_ENV]).expanduser())
    dirs.append(torch_hub_dir())
    return list(dict.fromkeys(dirs))  # drop duplicates, keep order


_VERIFIED: set[tuple[str, int, int]] = set()  # (path, size, mtime_ns) already hashed this process


def verify_weights(path: str | os.PathLike) -> Path:
    """Check a weight file's SHA-256 against the official one (cached per path, size, mtime).

    Raises:
        PretrainedWeightsError: wrong checksum, with both digests and the fix.
    """
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _VERIFIED:
        return path
    actual = sha256_file(path)
    if actual != WEIGHTS_SHA256:
        raise PretrainedWeightsError(
            f"{path} is not the official FID Inception weight file: sha256 {actual}, expected "
            f"{WEIGHTS_SHA256} ({st.st_size} bytes on disk). It is corrupt, truncated or another "
            f"model: delete it and download {WEIGHTS_URL} again")
    _VERIFIED.add(key)
    return path


def find_inception_weights(weights_dir: str | os.PathLike | None = None,
                           download: bool | None = None) -> Path:
    """Locate (or download) pt_inception-2015-12-05-6726825d.pth and verify its checksum.

    Looks in `weights_dir`, then $GAN_DIFFUSION_WEIGHTS_DIR, then the torch hub cache
    ($TORCH_HOME/hub/checkpoints, where pytorch-fid keeps it). The first file found must have
    the official SHA-256. If none is found it is downloaded from the pytorch-fid release into
    the first of those folders (checksum-verified, written atomically), unless downloads are
    off: `download=False`, or GAN_DIFFUSION_NO_DOWNLOAD=1 (which also overrides download=True).

    Args:
        weights_dir: a folder to look in first (and to download into).
        download: True/None: download if missing (None: unless the environment forbids it);
            False: never.

    Returns:
        Path of the verified file.

    Raises:
        PretrainedWeightsError: not found and not downloadable (the message lists the folders
            searched and how to fix it), wrong checksum, or a failed download.

    Example:
        >>> find_inception_weights()  # doctest: +SKIP
        PosixPath('/home/me/.cache/torch/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth')
    """
    dirs = search_dirs(weights_dir)
    for d in dirs:
        if (d / WEIGHTS_FILE).is_file():
            return verify_weights(d / WEIGHTS_FILE)
    dest = dirs[0] / WEIGHTS_FILE
    looked = ", ".join(str(d) for d in dirs)
    fix = (f"download {WEIGHTS_URL} (sha256 {WEIGHTS_SHA256}) and put it at {dest}, or set "
           f"{WEIGHTS_DIR_ENV} to the folder that holds it")
    if download is False or downloads_disabled():
        why = "download=False" if download is False else f"{NO_DOWNLOAD_ENV}=1"
        raise PretrainedWeightsError(
            f"FID Inception weights {WEIGHTS_FILE} not found (looked in: {looked}) and downloads "
            f"are off ({why}). Fix: {fix}; or allow the download (unset {NO_DOWNLOAD_ENV}, "
            "download=True)")
    try:
        return download_file(WEIGHTS_URL, dest, WEIGHTS_SHA256, timeout=60)
    except DataError as exc:
        raise PretrainedWeightsError(f"FID Inception weights {WEIGHTS_FILE} not found (looked in: "
                                     f"{looked}) and the download failed: {exc}. Fix: {fix}") from None


# -- input images -------------------------------------------------------------------------
def as_unit_images(images: np.ndarray) -> np.ndarray:
    """Images for the extractor -> float32 NHWC in [0, 1] with 3 channels.

    Args:
        images: NHWC uint8 (divided by 255), or float in [0, 1] (as pytorch-fid expects);
            1 channel is repeated to 3 (as pytorch-fid's `convert("RGB")`). Any side >= 1:
            the backends resize to 299x299.

    Returns:
        float32 array (N, H, W, 3).

    Raises:
        ConfigError: wrong rank, channel count, dtype or value range.

    Example:
        >>> as_unit_images(np.full((2, 28, 28, 1), 255, np.uint8)).shape
        (2, 28, 28, 3)
    """
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ConfigError(f"the Inception extractor takes NHWC images with 1 or 3 channels, got "
                          f"shape {x.shape}; add a batch axis or move channels last")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / np.float32(255.0)
    elif np.issubdtype(x.dtype, np.floating):
        x = unit_floats(x, "model outputs in [-1, 1] need gan_diffusion.data.from_model_range first")
    else:
        raise ConfigError(f"images must be uint8 or float in [0, 1], got dtype {x.dtype}")
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def resize_taps(in_size: int, out_size: int = INPUT_SIZE
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear resampling along one axis as torch's F.interpolate(align_corners=False) does it.

    Output pixel d reads source src = (d + 0.5) * (in / out) - 0.5 (clamped at 0), i.e. the
    pixels i0 = floor(src), i1 = min(i0 + 1, in - 1) with weights 1 - l, l (l = src - i0).
    torch's CPU kernel rounds `scale * (d + 0.5) - 0.5` once (a fused multiply-add in float32);
    computing it in float64 and rounding once reproduces its taps exactly, where
    tf.image.resize, which rounds twice, can differ by 3e-5 when shrinking (e.g. 401 -> 299).

    Returns:
        i0, i1 (int64, (out,)), w0, w1 (float32, (out,)).

    Example:
        >>> i0, i1, w0, w1 = resize_taps(2, 4)
        >>> i0.tolist(), i1.tolist(), w1.tolist()
        ([0, 0, 0, 1], [1, 1, 1, 1], [0.0, 0.25, 0.75, 0.25])
    """
    scale = np.float32(in_size) / np.float32(out_size)
    src = (np.float64(scale) * (np.arange(out_size) + 0.5) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    w1 = np.clip(src - i0.astype(np.float32), 0.0, 1.0).astype(np.float32)
    i1 = np.minimum(i0 + 1, in_size - 1)
    return i0, i1, np.float32(1.0) - w1, w1


def extractor_id(weights_sha256: str | None, label: str) -> str:
    """EXTRACTOR_ID for the official weights, else EXTRACTOR_ID[label] (e.g. random:seed=0),
    so features of other weights are never mistaken for real FID features."""
    return EXTRACTOR_ID if weights_sha256 == WEIGHTS_SHA256 else f"{EXTRACTOR_ID}[{label}]"
