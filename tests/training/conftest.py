"""Shared fixtures: real data present or a clear skip reason."""

from __future__ import annotations

import pytest

from training.data.paths import DataPaths


@pytest.fixture(scope="session")
def data_paths() -> DataPaths:
    paths = DataPaths.resolve()
    if not (paths.fashion_mnist_dir / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Fashion-MNIST not found at {paths.fashion_mnist_dir}; run `make data`")
    if not paths.digits_png.exists():
        pytest.skip(f"opencv-doc digits.png not found at {paths.digits_png}; run `make data`")
    return paths
