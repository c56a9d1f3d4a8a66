"""Every row of docs/reliability.md: a bad, hostile or unlucky request against the real app.

Each case sends the bad request *and* a well-formed neighbour at the same time (with a batching
delay, so they would share a batch), then checks: the bad one gets its documented status and
error body (never a 5xx for a client error), the neighbour gets a correct 200, and the server
still serves afterwards. Process-level cases (SIGTERM, slow clients on a real socket, corrupted
models at start) are in ``test_lifecycle.py``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import pickle
import struct
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from service.main import create_app
from service.settings import Settings
from service.v2.codec import HEADER_LENGTH_HEADER
from tests.model_factory import tiny_model_for
from tests.service.conftest import DEFAULT, items, metric_value, running_app, wait_until_queued

pytestmark = pytest.mark.anyio

MAX_ITEMS = 8
MAX_PIXELS = 64 * 64
JSON = {"content-type": "application/json"}
GOOD_ITEMS = items(2, seed=42)
GOOD = {"inputs": GOOD_ITEMS.tolist()}


@dataclass(frozen=True)
class Req:
    """A raw request: path, body bytes and headers."""

    path: str
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)


# --- request builders ----------------------------------------------------------------------------


def predict(body: Any, path: str = "/predict") -> Req:
    return Req(path, json.dumps(body).encode(), JSON)


def with_item(value: Any, index: int = 1) -> dict[str, Any]:
    data: list[Any] = items(3).tolist()
    data[index] = value
    return {"inputs": data}


def with_token(token: str) -> Req:
    """A /predict body whose item 1 holds ``token`` (NaN, Infinity, 1e39) as a JSON number."""
    data = items(3).tolist()
    data[1][0][0][0] = 12345.5
    return Req("/predict", json.dumps({"inputs": data}).replace("12345.5", token).encode(), JSON)


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def image_item(raw: bytes | str) -> dict[str, Any]:
    encoded = raw if isinstance(raw, str) else base64.b64encode(raw).decode()
    return with_item({"image": encoded})


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` with a tiny zlib stream: a bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


def v2_json(x: np.ndarray | None = None, **extra: Any) -> dict[str, Any]:
    x = items(2) if x is None else x
    tensor = {"name": "input", "shape": list(x.shape), "datatype": "FP32", "data": x.tolist()}
    return {"inputs": [tensor], **extra}


def v2(body: Any, path: str = f"/v2/models/{DEFAULT}/infer", **headers: str) -> Req:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Req(path, content, {"content-type": "application/json", **headers})


def v2_tensor(**changes: Any) -> Req:
    body = v2_json()
    body["inputs"][0].update(changes)
    return v2(body)


def v2_binary(size: Any, raw_bytes: int | None = None, header_length: str | None = None) -> Req:
    x = items(2)
    raw = x.astype("<f4").tobytes()
    raw = raw if raw_bytes is None else raw[:raw_bytes]
    tensor = {
        "name": "input",
        "shape": list(x.shape),
        "datatype": "FP32",
        "parameters": {"binary_data_size": size},
    }
    header = json.dumps({"inputs": [tensor]}).encode()
    length = header_length if header_length is not None else str(len(header))
    return Req(
        f"/v2/models/{DEFAULT}/infer",
        header + raw,
        {"content-type": "application/octet-stream", HEADER_LENGTH_HEADER: length},
    )


def v2_token(token: str) -> Req:
    body = json.dumps(v2_json(items(2))).replace("]]]]", f"]]]], {token}]]", 1)
    return v2(body.encode())


# --- the cases: (id, request, status, code for /predict or None for v2, item) --------------------

_PNG = png(np.full((28, 28), 128))
PREDICT_CASES = [
    ("wrong-shape", predict(with_item(items(1, (1, 27, 28))[0].tolist())), 422, "invalid_input", 1),
    ("wrong-rank", predict(with_item([[0.5] * 28] * 28)), 422, "invalid_request", 1),
    ("wrong-dtype", predict(with_item([[[True] * 28] * 28])), 422, "invalid_request", 1),
    (
        "strings-in-numeric-data",
        predict(with_item([[["1.0"] * 28] * 28])),
        422,
        "invalid_request",
        1,
    ),
    ("null-in-numeric-data", predict(with_item([[[None] * 28] * 28])), 422, "invalid_request", 1),
    ("nan", with_token("NaN"), 422, "invalid_input", 1),
    ("infinity", with_token("-Infinity"), 422, "invalid_input", 1),
    ("overflow-after-float32-cast", with_token("1e39"), 422, "invalid_input", 1),
    ("empty-batch", predict({"inputs": []}), 422, "invalid_request", None),
    (
        "more-items-than-allowed",
        predict({"inputs": items(MAX_ITEMS + 1).tolist()}),
        413,
        "too_many_items",
        None,
    ),
    (
        "truncated-base64",
        predict(image_item(base64.b64encode(_PNG).decode()[:-3])),
        422,
        "invalid_image",
        1,
    ),
    ("invalid-base64", predict(image_item("iVBO%%%=")), 422, "invalid_image", 1),
    ("non-image-bytes", predict(image_item(pickle.dumps({"a": 1}))), 422, "invalid_image", 1),
    ("gif-not-allowed", predict(image_item(b"GIF89a" + bytes(64))), 422, "invalid_image", 1),
    ("truncated-image", predict(image_item(_PNG[: len(_PNG) // 2])), 422, "invalid_image", 1),
    (
        "decompression-bomb",
        predict(image_item(png_header_only(100_000, 100_000))),
        413,
        "image_too_large",
        1,
    ),
    ("huge-dimensions", predict(image_item(png(np.zeros((100, 100))))), 413, "image_too_large", 1),
    (
        "deeply-nested-json",
        Req("/predict", b'{"inputs": ' + b"[" * 50_000, JSON),
        400,
        "malformed_json",
        None,
    ),
    ("invalid-json", Req("/predict", b'{"inputs": [', JSON), 400, "malformed_json", None),
    (
        "invalid-utf8",
        Req("/predict", b'{"inputs": [[[["\xff\xfe"]]]]}', JSON),
        400,
        "malformed_json",
        None,
    ),
    ("not-an-object", predict([1, 2]), 422, "invalid_request", None),
    (
        "wrong-content-type",
        Req("/predict", json.dumps(GOOD).encode(), {"content-type": "text/plain"}),
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "pickle-content-type",
        Req("/predict", pickle.dumps(GOOD), {"content-type": "application/python-pickle"}),
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "yaml-content-type",
        Req("/predict", b"inputs: []\n", {"content-type": "application/yaml"}),
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "missing-content-type",
        Req("/predict", json.dumps(GOOD).encode()),
        415,
        "unsupported_media_type",
        None,
    ),
    ("unknown-model", predict(GOOD, "/models/nope/predict"), 404, "model_not_found", None),
    (
        "unknown-version",
        predict(GOOD, f"/models/{DEFAULT}/versions/9/predict"),
        404,
        "model_not_found",
        None,
    ),
    ("invalid-model-name", predict(GOOD, "/models/UPPER/predict"), 404, "model_not_found", None),
    (
        "invalid-version",
        predict(GOOD, f"/models/{DEFAULT}/versions/01/predict"),
        404,
        "model_not_found",
        None,
    ),
    ("threshold-out-of-range", predict({**GOOD, "target_tpr": 1.5}), 422, "invalid_request", None),
    (
        "msp-threshold-out-of-range",
        predict({**GOOD, "score": "msp", "threshold": 5.0}),
        422,
        "threshold_out_of_range",
        None,
    ),
    (
        "threshold-not-finite",
        Req("/predict", b'{"inputs": [], "threshold": Infinity}', JSON),
        422,
        "invalid_request",
        None,
    ),
    ("unknown-score-name", predict({**GOOD, "score": "odin"}), 422, "invalid_request", None),
    ("top-k-over-classes", predict({**GOOD, "top_k": 11}), 422, "invalid_input", None),
    ("timeout-not-positive", predict({**GOOD, "timeout": 0}), 422, "invalid_request", None),
    (
        "unknown-field",
        predict({**GOOD, "callback_url": "http://example.com"}),
        422,
        "invalid_request",
        None,
    ),
]

V2_CASES = [
    ("wrong-shape", v2_tensor(shape=[2, 1, 28, 27]), 400),
    ("wrong-rank", v2(v2_json(items(2).reshape(2, 784))), 400),
    ("wrong-dtype", v2_tensor(datatype="FP64"), 400),
    ("strings-in-numeric-data", v2_tensor(data=["a"] * 1568), 400),
    ("bools-in-numeric-data", v2_tensor(data=[True] * 1568), 400),
    ("nan", v2_token("NaN"), 400),
    ("overflow-after-float32-cast", v2_token("1e39"), 400),
    ("empty-batch", v2_tensor(shape=[0, 1, 28, 28], data=[]), 400),
    ("more-items-than-allowed", v2(v2_json(items(MAX_ITEMS + 1))), 400),
    ("binary-header-length-beyond-body", v2_binary(2 * 784 * 4, header_length="999999"), 400),
    ("binary-header-length-not-integer", v2_binary(2 * 784 * 4, header_length="12.5"), 400),
    ("negative-binary-data-size", v2_binary(-8), 400),
    ("non-integer-binary-data-size", v2_binary(6272.5), 400),
    ("string-binary-data-size", v2_binary("6272"), 400),
    ("binary-data-shorter-than-declared", v2_binary(2 * 784 * 4, raw_bytes=100), 400),
    ("deeply-nested-json", v2(b"[" * 50_000), 400),
    ("invalid-json", v2(b'{"inputs": ['), 400),
    ("invalid-utf8", v2(b'{"id": "\xff\xfe", "inputs": []}'), 400),
    ("wrong-content-type", v2(v2_json(), **{"content-type": "text/plain"}), 415),
    (
        "pickle-content-type",
        v2(pickle.dumps(v2_json()), **{"content-type": "application/python-pickle"}),
        415,
    ),
    ("unknown-model", v2(v2_json(), "/v2/models/nope/infer"), 404),
    ("unknown-version", v2(v2_json(), f"/v2/models/{DEFAULT}/versions/9/infer"), 404),
    ("threshold-out-of-range", v2(v2_json(parameters={"target_tpr": 2})), 400),
    (
        "msp-threshold-out-of-range",
        v2(v2_json(parameters={"score": "msp", "threshold": -0.5})),
        400,
    ),
    ("threshold-not-finite", v2(v2_json(parameters={"threshold": "inf"})), 400),
    ("unknown-score-name", v2(v2_json(parameters={"score": "odin"})), 400),
    ("unknown-parameter", v2(v2_json(parameters={"model_path": "/etc/passwd"})), 400),
    ("invalid-timeout", v2(v2_json(parameters={"timeout": -5})), 400),
]


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        max_batch_size=8,
        max_delay_ms=20.0,  # concurrent requests share a batch
        max_items_per_request=MAX_ITEMS,
        max_queue_items=64,
        max_image_pixels=MAX_PIXELS,
    )


@pytest.fixture
async def app_client(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running_app(settings) as pair:
        yield pair


@pytest.fixture(scope="module")
def expected_good(model_root: Path) -> np.ndarray:
    """Reference logits of the good neighbour (numpy twin of the served version)."""
    return tiny_model_for(model_root / DEFAULT / "2").logits(GOOD_ITEMS)


async def send(client: httpx.AsyncClient, req: Req) -> httpx.Response:
    return await client.post(req.path, content=req.content, headers=req.headers)


def check_good(response: httpx.Response, expected: np.ndarray) -> None:
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["class_index"] for p in predictions] == expected.argmax(axis=1).tolist()


def check_v2_good(response: httpx.Response, expected: np.ndarray) -> None:
    assert response.status_code == 200, response.text
    logits = next(o for o in response.json()["outputs"] if o["name"] == "logits")
    np.testing.assert_allclose(np.reshape(logits["data"], expected.shape), expected, atol=1e-4)


async def still_serving(client: httpx.AsyncClient, expected: np.ndarray) -> None:
    check_good(await client.post("/predict", json=GOOD), expected)


def assert_service_error(
    response: httpx.Response, status: int, code: str, item: int | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["item"] == item
    assert len(response.content) < 4000  # never echoes the input back
    return body["error"]


def assert_v2_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str)
    assert len(response.content) < 4000


# --- request validation: /predict and v2 -------------------------------------------------------


@pytest.mark.parametrize(
    ("req", "status", "code", "item"),
    [pytest.param(*case[1:], id=case[0]) for case in PREDICT_CASES],
)
async def test_predict_bad_request(
    app_client: tuple[FastAPI, httpx.AsyncClient],
    expected_good: np.ndarray,
    req: Req,
    status: int,
    code: str,
    item: int | None,
) -> None:
    _, client = app_client
    bad, good = await asyncio.gather(send(client, req), client.post("/predict", json=GOOD))
    assert_service_error(bad, status, code, item)
    check_good(good, expected_good)
    await still_serving(client, expected_good)


@pytest.mark.parametrize(
    ("req", "status"), [pytest.param(*case[1:], id=case[0]) for case in V2_CASES]
)
async def test_v2_bad_request(
    app_client: tuple[FastAPI, httpx.AsyncClient],
    expected_good: np.ndarray,
    req: Req,
    status: int,
) -> None:
    _, client = app_client
    neighbour = client.post(f"/v2/models/{DEFAULT}/infer", json=v2_json(GOOD_ITEMS))
    bad, good = await asyncio.gather(send(client, req), neighbour)
    assert_v2_error(bad, status)
    check_v2_good(good, expected_good)
    await still_serving(client, expected_good)


async def test_path_traversal_in_model_name(
    app_client: tuple[FastAPI, httpx.AsyncClient], expected_good: np.ndarray
) -> None:
    """``..`` as a model name, as a server delivers it (clients may normalise the URL first)."""
    app, client = app_client
    for path, raw in [
        ("/models/../predict", b"/models/%2e%2e/predict"),
        ("/v2/models/../infer", b"/v2/models/%2e%2e/infer"),
    ]:
        status, body = await call_asgi(app, path, raw, json.dumps(GOOD).encode())
        assert status == 404, body
        assert b"/etc" not in body and len(body) < 500
    await still_serving(client, expected_good)


# --- in-batch failures ---------------------------------------------------------------------------


async def test_non_finite_output_fails_only_its_item(
    make_settings: Callable[..., Settings], expected_good: np.ndarray
) -> None:
    """A finite input whose logits overflow: its request gets 422, its batch-mate a 200."""
    extreme = items(2)
    extreme[1] = 3e38
    async with running_app(make_settings(max_delay_ms=100.0)) as (_, client):
        bad, good = await asyncio.gather(
            client.post("/predict", json={"inputs": extreme.tolist()}),
            client.post("/predict", json=GOOD),
        )
        metrics = (await client.get("/metrics")).text
        v2_bad = await client.post(f"/v2/models/{DEFAULT}/infer", json=v2_json(extreme))
        await still_serving(client, expected_good)
    assert_service_error(bad, 422, "non_finite_output", 1)
    check_good(good, expected_good)
    assert_v2_error(v2_bad, 400)
    assert metric_value(metrics, "ood_batch_size_items_count") == 1  # they shared one batch


POISON = 777.0


class Injected:
    """Wraps the batcher's run function to fail on demand."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], mode: str) -> None:
        self.run = run
        self.mode = mode
        self.batches: list[int] = []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(len(batch))
        poisoned = bool((batch[:, 0, 0, 0] == POISON).any())
        if poisoned and self.mode == "raise":
            raise RuntimeError("injected failure")
        outputs = self.run(batch)
        if poisoned and self.mode == "short":
            return outputs[:-1]  # one row missing: must not be handed out misaligned
        return outputs


