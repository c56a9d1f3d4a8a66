"""OOD test sets: the digit sheet, each generator, the full build on real files, the cache."""

import numpy as np
import pytest
from PIL import Image

from training.data import ood_sets
from training.data.digits import (
    center_of_mass,
    load_opencv_digits,
    mnist_like_digits,
    shift_image,
    to_mnist_frame,
)
from training.data.ood_sets import (
    OOD_SET_NAMES,
    build_ood_sets,
    gaussian_noise,
    load_or_build_ood_sets,
    photo_crops,
    render_letters,
    set_rng,
    uniform_noise,
)
from training.data.paths import DataPaths

REAL = DataPaths.resolve()
needs_opencv = pytest.mark.skipif(
    not REAL.digits_png.is_file(),
    reason=f"{REAL.digits_png} missing: run scripts/fetch_data.sh (Debian opencv-doc)",
)


def _real_fonts():
    try:
        return REAL.fonts()
    except FileNotFoundError:
        return []


needs_fonts = pytest.mark.skipif(
    not _real_fonts(), reason="benchmark fonts missing: run scripts/fetch_data.sh"
)


# --- digits ---------------------------------------------------------------------------------


def test_digit_sheet_cells_in_reading_order(tmp_path):
    """A synthetic sheet where each cell's pixels hold its row-block index: the extraction must
    put cell (row, col) at index row * 100 + col and label it row // 5."""
    sheet = np.repeat(np.repeat(np.arange(50, dtype=np.uint8)[:, None], 100, 1), 20, 0)
    sheet = np.repeat(sheet, 20, 1)  # 1000 x 2000
    sheet[:20, 20:40] = 255  # cell (0, 1)
    Image.fromarray(sheet).save(tmp_path / "digits.png")
    cells, labels = load_opencv_digits(tmp_path / "digits.png")
    assert cells.shape == (5000, 20, 20)
    assert (cells[1] == 255).all() and (cells[0] == 0).all()
    assert (cells[7 * 100 + 42] == 7).all()
    assert labels[7 * 100 + 42] == 1 and labels[4999] == 9


def test_wrong_sheet_size_is_rejected(tmp_path):
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(tmp_path / "digits.png")
    with pytest.raises(ValueError, match="expected"):
        load_opencv_digits(tmp_path / "digits.png")


def test_shift_fills_with_background_instead_of_wrapping():
    image = np.zeros((5, 5), np.uint8)
    image[0, 4] = 9
    assert shift_image(image, 1, 1).sum() == 0  # pushed off the edge, not wrapped
    assert shift_image(image, 2, -3)[2, 1] == 9


def test_off_centre_cell_is_recentred():
    cell = np.zeros((20, 20), np.uint8)
    cell[0:4, 0:4] = 255  # a blob in the top-left corner
    framed = to_mnist_frame(cell)
    assert framed.shape == (28, 28)
    assert framed.sum() == cell.sum()
    cy, cx = center_of_mass(framed)
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5


@needs_opencv
def test_real_digits_500_per_class_centred_white_on_black():
    images, labels = mnist_like_digits(REAL.digits_png)
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    centres = np.array([center_of_mass(im) for im in images])
    assert np.abs(centres - 13.5).max() <= 0.5
    # Background is black like Fashion-MNIST: the border rows are empty, strokes are bright.
    assert images[:, :2, :].max() == 0 and images[:, :, :2].max() == 0
    assert images.max() == 255


# --- generators -------------------------------------------------------------------------------


def test_noise_sets_deterministic_and_in_range():
    g1, g2 = (
        gaussian_noise(set_rng(0, "gaussian"), n=50),
        gaussian_noise(set_rng(0, "gaussian"), n=50),
    )
    np.testing.assert_array_equal(g1, g2)
    assert g1.dtype == np.uint8 and g1.shape == (50, 28, 28)
    assert g1.mean() == pytest.approx(127.5, abs=3)
    u = uniform_noise(set_rng(0, "uniform"), n=50)
    assert u.min() == 0 and u.max() == 255
    assert not np.array_equal(uniform_noise(set_rng(1, "uniform"), n=50), u)


@needs_fonts
def test_letters_white_on_black_deterministic():
    fonts = _real_fonts()
    a = render_letters(fonts, set_rng(0, "letters"), per_class=2)
    b = render_letters(fonts, set_rng(0, "letters"), per_class=2)
    assert a.shape == (52, 28, 28) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, render_letters(fonts, set_rng(1, "letters"), per_class=2))
    # Every glyph drawn, bright strokes on a mostly black canvas.
    assert (a.max(axis=(1, 2)) > 200).all()
    assert (np.median(a.reshape(52, -1), axis=1) == 0).all()


def test_photo_crops_deterministic_on_any_photos(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
    files = sorted(tmp_path.glob("*.png"))
    a = photo_crops(files, set_rng(0, "photos"), n=20)
    b = photo_crops(files, set_rng(0, "photos"), n=20)
    assert a.shape == (20, 28, 28) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert len({im.tobytes() for im in a}) == 20


@needs_opencv
@needs_fonts
def test_full_build_counts_and_types():
    sets = build_ood_sets(REAL, seed=0)
    assert tuple(sets) == OOD_SET_NAMES
    counts = {name: len(images) for name, images in sets.items()}
    assert counts == {
        "mnist": 5000,
        "letters": 2600,
        "photos": 2000,
        "gaussian": 2000,
        "uniform": 2000,
    }
    for images in sets.values():
        assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)


# --- cache ------------------------------------------------------------------------------------


@pytest.fixture
def fake_paths(tmp_path):
    """Files that exist (for the fingerprint) but are never read: the build is stubbed out."""
    data = tmp_path / "opencv"
    fonts = tmp_path / "fonts"
    data.mkdir()
    fonts.mkdir()
    (data / "digits.png").write_bytes(b"x")
    (data / "baboon.jpg").write_bytes(b"x")
    for name in ("a.ttf", "b.ttf", "c.otf"):
        (fonts / name).write_bytes(b"x")
    return DataPaths(tmp_path, data, (fonts,), font_names=None)


def test_cache_builds_once_per_seed(tmp_path, fake_paths, monkeypatch):
    calls = []

    def fake_build(paths, seed, size, photos_dir):
        calls.append(seed)
        return {name: np.full((2, size, size), seed, np.uint8) for name in OOD_SET_NAMES}

    monkeypatch.setattr(ood_sets, "build_ood_sets", fake_build)
    cache = tmp_path / "cache"
    first = load_or_build_ood_sets(fake_paths, cache, seed=3)
    again = load_or_build_ood_sets(fake_paths, cache, seed=3)
    other = load_or_build_ood_sets(fake_paths, cache, seed=4)
    assert calls == [3, 4]
    for name in OOD_SET_NAMES:
        np.testing.assert_array_equal(first[name], again[name])
    assert other["mnist"][0, 0, 0] == 4
    assert len(list(cache.glob("*.npz"))) == 2  # no temporary files left behind

    (fake_paths.font_dirs[0] / "d.ttf").write_bytes(b"new font")  # other inputs: rebuild
    load_or_build_ood_sets(fake_paths, cache, seed=3)
    assert calls == [3, 4, 3]
