"""Fashion-MNIST (Xiao et al. 2017, https://github.com/zalandoresearch/fashion-mnist): the
in-distribution data of the default model.

70,000 grayscale 28x28 images of clothing in 10 classes, white object on black background
(uint8, 0 = background). 60,000 train, 10,000 test. Hold out a validation split of the train set
(`splits.train_val_split`) for calibration and threshold selection: the test set is for reporting
only and never chooses anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from training.data.idx import read_idx

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# Mean and standard deviation of all train-set pixels scaled to [0, 1] (computed from the 60,000
# train images; checked by a test). Training normalizes with `(x / 255 - mean) / std`; the same
# two numbers go into the model manifest so the service preprocesses identically.
FASHION_MNIST_MEAN = 0.2860406
FASHION_MNIST_STD = 0.3530242

Split = Literal["train", "test"]
_PREFIX: dict[str, str] = {"train": "train", "test": "t10k"}


def _find(directory: Path, stem: str) -> Path:
    """`stem.gz` or `stem` in `directory`, with an error that says where to get the files."""
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(
        f"{stem}(.gz) not found in {directory}. Run scripts/fetch_data.sh (Debian package "
        "dataset-fashion-mnist) or download the idx files from "
        "https://github.com/zalandoresearch/fashion-mnist/tree/master/data/fashion"
    )


def load_fashion_mnist(directory: Path | str, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 28, 28] and labels int64 [N] of the `train` (60k) or `test` (10k) split.

    `directory` holds `{train,t10k}-{images-idx3,labels-idx1}-ubyte(.gz)`; see
    `DataPaths.resolve().fashion_mnist_dir` for the default.
    """
    if split not in _PREFIX:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    directory = Path(directory)
    prefix = _PREFIX[split]
    images = read_idx(_find(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    if images.ndim != 3 or images.dtype != np.uint8 or len(images) != len(labels):
        raise ValueError(f"unexpected Fashion-MNIST arrays {images.shape}/{labels.shape}")
    return images, labels
