"""uvicorn's HTTP/1.1 protocol with a header read timeout (uvicorn has none).

Without it a client that opens a connection and sends its request line and headers a byte at a
time (slow-loris) holds the connection for ever; behind ``--limit-concurrency`` such connections
push real requests into 503s. With it, a connection that has not completed a request's headers
within ``header_timeout_s`` of its first byte (or of being opened) gets a bare 408 and is closed.
The body has its own deadline, in the app (:class:`service.middleware.BodyLimitMiddleware`).

Works on top of whichever protocol uvicorn would pick (httptools when installed, else h11): both
keep the current request/response cycle in ``self.cycle``, and a new cycle means a request's
headers are complete.
"""

from __future__ import annotations

import asyncio
from typing import Any

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 25\r\n"
    b"connection: close\r\n\r\nrequest headers too slow\n"
)


def _base_protocol() -> type[Any]:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency, h11 the fallback
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    return HttpToolsProtocol


def protocol_with_header_timeout(header_timeout_s: float) -> type[asyncio.Protocol]:
    """A uvicorn HTTP protocol class (``uvicorn.Config(http=...)``) with the header timeout."""
    base = _base_protocol()

    class HeaderTimeoutProtocol(base):  # type: ignore[misc, valid-type]
        """Closes connections whose request headers do not arrive in time."""

        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._arm_header_timer()

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            super().data_received(data)
            if self.cycle is not cycle:  # a new request's headers are complete
                self._cancel_header_timer()
            elif self._header_timer is None and (cycle is None or cycle.response_complete):
                self._arm_header_timer()  # the first bytes of the next request

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_timer()
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            loop = asyncio.get_running_loop()
            self._header_timer = loop.call_later(header_timeout_s, self._headers_too_slow)

        def _cancel_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete:
                return  # a request is being served after all
            if not self.transport.is_closing():
                self.transport.write(_TIMEOUT_RESPONSE)
                self.transport.close()

    return HeaderTimeoutProtocol
