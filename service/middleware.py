"""Pure ASGI middleware: a request body byte limit and the HTTP request metrics.

Uvicorn has no body limit, so :class:`BodyLimitMiddleware` counts bytes as they arrive: a
``Content-Length`` over the limit is refused when the handler first asks for the body (before a
byte is read), and a chunked body is cut off as soon as the count passes it. Whatever else the
app then tries to answer is replaced by the 413, so the answer does not depend on how a handler
reacts to the interrupted body.

:class:`HttpMetricsMiddleware` is outermost: it sees every answer, 413s included, and labels it with
the route template (``/models/{name}/predict``), never the raw path.
"""

from __future__ import annotations

import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import errors
from service.metrics import Metrics


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once the body passes the limit.

    An ``HTTPException`` so that FastAPI's body parsing re-raises it as it is and the error
    handlers answer it in the service's format.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes")


class BodyLimitMiddleware:
    """413 for request bodies over ``max_body_bytes``, counted as they arrive."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, on_refused: errors.RefusedHook) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False
        declared = _declared_length(scope)

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if declared > self.max_body_bytes:  # refused before a byte is read
                exceeded = True
                raise BodyTooLarge(self.max_body_bytes)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    exceeded = True
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                if exceeded and message["status"] != 413:
                    return  # a handler answered the cut-off body otherwise: the 413 replaces it
                started = True
            elif not started:
                return
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        error = errors.payload_too_large(f"request body exceeds {self.max_body_bytes} bytes")
        self.on_refused("-", "invalid")
        response = errors.error_response(error)
        response.headers["Connection"] = "close"
        await response({"type": "http"}, _no_receive, send)


def _declared_length(scope: Scope) -> int:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def _no_receive() -> Message:  # pragma: no cover - a plain response never reads
    return {"type": "http.disconnect"}


class HttpMetricsMiddleware:
    """``ood_http_requests_total`` and ``ood_http_request_duration_seconds`` per route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = _route_template(scope)
            labels = (route, scope["method"], str(status))
            self.metrics.http_requests.labels(*labels).inc()
            self.metrics.http_duration.labels(*labels).observe(time.monotonic() - start)


def _route_template(scope: Scope) -> str:
    """The matched route's path template, or ``unmatched`` (404s: raw paths are unbounded)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
