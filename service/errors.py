"""Errors the service answers with, and the handlers that turn them into JSON bodies.

Every failure of the service's own endpoints has the same body, so a client can branch on ``code``
without parsing prose::

    {"error": {"code": "invalid_input", "message": "item 3: contains NaN or infinity", "item": 3}}

``item`` is the index in ``inputs`` of the item at fault, or null when the whole request is at
fault. ``details`` (a list of ``{"loc", "type", "msg"}``, at most :data:`MAX_DETAILS`) appears for
request-schema errors. Bodies never echo the request's input back: FastAPI's default 422 handler
does, which leaks payloads into logs and crashes into a 500 when the input holds NaN.

Each :class:`ServiceError` also says why a request was refused, for
``ood_requests_refused_total{reason}``; the handler counts it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

#: Messages and detail lists are bounded: an error body must stay small whatever the input was.
MAX_MESSAGE_CHARS = 500
MAX_DETAILS = 10

RefusalReason = Literal["overload", "timeout", "invalid", "disconnected", "shutdown", "not_ready"]

#: Callback counting refusals: ``hook(model_label, reason)``; the model label is ``-`` when unknown.
RefusedHook = Callable[[str, RefusalReason], None]


@dataclass
class ServiceError(Exception):
    """A failure with its HTTP status, machine-readable code and (optionally) the item at fault."""

    status: int
    code: str
    message: str
    item: int | None = None
    reason: RefusalReason | None = None
    headers: dict[str, str] = field(default_factory=dict)
    details: list[dict[str, Any]] | None = None
    #: metric label of the model the request was for, once it is resolved (never raw input)
    model: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)
        self.message = _cap(self.message)

    def body(self) -> dict[str, Any]:
        """The JSON body described in the module docstring."""
        error: dict[str, Any] = {"code": self.code, "message": self.message, "item": self.item}
        if self.details:
            error["details"] = self.details[:MAX_DETAILS]
        return {"error": error}


class ErrorDetail(BaseModel):
    """The error object (documentation schema)."""

    code: str = Field(examples=["invalid_input"], description="machine-readable error code")
    message: str = Field(examples=["item 3: contains NaN or infinity"])
    item: int | None = Field(default=None, description="index in `inputs` of the item at fault")
    details: list[dict[str, Any]] | None = Field(
        default=None, description="request-schema errors: loc, type, msg (at most 10)"
    )


class ServiceErrorResponse(BaseModel):
    """Body of every error answer of this service's endpoints."""

    error: ErrorDetail


def _cap(message: str) -> str:
    return (
        message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 3] + "..."
    )


# --- constructors: one per code, so status, code and refusal reason stay consistent ------------


def invalid_input(
    message: str, item: int | None = None, code: str = "invalid_input"
) -> ServiceError:
    """422: the request is well-formed JSON but an item or option is unusable."""
    return ServiceError(422, code, message, item=item, reason="invalid")


def malformed_json(message: str) -> ServiceError:
    """400: the body is not JSON."""
    return ServiceError(400, "malformed_json", message, reason="invalid")


def unsupported_media_type() -> ServiceError:
    """415: only ``application/json`` bodies are read (also keeps browsers' simple forms out)."""
    return ServiceError(
        415, "unsupported_media_type", "Content-Type must be application/json", reason="invalid"
    )


def payload_too_large(
    message: str, code: str = "payload_too_large", item: int | None = None
) -> ServiceError:
    """413: the body, the number of items or an image exceeds a configured limit."""
    return ServiceError(413, code, message, item=item, reason="invalid")


def override_not_allowed(option: str) -> ServiceError:
    """403: the settings forbid per-request overrides of this option."""
    return ServiceError(
        403,
        "override_not_allowed",
        f"per-request '{option}' is disabled on this server",
        reason="invalid",
    )


def model_not_found(message: str) -> ServiceError:
    """404: no such model or version (the name is not echoed into metrics)."""
    return ServiceError(404, "model_not_found", message, reason="invalid")


def model_not_ready(message: str, retry_after_s: int) -> ServiceError:
    """503: the model exists but failed to load or is not warmed up yet."""
    return ServiceError(
        503,
        "model_not_ready",
        message,
        reason="not_ready",
        headers={"Retry-After": str(retry_after_s)},
    )


