import numpy as np
import pytest

from training.data.outliers import (
    VALIDATION_OUTLIER_KINDS,
    make_validation_outliers,
    make_validation_outliers_by_kind,
)


@pytest.fixture
def id_images():
    """Stand-in ID images: a bright square on black, like a garment."""
    images = np.zeros((30, 28, 28), np.uint8)
    for i, im in enumerate(images):
        im[6:22, 6 + i % 5 : 20 + i % 5] = 150 + i
    return images


def test_every_kind_in_even_shares(id_images):
    by_kind = make_validation_outliers_by_kind(id_images, seed=0, n=62)
    assert tuple(by_kind) == VALIDATION_OUTLIER_KINDS
    sizes = [len(v) for v in by_kind.values()]
    assert sum(sizes) == 62 and max(sizes) - min(sizes) <= 1
    for images in by_kind.values():
        assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)


def test_deterministic_and_seed_dependent(id_images):
    a = make_validation_outliers(id_images, seed=1)
    np.testing.assert_array_equal(a, make_validation_outliers(id_images, seed=1))
    assert not np.array_equal(a, make_validation_outliers(id_images, seed=2))
    assert len(a) == len(id_images)


def test_outliers_are_not_copies_of_id_images(id_images):
    outliers = make_validation_outliers(id_images, seed=0, n=60)
    id_set = {im.tobytes() for im in id_images}
    assert not any(o.tobytes() in id_set for o in outliers)


def test_transforms_keep_what_they_promise(id_images):
    by_kind = make_validation_outliers_by_kind(id_images, seed=0, n=60)
    # Permuting pixels or patches keeps each image's intensity histogram.
    id_histograms = {tuple(np.bincount(im.ravel(), minlength=256)) for im in id_images}
    for kind in ("permuted", "jigsaw"):
        for im in by_kind[kind]:
            assert tuple(np.bincount(im.ravel(), minlength=256)) in id_histograms
    assert (by_kind["inverted"][:, 0, 0] == 255).all()  # black background turned white


def test_rejects_non_uint8(id_images):
    with pytest.raises(ValueError):
        make_validation_outliers(id_images.astype(np.float32))
