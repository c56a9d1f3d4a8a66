"""``GET /metrics``: the app's Prometheus registry in the text exposition format.

Mounted only when ``enable_metrics`` is set; it exposes model names and traffic volumes, so an
operator may prefer to keep it off a public listener.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.state import AppState, app_state

router = APIRouter(tags=["metrics"])
State = Annotated[AppState, Depends(app_state)]


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: State) -> Response:
    """All ``ood_*`` metrics of this process."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
