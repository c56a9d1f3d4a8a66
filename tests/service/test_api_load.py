"""Batching through HTTP: concurrency, overload (503), timeout (504), disconnects, shutdown."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest

from service.settings import Settings
from tests.service.conftest import items, metric_value, running_app, wait_until_queued

pytestmark = pytest.mark.anyio


async def test_concurrent_requests_are_batched_without_changing_results(
    make_settings: Callable[..., Settings],
) -> None:
    data = items(40, seed=11)
    bodies = [{"inputs": [item.tolist()], "top_k": 2} for item in data]

    async with running_app(make_settings(max_batch_size=1)) as (_, client):
        unbatched = [(await client.post("/predict", json=body)).json() for body in bodies]

    async with running_app(make_settings(max_batch_size=8, max_delay_ms=20)) as (_, client):
        responses = await asyncio.gather(*(client.post("/predict", json=b) for b in bodies))
        metrics = (await client.get("/metrics")).text

    batches = metric_value(metrics, "ood_batch_size_items_count")
    batched_items = metric_value(metrics, "ood_batch_size_items_sum")
    assert batched_items == 40
    assert batches < 40  # some batches held more than one item
    assert metric_value(metrics, "ood_batch_size_items_bucket", le="1.0") < batches
    for response, expected in zip(responses, unbatched, strict=True):
        assert response.status_code == 200
        got, want = response.json()["predictions"][0], expected["predictions"][0]
        assert got["class_index"] == want["class_index"]
        assert got["decision"] == want["decision"]
        for score, value in want["scores"].items():
            assert got["scores"][score] == pytest.approx(value, rel=0, abs=1e-5)
    assert metric_value(metrics, "ood_predictions_total") == 40
    assert metric_value(metrics, "ood_queue_wait_seconds_count") == 40


async def test_full_queue_answers_503_with_retry_after(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        max_batch_size=64,
        max_delay_ms=1000,
        max_queue_items=4,
        max_items_per_request=4,
        retry_after_s=2,
    )
    async with running_app(settings) as (app, client):
        first = asyncio.ensure_future(client.post("/predict", json={"inputs": items(3).tolist()}))
        await wait_until_queued(app, 3)
        refused = await client.post("/predict", json={"inputs": items(3).tolist()})
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "2"
        assert refused.json()["error"]["code"] == "overloaded"
        assert (await first).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert metric_value(metrics, "ood_requests_refused_total", model="tiny", reason="overload") == 1


async def test_request_timeout_answers_504_and_leaves_the_queue(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(max_batch_size=64, max_delay_ms=500, request_timeout_s=0.1)
    async with running_app(settings) as (_, client):
        response = await client.post("/predict", json={"inputs": items(2).tolist()})
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "timeout"
        await asyncio.sleep(0.5)
        metrics = (await client.get("/metrics")).text
    assert metric_value(metrics, "ood_requests_refused_total", reason="timeout") == 1
    assert metric_value(metrics, "ood_batch_size_items_count") == 0  # never ran
    assert metric_value(metrics, "ood_queue_depth_items") == 0


def _scope(body: bytes) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "root_path": "",
        "query_string": b"",
        "client": ("127.0.0.1", 1234),
        "server": ("test", 80),
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }


async def test_client_disconnect_while_queued_costs_no_inference(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(max_batch_size=64, max_delay_ms=300)
    body = json.dumps({"inputs": items(2).tolist()}).encode()
    sent: list[dict] = []
    async with running_app(settings) as (app, client):
        calls = 0

        async def receive() -> dict:
            nonlocal calls
            calls += 1
            if calls == 1:
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(0.05)  # the client goes away while the request is queued
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(_scope(body), receive, send)
        await asyncio.sleep(0.4)  # past the batching delay
        metrics = (await client.get("/metrics")).text
    assert sent[0]["status"] == 499
    assert metric_value(metrics, "ood_requests_refused_total", reason="disconnected") == 1
    assert metric_value(metrics, "ood_batch_size_items_count") == 0
    assert metric_value(metrics, "ood_queue_depth_items") == 0


async def test_shutdown_fails_queued_requests_with_503(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(max_batch_size=64, max_delay_ms=5000)
    from service.main import create_app

    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        async with app.router.lifespan_context(app):
            pending = asyncio.ensure_future(
                client.post("/predict", json={"inputs": items(1).tolist()})
            )
            await wait_until_queued(app, 1)
        response = await pending
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "shutting_down"
