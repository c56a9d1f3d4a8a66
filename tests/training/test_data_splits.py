import numpy as np
import pytest

from training.data.splits import train_val_split


def test_disjoint_complete_and_sized():
    train, val = train_val_split(1000, val_size=100, seed=3)
    assert len(val) == 100 and len(train) == 900
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.union1d(train, val), np.arange(1000))
    assert train.dtype == np.int64 and val.dtype == np.int64


def test_deterministic_by_seed():
    a = train_val_split(1000, val_size=100, seed=3)
    b = train_val_split(1000, val_size=100, seed=3)
    c = train_val_split(1000, val_size=100, seed=4)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_stratified_keeps_class_shares():
    labels = np.repeat(np.arange(3), [600, 300, 100])
    _, val = train_val_split(len(labels), val_size=100, seed=0, labels=labels)
    assert np.bincount(labels[val]).tolist() == [60, 30, 10]


def test_stratified_rounding_gives_exact_total():
    labels = np.repeat(np.arange(3), [334, 333, 333])
    _, val = train_val_split(len(labels), val_size=10, seed=0, labels=labels)
    assert len(val) == 10
    assert sorted(np.bincount(labels[val]).tolist()) == [3, 3, 4]


@pytest.mark.parametrize("val_size", [0, 1000, -5])
def test_rejects_impossible_sizes(val_size):
    with pytest.raises(ValueError):
        train_val_split(1000, val_size=val_size)


def test_rejects_label_count_mismatch():
    with pytest.raises(ValueError, match="labels"):
        train_val_split(10, val_size=2, labels=np.zeros(9))