@pytest.mark.parametrize("mode", ["raise", "short"])
async def test_failing_run_fails_only_the_request_that_causes_it(
    make_settings: Callable[..., Settings], expected_good: np.ndarray, mode: str
) -> None:
    poison = items(1)
    poison[0, 0, 0, 0] = POISON
    async with running_app(make_settings(max_delay_ms=100.0)) as (app, client):
        batcher = app.state.ood.registry.get(None).batcher
        injected = Injected(batcher.run, mode)
        batcher.run = injected
        bad, good, v2_good = await asyncio.gather(
            client.post("/predict", json={"inputs": poison.tolist()}),
            client.post("/predict", json=GOOD),
            client.post(f"/v2/models/{DEFAULT}/infer", json=v2_json(GOOD_ITEMS)),
        )
        await still_serving(client, expected_good)
    assert_service_error(bad, 500, "inference_failed")
    check_good(good, expected_good)
    check_v2_good(v2_good, expected_good)
    assert injected.batches[0] == 5  # one shared batch, then one run per request
    assert sorted(injected.batches[1:4]) == [1, 2, 2]


class BrokenObserver:
    """A metrics observer whose every hook raises."""

    def queue_depth(self, items: int) -> None:
        pass

    def batch_started(self, size: int, waits: object) -> None:
        raise RuntimeError("observer broken")

    def inference_done(self, seconds: float) -> None:
        raise RuntimeError("observer broken")


