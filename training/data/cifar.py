"""CIFAR-10 / CIFAR-100 (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html) from the
standard "python version" directories, for users who train on them instead of Fashion-MNIST.

`cifar-10-batches-py/` holds `data_batch_1..5`, `test_batch` and `batches.meta`;
`cifar-100-python/` holds `train`, `test` and `meta`. Each file is a pickled dict with a
`data` array uint8 [N, 3072] (1024 red, 1024 green, 1024 blue values, rows of 32) and labels.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Literal

import numpy as np

Split = Literal["train", "test"]

_LAYOUT: dict[int, dict[str, Any]] = {
    10: {
        "dir": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "names_key": "label_names",
        "labels_key": "labels",
    },
    100: {
        "dir": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "names_key": "fine_label_names",
        "labels_key": "fine_labels",
    },
}


def _unpickle(path: Path) -> dict[str, Any]:
    """The batches were pickled by Python 2: keys are bytes, so decode them to str.

    Only open CIFAR files you trust: unpickling can run arbitrary code.
    """
    with path.open("rb") as f:
        raw = pickle.load(f, encoding="bytes")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _batch_dir(root: Path, dirname: str) -> Path:
    """Accept either the batch directory itself or its parent."""
    return root / dirname if (root / dirname).is_dir() else root


def load_cifar(
    root: Path | str, which: Literal[10, 100] = 10, split: Split = "train"
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images uint8 [N, 32, 32, 3] (HWC, RGB), labels int64 [N] and the class names.

    CIFAR-100 uses the 100 fine labels. `root` is the `cifar-10-batches-py` / `cifar-100-python`
    directory or the directory that contains it.
    """
    if which not in _LAYOUT:
        raise ValueError(f"which must be 10 or 100, got {which!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    layout = _LAYOUT[which]
    directory = _batch_dir(Path(root), layout["dir"])
    if not (directory / layout["meta"]).is_file():
        raise FileNotFoundError(
            f"no CIFAR-{which} python directory at {root} (expected {layout['dir']}/"
            f"{layout['meta']}); download the python version from "
            "https://www.cs.toronto.edu/~kriz/cifar.html"
        )
    batches = [_unpickle(directory / name) for name in layout[split]]
    data = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])
    labels = np.concatenate([np.asarray(b[layout["labels_key"]]) for b in batches])
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    meta = _unpickle(directory / layout["meta"])
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[layout["names_key"]]]
    return np.ascontiguousarray(images), labels.astype(np.int64), names
