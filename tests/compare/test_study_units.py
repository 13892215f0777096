"""Units of the study pieces of `compare`: sd-img2img's prompts and inputs, its settings'
validation, and the conditional class accuracy with the shipped classifiers."""
import numpy as np
import pytest

from gan_diffusion.compare.accuracy import class_accuracy, classifier_for
from gan_diffusion.compare.img2img import Img2ImgConfig, class_words, input_indices, prompts
from gan_diffusion.errors import ConfigError


@pytest.mark.parametrize("name, words", [("AnnualCrop", "annual crop"), ("SeaLake", "sea lake"),
                                         ("HerbaceousVegetation", "herbaceous vegetation"),
                                         ("sea_lake", "sea lake"), ("River", "river"),
                                         ("airplane", "airplane")])
def test_class_words(name, words):
    assert class_words(name) == words


def test_prompts_per_image_from_the_class():
    cfg = Img2ImgConfig(prompt="a satellite image of {class}, high detail")
    got = prompts(cfg, np.array([1, 0, 1]), ["AnnualCrop", "SeaLake"])
    assert got == ["a satellite image of sea lake, high detail",
                   "a satellite image of annual crop, high detail",
                   "a satellite image of sea lake, high detail"]
    assert prompts(Img2ImgConfig(prompt="a photo"), np.array([0, 1]), None) == ["a photo"] * 2
    with pytest.raises(ConfigError, match="no class names"):
        prompts(cfg, None, None)


def test_inputs_disjoint_from_the_reference_when_possible():
    n_total, n_eval = 100, 30
    reference = set(np.random.default_rng(0).permutation(n_total)[:n_eval])   # compare/runner.py
    idx, overlap = input_indices(n_total, n_eval)
    assert len(idx) == n_eval == len(set(idx)) and not overlap
    assert not reference & set(idx.tolist())
    idx, overlap = input_indices(40, 30)              # too few images: wraps around, and says so
    assert overlap and len(idx) == 30 and set(idx.tolist()) <= set(range(40))


@pytest.mark.parametrize("field, value, needle", [
    ("strength", 0.0, "strength must be in (0, 1]"), ("size", 60, "multiple of 8"),
    ("steps", 0, "steps"), ("sd_model", "sd-v9", "sd_model"), ("scheduler", "heun", "scheduler"),
    ("prompt", "{cls} image", "only {class}"), ("weights", "", "weights must name")])
def test_bad_settings(field, value, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")
                       .replace("{", r"\{").replace("}", r"\}")):
        Img2ImgConfig(**{field: value})


def test_weights_checked_without_reading_arrays(tmp_path):
    from gan_diffusion.errors import CheckpointError
    from gan_diffusion.sd import architectures, layout
    from gan_diffusion.sd.checkpoint import check_weight_spec, save_folder

    Img2ImgConfig(weights="random:3").check()
    with pytest.raises(CheckpointError, match="random:SEED"):
        Img2ImgConfig(weights="random:x").check()
    arch = architectures.tiny()
    folder = save_folder(tmp_path / "sd", arch, layout.random_weights(arch, 0))
    check_weight_spec(folder)
    with pytest.raises(CheckpointError, match="drop --tokenizer"):
        check_weight_spec(folder, tokenizer=folder / "tokenizer")
    (folder / "tokenizer" / "merges.txt").unlink()
    with pytest.raises(CheckpointError, match="merges.txt is missing"):
        check_weight_spec(folder)


def test_classifier_for():
    assert classifier_for("digits", (28, 28, 1)) == "lenet-mnist"
    assert classifier_for("MNIST", (28, 28, 1)) == "lenet-mnist"
    assert classifier_for("cifar10", (32, 32, 3)) == "cnn-cifar10"
    assert classifier_for("mnist", (32, 32, 1)) is None       # resized: not what LeNet saw
    assert classifier_for("eurosat", (64, 64, 3)) is None