async def test_exception_in_the_batch_loop_does_not_stop_it(
    make_settings: Callable[..., Settings], expected_good: np.ndarray
) -> None:
    async with running_app(make_settings()) as (app, client):
        batcher = app.state.ood.registry.get(None).batcher
        batcher.observer = BrokenObserver()
        check_good(await client.post("/predict", json=GOOD), expected_good)  # metrics are no reason

        def broken_take() -> list[Any]:
            batcher._take_batch = original  # fails one round only
            raise RuntimeError("injected bug in the loop")

        original = batcher._take_batch
        batcher._take_batch = broken_take
        first = await client.post("/predict", json={**GOOD, "timeout": 1.0})
        assert first.status_code in (200, 504), first.text  # never a hang, never a crash
        for _ in range(3):
            await still_serving(client, expected_good)
        assert not batcher._task.done()


# --- overload, deadlines, disconnects, shutdown --------------------------------------------------


@pytest.mark.parametrize("status", [503, 429])
async def test_burst_over_the_queue_limit(
    make_settings: Callable[..., Settings], expected_good: np.ndarray, status: int
) -> None:
    """Beyond the queue limit (counted in items) requests are refused at once, with Retry-After."""
    settings = make_settings(
        max_batch_size=64,
        max_delay_ms=300.0,
        max_queue_items=6,
        max_items_per_request=4,
        retry_after_s=2,
        overload_status=status,
    )
    async with running_app(settings) as (app, client):
        accepted = asyncio.ensure_future(client.post("/predict", json=GOOD))
        await wait_until_queued(app, 2)
        burst = await asyncio.gather(
            *(client.post("/predict", json={"inputs": items(3).tolist()}) for _ in range(4)),
            client.post(f"/v2/models/{DEFAULT}/infer", json=v2_json(items(3))),
        )
        check_good(await accepted, expected_good)
        metrics = (await client.get("/metrics")).text
        await still_serving(client, expected_good)
    codes = sorted(r.status_code for r in burst)
    assert codes == [200] + [status] * 4, [r.text for r in burst]
    for response in burst:
        if response.status_code == status:
            assert response.headers["retry-after"] == "2"
            body = response.json()
            assert body["error"] if "/v2/" in str(response.url) else body["error"]["code"]
    refused = metric_value(metrics, "ood_requests_refused_total", model=DEFAULT, reason="overload")
    assert refused == 4


