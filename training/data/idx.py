"""Reader for the idx format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/).

An idx file is a 4-byte magic number `0x00 0x00 <dtype code> <ndim>`, then `ndim` big-endian
uint32 dimension sizes, then the data in C order, big-endian. Files may be gzip-compressed;
we detect that from the gzip magic bytes rather than trusting the file name.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

# dtype code -> big-endian numpy dtype, as listed in the format description.
IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
GZIP_MAGIC = b"\x1f\x8b"


class IdxFormatError(ValueError):
    """The bytes are not a well-formed idx file."""


def read_idx_bytes(data: bytes) -> np.ndarray:
    """Parse an (uncompressed) idx byte string into an array in native byte order."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise IdxFormatError(f"bad idx magic number {data[:4].hex()!r}: expected 0000<type><ndim>")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise IdxFormatError(f"unknown idx dtype code 0x{code:02x}")
    header_end = 4 + 4 * ndim
    if len(data) < header_end:
        raise IdxFormatError(f"truncated idx header: {ndim} dims need {header_end} bytes")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header_end != expected:
        raise IdxFormatError(
            f"idx payload is {len(data) - header_end} bytes, shape {shape} needs {expected}"
        )
    array = np.frombuffer(data, dtype, offset=header_end).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: Path | str) -> np.ndarray:
    """Read an idx or idx.gz file. Raises `IdxFormatError` on a malformed file."""
    raw = Path(path).read_bytes()
    if raw[:2] == GZIP_MAGIC:
        raw = gzip.decompress(raw)
    return read_idx_bytes(raw)
