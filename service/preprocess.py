"""Request items -> one float32 batch of shape (items, C, H, W), exactly as the manifest says.

An item is either a nested array in the manifest's input shape or an image. Arrays are model input
already preprocessed (default), or raw pixel values (0-255) to scale and normalize when the
request says ``preprocessed: false``. Images (base64 PNG or JPEG) are decoded, converted to
grayscale or RGB, resized with the manifest's resampling filter and normalized:
``(pixel * scale - mean) / std`` per channel.

Every problem is reported as a 4xx :class:`ServiceError` naming the item. Finiteness is checked
after the float32 cast, because 1e39 is a finite JSON number that becomes infinity in float32.
The common case, all items arrays, is converted with one ``np.asarray`` call; per-item work
happens only to find the item at fault.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from service import errors
from service.manifest import Manifest, Preprocessing

Batch = NDArray[np.float32]

_MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}
_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}


class ImageInput(Protocol):
    """An item given as an encoded image (the request schema's ``{"image": ...}`` object)."""

    image: str


def to_batch(
    items: Sequence[Any], manifest: Manifest, *, preprocessed: bool, max_image_pixels: int
) -> Batch:
    """The model input for ``items``: arrays (nested lists of floats) and :class:`ImageInput`."""
    shape = manifest.input.shape
    if all(isinstance(item, list) for item in items):
        batch = _arrays_to_batch(items, shape)
        if not preprocessed:
            batch = _normalize(batch, manifest.preprocessing, channel_axis=1)
    else:
        batch = np.empty((len(items), *shape), dtype=np.float32)
        for index, item in enumerate(items):
            if isinstance(item, list):
                array = _arrays_to_batch([item], shape, first_index=index)[0]
                batch[index] = (
                    array
                    if preprocessed
                    else _normalize(array, manifest.preprocessing, channel_axis=0)
                )
            else:
                batch[index] = decode_image(
                    item.image, manifest.preprocessing, max_image_pixels, index
                )
    _check_finite(batch)
    return batch


def has_images(items: Sequence[Any]) -> bool:
    """True when some item is an image (decoding then runs off the event loop)."""
    return not all(isinstance(item, list) for item in items)


def _arrays_to_batch(items: Sequence[Any], shape: tuple[int, ...], first_index: int = 0) -> Batch:
    try:
        batch = np.asarray(items, dtype=np.float32)
    except (ValueError, TypeError):
        batch = None
    if batch is None or batch.shape[1:] != shape:
        _raise_first_bad_shape(items, shape, first_index)
    assert batch is not None
    return batch


def _raise_first_bad_shape(items: Sequence[Any], shape: tuple[int, ...], first_index: int) -> None:
    """Find and report the first item whose nested array is ragged or not ``shape``."""
    for offset, item in enumerate(items):
        index = first_index + offset
        try:
            got = np.asarray(item, dtype=np.float32).shape
        except (ValueError, TypeError):
            raise errors.invalid_input(
                f"item {index}: ragged nested array; expected shape {list(shape)}", index
            ) from None
        if got != shape:
            raise errors.invalid_input(
                f"item {index}: shape {list(got)}, expected {list(shape)}", index
            )
    raise errors.invalid_input(f"inputs: arrays do not form shape {list(shape)}")


def _check_finite(batch: Batch) -> None:
    finite = np.isfinite(batch.reshape(len(batch), -1)).all(axis=1)
    if not finite.all():
        index = int(np.flatnonzero(~finite)[0])
        raise errors.invalid_input(
            f"item {index}: contains NaN or infinity (after conversion to float32)", index
        )


def _normalize(pixels: Batch, spec: Preprocessing, channel_axis: int) -> Batch:
    """``(pixels * scale - mean) / std`` per channel, in float32."""
    view = [1] * pixels.ndim
    view[channel_axis] = len(spec.mean)
    mean = np.asarray(spec.mean, dtype=np.float32).reshape(view)
    std = np.asarray(spec.std, dtype=np.float32).reshape(view)
    return ((pixels * np.float32(spec.scale) - mean) / std).astype(np.float32, copy=False)


# --- images ------------------------------------------------------------------------------------


def decode_image(encoded: str, spec: Preprocessing, max_pixels: int, index: int) -> Batch:
    """A base64 PNG or JPEG (optionally a ``data:`` URL) as a normalized (C, H, W) array."""
    raw = _b64decode(encoded, index)
    image_format = next((fmt for magic, fmt in _MAGIC.items() if raw.startswith(magic)), None)
    if image_format is None:
        raise errors.invalid_input(
            f"item {index}: only PNG and JPEG images are accepted", index, code="invalid_image"
        )
    try:
        image = Image.open(io.BytesIO(raw), formats=[image_format])
        width, height = image.size  # from the header: checked before any pixel is decoded
        if width * height > max_pixels:
            raise errors.payload_too_large(
                f"item {index}: image of {width}x{height} pixels exceeds {max_pixels} pixels",
                code="image_too_large",
                item=index,
            )
        image.load()
        pixels = _resize(image, spec)
    except errors.ServiceError:
        raise
    except Image.DecompressionBombError:  # Pillow's own cap, far above ours unless configured
        raise errors.payload_too_large(
            f"item {index}: image exceeds {max_pixels} pixels", code="image_too_large", item=index
        ) from None
    except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError, struct.error...
        raise errors.invalid_input(
            f"item {index}: cannot decode {image_format} image: {type(exc).__name__}",
            index,
            code="invalid_image",
        ) from None
    chw = pixels[None, :, :] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return _normalize(chw, spec, channel_axis=0)


def _b64decode(encoded: str, index: int) -> bytes:
    if encoded.startswith("data:"):
        _, _, encoded = encoded.partition(",")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise errors.invalid_input(
            f"item {index}: image is not valid base64", index, code="invalid_image"
        ) from None


def _resize(image: Image.Image, spec: Preprocessing) -> Batch:
    """Convert the colour mode, resize to the manifest's size, return float32 H x W (x 3)."""
    converted = image.convert("L" if spec.color_mode == "grayscale" else "RGB")
    if converted.size != (spec.width, spec.height):
        converted = converted.resize((spec.width, spec.height), resample=_RESAMPLE[spec.resample])
    return np.asarray(converted, dtype=np.float32)
