"""Datasets: IDX reading, errors, splits, caching, the real Fashion-MNIST."""

import re

import numpy as np
import pytest

from nnisuite.trials import data as D
from tests.helpers.markers import needs_fashion_mnist


def fake_mnist(folder, n_train=12_000, n_test=100, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)),
        "train_labels": rng.integers(0, 10, n_train),
        "test_images": rng.integers(0, 256, (n_test, 28, 28)),
        "test_labels": rng.integers(0, 10, n_test),
    }
    for key, stem in D.IDX_FILES.items():
        D.write_idx(folder / stem, arrays[key].astype(np.uint8), gz=gz)
    return arrays


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NNISUITE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NNISUITE_DATA", raising=False)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path, gz):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = D.write_idx(tmp_path / "x-idx3-ubyte", arr, gz=gz)
    np.testing.assert_array_equal(D.read_idx(path), arr)


def test_read_idx_bad_magic(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(D.DatasetError, match="bad magic"):
        D.read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_truncated(tmp_path, gz):
    path = D.write_idx(tmp_path / "t-idx3-ubyte", np.zeros((10, 28, 28), np.uint8), gz=gz)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(D.DatasetError, match="truncated|cannot read"):
        D.read_idx(path)


def test_missing_dataset_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "cache_dir", lambda: tmp_path / "cache")  # no copy of a past run
    with pytest.raises(D.DatasetError) as err:
        D.locate_mnist_family("mnist", None)
    msg = str(err.value)
    assert "'mnist' not found" in msg
    assert "/usr/share/datasets/mnist" in msg
    assert "--data-dir" in msg


def test_a_data_dir_given_is_the_only_place_looked(tmp_path):
    """--data-dir EMPTY trained on the system's Fashion-MNIST while recording the empty
    folder: the folder asked for is used, or the run is refused in one line."""
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(D.DatasetError, match=f"--data-dir {empty}: no fashion-mnist IDX files"):
        D.locate_mnist_family("fashion-mnist", empty)


def test_unknown_dataset():
    with pytest.raises(D.DatasetError, match="unknown dataset 'cifar'"):
        D.load_dataset("cifar")


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_family_from_data_dir_split_and_cache(tmp_path, gz):
    arrays = fake_mnist(tmp_path / "d" / "mnist" / "raw", gz=gz)
    ds = D.load_dataset("mnist", tmp_path / "d", seed=3)
    assert len(ds.train_x) == 2_000 and len(ds.val_x) == 10_000 and len(ds.test_x) == 100
    assert ds.train_x.shape[1] == 784 and ds.image_shape == (28, 28)
    assert str(ds.train_x.dtype) == "torch.float32" and str(ds.train_y.dtype) == "torch.int64"
    assert abs(float(ds.train_x.mean())) < 1e-3  # standardised with the training statistics
    np.testing.assert_array_equal(ds.test_y.numpy(), arrays["test_labels"])
    assert len(list((tmp_path / "cache").glob("mnist-*.npz"))) == 1
    again = D.load_dataset("mnist", tmp_path / "d", seed=3)  # from the cache
    assert (again.val_x == ds.val_x).all()


def test_cache_invalidated_when_source_changes(tmp_path):
    folder = tmp_path / "d"
    fake_mnist(folder, seed=0)
    first = D.load_dataset("mnist", folder)
    fake_mnist(folder, seed=1, n_test=50)
    second = D.load_dataset("mnist", folder)
    assert len(first.test_y) == 100 and len(second.test_y) == 50


def test_splits_disjoint_and_deterministic():
    train, val = D.split_indices(60_000, 10_000, seed=1)
    assert len(train) == 50_000 and len(val) == 10_000
    assert not set(train) & set(val)
    again = D.split_indices(60_000, 10_000, seed=1)
    np.testing.assert_array_equal(val, again[1])
    assert not np.array_equal(val, D.split_indices(60_000, 10_000, seed=2)[1])


def test_digits_stratified_split():
    ds = D.load_dataset("digits", seed=0)
    sizes = [len(ds.train_y), len(ds.val_y), len(ds.test_y)]
    assert sum(sizes) == 1797 and sizes[0] > 1000 and min(sizes[1:]) > 300
    assert ds.image_shape == (8, 8) and ds.train_x.shape[1] == 64
    for y in (ds.train_y, ds.val_y, ds.test_y):
        counts = np.bincount(y.numpy(), minlength=10)
        assert counts.min() > 0.8 * counts.max()  # every class, balanced, in every split
    # the three index sets are disjoint and cover the data set
    parts = D.stratified_indices(D.load_digits_arrays()[1], D.DIGITS_FRACTIONS, 0)
    assert sum(len(p) for p in parts) == len(set(np.concatenate(parts)))
    again = D.load_dataset("digits", seed=0)
    assert (again.val_x == ds.val_x).all()


@needs_fashion_mnist
def test_real_fashion_mnist():
    ds = D.load_dataset("fashion-mnist")
    assert (len(ds.train_y), len(ds.val_y), len(ds.test_y)) == (50_000, 10_000, 10_000)
    assert ds.train_x.shape == (50_000, 784)
    for y in (ds.train_y, ds.val_y, ds.test_y):
        assert int(y.min()) == 0 and int(y.max()) == 9
    assert np.bincount(ds.test_y.numpy()).tolist() == [1000] * 10


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"n_train": 100}, "100 training images: more than 10,000 are needed"),
        ({"labels_max": 199}, "train labels run 0..199, not 0..9"),
        ({"flat": True}, "train images are (12000, 784), not (n, 28, 28)"),
        ({"rows": 32}, "train images are (12000, 32, 32), not (n, 28, 28)"),
    ],
    ids=["100-images", "labels-199", "flat", "32x32"],
)
def test_an_idx_set_that_is_no_mnist_family_set_is_one_line(tmp_path, monkeypatch, change, said):
    """Each was a reshape ValueError, an index error or an unpack error inside a trial."""
    monkeypatch.setattr(D, "cache_dir", lambda: tmp_path / "cache")
    n_train = change.get("n_train", 12_000)
    rng = np.random.default_rng(0)
    rows = change.get("rows", 28)
    images = rng.integers(0, 256, (n_train, rows, rows)).astype(np.uint8)
    if change.get("flat"):
        images = images.reshape(n_train, -1)
    labels = rng.integers(0, change.get("labels_max", 9) + 1, n_train).astype(np.uint8)
    labels[0] = change.get("labels_max", 9)
    arrays = {
        "train-images-idx3-ubyte": images,
        "train-labels-idx1-ubyte": labels,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (50, 28, 28)).astype(np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 50).astype(np.uint8),
    }
    for stem, array in arrays.items():
        D.write_idx(tmp_path / stem, array)
    with pytest.raises(D.DatasetError, match=re.escape(said)):
        D.load_dataset("mnist", tmp_path)


def test_an_idx_header_whose_sizes_overflow_is_refused(tmp_path):
    """Sizes whose product wraps numpy's int64 to 0 made an empty array of a huge shape."""
    import struct

    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**31, 2**31, 4))
    with pytest.raises(D.DatasetError, match="truncated or padded"):
        D.read_idx(path)
