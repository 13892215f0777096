"""gan_diffusion.weightfile: the one .npz reader/writer (and its errors), FeatureStats files."""
import os

import numpy as np
import pytest

from gan_diffusion.errors import CheckpointError
from gan_diffusion.metrics import FeatureStats, MetricInputError
from gan_diffusion.weightfile import META_KEY, read_npz, write_npz


def test_round_trip_is_atomic_and_pickle_free(tmp_path):
    arrays = {"weights/g/fc/kernel": np.ones((3, 2), np.float32), "images": np.zeros((2, 4, 4, 1), np.uint8)}
    for compress in (False, True):
        path = write_npz(tmp_path / "a.npz", arrays, {"format": "x/1", "epoch": 3}, compress=compress)
        assert os.listdir(tmp_path) == ["a.npz"]                   # no temporary file left
        back, meta = read_npz(path, format="x/1")
        assert meta == {"format": "x/1", "epoch": 3} and back.keys() == arrays.keys()
        assert all(np.array_equal(back[k], v) and back[k].dtype == v.dtype for k, v in arrays.items())
    with pytest.raises(ValueError, match="object arrays"):
        write_npz(tmp_path / "o.npz", {"x": np.array([{}], dtype=object)}, {})
    with pytest.raises(ValueError, match="reserved"):
        write_npz(tmp_path / "o.npz", {META_KEY: np.zeros(1)}, {})


@pytest.mark.parametrize("content, match", [
    (None, "does not exist; restore"),
    (b"PK\x03\x04 truncated", "corrupt, truncated"),
    (b"\x80\x04 a pickle", "corrupt, truncated"),
    ("npy", "corrupt, truncated"),
    ({"a": np.zeros(2)}, "no '__meta__' metadata"),
    ({META_KEY: np.array("{not json")}, "not valid JSON"),
    ({META_KEY: np.array("[1, 2]")}, "JSON list, not an object"),
    ({META_KEY: np.array('{"format": "other/1"}')}, "format 'other/1'; this version reads 'x/1'"),
])
def test_bad_files_are_one_error_naming_the_file(tmp_path, content, match):
    path = tmp_path / "f.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    elif content is not None:
        np.savez(path, **content)
    with pytest.raises(CheckpointError, match=match) as info:
        read_npz(path, format="x/1", fix="restore an earlier one")
    assert str(path) in str(info.value)


def test_feature_stats_files_of_the_earlier_layout_still_load(tmp_path):
    st = FeatureStats.from_features(np.random.default_rng(0).normal(size=(50, 4)), "ex", "pp", source="s")
    np.savez(tmp_path / "v1.npz", mu=st.mu, sigma=st.sigma, n=np.int64(st.n), extractor=np.str_("ex"),
             preprocessing=np.str_("pp"), source=np.str_("s"), format=np.str_("gan_diffusion.FeatureStats/1"))
    back = FeatureStats.load(tmp_path / "v1.npz")
    assert (back.n, back.extractor, back.preprocessing, back.source) == (50, "ex", "pp", "s")
    assert np.array_equal(back.sigma, st.sigma)
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(MetricInputError, match="bad.npz is corrupt"):
        FeatureStats.load(tmp_path / "bad.npz")
