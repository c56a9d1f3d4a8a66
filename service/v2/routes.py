"""Open Inference Protocol v2 (REST) endpoints, over the same registry and batchers as /predict.

* ``GET /v2``: server metadata (extensions: ``binary_tensor_data``).
* ``GET /v2/health/live``, ``GET /v2/health/ready``: status only, empty body (ready = 200, not
  ready = 503).
* ``GET /v2/models/{name}[/versions/{version}]``: model metadata; ``.../ready``: 200 or 503.
* ``POST /v2/models/{name}[/versions/{version}]/infer``: JSON or binary (Triton) tensors.

An infer request goes: body -> :func:`~service.v2.codec.parse_infer_request` -> the model's
:class:`~service.thresholds.ThresholdPolicy` (``score``, ``threshold``, ``target_tpr`` request
parameters, with the same override rules as /predict) -> :meth:`Predictor.infer` (the shared
batcher, deadline and queue errors) -> :mod:`service.scores` -> the outputs the request named.
The threshold in force is echoed in the response ``parameters``.

Every error is ``{"error": "<message>"}`` with the status the service core chose (400 bad
request, 403 override forbidden, 404 unknown model or version, 503 not ready or overloaded with
``Retry-After``, 504 timeout). A body over ``max_body_bytes`` (413) or too slow to arrive (408)
is refused by the app's body-limit middleware before this router runs, in the same shape.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from numpy.typing import NDArray

from service import errors
from service.disconnect import unless_disconnected
from service.registry import ServedModel
from service.scores import DIRECTIONS, ScoreName, accepts, compute_scores, softmax
from service.state import AppState, app_state
from service.thresholds import Threshold
from service.v2.codec import (
    BINARY_MEDIA_TYPE,
    HEADER_LENGTH_HEADER,
    JSON_MEDIA_TYPE,
    InputContract,
    ScalarParameter,
    encode_infer_response,
    parse_infer_request,
)
from service.v2.errors import V2Error
from service.v2.schemas import (
    ErrorResponse,
    InferenceResponse,
    ModelMetadata,
    ServerMetadata,
    model_metadata,
    server_metadata,
)

SERVER_NAME = "ood-scoring-service"

router = APIRouter(prefix="/v2", tags=["v2 (Open Inference Protocol)"])
State = Annotated[AppState, Depends(app_state)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "bad request: malformed body, wrong datatype or shape, bad parameter",
        408: "the body did not arrive within the body timeout",
        413: "body over the size limit",
        415: "Content-Type is neither JSON nor application/octet-stream",
        429: "queue full, when the server is configured to answer overload with 429",
        403: "a per-request score or threshold override is disabled on this server",
        404: "unknown model or version",
        500: "inference failed for the batch holding this request",
        503: "model not ready, queue full or shutting down (see Retry-After)",
        504: "not done within the request timeout",
    }.items()
}

_INFER_DOC: dict[str, Any] = {
    "responses": {200: {"model": InferenceResponse, "description": "JSON, or JSON + binary"}}
    | _ERRORS,
    "openapi_extra": {
        "requestBody": {
            "required": True,
            "description": "An inference request object (JSON), or with Triton's binary tensor "
            f"extension the JSON object ({HEADER_LENGTH_HEADER} bytes) followed by the raw "
            "little-endian tensor bytes.",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
}


# --- server ---------------------------------------------------------------------------------


@router.get("", response_model=ServerMetadata, summary="Server metadata")
async def get_server_metadata(request: Request) -> ServerMetadata:
    """Name, version and the protocol extensions this server implements."""
    return server_metadata(SERVER_NAME, request.app.version)


@router.get("/health/live", summary="Server live", responses={200: {"description": "live"}})
async def server_live() -> Response:
    """200 while the process answers."""
    return Response(status_code=200)


@router.get(
    "/health/ready",
    summary="Server ready",
    responses={200: {"description": "ready"}, 503: {"description": "not ready"}},
)
async def server_ready(state: State) -> Response:
    """200 when the default model is loaded and warmed up, 503 otherwise (loading, stopping)."""
    registry = state.registry
    return Response(status_code=200 if registry is not None and registry.ready else 503)


# --- models ---------------------------------------------------------------------------------


@router.get(
    "/models/{name}", response_model=ModelMetadata, responses=_ERRORS, summary="Model metadata"
)
async def get_model_metadata(state: State, name: str) -> Response:
    """Metadata of the model's latest version; ``versions`` lists every version served."""
    return _metadata(state, name, None)


@router.get(
    "/models/{name}/versions/{version}",
    response_model=ModelMetadata,
    responses=_ERRORS,
    summary="Model version metadata",
)
async def get_model_version_metadata(state: State, name: str, version: str) -> Response:
    """Metadata of one model version."""
    return _metadata(state, name, version)


@router.get("/models/{name}/ready", responses=_ERRORS, summary="Model ready")
async def model_ready(state: State, name: str) -> Response:
    """200 when the model's latest version is ready, 503 when not, 404 when unknown."""
    return _ready(state, name, None)


@router.get("/models/{name}/versions/{version}/ready", responses=_ERRORS, summary="Version ready")
async def model_version_ready(state: State, name: str, version: str) -> Response:
    """200 when the model version is ready, 503 when not, 404 when unknown."""
    return _ready(state, name, version)


@router.post("/models/{name}/infer", summary="Inference (latest version)", **_INFER_DOC)
async def infer(request: Request, name: str) -> Response:
    """Run the model's latest version; see the module docstring for parameters and outputs."""
    # The state comes from request.app rather than Depends: dependency resolution is a measurable
    # share of a single-item request's CPU (benchmarks/REPORT.md).
    return await _infer(request, request.app.state.ood, name, None)


