"""``GET /models``, ``GET /models/{name}`` and ``GET /models/{name}/versions/{version}``.

Metadata from the manifests: classes, input and preprocessing, training, the thresholds in force
(after settings), calibration and evaluation figures; failed versions with the reason.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from service import errors
from service.registry import FailedModel, ModelRegistry, ServedModel
from service.schemas import ModelList, ModelPublic, ModelVersionPublic, ThresholdPublic
from service.scores import DIRECTIONS
from service.state import AppState, app_state

router = APIRouter(tags=["models"])
State = Annotated[AppState, Depends(app_state)]
_NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": errors.ServiceErrorResponse, "description": "unknown model or version"}
}


@router.get("/models", response_model=ModelList, summary="List served models")
async def list_models(state: State) -> ModelList:
    """Every model found, with its versions, readiness and thresholds in force."""
    registry = state.models()
    names = sorted(set(registry.served) | set(registry.failed))
    return ModelList(
        default_model=registry.default_model,
        models=[_model(registry, name) for name in names],
    )


@router.get(
    "/models/{name}", response_model=ModelPublic, responses=_NOT_FOUND, summary="Describe a model"
)
async def get_model(state: State, name: str) -> ModelPublic:
    """All versions of one model; ``latest_version`` serves requests that name none."""
    registry = state.models()
    if name not in registry.served and name not in registry.failed:
        raise errors.model_not_found(f"model {name!r} is not served here")
    return _model(registry, name)


@router.get(
    "/models/{name}/versions/{version}",
    response_model=ModelVersionPublic,
    responses=_NOT_FOUND,
    summary="Describe one model version",
)
async def get_model_version(state: State, name: str, version: str) -> ModelVersionPublic:
    """One version's metadata, thresholds in force, calibration and evaluation."""
    registry = state.models()
    served = registry.served.get(name, {}).get(version)
    if served is not None:
        return _served_version(served)
    failed = registry.failed.get(name, {}).get(version)
    if failed is not None:
        return _failed_version(failed)
    raise errors.model_not_found(f"model {name!r} version {version!r} is not served here")


def _model(registry: ModelRegistry, name: str) -> ModelPublic:
    served = registry.served.get(name, {})
    versions = [_served_version(s) for s in served.values()]
    versions += [_failed_version(f) for f in registry.failed.get(name, {}).values()]
    versions.sort(key=lambda v: int(v.version) if v.version.isdigit() else -1)
    return ModelPublic(
        name=name,
        default=name == registry.default_model,
        latest_version=max(served, key=int) if served else None,
        versions=versions,
    )


def _served_version(served: ServedModel) -> ModelVersionPublic:
    manifest = served.manifest
    calibration = manifest.calibration
    return ModelVersionPublic(
        name=manifest.name,
        version=manifest.version,
        ready=served.ready,
        provider=served.model.provider,
        description=manifest.description,
        created_at=manifest.created_at,
        classes=manifest.classes,
        input=manifest.input.model_dump(),
        preprocessing=manifest.preprocessing.model_dump(),
        training=manifest.training.model_dump(),
        default_score=served.policy.default_score,
        thresholds=[
            ThresholdPublic(
                score=t.score,
                direction=DIRECTIONS[t.score].value,
                threshold=t.value,
                source=t.source,
                target_tpr=t.target_tpr,
            )
            for t in served.policy.thresholds.values()
        ],
        calibration={
            "split": calibration.split,
            "num_samples": calibration.num_samples,
            "energy_temperature": calibration.energy_temperature,
            "default_score": calibration.default_score,
            "scores": {
                score.value: {
                    "direction": c.direction.value,
                    "target_tpr": c.target_tpr,
                    "threshold": c.threshold,
                }
                for score, c in calibration.scores.items()
            },
        },
        evaluation=manifest.metrics,
    )


def _failed_version(failed: FailedModel) -> ModelVersionPublic:
    return ModelVersionPublic(
        name=failed.name, version=failed.version, ready=False, error=failed.reason
    )
