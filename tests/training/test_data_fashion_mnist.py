"""Fashion-MNIST loader: on a tiny fake directory always, on the real files when installed."""

import gzip
import struct

import numpy as np
import pytest

from training.data.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_MEAN,
    FASHION_MNIST_STD,
    load_fashion_mnist,
)
from training.data.paths import DataPaths

REAL_DIR = DataPaths.resolve().fashion_mnist_dir
needs_real_data = pytest.mark.skipif(
    not (REAL_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"Fashion-MNIST idx files not in {REAL_DIR}: run scripts/fetch_data.sh",
)


def _write_idx(path, array, code):
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(array.dtype.newbyteorder(">")).tobytes()))


def test_loads_fake_split(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, 0x08)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([9, 0, 4], np.uint8), 0x08)
    loaded, labels = load_fashion_mnist(tmp_path, "test")
    np.testing.assert_array_equal(loaded, images)
    assert labels.dtype == np.int64
    assert labels.tolist() == [9, 0, 4]


def test_missing_files_name_the_directory_and_a_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="zalandoresearch"):
        load_fashion_mnist(tmp_path, "train")


def test_rejects_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist(tmp_path, "val")  # type: ignore[arg-type]


def test_class_names():
    assert len(FASHION_MNIST_CLASSES) == 10
    assert FASHION_MNIST_CLASSES[0] == "T-shirt/top"
    assert FASHION_MNIST_CLASSES[9] == "Ankle boot"


@needs_real_data
def test_real_files_shapes_and_normalization_constants():
    train, train_labels = load_fashion_mnist(REAL_DIR, "train")
    test, test_labels = load_fashion_mnist(REAL_DIR, "test")
    assert train.shape == (60000, 28, 28) and train.dtype == np.uint8
    assert test.shape == (10000, 28, 28)
    assert np.bincount(train_labels).tolist() == [6000] * 10
    assert np.bincount(test_labels).tolist() == [1000] * 10
    # Mean/std of x/255 over all train pixels, from the histogram (no 47M-element float copy).
    counts = np.bincount(train.ravel(), minlength=256)
    values = np.arange(256) / 255.0
    mean = counts @ values / counts.sum()
    std = np.sqrt(counts @ (values - mean) ** 2 / counts.sum())
    assert mean == pytest.approx(FASHION_MNIST_MEAN, abs=1e-6)
    assert std == pytest.approx(FASHION_MNIST_STD, abs=1e-6)