async def test_request_timeout_lower_than_the_server_deadline(
    make_settings: Callable[..., Settings], expected_good: np.ndarray
) -> None:
    """``timeout`` in seconds on /predict, in µs (as Triton) on v2: 504 at the lower one."""
    settings = make_settings(max_batch_size=64, max_delay_ms=400.0, request_timeout_s=5.0)
    async with running_app(settings) as (_, client):
        short, v2_short, good = await asyncio.gather(
            client.post("/predict", json={**GOOD, "timeout": 0.05}),
            client.post(
                f"/v2/models/{DEFAULT}/infer", json=v2_json(parameters={"timeout": 50_000})
            ),
            client.post("/predict", json={**GOOD, "timeout": 3.0}),
        )
        metrics = (await client.get("/metrics")).text
    error = assert_service_error(short, 504, "timeout")
    assert "0.05 s" in error["message"]
    assert_v2_error(v2_short, 504)
    check_good(good, expected_good)
    assert metric_value(metrics, "ood_requests_refused_total", reason="timeout") == 2
    assert metric_value(metrics, "ood_batch_size_items_sum") == 2  # the timed-out never ran


def scope(path: str, raw_path: bytes, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": raw_path,
        "root_path": "",
        "query_string": b"",
        "client": ("127.0.0.1", 1234),
        "server": ("test", 80),
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()]
        + [(b"content-length", str(len(body)).encode())],
    }


