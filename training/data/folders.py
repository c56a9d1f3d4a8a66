"""Bring-your-own data: a folder with one subfolder per class, like torchvision's ImageFolder.

    root/
      cat/   a.png b.jpg ...
      dog/   c.jpeg ...

Class names are the subfolder names in sorted order, so label `i` is the `i`-th name. Every
image is converted to one colour mode and resized to `size x size`, giving one uint8 array that
the rest of the training code handles like Fashion-MNIST or CIFAR.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
ColorMode = Literal["L", "RGB"]


def list_images(directory: Path | str) -> list[Path]:
    """Image files directly in `directory` (by suffix, case-insensitive), sorted by name."""
    return sorted(
        p for p in Path(directory).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def load_image(path: Path | str, size: int, color_mode: ColorMode = "L") -> np.ndarray:
    """One image as uint8 [size, size] ("L") or [size, size, 3] ("RGB"), bilinear-resized.

    The aspect ratio is not kept: the models take square inputs and a squashed image is closer
    to what a client would send than a cropped one.
    """
    with Image.open(path) as image:
        converted = image.convert(color_mode)
    if converted.size != (size, size):
        converted = converted.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(converted, dtype=np.uint8)


def load_image_folder(
    root: Path | str, size: int = 28, color_mode: ColorMode = "L"
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images uint8 [N, size, size] or [N, size, size, 3], labels int64 [N], class names.

    Raises `FileNotFoundError` if `root` has no class subfolder with images.
    """
    if color_mode not in ("L", "RGB"):
        raise ValueError(f"color_mode must be 'L' or 'RGB', got {color_mode!r}")
    root = Path(root)
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
    files_per_class = [list_images(d) for d in class_dirs]
    if not any(files_per_class):
        raise FileNotFoundError(f"no class subfolders with images under {root}")
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, files in enumerate(files_per_class):
        images.extend(load_image(f, size, color_mode) for f in files)
        labels.extend([label] * len(files))
    return np.stack(images), np.asarray(labels, dtype=np.int64), [d.name for d in class_dirs]
