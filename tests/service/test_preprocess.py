"""Items -> float32 batch: arrays, images, and every way an item can be wrong."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.errors import ServiceError
from service.manifest import Manifest, read_manifest
from service.preprocess import to_batch
from service.schemas import ImageItem, PredictRequest
from tests.model_factory import build_model_dir
from tests.service.conftest import items, png_b64

MAX_PIXELS = 10_000


@pytest.fixture(scope="module")
def gray(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    directory = build_model_dir(tmp_path_factory.mktemp("pre"), name="g")
    return read_manifest(directory / "manifest.json")


@pytest.fixture(scope="module")
def rgb(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    directory = build_model_dir(tmp_path_factory.mktemp("pre"), name="c", input_shape=(3, 8, 8))
    return read_manifest(directory / "manifest.json")


def batch(inputs: list, manifest: Manifest, preprocessed: bool = True) -> np.ndarray:
    request = PredictRequest.model_validate({"inputs": inputs})
    return to_batch(
        request.inputs, manifest, preprocessed=preprocessed, max_image_pixels=MAX_PIXELS
    )


def error_of(inputs: list, manifest: Manifest, **kwargs) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        batch(inputs, manifest, **kwargs)
    return caught.value


def test_arrays_are_used_as_given(gray: Manifest) -> None:
    data = items(3)
    result = batch(data.tolist(), gray)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, data)


def test_raw_arrays_are_normalized(gray: Manifest) -> None:
    pixels = np.full((1, 1, 28, 28), 255.0, np.float32)
    result = batch(pixels.tolist(), gray, preprocessed=False)
    np.testing.assert_allclose(result, (1.0 - 0.2860) / 0.3530, rtol=1e-6)


def test_wrong_shape_names_the_item(gray: Manifest) -> None:
    data = items(3).tolist()
    data[2] = items(1, shape=(1, 28, 27))[0].tolist()
    error = error_of(data, gray)
    assert (error.status, error.code, error.item) == (422, "invalid_input", 2)
    assert "[1, 28, 27]" in error.message


def test_ragged_array_names_the_item(gray: Manifest) -> None:
    data = items(2).tolist()
    data[1][0][5] = data[1][0][5][:-1]
    error = error_of(data, gray)
    assert (error.item, error.code) == (1, "invalid_input")
    assert "ragged" in error.message


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 1e39])
def test_non_finite_after_float32_cast_names_the_item(gray: Manifest, bad: float) -> None:
    data = items(3).tolist()
    data[1][0][3][4] = bad
    error = error_of(data, gray)
    assert (error.status, error.item) == (422, 1)
    assert "NaN or infinity" in error.message


def test_grayscale_png_is_resized_and_normalized(gray: Manifest) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (56, 56), dtype=np.uint8)
    result = batch([{"image": png_b64(pixels)}], gray)
    expected = np.asarray(
        Image.fromarray(pixels).resize((28, 28), Image.Resampling.BILINEAR), np.float32
    )
    expected = (expected * np.float32(1 / 255) - np.float32(0.2860)) / np.float32(0.3530)
    np.testing.assert_allclose(result[0, 0], expected, rtol=1e-6, atol=1e-6)


def test_rgb_png_becomes_grayscale_for_a_grayscale_model(gray: Manifest) -> None:
    pixels = np.zeros((28, 28, 3), np.uint8)
    pixels[..., 0] = 255
    result = batch([{"image": png_b64(pixels)}], gray)
    luminance = round(255 * 299 / 1000)  # Pillow's L conversion of pure red
    np.testing.assert_allclose(result[0, 0, 0, 0], (luminance / 255 - 0.2860) / 0.3530, rtol=1e-5)


def test_grayscale_jpeg_becomes_rgb_channels_first(rgb: Manifest) -> None:
    pixels = np.full((8, 8), 128, np.uint8)
    result = batch([{"image": png_b64(pixels, fmt="JPEG")}], rgb)
    assert result.shape == (1, 3, 8, 8)
    assert np.allclose(result[0, 0], result[0, 2])


def test_mixed_arrays_and_images_keep_order(gray: Manifest) -> None:
    data = items(2)
    image = png_b64(np.zeros((28, 28), np.uint8))
    result = batch([data[0].tolist(), {"image": image}, data[1].tolist()], gray)
    np.testing.assert_array_equal(result[0], data[0])
    np.testing.assert_array_equal(result[2], data[1])
    np.testing.assert_allclose(result[1], -0.2860 / 0.3530, rtol=1e-6)


def test_data_url_prefix_is_accepted(gray: Manifest) -> None:
    image = "data:image/png;base64," + png_b64(np.zeros((28, 28), np.uint8))
    assert batch([{"image": image}], gray).shape == (1, 1, 28, 28)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("not base64!!", "invalid_image"),
        (base64.b64encode(b"GIF89a" + b"\0" * 30).decode(), "invalid_image"),
        (base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"garbage" * 5).decode(), "invalid_image"),
    ],
)
def test_undecodable_images_name_the_item(gray: Manifest, payload: str, code: str) -> None:
    error = error_of([items(1)[0].tolist(), {"image": payload}], gray)
    assert (error.status, error.code, error.item) == (422, code, 1)


def test_gif_is_refused_even_if_pillow_could_read_it(gray: Manifest) -> None:
    buffer = io.BytesIO()
    Image.new("L", (28, 28)).save(buffer, format="GIF")
    error = error_of([{"image": base64.b64encode(buffer.getvalue()).decode()}], gray)
    assert "PNG and JPEG" in error.message


def bomb_png(width: int, height: int) -> str:
    """A tiny PNG whose header declares a huge image (the pixels are never decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return base64.b64encode(data + chunk(b"IEND", b"")).decode()


@pytest.mark.parametrize("side", [200, 50_000])  # over our cap; over Pillow's own cap too
def test_decompression_bomb_is_refused_before_decoding(gray: Manifest, side: int) -> None:
    error = error_of([items(1)[0].tolist(), {"image": bomb_png(side, side)}], gray)
    assert (error.status, error.code, error.item) == (413, "image_too_large", 1)


def test_image_item_model_forbids_extra_fields() -> None:
    with pytest.raises(ValueError):
        ImageItem.model_validate({"image": "x", "other": 1})


def test_tiny_model_dir_fixture_is_reusable(tmp_path: Path) -> None:
    directory = build_model_dir(tmp_path, name="x", version="3")
    assert read_manifest(directory / "manifest.json").version == "3"