@router.post(
    "/models/{name}/versions/{version}/infer", summary="Inference (one version)", **_INFER_DOC
)
async def infer_version(request: Request, name: str, version: str) -> Response:
    """Run one model version."""
    return await _infer(request, request.app.state.ood, name, version)


# --- implementation -------------------------------------------------------------------------


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        V2Error(status, message).body_bytes(),
        status_code=status,
        media_type=JSON_MEDIA_TYPE,
        headers=headers or None,
    )


#: Media types an infer body may declare; none at all is accepted too (tritonclient sends none).
_MEDIA_TYPES = frozenset({JSON_MEDIA_TYPE, BINARY_MEDIA_TYPE})


def _check_media_type(content_type: str | None) -> None:
    """415 unless the body is JSON, or Triton's binary extension (octet-stream), or unlabelled."""
    if content_type is None:
        return
    media_type = content_type.split(";")[0].strip().lower()
    if media_type and media_type not in _MEDIA_TYPES and not media_type.endswith("+json"):
        raise V2Error(415, f"Content-Type must be {JSON_MEDIA_TYPE} or {BINARY_MEDIA_TYPE}")


def _refused(state: AppState, model: str, exc: errors.ServiceError | V2Error) -> Response:
    """Count the refusal like the service's own handlers do, and answer in the v2 format."""
    if isinstance(exc, V2Error):
        if exc.status < 500:
            state.metrics.count_refused(model, "invalid")
        return _error(exc.status, exc.message)
    if exc.reason is not None:
        state.metrics.count_refused(model, exc.reason)
    status = 400 if exc.status == 422 else exc.status  # the protocol says 400 for bad requests
    return _error(status, exc.message, exc.headers)


def _find(state: AppState, name: str, version: str | None) -> ServedModel:
    """A loaded model version, ready or not; raises the registry's 404/503 service error."""
    registry = state.models()
    versions = registry.served.get(name, {})
    if version is None and versions:
        return versions[max(versions, key=int)]
    if version is not None and version in versions:
        return versions[version]
    registry.get(name, version)  # raises the right 404 (unknown) or 503 (failed to load)
    raise errors.model_not_found(f"model {name!r} is not served here")  # pragma: no cover


def _metadata(state: AppState, name: str, version: str | None) -> Response:
    try:
        served = _find(state, name, version)
    except errors.ServiceError as exc:
        return _refused(state, "-", exc)
    versions = sorted(state.models().served.get(name, {}), key=int)
    body = model_metadata(served.manifest, versions).model_dump_json()
    return Response(body, media_type=JSON_MEDIA_TYPE)


def _ready(state: AppState, name: str, version: str | None) -> Response:
    try:
        served = _find(state, name, version)
    except errors.ServiceError as exc:
        if exc.status == 503:
            return Response(status_code=503)
        return _refused(state, "-", exc)
    return Response(status_code=200 if served.ready and not state.models().draining else 503)


async def _infer(request: Request, state: AppState, name: str, version: str | None) -> Response:
    started = time.monotonic()
    settings = state.settings
    model = "-"
    try:
        served = state.models().get(name, version)
        model = served.name
        contract = InputContract.from_manifest(
            served.manifest, settings.max_items_per_request, settings.max_body_bytes
        )
        _check_media_type(request.headers.get("content-type"))
        parsed = parse_infer_request(await request.body(), request.headers, contract)
        threshold = served.policy.resolve(parsed.score, parsed.threshold, parsed.target_tpr)
        timeout_s = state.predictor.timeout_for(parsed.timeout_s)
        logits = await unless_disconnected(
            request.receive,
            state.predictor.infer(served, parsed.inputs, started + timeout_s, timeout_s),
        )
        tensors = _outputs(served, logits, threshold, parsed.output_names)
        encoded = encode_infer_response(
            parsed,
            tensors,
            model_name=served.name,
            model_version=served.version,
            parameters=_echo(threshold),
        )
    except (errors.ServiceError, V2Error) as exc:
        return _refused(state, model, exc)
    return Response(encoded.body, media_type=encoded.media_type, headers=encoded.headers)


def _outputs(
    served: ServedModel, logits: NDArray[np.float32], threshold: Threshold, names: tuple[str, ...]
) -> dict[str, Any]:
    """Only the requested outputs; scores always (they decide ``is_ood`` and feed the metrics)."""
    finite = np.isfinite(logits).all(axis=1)
    if not finite.all():
        index = int(np.flatnonzero(~finite)[0])
        raise V2Error(400, f"item {index}: the model produced non-finite logits")
    manifest = served.manifest
    scores = compute_scores(logits, manifest.calibration.energy_temperature)
    accepted = accepts(scores[threshold.score], threshold.value, threshold.score)
    served.metrics.scored(scores, accepted)
    tensors: dict[str, Any] = {
        "logits": logits,
        "msp": scores[ScoreName.MSP],
        "energy": scores[ScoreName.ENERGY],
        "max_logit": scores[ScoreName.MAX_LOGIT],
        "is_ood": ~accepted,
    }
    if "probabilities" in names:
        tensors["probabilities"] = softmax(logits)
    if "label" in names or "class_index" in names:
        indices = logits.argmax(axis=1)
        tensors["class_index"] = indices
        tensors["label"] = [manifest.classes[i] for i in indices.tolist()]
    return tensors


def _echo(threshold: Threshold) -> dict[str, ScalarParameter]:
    """The decision rule in force, as response ``parameters``."""
    params: dict[str, ScalarParameter] = {
        "score": threshold.score.value,
        "score_direction": DIRECTIONS[threshold.score].value,
        "threshold": threshold.value,
        "threshold_source": threshold.source,
    }
    if threshold.target_tpr is not None:
        params["target_tpr"] = threshold.target_tpr
    return params