@pytest.mark.parametrize("backend", ["tf", "torch"])
def test_class_accuracy_on_real_digits(backend):
    """The shipped LeNet (trained on MNIST) labels about half of the embedded digits right (55 %
    measured: why the real images' accuracy is reported beside the samples'); shifted labels score near
    chance. An accuracy that ignored the labels, or the images, would fail one of the two."""
    from gan_diffusion.data import load_dataset

    ds = load_dataset("digits", limit=300)
    right = class_accuracy(ds.images, ds.labels, "lenet-mnist", backend, ds.images, ds.labels)
    assert right["name"] == "class accuracy [LeNet(MNIST)]" and right["n"] == 300
    assert right["value"] > 0.45 and right["real_value"] == right["value"]
    assert len(right["per_class"]) == 10
    wrong = class_accuracy(ds.images, np.roll(ds.labels, 1), "lenet-mnist", backend)
    assert wrong["value"] < 0.3 and wrong["real_value"] is None


def test_intra_class_distance_by_hand():
    from gan_diffusion.compare.accuracy import intra_class_distance

    f = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [9.0, 9.0]])
    labels = np.array([0, 0, 1, 1, 1, 2])       # class 0: one pair, 5; class 1: 1, 1, sqrt 2
    value, per = intra_class_distance(f, labels)
    assert per[0] == pytest.approx(5.0) and per[1] == pytest.approx((2 + np.sqrt(2)) / 3)
    assert per[2] is None                        # one image: no pair
    assert value == pytest.approx((5.0 + per[1]) / 2)


@pytest.mark.parametrize("backend", ["tf", "torch"])
def test_collapsed_class_scores_far_lower_intra_class_distance(backend):
    """Real digits against the same digits with class 3 collapsed to one image (mode
    collapse in one class): that class's ICD is 0, the others are unchanged, and the score
    drops by that class's share; all classes collapsed give 0. The real images' ICD is
    reported as the ceiling."""
    from gan_diffusion.compare.accuracy import class_scores
    from gan_diffusion.data import load_dataset

    ds = load_dataset("digits", limit=400)
    real = class_scores(ds.images, ds.labels, "lenet-mnist", backend, ds.images, ds.labels)["icd"]
    assert real["name"] == "intra-class distance [LeNet(MNIST)]" and real["value"] > 1.0
    assert real["real_value"] == pytest.approx(real["value"])
    collapsed = ds.images.copy()
    threes = np.flatnonzero(ds.labels == 3)
    collapsed[threes] = ds.images[threes[0]]
    one = class_scores(collapsed, ds.labels, "lenet-mnist", backend)["icd"]
    assert one["per_class"][3] < 1e-3 * real["per_class"][3]
    others = [k for k in range(10) if k != 3]
    np.testing.assert_allclose([one["per_class"][k] for k in others],
                               [real["per_class"][k] for k in others], rtol=1e-5)
    assert one["value"] == pytest.approx(real["value"] - real["per_class"][3] / 10, rel=1e-4)
    every = np.stack([ds.images[np.flatnonzero(ds.labels == k)[0]] for k in ds.labels])
    assert class_scores(every, ds.labels, "lenet-mnist", backend)["icd"]["value"] < 1e-3


def _result(model, seed, acc, real, epochs=1):
    from pathlib import Path

    from gan_diffusion.compare.tables import RunResult

    quality = {"fid": {"value": 10.0 + seed, "name": "FID-LeNet(MNIST)"},
               "class_accuracy": {"value": acc, "real_value": real, "n": 10,
                                  "name": "class accuracy [LeNet(MNIST)]"}}
    return RunResult(model, "torch", seed, Path("."), {}, {"sample": {"images_per_sec": 50.0,
                                                                      "n": 10, "kwargs": {}}},
                     [{"seconds": 1.0, "images_per_sec": 10.0, "losses": {}}] * epochs, quality)


def test_quality_table_shows_class_accuracy_and_its_real_ceiling():
    from gan_diffusion.compare.tables import quality_table, sampling_table

    table = quality_table([_result("ldm", 0, 0.5, 0.55), _result("ldm", 1, 0.7, 0.55)], "lenet-mnist")
    header, cells = table.header_and_cells()
    row = dict(zip(header, cells[0]))
    assert row["class accuracy [LeNet(MNIST)]"].startswith("0.6 ± 0.14")
    assert row["class accuracy [LeNet(MNIST)] of the real images"] == "0.55 ± 0"
    s = sampling_table([_result("ldm", 0, 0.5, 0.55)])
    assert s.rows[0]["ms_per_image_mean"] == pytest.approx(20.0)
    assert s.rows[0]["sampler"] == "one forward pass"