def overloaded(retry_after_s: int, status: int = 503) -> ServiceError:
    """503 (or 429, see ``overload_status``) + Retry-After: the model's queue is full."""
    return ServiceError(
        status,
        "overloaded",
        "the model's queue is full, retry later",
        reason="overload",
        headers={"Retry-After": str(retry_after_s)},
    )


def shutting_down(retry_after_s: int) -> ServiceError:
    """503: the server is stopping; queued requests are failed rather than dropped."""
    return ServiceError(
        503,
        "shutting_down",
        "the server is shutting down",
        reason="shutdown",
        headers={"Retry-After": str(retry_after_s)},
    )


def timed_out(timeout_s: float) -> ServiceError:
    """504: the request did not finish within the per-request timeout."""
    return ServiceError(
        504, "timeout", f"the request did not complete within {timeout_s:g} s", reason="timeout"
    )


def body_timeout(timeout_s: float) -> ServiceError:
    """408: the request body did not arrive in time (a slow or stalled client)."""
    return ServiceError(
        408,
        "body_timeout",
        f"the request body did not arrive within {timeout_s:g} s",
        reason="invalid",
        headers={"Connection": "close"},
    )


def client_disconnected() -> ServiceError:
    """499 (nginx's convention): the client went away; nobody reads this body."""
    return ServiceError(499, "client_disconnected", "client disconnected", reason="disconnected")


def inference_failed() -> ServiceError:
    """500: ONNX Runtime failed on a batch; only the requests in that batch see this."""
    return ServiceError(
        500, "inference_failed", "inference failed for the batch holding this request"
    )


# --- request-schema errors ---------------------------------------------------------------------


def summarize_validation_errors(errors: Sequence[Mapping[str, Any]]) -> ServiceError:
    """A 422 for pydantic/FastAPI validation errors: location, type, message, never the input.

    The first error that points into ``inputs[i]`` names the item.
    """
    details = [
        {
            "loc": [part for part in error.get("loc", ()) if isinstance(part, (str, int))][:8],
            "type": str(error.get("type", "")),
            "msg": _cap(str(error.get("msg", "")))[:200],
        }
        for error in errors[:MAX_DETAILS]
    ]
    item = _item_index(details)
    if details and details[0]["type"] == "json_invalid":
        return ServiceError(
            400, "malformed_json", "the body is not valid JSON", reason="invalid", details=details
        )
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"]) or "body"
    message = f"{where}: {first['msg']}"
    if item is not None:
        message = f'item {item}: not a nested array of numbers nor an {{"image": ...}} object'
    return ServiceError(
        422, "invalid_request", message, item=item, reason="invalid", details=details
    )


def _item_index(details: Iterable[Mapping[str, Any]]) -> int | None:
    for detail in details:
        loc = [part for part in detail["loc"] if part != "body"]
        if len(loc) >= 2 and loc[0] == "inputs" and isinstance(loc[1], int):
            return loc[1]
    return None


# --- handlers ----------------------------------------------------------------------------------


#: Paths of the Open Inference Protocol, whose clients expect ``{"error": "<message>"}``.
V2_PREFIX = "/v2"


def error_response(error: ServiceError, path: str = "") -> JSONResponse:
    """The JSON response for a service error, in the protocol of the path it answers.

    Under ``/v2`` the body is the Open Inference Protocol's ``{"error": "<message>"}`` (Triton's
    client reads that string; an object there breaks it), so framework answers (404 for an
    unknown route, 405, 413, 408) look like the v2 routes' own errors.
    """
    body: dict[str, Any] = error.body()
    if path == V2_PREFIX or path.startswith(V2_PREFIX + "/"):
        body = {"error": error.message}
    return JSONResponse(body, status_code=error.status, headers=error.headers or None)


def install_error_handlers(app: FastAPI, on_refused: RefusedHook | None = None) -> None:
    """Route every failure through :class:`ServiceError` so all error bodies look alike."""

    def refuse(request: Request, error: ServiceError) -> JSONResponse:
        if on_refused is not None and error.reason is not None:
            on_refused(error.model or "-", error.reason)
        return error_response(error, request.scope.get("path", ""))

    async def service_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return refuse(request, exc)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return refuse(request, summarize_validation_errors(exc.errors()))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        error = ServiceError(
            exc.status_code,
            codes.get(exc.status_code, "http_error"),
            str(exc.detail),
            headers=dict(exc.headers or {}),
        )
        return refuse(request, error)

    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        error = ServiceError(500, "internal_error", "internal server error")
        return error_response(error, request.scope.get("path", ""))

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unhandled)
