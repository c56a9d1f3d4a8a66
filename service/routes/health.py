"""Probes: ``GET /healthz`` (the process is alive) and ``GET /readyz`` (it can serve).

Readiness turns true only after start-up loaded, checked and warmed up the models, and turns
false again when shutdown begins, so a load balancer stops sending before queues are failed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from service.state import AppState, app_state

router = APIRouter(tags=["health"])
State = Annotated[AppState, Depends(app_state)]


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """Always ``{"status": "ok"}`` while the event loop answers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    responses={503: {"description": "not ready: loading, failed or shutting down"}},
)
async def readyz(state: State) -> JSONResponse:
    """200 when the default model is warmed up and serving; 503 otherwise."""
    registry = state.registry
    ready = registry is not None and registry.ready
    models: dict[str, Any] = {}
    if registry is not None:
        for served in registry.all_served():
            models.setdefault(served.name, {})[served.version] = served.ready
        for failed in registry.all_failed():
            models.setdefault(failed.name, {})[failed.version] = False
    body = {"status": "ready" if ready else "not_ready", "models": models}
    return JSONResponse(body, status_code=200 if ready else 503)