async def call_asgi(
    app: FastAPI,
    path: str,
    raw_path: bytes,
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    disconnect_after_s: float | None = None,
    stall_after: int | None = None,
) -> tuple[int, bytes]:
    """Drive the app like a server: the client may disconnect, or stall mid-body."""
    messages: list[dict[str, Any]] = []
    calls = 0

    async def receive() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1 and stall_after is not None:
            return {"type": "http.request", "body": body[:stall_after], "more_body": True}
        if calls == 1:
            return {"type": "http.request", "body": body, "more_body": False}
        if stall_after is not None and calls == 2:
            await asyncio.sleep(60)  # the rest of the body never comes
        if disconnect_after_s is not None:
            await asyncio.sleep(disconnect_after_s)
            return {"type": "http.disconnect"}
        await asyncio.sleep(60)
        return {"type": "http.disconnect"}

    async def send_message(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope(path, raw_path, body, headers or JSON), receive, send_message)
    status = messages[0]["status"]
    return status, b"".join(m.get("body", b"") for m in messages[1:])


@pytest.mark.parametrize("protocol", ["predict", "v2"])
async def test_client_disconnect_mid_queue_costs_no_inference(
    make_settings: Callable[..., Settings], expected_good: np.ndarray, protocol: str
) -> None:
    settings = make_settings(max_batch_size=64, max_delay_ms=300.0)
    if protocol == "predict":
        path, body = "/predict", json.dumps({"inputs": items(3).tolist()}).encode()
    else:
        path, body = f"/v2/models/{DEFAULT}/infer", json.dumps(v2_json(items(3))).encode()
    async with running_app(settings) as (app, client):
        (status, _), good = await asyncio.gather(
            call_asgi(app, path, path.encode(), body, disconnect_after_s=0.05),
            client.post("/predict", json=GOOD),
        )
        metrics = (await client.get("/metrics")).text
    assert status == 499
    check_good(good, expected_good)
    assert metric_value(metrics, "ood_requests_refused_total", reason="disconnected") == 1
    assert metric_value(metrics, "ood_batch_size_items_sum") == 2  # only the neighbour ran
    assert metric_value(metrics, "ood_queue_depth_items") == 0


