"""Synthetic outliers for choosing hyperparameters (LogitNorm's tau, thresholds) without peeking
at the OOD test sets.

Built only from in-distribution *training-split* images and noise, never from the test OOD sets
(`mnist`, `letters`, `photos`): selecting tau on those would make the reported OOD numbers
optimistic. The pipeline passes the training-split images (`images[train_idx]`, after any
`train_subset`), so no outlier is a transform of a validation image it is compared against;
never pass test images.

Kinds (equal shares), from near to far:

- `jigsaw`: the image's 4x4 grid of patches shuffled: local texture kept, shape broken.
- `permuted`: all pixels shuffled: intensity histogram kept, all structure gone.
- `blurred`: heavy Gaussian blur: a silhouette blob without detail.
- `inverted`: `255 - x`: a bright background, unlike anything in Fashion-MNIST.
- `smooth_noise`: 7x7 uniform noise upsampled: large random blobs.
- `noise`: Gaussian pixel noise with a random mean and spread per image. This family is close to
  the `gaussian`/`uniform` test sets; it uses its own seed stream, and noise is the one kind of
  OOD every deployment sees anyway.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

GRID = 4
BLUR_RADIUS = 3.0
SMOOTH_NOISE_CELLS = 7

Maker = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _jigsaw(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shuffle the GRID x GRID patches (rows/cols beyond a multiple of GRID stay in place)."""
    ph, pw = image.shape[0] // GRID, image.shape[1] // GRID
    region = image[: GRID * ph, : GRID * pw]
    patches = region.reshape(GRID, ph, GRID, pw).transpose(0, 2, 1, 3).reshape(-1, ph, pw)
    shuffled = patches[rng.permutation(len(patches))]
    out = image.copy()
    out[: GRID * ph, : GRID * pw] = (
        shuffled.reshape(GRID, GRID, ph, pw).transpose(0, 2, 1, 3).reshape(region.shape)
    )
    return out


def _permuted(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(image.ravel()).reshape(image.shape)


def _blurred(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    blurred = Image.fromarray(image).filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
    return np.asarray(blurred, dtype=np.uint8)


def _inverted(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return 255 - image


def _smooth_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cells = rng.integers(0, 256, (SMOOTH_NOISE_CELLS, SMOOTH_NOISE_CELLS), dtype=np.uint8)
    size = (image.shape[1], image.shape[0])
    return np.asarray(Image.fromarray(cells).resize(size, Image.Resampling.BILINEAR))


def _noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    mean, spread = rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.5)
    values = np.clip(rng.normal(mean, spread, image.shape), 0.0, 1.0)
    return np.round(values * 255).astype(np.uint8)


KINDS: dict[str, Maker] = {
    "jigsaw": _jigsaw,
    "permuted": _permuted,
    "blurred": _blurred,
    "inverted": _inverted,
    "smooth_noise": _smooth_noise,
    "noise": _noise,
}
VALIDATION_OUTLIER_KINDS = tuple(KINDS)


def make_validation_outliers_by_kind(
    id_images: np.ndarray, seed: int = 0, n: int | None = None
) -> dict[str, np.ndarray]:
    """`{kind: uint8 [n_kind, H, W]}`, `n` in total (default `len(id_images)`), split evenly.

    Source images are drawn with replacement from `id_images` (uint8 [N, H, W]).
    Deterministic for a given seed and input.
    """
    if id_images.ndim != 3 or id_images.dtype != np.uint8:
        raise ValueError(
            f"expected uint8 [N, H, W] images, got {id_images.dtype} {id_images.shape}"
        )
    total = len(id_images) if n is None else n
    shares = np.full(len(KINDS), total // len(KINDS))
    shares[: total % len(KINDS)] += 1
    result = {}
    for (kind, make), count in zip(KINDS.items(), shares, strict=True):
        rng = np.random.default_rng([seed, zlib.crc32(f"validation-outliers/{kind}".encode())])
        sources = id_images[rng.integers(len(id_images), size=count)]
        result[kind] = np.stack([make(im, rng) for im in sources]) if count else sources[:0]
    return result


def make_validation_outliers(
    id_images: np.ndarray, seed: int = 0, n: int | None = None
) -> np.ndarray:
    """All kinds of `make_validation_outliers_by_kind` in one uint8 [n, H, W] array."""
    return np.concatenate(list(make_validation_outliers_by_kind(id_images, seed, n).values()))
