"""The OOD test sets of the Fashion-MNIST benchmark, built offline and deterministic by seed.

Five sets, each uint8 [N, 28, 28] with Fashion-MNIST's convention (white on black, 0 = background):

| name       | N     | what                                                                  |
|------------|-------|-----------------------------------------------------------------------|
| `mnist`    | 5,000 | real handwritten digits from OpenCV's `digits.png`, MNIST framing      |
| `letters`  | 2,600 | A-Z rendered with the machine's fonts, random size/offset (notMNIST-like) |
| `photos`   | 2,000 | random crops of natural photographs, grayscale, resized               |
| `gaussian` | 2,000 | pixel-wise N(0.5, 0.25^2), clipped to [0, 1]                          |
| `uniform`  | 2,000 | pixel-wise uniform over 0..255                                        |

Near OOD (digits, letters: same framing, strokes on black) to far OOD (noise). These sets are for
*reporting* only; nothing is selected on them. Selection uses `outliers.make_validation_outliers`.

Same seed and same input files give byte-identical arrays. `load_or_build_ood_sets` caches them
in an `.npz` keyed by seed, size, `OOD_SETS_VERSION` and a fingerprint of the input files.

Preview: `python -m training.data.ood_sets --out docs/img/ood-samples.png`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import string
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training.data.digits import mnist_like_digits
from training.data.folders import list_images
from training.data.paths import DataPaths, default_data_root

# Bump when any generator changes, so stale caches are rebuilt.
OOD_SETS_VERSION = 1
OOD_SET_NAMES = ("mnist", "letters", "photos", "gaussian", "uniform")
LETTERS_PER_CLASS = 100
N_PHOTO_CROPS = 2000
N_NOISE = 2000
FONT_SIZES = (14, 26)  # inclusive pixel range, on a 28 px canvas
CROP_SIZES = (32, 256)  # inclusive side range of the square photo crops

# Real photographs among opencv-doc's `examples/data` (also in opencv's `samples/data`). Left out:
# logos, charts, drawings, calibration boards, text scans, and the second image of stereo pairs.
OPENCV_PHOTOS = (
    "aero1.jpg",
    "aloeL.jpg",
    "apple.jpg",
    "baboon.jpg",
    "basketball1.png",
    "board.jpg",
    "box_in_scene.png",
    "building.jpg",
    "butterfly.jpg",
    "chicky_512.png",
    "ela_original.jpg",
    "fruits.jpg",
    "graf1.png",
    "home.jpg",
    "left.jpg",
    "leuvenA.jpg",
    "licenseplate_motion.jpg",
    "messi5.jpg",
    "orange.jpg",
    "rubberwhale1.png",
    "squirrel_cls.jpg",
    "stuff.jpg",
)


def set_rng(seed: int, name: str) -> np.random.Generator:
    """An independent generator per (seed, set name): changing one set never shifts another."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def photo_files(paths: DataPaths, photos_dir: Path | None = None) -> list[Path]:
    """Every image in `photos_dir` if given (bring your own photos), else the listed OpenCV photos
    that are present. Raises `FileNotFoundError` if there are none."""
    if photos_dir is not None:
        files = list_images(photos_dir)
    else:
        files = [paths.opencv_data_dir / n for n in OPENCV_PHOTOS]
        files = [f for f in files if f.is_file()]
    if not files:
        where = photos_dir or paths.opencv_data_dir
        raise FileNotFoundError(f"no photographs found in {where}; run scripts/fetch_data.sh")
    return files


def render_letters(
    fonts: list[Path], rng: np.random.Generator, per_class: int = LETTERS_PER_CLASS, size: int = 28
) -> np.ndarray:
    """`per_class` images of each capital A-Z, white glyph on black, in order A..Z.

    Each image draws a random font, a random size in `FONT_SIZES` (scaled to `size`) and a random
    position that keeps the glyph inside the canvas when it fits.
    """
    loaded: dict[tuple[Path, int], ImageFont.FreeTypeFont] = {}
    images = np.zeros((26 * per_class, size, size), dtype=np.uint8)
    lo, hi = (round(s * size / 28) for s in FONT_SIZES)
    for i in range(len(images)):
        letter = string.ascii_uppercase[i // per_class]
        key = (fonts[rng.integers(len(fonts))], int(rng.integers(lo, hi + 1)))
        if key not in loaded:
            loaded[key] = ImageFont.truetype(str(key[0]), key[1])
        images[i] = _draw_glyph(letter, loaded[key], rng, size)
    return images


def _draw_glyph(
    letter: str, font: ImageFont.FreeTypeFont, rng: np.random.Generator, size: int
) -> np.ndarray:
    left, top, right, bottom = (int(v) for v in font.getbbox(letter))
    x = _random_offset(right - left, size, rng) - left
    y = _random_offset(bottom - top, size, rng) - top
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).text((x, y), letter, fill=255, font=font)
    return np.asarray(canvas)


def _random_offset(extent: int, size: int, rng: np.random.Generator) -> int:
    """Where a glyph of `extent` px starts: anywhere it fits, or centred if it does not."""
    slack = size - extent
    return int(rng.integers(slack + 1)) if slack >= 0 else slack // 2


