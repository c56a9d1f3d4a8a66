"""Pure ASGI middleware: a request body byte limit and read deadline, and the HTTP metrics.

Uvicorn has no body limit and no body read timeout, so :class:`BodyLimitMiddleware` watches the
body as it arrives:

* a ``Content-Length`` over the limit is refused (413) when the handler first asks for the body,
  before a byte is read; a chunked body is cut off (413) as soon as the count passes the limit;
* the whole body must arrive within ``body_timeout_s`` of the request reaching the app, else 408:
  a slow-loris client that trickles its body cannot hold a request (and a worker's attention)
  open. Once the body is complete, later ``receive`` calls (disconnect watching) are not timed.

Whatever the app then answers is dropped and the refusal (with ``Connection: close``) is sent
instead, so the answer does not depend on how a handler reacts to the interrupted body.

:class:`HttpMetricsMiddleware` is outermost: it sees every answer, 413s and 408s included, and
labels it with the route template (``/models/{name}/predict``), never the raw path.
"""

from __future__ import annotations

import asyncio
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import errors
from service.metrics import Metrics


class BodyRefused(HTTPException):
    """Raised from ``receive`` when the body is over the limit or late.

    An ``HTTPException`` so that FastAPI's body parsing re-raises it as it is; the middleware
    answers it (the app's own answer is dropped).
    """

    def __init__(self, error: errors.ServiceError) -> None:
        super().__init__(error.status, error.message)
        self.error = error


class BodyLimitMiddleware:
    """413 for bodies over ``max_body_bytes``, 408 for bodies not complete within the timeout."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        on_refused: errors.RefusedHook,
        body_timeout_s: float = 30.0,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.on_refused = on_refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0
        body_done = False
        started = False
        refusal: errors.ServiceError | None = None
        declared = _declared_length(scope)
        deadline = time.monotonic() + self.body_timeout_s

        def refuse(error: errors.ServiceError) -> BodyRefused:
            nonlocal refusal
            refusal = error
            return BodyRefused(error)

        async def guarded_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()
            if refusal is not None:  # the handler asks again after a refusal: nothing more comes
                raise BodyRefused(refusal)
            if declared > self.max_body_bytes:  # refused before a byte is read
                raise refuse(self._too_large())
            try:
                async with asyncio.timeout(deadline - time.monotonic()):
                    message = await receive()
            except TimeoutError:
                raise refuse(errors.body_timeout(self.body_timeout_s)) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise refuse(self._too_large())
                body_done = not message.get("more_body", False)
            else:  # http.disconnect: no body will follow
                body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refusal is not None and not started:
                return  # the app answered the interrupted body its own way; the refusal replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if refusal is None or started:
                raise
        if refusal is not None and not started:
            await self._refuse(refusal, scope.get("path", ""), send)

    def _too_large(self) -> errors.ServiceError:
        return errors.payload_too_large(f"request body exceeds {self.max_body_bytes} bytes")

    async def _refuse(self, error: errors.ServiceError, path: str, send: Send) -> None:
        if error.reason is not None:
            self.on_refused("-", error.reason)
        response = errors.error_response(error, path)
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
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            labels = (route, method, str(status))
            self.metrics.http_requests.labels(*labels).inc()
            self.metrics.http_duration.labels(*labels).observe(time.monotonic() - start)


#: method label values; anything else is ``OTHER`` (a client may send any token as a method)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route_template(scope: Scope) -> str:
    """The matched route's path template, or ``unmatched`` (404s: raw paths are unbounded)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
