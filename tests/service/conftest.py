"""Shared fixtures: tiny model repositories (built once per session) and apps made from settings."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
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
from tests.model_factory import build_model_dir

DEFAULT = "tiny"


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny`` versions 1 and 2 (28x28 grayscale) and ``tiny-rgb`` version 1 (3x16x16 RGB)."""
    root = tmp_path_factory.mktemp("models")
    build_model_dir(root, name=DEFAULT, version="1", seed=0)
    build_model_dir(root, name=DEFAULT, version="2", seed=1)
    build_model_dir(root, name="tiny-rgb", version="1", seed=2, input_shape=(3, 16, 16))
    return root


@pytest.fixture
def make_settings(model_root: Path) -> Callable[..., Settings]:
    """Settings for the session's models, small limits so tests stay quick; overrides allowed."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "model_dir": model_root,
            "default_model": DEFAULT,
            "providers": ["CPUExecutionProvider"],
            "intra_op_threads": 1,
            "max_batch_size": 8,
            "max_delay_ms": 2.0,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def make_client(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """Start an app (lifespan included) with setting overrides; stopped at teardown."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(create_app(make_settings(**overrides)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app with its lifespan running and an async client on it (for concurrency tests)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app, client


def items(count: int, shape: tuple[int, ...] = (1, 28, 28), seed: int = 5) -> np.ndarray:
    """Random preprocessed items."""
    return np.random.default_rng(seed).normal(0.0, 1.0, (count, *shape)).astype(np.float32)


def png_b64(pixels: np.ndarray, fmt: str = "PNG") -> str:
    """A uint8 array (H, W) grayscale or (H, W, 3) RGB encoded as a base64 image."""
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode()


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` in a /metrics text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, _, value = line.rpartition(" ")
        metric, _, label_text = sample.partition("{")
        if metric != name:
            continue
        if all(f'{key}="{val}"' in label_text for key, val in labels.items()):
            total += float(value)
    return total


async def wait_until_queued(app: FastAPI, count: int, timeout_s: float = 5.0) -> None:
    """Poll until the default model's batcher holds ``count`` queued items."""
    import asyncio

    batcher = app.state.ood.registry.get(None).batcher
    for _ in range(int(timeout_s / 0.01)):
        if batcher.queued_items >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} items never queued (have {batcher.queued_items})")
