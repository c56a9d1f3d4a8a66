"""MNIST-like handwritten digits from OpenCV's `samples/data/digits.png`, the first OOD set.

The sheet is 2000x1000 px: 50 rows x 100 columns of 20x20 cells, 5,000 digits, every 5 rows one
class (rows 0-4 are zeros, ..., rows 45-49 are nines). Like MNIST and Fashion-MNIST they are white
strokes on a black background. MNIST itself puts each digit's 20x20 box in a 28x28 field and then
shifts it so its centre of mass is at the centre; we do the same, so the digits differ from
Fashion-MNIST in content and not in framing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CELL = 20
SHEET_ROWS, SHEET_COLS = 50, 100
ROWS_PER_CLASS = 5
MNIST_SIZE = 28


def load_opencv_digits(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 raw cells as uint8 [5000, 20, 20] and their digit labels int64 [5000].

    Cells are in reading order, so labels are 500 zeros, then 500 ones, and so on.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: it is in Debian's opencv-doc (run scripts/fetch_data.sh) or at "
            "https://github.com/opencv/opencv/blob/4.x/samples/data/digits.png"
        )
    with Image.open(path) as image:
        sheet = np.asarray(image.convert("L"), dtype=np.uint8)
    expected = (SHEET_ROWS * CELL, SHEET_COLS * CELL)
    if sheet.shape != expected:
        raise ValueError(f"{path} is {sheet.shape[::-1]} px, expected {expected[::-1]}")
    grid = sheet.reshape(SHEET_ROWS, CELL, SHEET_COLS, CELL).transpose(0, 2, 1, 3)
    cells = grid.reshape(-1, CELL, CELL)
    labels = np.repeat(np.arange(SHEET_ROWS // ROWS_PER_CLASS), ROWS_PER_CLASS * SHEET_COLS)
    return np.ascontiguousarray(cells), labels.astype(np.int64)


def center_of_mass(image: np.ndarray) -> tuple[float, float]:
    """Intensity-weighted (row, col) centre of a 2-D image; the geometric centre if it is blank."""
    total = float(image.sum())
    if total == 0:
        return (image.shape[0] - 1) / 2, (image.shape[1] - 1) / 2
    rows = np.arange(image.shape[0]) @ image.sum(axis=1) / total
    cols = np.arange(image.shape[1]) @ image.sum(axis=0) / total
    return float(rows), float(cols)


def shift_image(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Translate by whole pixels, filling with 0 (background) instead of wrapping around."""
    h, w = image.shape
    out = np.zeros_like(image)
    src_y, dst_y = slice(max(0, -dy), min(h, h - dy)), slice(max(0, dy), min(h, h + dy))
    src_x, dst_x = slice(max(0, -dx), min(w, w - dx)), slice(max(0, dx), min(w, w + dx))
    out[dst_y, dst_x] = image[src_y, src_x]
    return out


def to_mnist_frame(cell: np.ndarray, size: int = MNIST_SIZE) -> np.ndarray:
    """Pad a digit cell to `size x size`, then move its centre of mass to the centre (as MNIST)."""
    pad_total = size - cell.shape[0]
    padded = np.pad(cell, ((pad_total // 2, pad_total - pad_total // 2),) * 2)
    cy, cx = center_of_mass(padded)
    centre = (size - 1) / 2
    return shift_image(padded, round(centre - cy), round(centre - cx))


def mnist_like_digits(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 digits as uint8 [5000, 28, 28] in MNIST framing, with labels."""
    cells, labels = load_opencv_digits(path)
    return np.stack([to_mnist_frame(c) for c in cells]), labels
