"""All service settings in one place: environment variables ``OOD_*`` and an optional YAML file.

Precedence, highest first: arguments to ``Settings(...)`` (the CLI passes its flags this way),
environment variables, the YAML file named by ``OOD_CONFIG_FILE`` (or ``config_file=...``), then the
defaults below. Nested values in the environment are JSON, e.g.
``OOD_MODEL_THRESHOLDS='{"fashion-mnist-ce": {"target_tpr": 0.9}}'``.

Nothing here runs at import time: :func:`service.main.create_app` builds the settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from service.scores import ScoreName

ENV_PREFIX = "OOD_"
CONFIG_FILE_ENV = ENV_PREFIX + "CONFIG_FILE"


class ModelThresholds(BaseModel):
    """Per-model threshold choice; unset fields fall back to the global settings, then the manifest.

    ``threshold`` is an explicit cut-off for ``score`` (or the default score); ``target_tpr``
    derives every score's threshold from the manifest's calibration quantiles. Give at most one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    score: ScoreName | None = None
    threshold: float | None = Field(default=None, allow_inf_nan=False)
    target_tpr: float | None = Field(default=None, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _one_rule(self) -> ModelThresholds:
        if self.threshold is not None and self.target_tpr is not None:
            raise ValueError("give either threshold or target_tpr, not both")
        return self


class Settings(BaseSettings):
    """Service settings. Field names map to ``OOD_<NAME>`` environment variables."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    # --- where models come from
    config_file: Path | None = Field(default=None, description="optional YAML settings file")
    model_dir: Path = Field(default=Path("models"), description="holds <name>/<version>/")
    default_model: str = Field(default="fashion-mnist-logitnorm", description="served by /predict")
    skip_broken_models: bool = Field(
        default=False,
        description="serve the other models when one fails to load (it is reported not ready); "
        "by default any broken model stops start-up",
    )

    # --- HTTP server
    host: str = Field(default="127.0.0.1", description="bind address; 0.0.0.0 only on purpose")
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: str = Field(default="info", description="log level of the service and uvicorn")
    access_log: bool = Field(
        default=False,
        description="uvicorn's per-request access log; off by default because it costs CPU per "
        "request and ood_http_requests_total already counts every request by route and status",
    )
    graceful_shutdown_s: int = Field(
        default=10,
        ge=0,
        description="after SIGTERM, how long accepted requests may take to finish; requests "
        "still queued shortly before it runs out get 503 shutting_down",
    )
    shutdown_delay_s: float = Field(
        default=0.0,
        ge=0.0,
        le=300.0,
        description="after SIGTERM, stay up this long not ready (503 on /readyz) but serving, "
        "so load balancers stop sending before the server stops accepting",
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0.0,
        description="a connection must complete its request headers within this many seconds, "
        "else it is closed (408); applies to python -m service",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0.0,
        description="the whole request body must arrive within this many seconds after the "
        "headers, else 408 (slow clients cannot hold a request open)",
    )
    enable_docs: bool = Field(default=True, description="serve /docs, /redoc and /openapi.json")
    enable_metrics: bool = Field(default=True, description="serve /metrics")
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="serve /metrics on this port (of metrics_host) instead of the API port, to "
        "keep it off a public listener; unset = on the API port",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="bind address of the separate metrics listener"
    )

    # --- ONNX Runtime
    providers: list[str] = Field(
        default=["CUDAExecutionProvider", "CPUExecutionProvider"],
        description="execution providers in order of preference; unavailable ones are skipped",
    )
    intra_op_threads: int = Field(default=0, ge=0, description="0 = ONNX Runtime's default")
    inter_op_threads: int = Field(default=1, ge=0)
    ort_allow_spinning: bool = Field(
        default=False, description="let ORT threads busy-wait (steals CPU from the event loop)"
    )

    # --- dynamic batching
    max_batch_size: int = Field(default=64, ge=1, description="items per ONNX Runtime run")
    max_delay_ms: float = Field(
        default=2.0, ge=0.0, description="longest wait for a batch to fill after its first item"
    )
    max_queue_items: int = Field(
        default=1024, ge=1, description="queued items per model version; beyond it: overload"
    )
    overload_status: int = Field(
        default=503, description="status of an overload refusal, 503 or 429 (with Retry-After)"
    )
    request_timeout_s: float = Field(
        default=10.0, gt=0.0, description="beyond it: 504; a request may ask for less"
    )
    retry_after_s: int = Field(default=1, ge=0, description="Retry-After on 503/429 answers")

    # --- input limits
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_items_per_request: int = Field(default=256, ge=1)
    max_image_pixels: int = Field(default=4096 * 4096, ge=1, description="width * height cap")

    # --- thresholds
    default_score: ScoreName | None = Field(
        default=None, description="score used when a request names none; None = the manifest's"
    )
    target_tpr: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="derive every model's thresholds at this TPR; None = the manifest's thresholds",
    )
    model_thresholds: dict[str, ModelThresholds] = Field(
        default_factory=dict, description="per-model overrides of score, threshold or target_tpr"
    )
    allow_score_override: bool = Field(default=True, description="requests may pick the score")
    allow_threshold_override: bool = Field(
        default=True, description="requests may set threshold or target_tpr"
    )

    @field_validator("overload_status")
    @classmethod
    def _overload_status(cls, status: int) -> int:
        if status not in (503, 429):
            raise ValueError("overload_status must be 503 or 429")
        return status

    @model_validator(mode="after")
    def _limits_fit(self) -> Settings:
        if self.max_items_per_request > self.max_queue_items:
            raise ValueError("max_items_per_request must not exceed max_queue_items")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then environment, then the YAML file (if one is named), then defaults."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file(init_settings)
        if config_file is not None:
            if not config_file.is_file():
                raise FileNotFoundError(f"settings file {config_file} does not exist")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


def _config_file(init_settings: PydanticBaseSettingsSource) -> Path | None:
    """The YAML file named by ``config_file=...`` or ``OOD_CONFIG_FILE``."""
    init_kwargs: dict[str, Any] = getattr(init_settings, "init_kwargs", {})
    named = init_kwargs.get("config_file") or os.environ.get(CONFIG_FILE_ENV)
    return Path(named) if named else None
