"""Tests for gan_diffusion.data: synthetic files in tmp_path, no network.

Real-data tests run only when GAN_DIFFUSION_DATA_DIR points at a folder holding
the files (e.g. GAN_DIFFUSION_DATA_DIR=/work/shared/data).
"""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO_ROOT, make_eurosat_folder
from PIL import Image

import gan_diffusion.data as data
import gan_diffusion.data.mnist as mnist_module
from gan_diffusion.data import (EUROSAT_CLASSES, ArrayDataset, DataError, batch_indices, center_crop_resize,
                                download_file, epoch_order, from_model_range, iterate_batches,
                                load_celeba, load_cifar10_jpg, load_dataset, load_digits_embedded,
                                load_eurosat, load_image_folder, load_mnist, read_idx,
                                resolve_data_dir, sha256_file, steps_per_epoch, to_model_range,
                                verify_file)

REAL_DIR = Path(os.environ["GAN_DIFFUSION_DATA_DIR"]) if os.environ.get("GAN_DIFFUSION_DATA_DIR") else None


def _real(rel: str) -> bool:
    return REAL_DIR is not None and (REAL_DIR / rel).exists()


def _skip_unless(rel: str):
    return pytest.mark.skipif(not _real(rel), reason=f"GAN_DIFFUSION_DATA_DIR unset or has no {rel}/")


# ----------------------------------------------------------------------------- helpers

