"""TensorFlow Datasets: the `tfds:NAME[:SPLIT]` source of load_dataset (offline, with
tfds.testing.mock_data or an empty data dir; nothing is downloaded), and the TF backend's
folder reader on tfds's ImageFolder, compared with the core's PIL reader on PNG folders."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from helpers import REPO_ROOT, make_eurosat_folder
from PIL import Image

from gan_diffusion.data import (EUROSAT_CLASSES, DataError, load_dataset, load_image_folder,
                                parse_tfds_name, resize_image, tfds_data_dir)
from gan_diffusion.tf_backend.data import load_image_folder_tfds

REAL_DIR = Path(os.environ["GAN_DIFFUSION_DATA_DIR"]) if os.environ.get("GAN_DIFFUSION_DATA_DIR") else None
_skip_unless_cifar = pytest.mark.skipif(
    REAL_DIR is None or not (REAL_DIR / "cifar10-jpg" / "test").is_dir(),
    reason="GAN_DIFFUSION_DATA_DIR unset or has no cifar10-jpg/test/")


# ----------------------------------------------------------------------------- tfds:NAME

def test_parse_tfds_name():
    assert parse_tfds_name("tfds:mnist") == ("mnist", "train")
    assert parse_tfds_name("tfds:mnist", "test") == ("mnist", "test")
    assert parse_tfds_name("tfds:eurosat/rgb:train[:10%]") == ("eurosat/rgb", "train[:10%]")
    assert parse_tfds_name("tfds:cifar10:test", "test") == ("cifar10", "test")
    with pytest.raises(DataError, match="give the split once"):
        parse_tfds_name("tfds:cifar10:test", "validation")
    with pytest.raises(DataError, match="names no split"):
        parse_tfds_name("tfds:cifar10:")
    with pytest.raises(DataError, match="give the tfds name"):
        parse_tfds_name("tfds:")
    assert tfds_data_dir("/data") == Path("/data/tensorflow_datasets")


def test_tfds_source_gives_what_tfds_load_gives(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        ref = list(tfds.as_numpy(tfds.load("mnist", split="train")))
        ds = load_dataset("tfds:mnist", data_dir=tmp_path)
        small = load_dataset("tfds:mnist:test", data_dir=tmp_path, limit=4, image_size=14,
                             color_mode="RGB")
    ref_images = np.stack([r["image"] for r in ref])                    # (6, 28, 28, 1)
    assert ds.images.dtype == np.uint8 and ds.images.shape == (6, 28, 28, 1)
    np.testing.assert_array_equal(ds.images, ref_images)
    np.testing.assert_array_equal(ds.labels, [r["label"] for r in ref])
    assert ds.labels.dtype == np.int64 and ds.class_names == [str(i) for i in range(10)]
    assert ds.name == "tfds:mnist" and str(tmp_path / "tensorflow_datasets") in ds.description
    # limit, image_size (the datasets' PIL BICUBIC rule) and color_mode (grey repeated)
    want = np.stack([np.asarray(resize_image(Image.fromarray(im[..., 0]), 14)) for im in ref_images[:4]])
    assert small.images.shape == (4, 14, 14, 3)
    np.testing.assert_array_equal(small.images, np.repeat(want[..., None], 3, axis=-1))
    np.testing.assert_array_equal(small.labels, ds.labels[:4])           # mocked splits are alike


def test_tfds_source_class_names_sizes_and_features(tmp_path):
    with tfds.testing.mock_data(num_examples=4):
        eurosat = load_dataset("tfds:eurosat/rgb", data_dir=tmp_path)
        with pytest.raises(DataError, match=r"tfds:tf_flowers train example \d is \d+x\d+ but "
                                            r".*pass image_size="):
            load_dataset("tfds:tf_flowers", data_dir=tmp_path)          # images of many sizes
        flowers = load_dataset("tfds:tf_flowers", data_dir=tmp_path, image_size=(12, 16))
        with pytest.raises(DataError, match="0 top-level image features"):
            load_dataset("tfds:imdb_reviews", data_dir=tmp_path)        # a text data set
    assert eurosat.images.shape == (4, 64, 64, 3) and eurosat.class_names == list(EUROSAT_CLASSES)
    assert flowers.images.shape == (4, 12, 16, 3) and len(flowers.class_names) == 5
    assert "resized to 12x16" in flowers.description


def test_tfds_source_not_prepared_or_unknown_is_one_clear_error(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("tfds:mnist", data_dir=tmp_path)                    # real tfds.load, offline
    msg = str(err.value)
    folder = tmp_path / "tensorflow_datasets"
    for part in ("'mnist' is not prepared in", str(folder), "never downloaded", "tfds build mnist",
                 "download=True", "GAN_DIFFUSION_DATA_DIR"):
        assert part in msg, (part, msg)
    assert not folder.exists()                                           # nothing created
    with pytest.raises(DataError, match="tfds has no dataset 'no_such_dataset_xyz'"):
        load_dataset("tfds:no_such_dataset_xyz", data_dir=tmp_path)


def test_the_data_package_imports_tfds_only_on_use():
    code = ("import sys, gan_diffusion.data; "
            "print(sorted(m for m in ('tensorflow_datasets', 'tensorflow') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- ImageFolder

def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _class_folder(root: Path, seed: int = 0) -> Path:
    """3 classes of 2-4 random RGB 8x8 PNGs, unsorted names, plus files both readers skip."""
    rng = np.random.default_rng(seed)
    for cls, names in (("b_cat", ("1", "10", "2")), ("a_dog", ("x", "y")),
                       ("c_emu", ("d", "c", "b", "a"))):
        for n in names:
            _png(root / cls / f"{n}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (root / "a_dog" / "notes.txt").write_text("ignored")
    _png(root / "a_dog" / ".hidden.png", np.zeros((8, 8, 3), np.uint8))
    _png(root / ".thumbs" / "t.png", np.zeros((8, 8, 3), np.uint8))     # hidden folder: skipped
    return root


def _same(a, b) -> None:
    np.testing.assert_array_equal(b.images, a.images)
    assert (a.labels is None and b.labels is None) or a.labels.tolist() == b.labels.tolist()
    assert b.class_names == a.class_names and b.name == a.name and b.digest() == a.digest()


@pytest.mark.parametrize("kwargs", [{}, {"limit_per_class": 2}, {"image_size": (6, 4)},
                                    {"mode": "L"}, {"mode": "L", "image_size": 5}],
                         ids=["native", "limit", "resize", "grey", "grey-resize"])
def test_imagefolder_reader_matches_the_core_reader(tmp_path, kwargs):
    root = _class_folder(tmp_path / "imgs")
    ours, theirs = load_image_folder(root, **kwargs), load_image_folder_tfds(root, **kwargs)
    assert ours.class_names == ["a_dog", "b_cat", "c_emu"] and len(ours) in (6, 9)
    assert ours.images.std() > 20                                        # real content
    _same(ours, theirs)
    assert "tfds ImageFolder" in theirs.description


def test_imagefolder_reader_grey_flat_and_palette_folders(tmp_path):
    rng = np.random.default_rng(1)
    for n in ("b", "a", "c"):
        _png(tmp_path / "grey" / f"{n}.png", rng.integers(0, 256, (5, 7), dtype=np.uint8))
    ours = load_image_folder(tmp_path / "grey")
    assert ours.images.shape == (3, 5, 7, 1) and ours.labels is None
    _same(ours, load_image_folder_tfds(tmp_path / "grey"))
    pal = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).quantize(16)
    (tmp_path / "pal" / "k").mkdir(parents=True)
    pal.save(tmp_path / "pal" / "k" / "p.png")
    _png(tmp_path / "pal" / "k" / "q.png", rng.integers(0, 256, (6, 6), dtype=np.uint8))
    for mode in ("RGB", "L"):
        _same(load_image_folder(tmp_path / "pal", mode=mode),
              load_image_folder_tfds(tmp_path / "pal", mode=mode))


def test_imagefolder_reader_converts_to_grey_with_pils_integer_formula(tmp_path):
    """262,144 random colours: PIL's (19595 R + 38470 G + 7471 B + 2^15) >> 16 exactly
    (rounding 0.299 R + 0.587 G + 0.114 B in floats differs on ~150 of them)."""
    _png(tmp_path / "c" / "a.png", np.random.default_rng(2).integers(0, 256, (512, 512, 3), dtype=np.uint8))
    _same(load_image_folder(tmp_path, mode="L"), load_image_folder_tfds(tmp_path, mode="L"))


def test_imagefolder_reader_decodes_jpeg_as_pil_does(tmp_path):
    folder = make_eurosat_folder(tmp_path, per_class=2, size=32)          # RGB JPEG, quality 95
    _same(load_image_folder(folder), load_image_folder_tfds(folder))
    (tmp_path / "grey").mkdir()
    for i, n in enumerate("ab"):                                          # grey JPEG
        grey = np.random.default_rng(i).integers(0, 256, (9, 9), dtype=np.uint8)
        Image.fromarray(grey).save(tmp_path / "grey" / f"{n}.jpg", quality=80)
    _same(load_image_folder(tmp_path / "grey"), load_image_folder_tfds(tmp_path / "grey"))


@_skip_unless_cifar
def test_imagefolder_reader_on_real_cifar10_jpegs():
    root = REAL_DIR / "cifar10-jpg" / "test"
    _same(load_image_folder(root, limit_per_class=20, mode="RGB"),
          load_image_folder_tfds(root, limit_per_class=20, mode="RGB"))


def _error(fn, *args, **kwargs) -> str:
    with pytest.raises(DataError) as err:
        fn(*args, **kwargs)
    return str(err.value)


def test_imagefolder_reader_errors_are_the_core_readers(tmp_path):
    root = _class_folder(tmp_path / "modes")
    _png(root / "b_cat" / "3.png", np.zeros((8, 8), np.uint8))          # one grey image
    msg = _error(load_image_folder, root)
    assert "has PIL mode 'L' but" in msg and _error(load_image_folder_tfds, root) == msg
    sizes = _class_folder(tmp_path / "sizes")
    _png(sizes / "c_emu" / "e.png", np.zeros((9, 8, 3), np.uint8))
    msg = _error(load_image_folder, sizes)
    assert "pass image_size=" in msg and _error(load_image_folder_tfds, sizes) == msg
    bad = _class_folder(tmp_path / "corrupt") / "b_cat" / "0.png"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    for mode in (None, "RGB"):                   # header check (None) or TF's decoder (RGB)
        msg = _error(load_image_folder_tfds, bad.parent.parent, mode=mode)
        assert f"cannot decode image {bad}" in msg, msg
    bmp = _class_folder(tmp_path / "bmp")
    Image.new("RGB", (8, 8)).save(bmp / "a_dog" / "z.bmp")
    assert load_image_folder(bmp).images.shape == (10, 8, 8, 3)          # PIL reads .bmp
    assert "is not a .jpg/.jpeg/.png file" in _error(load_image_folder_tfds, bmp)
