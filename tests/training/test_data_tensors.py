import numpy as np
import pytest
import torch

from training.data.tensors import normalize, to_tensor_dataset


def test_grayscale_becomes_nchw_normalized():
    images = np.array([[[0, 255]]], dtype=np.uint8)  # [1, 1, 2]
    x = normalize(images, mean=0.5, std=0.25)
    assert x.shape == (1, 1, 1, 2) and x.dtype == np.float32
    np.testing.assert_allclose(x.ravel(), [-2.0, 2.0])


def test_per_channel_statistics_follow_hwc_channel_order():
    images = np.zeros((2, 3, 3, 3), dtype=np.uint8)
    images[..., 1] = 255
    x = normalize(images, mean=(0.0, 0.5, 1.0), std=(1.0, 0.5, 2.0))
    assert x.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(x[0, :, 0, 0], [0.0, 1.0, -0.5])


@pytest.mark.parametrize(("mean", "std"), [((0.1, 0.2), 1.0), (0.0, 0.0)])
def test_bad_statistics_are_rejected(mean, std):
    with pytest.raises(ValueError):
        normalize(np.zeros((1, 4, 4, 3), np.uint8), mean, std)


def test_tensor_dataset_with_and_without_labels():
    images = np.zeros((5, 28, 28), dtype=np.uint8)
    labelled = to_tensor_dataset(images, np.arange(5), 0.5, 0.5)
    x, y = labelled[3]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and int(y) == 3
    (x_only,) = to_tensor_dataset(images, None, 0.5, 0.5)[0]
    assert torch.all(x_only == -1.0)
    with pytest.raises(ValueError, match="labels"):
        to_tensor_dataset(images, np.arange(4), 0.5, 0.5)