@pytest.mark.parametrize("protocol", ["predict", "v2"])
async def test_stalled_body_gets_408(
    make_settings: Callable[..., Settings], expected_good: np.ndarray, protocol: str
) -> None:
    """A client that stops sending mid-body is answered 408 once ``body_timeout_s`` passes."""
    body = json.dumps(GOOD).encode()
    path = "/predict" if protocol == "predict" else f"/v2/models/{DEFAULT}/infer"
    async with running_app(make_settings(body_timeout_s=0.3)) as (app, client):
        (status, answer), good = await asyncio.gather(
            call_asgi(app, path, path.encode(), body, stall_after=10),
            client.post("/predict", json=GOOD),
        )
        metrics = (await client.get("/metrics")).text
        await still_serving(client, expected_good)
    assert status == 408
    error = json.loads(answer)["error"]
    if protocol == "v2":  # the protocol's own shape: one string
        assert isinstance(error, str) and "did not arrive" in error, error
    else:
        assert error["code"] == "body_timeout"
    check_good(good, expected_good)
    assert metric_value(metrics, "ood_http_requests_total", status="408") == 1


def chunked(payload: bytes) -> Iterator[bytes]:
    for start in range(0, len(payload), 1000):
        yield payload[start : start + 1000]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("protocol", ["predict", "v2"])
