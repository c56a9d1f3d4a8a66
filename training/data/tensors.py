"""From uint8 image arrays to the normalized float32 NCHW tensors the models take.

The rule is `(x / 255 - mean) / std`, per channel. It is written once here for training and
once in the service's `preprocess.py`, fed by the same mean/std from the model manifest; keep
the two in step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import TensorDataset

Stat = float | Sequence[float]


def normalize(images: np.ndarray, mean: Stat, std: Stat) -> np.ndarray:
    """uint8 [N, H, W] (grayscale) or [N, H, W, C] -> float32 [N, C, H, W], `(x/255 - mean)/std`.

    `mean` and `std` are one number or one per channel.
    """
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"expected [N,H,W] or [N,H,W,C] images, got shape {images.shape}")
    channels = images.shape[-1]
    mean_arr = _per_channel(mean, channels, "mean")
    std_arr = _per_channel(std, channels, "std")
    if np.any(std_arr <= 0):
        raise ValueError(f"std must be positive, got {std}")
    x = images.astype(np.float32) / np.float32(255.0)
    x = (x - mean_arr) / std_arr
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _per_channel(value: Stat, channels: int, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(value, dtype=np.float32))
    if arr.size == 1:
        arr = np.repeat(arr, channels)
    if arr.size != channels:
        raise ValueError(f"{name} has {arr.size} values for {channels} channels")
    return arr


def to_tensor_dataset(
    images: np.ndarray, labels: np.ndarray | None, mean: Stat, std: Stat
) -> TensorDataset:
    """A `TensorDataset` of normalized float32 NCHW images and int64 labels.

    With `labels=None` (OOD sets) the dataset has only the images. Everything is in memory:
    Fashion-MNIST's 60,000 images take ~190 MB as float32, and a DataLoader over tensors needs
    no worker processes.
    """
    x = torch.from_numpy(normalize(images, mean, std))
    if labels is None:
        return TensorDataset(x)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    if len(y) != len(x):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    return TensorDataset(x, y)
