"""What one app instance holds: built by :func:`service.main.create_app`, filled by its lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from service import errors
from service.metrics import Metrics
from service.predictor import Predictor
from service.registry import ModelRegistry
from service.settings import Settings


@dataclass
class AppState:
    """Settings, metrics and (after start-up) the loaded models of one app."""

    settings: Settings
    metrics: Metrics
    predictor: Predictor
    registry: ModelRegistry | None = None
    #: the separate /metrics listener's (host, port) while it runs (``metrics_port`` set)
    metrics_address: tuple[str, int] | None = None

    def models(self) -> ModelRegistry:
        """The registry, or a 503 while models are still loading."""
        if self.registry is None:
            raise errors.model_not_ready("models are still loading", self.settings.retry_after_s)
        return self.registry


async def app_state(request: Request) -> AppState:
    """The state of the app serving ``request`` (a FastAPI dependency).

    ``async`` on purpose: FastAPI runs plain ``def`` dependencies in a worker thread, a thread hop
    per request on the hot path.
    """
    state: AppState = request.app.state.ood
    return state