def test_body_over_the_size_limit_is_413(
    make_settings: Callable[..., Settings], protocol: str, framing: str
) -> None:
    """413 before parsing; the client re-raises any server exception (none may happen)."""
    payload = json.dumps({"inputs": items(3).tolist()} if protocol == "predict" else v2_json())
    path = "/predict" if protocol == "predict" else f"/v2/models/{DEFAULT}/infer"
    settings = make_settings(max_body_bytes=4096)
    with TestClient(create_app(settings), raise_server_exceptions=True) as client:
        content: bytes | Iterator[bytes] = payload.encode()
        if framing == "chunked":
            content = chunked(payload.encode())
        response = client.post(path, content=content, headers=JSON)
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        if protocol == "v2":  # the protocol's own shape: one string
            assert isinstance(error, str) and "exceeds" in error, error
        else:
            assert error["code"] == "payload_too_large"
        assert response.headers["connection"] == "close"
        small = client.post(
            "/predict", json={"inputs": [{"image": base64.b64encode(_PNG).decode()}]}
        )
        assert small.status_code == 200, small.text
        metrics = client.get("/metrics").text
    template = "/predict" if protocol == "predict" else "/v2/models/{name}/infer"
    assert metric_value(metrics, "ood_http_requests_total", route=template, status="413") == 1
    assert metric_value(metrics, "ood_requests_refused_total", reason="invalid") == 1


async def test_shutdown_readiness_goes_false_first_then_new_requests_get_503(
    app_client: tuple[FastAPI, httpx.AsyncClient], expected_good: np.ndarray
) -> None:
    app, client = app_client
    registry = app.state.ood.registry
    registry.begin_drain()  # first: not ready, but still serving
    assert (await client.get("/readyz")).status_code == 503
    assert (await client.get("/v2/health/ready")).status_code == 503
    assert (await client.get(f"/v2/models/{DEFAULT}/ready")).status_code == 503
    await still_serving(client, expected_good)
    registry.begin_stop()  # then: new requests are refused, cleanly
    refused = await client.post("/predict", json=GOOD)
    assert_service_error(refused, 503, "shutting_down")
    assert refused.headers["retry-after"] == "1"
    assert_v2_error(await client.post(f"/v2/models/{DEFAULT}/infer", json=v2_json()), 503)
    assert (await client.get("/healthz")).status_code == 200  # alive all along
