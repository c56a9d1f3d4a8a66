"""Errors of the Open Inference Protocol (v2) endpoints.

The protocol answers every failure with a JSON object holding one string,
``{"error": "<message>"}``, and an HTTP status: 400 for a request the server cannot accept, 404
for an unknown model or version, 503 when the model is not ready or the server is overloaded.
This module is framework free; the routes turn a :class:`V2Error` into a response.
"""

from __future__ import annotations

import json

#: Messages are echoed to the client and written to logs: keep them bounded.
MAX_MESSAGE_CHARS = 1000


class V2Error(Exception):
    """A protocol error with the HTTP status it maps to and the message the client sees."""

    def __init__(self, status: int, message: str) -> None:
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 3] + "..."
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, str]:
        """The protocol's error object."""
        return {"error": self.message}

    def body_bytes(self) -> bytes:
        """The error object serialized as UTF-8 JSON."""
        return json.dumps(self.body()).encode()

    def __repr__(self) -> str:
        return f"V2Error({self.status}, {self.message!r})"


def bad_request(message: str) -> V2Error:
    """400: the request is malformed or asks for something this server does not do."""
    return V2Error(400, message)


def not_found(message: str) -> V2Error:
    """404: unknown model or model version."""
    return V2Error(404, message)


def unavailable(message: str) -> V2Error:
    """503: the model is not ready, or the server is shedding load."""
    return V2Error(503, message)
