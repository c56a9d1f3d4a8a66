"""The app factory: ``create_app(settings)`` builds one FastAPI app with its own metrics registry.

Nothing is built at import time. The lifespan loads, checks and warms up every model (in a worker
thread), then starts one batcher per model version; if a model is broken, start-up fails with a
clear log line and the process exits non-zero (unless ``skip_broken_models``). On shutdown the
app turns not ready, fails still-queued requests with 503 and lets running batches finish.

Run it with ``python -m service`` (one worker process per container; scale with replicas, since
batching happens per process) or ``uvicorn --factory service.main:create_app``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import CollectorRegistry, start_http_server

from service import errors
from service.metrics import Metrics
from service.middleware import BodyLimitMiddleware, HttpMetricsMiddleware
from service.predictor import Predictor
from service.registry import load_models
from service.routes import health, models, predict
from service.routes import metrics as metrics_route
from service.schemas import PredictRequest
from service.settings import Settings
from service.state import AppState
from service.v2 import routes as v2_routes

logger = logging.getLogger(__name__)

DESCRIPTION = """
Classifies images and flags out-of-distribution inputs with a calibrated score threshold.

**Scores.** `msp` (max softmax probability) and `max_logit`: higher = in-distribution.
`energy` (`-T logsumexp(logits/T)`): lower = in-distribution. An item is accepted when its score
is on the in-distribution side of the threshold, inclusive; otherwise `ood` is true and
`decision` is `reject`.

**Errors** all have the body `{"error": {"code": "...", "message": "...", "item": 3}}`;
`item` is the index in `inputs` of the item at fault (or null).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new app; settings default to the environment (``OOD_*``) and ``OOD_CONFIG_FILE``."""
    settings = settings if settings is not None else Settings()
    metrics = Metrics(CollectorRegistry(auto_describe=True), settings.max_batch_size)
    state = AppState(
        settings=settings,
        metrics=metrics,
        predictor=Predictor(
            max_items_per_request=settings.max_items_per_request,
            max_image_pixels=settings.max_image_pixels,
            request_timeout_s=settings.request_timeout_s,
            retry_after_s=settings.retry_after_s,
            overload_status=settings.overload_status,
        ),
    )
    docs = settings.enable_docs
    app = FastAPI(
        title="OOD scoring service",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=_lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.ood = state
    errors.install_error_handlers(app, metrics.count_refused)
    # The two inference routers first: routes are matched in order, per request.
    app.include_router(predict.router)
    app.include_router(v2_routes.router)
    app.include_router(health.router)
    app.include_router(models.router)
    if settings.enable_metrics and settings.metrics_port is None:
        app.include_router(metrics_route.router)
    # added last = outermost: metrics see every answer, the body guard's 413s and 408s included
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
        on_refused=metrics.count_refused,
    )
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: AppState = app.state.ood
    settings = state.settings
    try:
        registry = await asyncio.to_thread(load_models, settings, state.metrics)
    except Exception as exc:
        logger.error("start-up failed, not serving: %s", exc)
        raise
    registry.start(settings)
    state.registry = registry
    for failed in registry.all_failed():
        logger.warning(
            "serving without %s version %s (not ready): %s",
            failed.name,
            failed.version,
            failed.reason,
        )
    logger.info(
        "ready: %s",
        ", ".join(f"{s.name}/{s.version} on {s.model.provider}" for s in registry.all_served()),
    )
    with _metrics_listener(state):
        try:
            yield
        finally:
            logger.info("shutting down: failing queued requests, finishing running batches")
            await registry.stop()


@contextmanager
def _metrics_listener(state: AppState) -> Iterator[None]:
    """With ``metrics_port`` set, /metrics on its own listener (a thread) for the app's life.

    prometheus-client's own HTTP server: scrapes then never queue behind inference requests on
    the event loop, and the API port need not expose traffic figures at all.
    """
    settings = state.settings
    if not settings.enable_metrics or settings.metrics_port is None:
        yield
        return
    server, thread = start_http_server(
        settings.metrics_port, settings.metrics_host, registry=state.metrics.registry
    )
    state.metrics_address = (settings.metrics_host, server.server_port)
    logger.info("metrics on http://%s:%d/metrics", settings.metrics_host, server.server_port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        state.metrics_address = None


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the predict body schema the routes refer to by ``$ref``."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        body = PredictRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(body.pop("$defs", {}))
        components["PredictRequest"] = body
        app.openapi_schema = schema
    return app.openapi_schema