def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """Write a uint8 array as an IDX file (gzipped by default)."""
    raw = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def make_mnist(folder: Path, split: str = "train", n: int = 5,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    """Synthetic MNIST split in `folder`; returns images, labels and a checksum override."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    files = mnist_module.MNIST_FILES[split]
    img_path = write_idx(folder / files["images"][0], images)
    lab_path = write_idx(folder / files["labels"][0], labels)
    checksums = {img_path.name: sha256_file(img_path), lab_path.name: sha256_file(lab_path)}
    return images, labels, checksums


def save(path: Path, array: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def solid(value: int | tuple, size=(8, 8), channels: int = 3) -> np.ndarray:
    shape = (*size, channels) if channels == 3 else size
    return np.full(shape, value, np.uint8)


# ----------------------------------------------------------------------------- paths

def test_resolve_data_dir_priority(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_DIFFUSION_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("GAN_DIFFUSION_DATA_DIR")
    assert resolve_data_dir() == tmp_path / "xdg" / "gan_diffusion" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert resolve_data_dir() == Path.home() / ".cache" / "gan_diffusion" / "data"
    assert not (tmp_path / "xdg").exists()  # never created


# ----------------------------------------------------------------------------- MNIST / IDX

def test_mnist_synthetic_loads_with_checksum_override(tmp_path):
    images, labels, sums = make_mnist(tmp_path / "mnist", "train", n=5)
    ds = load_mnist("train", data_dir=tmp_path, checksums=sums)
    assert ds.images.shape == (5, 28, 28, 1) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.images[..., 0], images)
    assert ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.name == "mnist" and ds.num_classes == 10


def test_mnist_files_directly_in_data_dir(tmp_path):
    images, _, sums = make_mnist(tmp_path, "test", n=3)
    ds = load_mnist("test", data_dir=tmp_path, checksums=sums)
    np.testing.assert_array_equal(ds.images[..., 0], images)


def test_mnist_wrong_checksum_names_file(tmp_path):
    make_mnist(tmp_path / "mnist", "train")
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz") as err:
        load_mnist("train", data_dir=tmp_path)  # official checksums do not match synthetic files
    assert "440fcabf" in str(err.value) and "re-download" in str(err.value)
    assert load_mnist("train", data_dir=tmp_path, verify=False).images.shape == (5, 28, 28, 1)


def test_mnist_truncated_file_raises(tmp_path):
    _, _, sums = make_mnist(tmp_path / "mnist", "train")
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])
    sums[path.name] = sha256_file(path)
    with pytest.raises(DataError, match=str(path)):
        load_mnist("train", data_dir=tmp_path, checksums=sums)


def test_read_idx_uncompressed_and_corrupt(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "a.idx", arr, compress=False)), arr)
    short = tmp_path / "short.idx"
    short.write_bytes((tmp_path / "a.idx").read_bytes()[:-1])
    with pytest.raises(DataError, match="short.idx.*truncated"):
        read_idx(short)
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x12\x34\x08\x01" + bytes(8))
    with pytest.raises(DataError, match="bad.idx.*magic"):
        read_idx(bad)


def test_mnist_missing_names_directory_and_fix(tmp_path):
    with pytest.raises(DataError) as err:
        load_mnist("train", data_dir=tmp_path / "nothing")
    msg = str(err.value)
    assert str(tmp_path / "nothing" / "mnist") in msg
    assert "GAN_DIFFUSION_DATA_DIR" in msg and "download=True" in msg
    with pytest.raises(DataError, match="split"):
        load_mnist("validation", data_dir=tmp_path)


def test_mnist_download_from_local_mirror(monkeypatch, tmp_path):
    monkeypatch.delenv("GAN_DIFFUSION_NO_DOWNLOAD", raising=False)
    images, _, sums = make_mnist(tmp_path / "mirror", "test", n=4)
    mirrors = ((tmp_path / "absent").as_uri() + "/", (tmp_path / "mirror").as_uri() + "/")
    monkeypatch.setattr(mnist_module, "MNIST_MIRRORS", mirrors)
    ds = load_mnist("test", data_dir=tmp_path / "data", download=True, checksums=sums)
    np.testing.assert_array_equal(ds.images[..., 0], images)
    assert sorted(p.name for p in (tmp_path / "data" / "mnist").iterdir()) == sorted(sums)


# ----------------------------------------------------------------------------- download

def test_download_file_verifies_and_is_atomic(monkeypatch, tmp_path):
    monkeypatch.delenv("GAN_DIFFUSION_NO_DOWNLOAD", raising=False)
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello world")
    good = sha256_file(src)
    dest = tmp_path / "out" / "file.bin"
    assert download_file(src.as_uri(), dest, good) == dest
    assert dest.read_bytes() == b"hello world"
    verify_file(dest, good)

    dest2 = tmp_path / "out" / "other.bin"
    with pytest.raises(DataError, match="wrong checksum"):
        download_file([src.as_uri()], dest2, "0" * 64)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]  # no partial / temp files

    with pytest.raises(DataError) as err:
        download_file((tmp_path / "missing.bin").as_uri(), dest2, good)
    assert "missing.bin" in str(err.value) and "offline" in str(err.value) and str(dest2) in str(err.value)


def test_download_disabled_by_env(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_DIFFUSION_NO_DOWNLOAD", "1")
    src = tmp_path / "src.bin"
    src.write_bytes(b"x")
    with pytest.raises(DataError, match=r"downloads are disabled \(GAN_DIFFUSION_NO_DOWNLOAD=1\)"):
        download_file(src.as_uri(), tmp_path / "dest.bin", sha256_file(src))
    assert not (tmp_path / "dest.bin").exists()


def test_verify_file_messages(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    actual = sha256_file(path)
    verify_file(path, actual.upper())
    with pytest.raises(DataError) as err:
        verify_file(path, "1" * 64)
    assert str(path) in str(err.value) and "1" * 64 in str(err.value) and actual in str(err.value)
    with pytest.raises(DataError, match="does not exist"):
        verify_file(tmp_path / "nope", actual)


# ----------------------------------------------------------------------------- batching

def test_epoch_order_deterministic_permutation():
    a = epoch_order(100, seed=3, epoch=0)
    assert a.dtype == np.int64
    np.testing.assert_array_equal(a, epoch_order(100, seed=3, epoch=0))
    np.testing.assert_array_equal(np.sort(a), np.arange(100))
    assert not np.array_equal(a, epoch_order(100, seed=3, epoch=1))
    assert not np.array_equal(a, epoch_order(100, seed=4, epoch=0))
    np.testing.assert_array_equal(a, np.random.default_rng([3, 0]).permutation(100))


@pytest.mark.parametrize("n,world", [(100, 4), (103, 4), (10, 3)])
def test_epoch_order_shards_disjoint_equal(n, world):
    shards = [epoch_order(n, 7, 2, rank=r, world_size=world) for r in range(world)]
    assert {len(s) for s in shards} == {n // world}
    joined = np.concatenate(shards)
    assert len(np.unique(joined)) == len(joined)
    assert set(joined) <= set(range(n))
    with pytest.raises(DataError):
        epoch_order(n, 0, 0, rank=world, world_size=world)


@pytest.mark.parametrize("n,bs,drop,world", [(10, 4, True, 1), (10, 4, False, 1), (12, 4, True, 1),
                                             (103, 8, True, 4), (103, 8, False, 4), (3, 4, True, 1)])
def test_batch_indices_consistent(n, bs, drop, world):
    for rank in range(world):
        batches = batch_indices(n, bs, seed=1, epoch=5, drop_last=drop, rank=rank, world_size=world)
        assert len(batches) == steps_per_epoch(n, bs, drop_last=drop, world_size=world)
        assert all(len(b) == bs for b in batches[:-1])
        if batches:
            assert len(batches[-1]) == bs if drop else 1 <= len(batches[-1]) <= bs
        order = epoch_order(n, 1, 5, rank, world)
        flat = np.concatenate(batches) if batches else np.array([], np.int64)
        np.testing.assert_array_equal(flat, order[: len(flat)])
        if not drop:
            assert len(flat) == len(order)
    assert steps_per_epoch(10, 4) == 2 and steps_per_epoch(10, 4, drop_last=False) == 3


def test_iterate_batches_pairs_images_and_labels():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * np.ones((1, 2, 2, 3), np.uint8)
    ds = ArrayDataset(images, np.arange(10), "toy", "pixel value equals label")
    batches = list(iterate_batches(ds, 3, seed=0, epoch=0))
    assert len(batches) == 3
    for x, y in batches:
        assert x.shape == (3, 2, 2, 3) and x.dtype == np.uint8
        np.testing.assert_array_equal(x[:, 0, 0, 0], y)
    unlabelled = ArrayDataset(images, None, "toy", "no labels")
    assert all(y is None for _, y in iterate_batches(unlabelled, 5, 0, 0))


def test_model_range_round_trip():
    pixels = np.arange(256, dtype=np.uint8)
    x = to_model_range(pixels)
    assert x.dtype == np.float32 and x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_array_equal(from_model_range(x), pixels)
    np.testing.assert_array_equal(from_model_range(np.array([-3.0, 3.0])), [0, 255])


def test_array_dataset_validation_and_subset():
    ds = ArrayDataset(np.zeros((4, 5, 6, 1), np.uint8), np.array([0, 1, 2, 1], np.int32), "t", "d")
    assert ds.labels.dtype == np.int64 and ds.image_shape == (5, 6, 1) and len(ds) == 4
    assert ds.num_classes == 3
    sub = ds.subset(2)
    assert len(sub) == 2 and sub.labels.tolist() == [0, 1] and sub.name == "t"
    with pytest.raises(DataError, match="uint8"):
        ArrayDataset(np.zeros((4, 5, 6, 1), np.float32), None, "t", "d")
    with pytest.raises(DataError, match="shape"):
        ArrayDataset(np.zeros((4, 5, 6, 2), np.uint8), None, "t", "d")
    with pytest.raises(DataError, match="labels"):
        ArrayDataset(np.zeros((4, 5, 6, 3), np.uint8), np.zeros(3, np.int64), "t", "d")


# ----------------------------------------------------------------------------- image folders

def test_folder_class_layout_labels_and_order(tmp_path):
    root = tmp_path / "imgs"
    # classes sorted by name: "a_dog" -> 0, "b_cat" -> 1; files sorted by name within each class
    save(root / "b_cat" / "2.png", solid(30))
    save(root / "b_cat" / "1.png", solid(20))
    save(root / "b_cat" / "10.png", solid(25))
    save(root / "a_dog" / "x.png", solid(10))
    save(root / "a_dog" / "y.jpeg", solid(200), quality=95)
    (root / "a_dog" / "notes.txt").write_text("ignored")
    ds = load_image_folder(root)
    assert ds.class_names == ["a_dog", "b_cat"]
    assert ds.labels.tolist() == [0, 0, 1, 1, 1]
    assert ds.images.shape == (5, 8, 8, 3) and ds.images.dtype == np.uint8
    assert ds.images[[0, 2, 3, 4], 0, 0, 0].tolist() == [10, 20, 25, 30]
    assert abs(int(ds.images[1, 4, 4, 0]) - 200) <= 3  # JPEG decoded
    assert ds.name == f"folder:{root}"
    limited = load_image_folder(root, limit_per_class=1)
    assert limited.labels.tolist() == [0, 1] and limited.images[:, 0, 0, 0].tolist() == [10, 20]


def test_folder_flat_layout_unlabelled(tmp_path):
    save(tmp_path / "b.png", solid(5, channels=1))
    save(tmp_path / "a.png", solid(9, channels=1))
    ds = load_image_folder(tmp_path)
    assert ds.labels is None and ds.class_names is None
    assert ds.images.shape == (2, 8, 8, 1) and ds.images[:, 0, 0, 0].tolist() == [9, 5]


def test_folder_corrupt_file_named(tmp_path):
    save(tmp_path / "cls" / "good.png", solid(1))
    bad = tmp_path / "cls" / "broken.jpg"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match=str(bad)):
        load_image_folder(tmp_path)


def test_folder_mixed_sizes(tmp_path):
    save(tmp_path / "c" / "a.png", solid(1, size=(8, 8)))
    odd = save(tmp_path / "c" / "b.png", solid(2, size=(6, 10)))
    with pytest.raises(DataError, match=f"{odd}.*image_size="):
        load_image_folder(tmp_path)
    assert load_image_folder(tmp_path, image_size=8).images.shape == (2, 8, 8, 3)
    assert load_image_folder(tmp_path, image_size=(4, 6)).images.shape == (2, 4, 6, 3)


def test_folder_mixed_modes(tmp_path):
    save(tmp_path / "c" / "a.png", solid(100, channels=1))
    odd = save(tmp_path / "c" / "b.png", solid((10, 20, 30)))
    with pytest.raises(DataError, match=f"{odd}.*mode='RGB'"):
        load_image_folder(tmp_path)
    rgb = load_image_folder(tmp_path, mode="RGB")
    assert rgb.images.shape == (2, 8, 8, 3) and rgb.images[0, 0, 0].tolist() == [100, 100, 100]
    assert rgb.images[1, 0, 0].tolist() == [10, 20, 30]
    assert load_image_folder(tmp_path, mode="L").images.shape == (2, 8, 8, 1)


def test_folder_palette_mode_needs_mode(tmp_path):
    path = tmp_path / "p.png"
    Image.new("P", (8, 8), 3).save(path)
    with pytest.raises(DataError, match="mode='RGB'"):
        load_image_folder(tmp_path)
    assert load_image_folder(tmp_path, mode="RGB").images.shape == (1, 8, 8, 3)


def test_folder_missing_empty_and_empty_class(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_image_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_image_folder(tmp_path / "empty")
    save(tmp_path / "ds" / "full" / "a.png", solid(1))
    (tmp_path / "ds" / "hollow").mkdir()
    with pytest.raises(DataError, match=str(tmp_path / "ds" / "hollow")):
        load_image_folder(tmp_path / "ds")


def test_cifar_and_eurosat_layouts(tmp_path):
    for cls in ("airplane", "cat"):
        for i in range(3):
            save(tmp_path / "cifar10-jpg" / "test" / cls / f"{i:04d}.jpg", solid(50, size=(32, 32)))
    make_eurosat_folder(tmp_path / "eurosat", per_class=3, size=16)
    ds = load_cifar10_jpg("test", data_dir=tmp_path, limit_per_class=2)
    assert ds.images.shape == (4, 32, 32, 3) and ds.class_names == ["airplane", "cat"]
    assert "JPEG q75" in ds.description and "not comparable" in ds.description
    eu = load_eurosat(data_dir=tmp_path, image_size=8)
    assert eu.images.shape == (30, 8, 8, 3) and eu.name == "eurosat"
    assert eu.class_names == list(EUROSAT_CLASSES) and eu.labels.tolist() == sorted(list(range(10)) * 3)
    with pytest.raises(DataError) as err:
        load_eurosat(data_dir=tmp_path / "none")
    assert str(tmp_path / "none" / "EuroSAT_RGB") in str(err.value) and "download" in str(err.value)
    with pytest.raises(DataError, match="cifar10-jpg"):
        load_cifar10_jpg("train", data_dir=tmp_path)


def test_make_eurosat_folder_writes_the_real_layout(tmp_path):
    folder = make_eurosat_folder(tmp_path, per_class=2, fmt="png")
    assert folder == tmp_path / "2750"
    assert sorted(p.name for p in folder.iterdir()) == sorted(EUROSAT_CLASSES)
    assert sorted(p.name for p in (folder / "Forest").iterdir()) == ["Forest_1.png", "Forest_2.png"]
    ds = load_dataset("eurosat", data_dir=tmp_path)                     # found as <data dir>/2750
    assert ds.images.shape == (20, 64, 64, 3) and ds.class_names == list(EUROSAT_CLASSES)
    means = ds.images.reshape(10, 2, -1, 3).mean(axis=(1, 2))            # (class, channel)
    assert np.abs(means[:, None] - means[None]).max(-1)[~np.eye(10, dtype=bool)].min() > 5  # classes differ
    assert ds.images.std(axis=(1, 2)).min() > 5                          # not flat colours
    jpg = make_eurosat_folder(tmp_path / "j", per_class=1, size=32)
    assert (jpg / "River" / "River_1.jpg").is_file()
    assert load_eurosat(data_dir=tmp_path / "j", image_size=32).images.shape == (10, 32, 32, 3)


def test_eurosat_with_missing_classes_names_them(tmp_path):
    keep = [c for c in EUROSAT_CLASSES if c not in ("Highway", "SeaLake")]
    make_eurosat_folder(tmp_path, per_class=1, size=8, classes=keep)
    with pytest.raises(DataError) as err:
        load_dataset("eurosat", data_dir=tmp_path)
    msg = str(err.value)
    assert "lacks 2 of the 10 classes: Highway, SeaLake" in msg and str(tmp_path / "2750") in msg
    assert "unzip the complete EuroSAT RGB archive" in msg and "not EuroSAT classes" not in msg
    make_eurosat_folder(tmp_path, per_class=1, size=8, classes=["Highway", "SeaLake", "Clouds"])
    with pytest.raises(DataError, match="not EuroSAT classes: Clouds.*move the other folders out"):
        load_eurosat(data_dir=tmp_path)
    (tmp_path / "2750" / "Clouds" / "Clouds_1.jpg").unlink()
    (tmp_path / "2750" / "Clouds").rmdir()
    assert load_eurosat(data_dir=tmp_path, image_size=8).num_classes == 10


# ----------------------------------------------------------------------------- CelebA

def _face_like() -> np.ndarray:
    """178x218 RGB: green 20-row bands top and bottom, red body, blue 60x60 centre."""
    img = np.zeros((218, 178, 3), np.uint8)
    img[:, :, 0] = 255
    img[:20] = img[-20:] = (0, 255, 0)
    img[79:139, 59:119] = (0, 0, 255)
    return img


def test_center_crop_resize_takes_centre():
    out = np.asarray(center_crop_resize(Image.fromarray(_face_like()), 64)).astype(int)
    assert out.shape == (64, 64, 3)
    assert out[32, 32].tolist() == [0, 0, 255]
    assert out[4, 4, 0] > 200 and out[59, 59, 0] > 200  # red near the corners
    assert out[2:-2, :, 1].max() < 60  # the green bands are outside the 178x178 centre crop
    blue = (out[..., 2] > 128).mean()
    assert abs(blue - (60 / 178) ** 2) < 0.03
    tight = np.asarray(center_crop_resize(Image.fromarray(_face_like()), 64, crop=108))
    assert abs((tight[..., 2] > 128).mean() - (60 / 108) ** 2) < 0.04
    with pytest.raises(DataError):
        center_crop_resize(Image.fromarray(_face_like()), 64, crop=500)


def test_load_celeba_layout(tmp_path):
    for i in range(3):
        save(tmp_path / "celeba" / "img_align_celeba" / f"{i + 1:06d}.jpg", _face_like(), quality=95)
    ds = load_celeba(data_dir=tmp_path, size=32, limit=2)
    assert ds.images.shape == (2, 32, 32, 3) and ds.labels is None
    with pytest.raises(DataError) as err:
        load_celeba(data_dir=tmp_path / "none")
    assert str(tmp_path / "none" / "celeba-samples") in str(err.value)


# ----------------------------------------------------------------------------- digits / dispatch

def test_digits_embedded():
    ds = load_digits_embedded()
    assert ds.images.shape == (1797, 28, 28, 1) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64 and sorted(set(ds.labels.tolist())) == list(range(10))
    assert ds.images.max() == 255 and ds.name == "digits"
    assert "NOT MNIST" in ds.description and "scikit-learn" in ds.description


def test_load_dataset_dispatch(tmp_path):
    assert load_dataset("digits", limit=10, image_size=16).images.shape == (10, 16, 16, 1)
    save(tmp_path / "k" / "a.png", solid(1))
    save(tmp_path / "k" / "b.png", solid(2))
    assert len(load_dataset(f"folder:{tmp_path}")) == 2
    assert load_dataset(str(tmp_path), limit=1, image_size=4).images.shape == (1, 4, 4, 3)
    make_mnist(tmp_path / "m" / "mnist", "train", n=4)
    with pytest.raises(DataError, match="checksum"):
        load_dataset("mnist", data_dir=tmp_path / "m")
    with pytest.raises(DataError) as err:
        load_dataset("imagenet")
    assert all(name in str(err.value) for name in data.DATASETS)
    with pytest.raises(DataError, match="split"):
        load_dataset("celeba", split="test", data_dir=tmp_path)


def test_data_package_imports_no_framework():
    code = ("import gan_diffusion.data, sys; "
            "assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules, "
            "[m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow')]")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# ----------------------------------------------------------------------------- real data (optional)

@_skip_unless("mnist")
@pytest.mark.parametrize("split,n", [("train", 60000), ("test", 10000)])
def test_real_mnist(split, n):
    ds = load_mnist(split, data_dir=REAL_DIR)  # official sha256 verified
    assert ds.images.shape == (n, 28, 28, 1) and ds.images.dtype == np.uint8
    counts = np.bincount(ds.labels, minlength=10)
    assert len(counts) == 10 and counts.sum() == n and counts.min() > n // 20


@_skip_unless("cifar10-jpg/test")
def test_real_cifar10_jpg():
    ds = load_cifar10_jpg("test", data_dir=REAL_DIR, limit_per_class=20)
    assert ds.images.shape == (200, 32, 32, 3) and len(ds.class_names) == 10
    assert np.bincount(ds.labels).tolist() == [20] * 10


@_skip_unless("celeba-samples")
def test_real_celeba_samples():
    ds = load_celeba(data_dir=REAL_DIR)
    assert ds.images.shape == (32, 64, 64, 3) and ds.images.std() > 20