def photo_crops(
    files: list[Path], rng: np.random.Generator, n: int = N_PHOTO_CROPS, size: int = 28
) -> np.ndarray:
    """`n` square crops of random photos at random places, side in `CROP_SIZES` (capped by the
    photo), converted to grayscale and resized to `size` with bilinear (antialiased) filtering."""
    photos = []
    for f in files:
        with Image.open(f) as image:
            photos.append(image.convert("L"))
    images = np.zeros((n, size, size), dtype=np.uint8)
    for i in range(n):
        photo = photos[rng.integers(len(photos))]
        width, height = photo.size
        side = int(rng.integers(CROP_SIZES[0], min(CROP_SIZES[1], width, height) + 1))
        x, y = int(rng.integers(width - side + 1)), int(rng.integers(height - side + 1))
        crop = photo.crop((x, y, x + side, y + side))
        images[i] = np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR))
    return images


def gaussian_noise(rng: np.random.Generator, n: int = N_NOISE, size: int = 28) -> np.ndarray:
    """Pixel-wise N(0.5, 0.25^2) on [0, 1], clipped, scaled to 0..255."""
    values = np.clip(rng.normal(0.5, 0.25, (n, size, size)), 0.0, 1.0)
    return np.round(values * 255).astype(np.uint8)


def uniform_noise(rng: np.random.Generator, n: int = N_NOISE, size: int = 28) -> np.ndarray:
    """Pixel-wise uniform over the integers 0..255."""
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8)


def _resize_all(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1:] == (size, size):
        return images
    resample = Image.Resampling.BILINEAR
    return np.stack(
        [np.asarray(Image.fromarray(im).resize((size, size), resample)) for im in images]
    )


def build_ood_sets(
    paths: DataPaths | None = None, seed: int = 0, size: int = 28, photos_dir: Path | None = None
) -> dict[str, np.ndarray]:
    """All five OOD sets as `{name: uint8 [N, size, size]}`, in `OOD_SET_NAMES` order."""
    paths = paths or DataPaths.resolve()
    digits, _ = mnist_like_digits(paths.digits_png)
    return {
        "mnist": _resize_all(digits, size),
        "letters": render_letters(paths.fonts(), set_rng(seed, "letters"), size=size),
        "photos": photo_crops(photo_files(paths, photos_dir), set_rng(seed, "photos"), size=size),
        "gaussian": gaussian_noise(set_rng(seed, "gaussian"), size=size),
        "uniform": uniform_noise(set_rng(seed, "uniform"), size=size),
    }


def inputs_fingerprint(paths: DataPaths, photos_dir: Path | None = None) -> str:
    """A short hash of the input files' names and sizes: a different font or photo set on another
    machine gives different letters/crops, so it must not reuse this machine's cache."""
    files = [paths.digits_png, *paths.fonts(), *photo_files(paths, photos_dir)]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.name}:{f.stat().st_size}\n".encode())
    return digest.hexdigest()[:12]


def load_or_build_ood_sets(
    paths: DataPaths | None = None,
    cache_dir: Path | str | None = None,
    seed: int = 0,
    size: int = 28,
    photos_dir: Path | None = None,
) -> dict[str, np.ndarray]:
    """`build_ood_sets`, cached in `cache_dir` (default `<data_root>/ood-cache`) as one `.npz`."""
    paths = paths or DataPaths.resolve()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_data_root() / "ood-cache"
    key = f"v{OOD_SETS_VERSION}-seed{seed}-size{size}-{inputs_fingerprint(paths, photos_dir)}"
    cache_file = cache_dir / f"ood-sets-{key}.npz"
    if cache_file.is_file():
        with np.load(cache_file) as cached:
            return {name: cached[name] for name in OOD_SET_NAMES}
    sets = build_ood_sets(paths, seed=seed, size=size, photos_dir=photos_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Write to a temporary file and rename, so a crash never leaves a half-written cache.
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".npz")
    with os.fdopen(fd, "wb") as f:
        np.savez(f, allow_pickle=False, **sets)
    os.replace(tmp, cache_file)
    return sets


def main(argv: list[str] | None = None) -> None:
    """Build the sets (timed) and write a PNG grid of samples next to Fashion-MNIST."""
    from training.data.fashion_mnist import load_fashion_mnist
    from training.data.outliers import make_validation_outliers_by_kind
    from training.data.preview import sample_grid

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-row", type=int, default=16)
    args = parser.parse_args(argv)

    paths = DataPaths.resolve(args.data_root)
    start = time.perf_counter()
    sets = build_ood_sets(paths, seed=args.seed)
    print(f"built OOD sets in {time.perf_counter() - start:.1f} s")
    for name, images in sets.items():
        print(f"  {name:9s} {images.shape} mean pixel {images.mean():6.1f}")

    fashion, _ = load_fashion_mnist(paths.fashion_mnist_dir, "train")
    rows = {"fashion-mnist (ID)": fashion, **sets}
    for kind, images in make_validation_outliers_by_kind(fashion[:2000], args.seed).items():
        rows[f"val outlier: {kind}"] = images
    rng = np.random.default_rng(args.seed)
    picked = {
        name: images[rng.choice(len(images), args.per_row, replace=False)]
        for name, images in rows.items()
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sample_grid(picked).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
