"""The idx parser on hand-written bytes, so a wrong offset or byte order shows up exactly."""

import gzip
import struct

import numpy as np
import pytest

from training.data.idx import IdxFormatError, read_idx, read_idx_bytes

# Two 2x3 uint8 "images": magic 0x00000803 (ubyte, 3 dims), dims 2, 2, 3, then 12 bytes.
IMAGES_BYTES = bytes([0, 0, 0x08, 3]) + struct.pack(">III", 2, 2, 3) + bytes(range(12))
# Three big-endian int32 labels, one of them negative to catch a wrong sign/byte order.
LABELS_BYTES = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3) + struct.pack(">iii", 7, -2, 70000)


def test_reads_uint8_images_in_c_order(tmp_path):
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(IMAGES_BYTES)
    images = read_idx(path)
    assert images.dtype == np.uint8
    assert images.shape == (2, 2, 3)
    assert images[1, 0].tolist() == [6, 7, 8]


def test_reads_big_endian_int32_into_native_order():
    labels = read_idx_bytes(LABELS_BYTES)
    assert labels.tolist() == [7, -2, 70000]
    assert labels.dtype.isnative


def test_gzip_detected_from_content_not_name(tmp_path):
    path = tmp_path / "no-gz-suffix"
    path.write_bytes(gzip.compress(IMAGES_BYTES))
    assert read_idx(path).shape == (2, 2, 3)


def test_result_is_writable():
    """np.frombuffer arrays are read-only; callers augment images in place."""
    assert read_idx_bytes(IMAGES_BYTES).flags.writeable


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01\x00" + IMAGES_BYTES[2:], "magic"),
        (b"PK\x03\x04" + IMAGES_BYTES[4:], "magic"),
        (bytes([0, 0, 0x07, 3]) + IMAGES_BYTES[4:], "dtype code"),
        (IMAGES_BYTES[:-1], "payload"),
        (IMAGES_BYTES + b"\x00", "payload"),
        (bytes([0, 0, 0x08, 3]) + struct.pack(">I", 2), "truncated"),
        (b"\x00\x00", "magic"),
    ],
)
def test_malformed_files_are_rejected(data, message):
    with pytest.raises(IdxFormatError, match=message):
        read_idx_bytes(data)
