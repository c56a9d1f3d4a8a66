"""CIFAR and image-folder loaders on tiny synthetic fixtures written by the tests."""

import pickle

import numpy as np
import pytest
from PIL import Image

from training.data.cifar import load_cifar
from training.data.folders import load_image_folder


def _cifar_batch(n, label_key, seed):
    """A batch dict as CIFAR pickles it: bytes keys, data rows of R then G then B planes."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    data = images.transpose(0, 3, 1, 2).reshape(n, 3072)
    return images, {b"data": data, label_key.encode(): list(range(n)), b"batch_label": b"x"}


def _dump(path, obj):
    with path.open("wb") as f:
        pickle.dump(obj, f, protocol=2)


def test_cifar10_train_concatenates_five_batches_in_hwc(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    expected = []
    for i in range(1, 6):
        images, batch = _cifar_batch(2, "labels", seed=i)
        expected.append(images)
        _dump(root / f"data_batch_{i}", batch)
    _dump(root / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})

    images, labels, names = load_cifar(tmp_path, 10, "train")  # the parent directory works too
    assert images.shape == (10, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, np.concatenate(expected))
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1] * 5
    assert names == [f"c{i}" for i in range(10)]


def test_cifar100_uses_fine_labels(tmp_path):
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    images, batch = _cifar_batch(3, "fine_labels", seed=0)
    batch[b"coarse_labels"] = [99, 99, 99]
    _dump(root / "test", batch)
    _dump(root / "meta", {b"fine_label_names": [b"apple", b"bee"], b"coarse_label_names": []})

    loaded, labels, names = load_cifar(root, 100, "test")
    np.testing.assert_array_equal(loaded, images)
    assert labels.tolist() == [0, 1, 2]
    assert names == ["apple", "bee"]


def test_cifar_missing_directory_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        load_cifar(tmp_path, 10, "test")


def _save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_image_folder_labels_by_sorted_subfolder(tmp_path):
    _save(tmp_path / "dog" / "a.png", np.full((40, 30, 3), 200, np.uint8))
    _save(tmp_path / "cat" / "b.PNG", np.full((10, 10), 50, np.uint8))
    _save(tmp_path / "cat" / "c.jpg", np.full((64, 64, 3), 100, np.uint8))
    (tmp_path / "cat" / "notes.txt").write_text("not an image")

    images, labels, names = load_image_folder(tmp_path, size=16, color_mode="L")
    assert names == ["cat", "dog"]
    assert images.shape == (3, 16, 16) and images.dtype == np.uint8
    assert labels.tolist() == [0, 0, 1]
    assert images[0].mean() == pytest.approx(50, abs=1)  # cat/b.PNG, files sorted by name
    assert images[2].mean() == pytest.approx(200, abs=1)


def test_image_folder_rgb(tmp_path):
    _save(tmp_path / "red" / "x.png", np.tile(np.array([255, 0, 0], np.uint8), (8, 8, 1)))
    images, labels, _ = load_image_folder(tmp_path, size=4, color_mode="RGB")
    assert labels.tolist() == [0]
    assert images.shape == (1, 4, 4, 3)
    assert images[0, 0, 0].tolist() == [255, 0, 0]


def test_image_folder_without_images_fails(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        load_image_folder(tmp_path)
