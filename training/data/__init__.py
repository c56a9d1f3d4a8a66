"""Data for training and evaluating OOD detectors: in-distribution loaders, the validation split,
the OOD test sets and synthetic validation outliers.

All loaders return plain numpy arrays (uint8 images, int64 labels); `to_tensor_dataset` turns
them into normalized float32 NCHW tensors. Where the input files come from: `paths.py` and
`docs/data.md`.

The names below are importable from `training.data` directly but are loaded on first use
(PEP 562), so `import training.data` stays cheap (no torch for numpy-only users) and
`python -m training.data.ood_sets` does not import its own module twice.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "load_cifar": "cifar",
    "FASHION_MNIST_CLASSES": "fashion_mnist",
    "FASHION_MNIST_MEAN": "fashion_mnist",
    "FASHION_MNIST_STD": "fashion_mnist",
    "load_fashion_mnist": "fashion_mnist",
    "load_image_folder": "folders",
    "IdxFormatError": "idx",
    "read_idx": "idx",
    "OOD_SET_NAMES": "ood_sets",
    "build_ood_sets": "ood_sets",
    "load_or_build_ood_sets": "ood_sets",
    "VALIDATION_OUTLIER_KINDS": "outliers",
    "make_validation_outliers": "outliers",
    "make_validation_outliers_by_kind": "outliers",
    "DataPaths": "paths",
    "find_fonts": "paths",
    "train_val_split": "splits",
    "normalize": "tensors",
    "to_tensor_dataset": "tensors",
}
__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MEAN",
    "FASHION_MNIST_STD",
    "OOD_SET_NAMES",
    "VALIDATION_OUTLIER_KINDS",
    "DataPaths",
    "IdxFormatError",
    "build_ood_sets",
    "find_fonts",
    "load_cifar",
    "load_fashion_mnist",
    "load_image_folder",
    "load_or_build_ood_sets",
    "make_validation_outliers",
    "make_validation_outliers_by_kind",
    "normalize",
    "read_idx",
    "to_tensor_dataset",
    "train_val_split",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


if TYPE_CHECKING:  # what type checkers and IDEs see
    from training.data.cifar import load_cifar
    from training.data.fashion_mnist import (
        FASHION_MNIST_CLASSES,
        FASHION_MNIST_MEAN,
        FASHION_MNIST_STD,
        load_fashion_mnist,
    )
    from training.data.folders import load_image_folder
    from training.data.idx import IdxFormatError, read_idx
    from training.data.ood_sets import OOD_SET_NAMES, build_ood_sets, load_or_build_ood_sets
    from training.data.outliers import (
        VALIDATION_OUTLIER_KINDS,
        make_validation_outliers,
        make_validation_outliers_by_kind,
    )
    from training.data.paths import DataPaths, find_fonts
    from training.data.splits import train_val_split
    from training.data.tensors import normalize, to_tensor_dataset
