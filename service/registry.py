"""The models this process serves: loaded at start-up, looked up by name and version per request.

:func:`load_models` validates every ``<name>/<version>/`` (see :mod:`service.repository`), makes
its ONNX Runtime session, checks the golden sample and warms it up; :meth:`ModelRegistry.start`
then gives each version a batcher with its own single worker thread. A version that fails to
load stops start-up, unless ``skip_broken_models`` is set: then it is listed as not ready, and
requests for it get 503.

``registry.get(name, version)`` is the lookup every protocol's routes use; ``version=None`` means
the latest (highest) version that loaded.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from service import errors
from service.batcher import DynamicBatcher
from service.manifest import MODEL_NAME_PATTERN, MODEL_VERSION_PATTERN, Manifest
from service.metrics import Metrics, ModelMetrics
from service.repository import ModelLoadError, discover, load_artifact
from service.runtime import OnnxModel, RuntimeOptions
from service.settings import Settings
from service.thresholds import ThresholdPolicy

logger = logging.getLogger(__name__)

_NAME = re.compile(MODEL_NAME_PATTERN)
_VERSION = re.compile(MODEL_VERSION_PATTERN)


@dataclass
class ServedModel:
    """One loaded model version with everything a request needs."""

    manifest: Manifest
    directory: Path
    model: OnnxModel
    policy: ThresholdPolicy
    metrics: ModelMetrics
    batcher: DynamicBatcher | None = None
    ready: bool = False

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version


@dataclass(frozen=True)
class FailedModel:
    """A model version that could not be loaded, kept to report it."""

    name: str
    version: str
    reason: str


@dataclass
class ModelRegistry:
    """Served and failed model versions, keyed by name then version."""

    default_model: str
    retry_after_s: int = 1
    served: dict[str, dict[str, ServedModel]] = field(default_factory=dict)
    failed: dict[str, dict[str, FailedModel]] = field(default_factory=dict)
    #: shutdown began: not ready any more (probes answer 503), requests are still served
    draining: bool = False
    #: the server stops: new requests get 503 shutting_down, accepted ones are finished
    stopping: bool = False
    _executors: list[ThreadPoolExecutor] = field(default_factory=list)

    def get(self, name: str | None, version: str | None = None) -> ServedModel:
        """The model version serving a request; raises a 404 or 503 :class:`ServiceError`.

        ``name=None`` means the default model, ``version=None`` its latest loaded version. Names
        are only compared with loaded ones (never used to build a path or a metric label).
        """
        if self.stopping:
            raise errors.shutting_down(self.retry_after_s)
        name = self.default_model if name is None else name
        if not _NAME.fullmatch(name) or (version is not None and not _VERSION.fullmatch(version)):
            raise errors.model_not_found("no such model or version")
        versions = self.served.get(name, {})
        if version is None:
            if not versions:
                return self._missing(name, None)
            served = versions[max(versions, key=int)]
        elif version in versions:
            served = versions[version]
        else:
            return self._missing(name, version)
        if not served.ready:
            raise errors.model_not_ready(
                f"model {name} version {served.version} is not ready", self.retry_after_s
            )
        return served

    def _missing(self, name: str, version: str | None) -> ServedModel:
        failed = self.failed.get(name, {})
        if failed and (version is None or version in failed):
            raise errors.model_not_ready(f"model {name} failed to load", self.retry_after_s)
        what = f"model {name!r}" if version is None else f"model {name!r} version {version!r}"
        raise errors.model_not_found(f"{what} is not served here")

    def all_served(self) -> Iterator[ServedModel]:
        """Every loaded version, sorted by name then version."""
        for name in sorted(self.served):
            for version in sorted(self.served[name], key=int):
                yield self.served[name][version]

    def all_failed(self) -> Iterator[FailedModel]:
        for name in sorted(self.failed):
            yield from self.failed[name].values()

    @property
    def ready(self) -> bool:
        """Ready: the default model's latest version is warmed up, and shutdown has not begun."""
        versions = self.served.get(self.default_model, {})
        return not self.draining and bool(versions) and versions[max(versions, key=int)].ready

    def start(self, settings: Settings) -> None:
        """Give each loaded version its batcher (on the running loop) and mark it ready."""
        for served in self.all_served():
            executor = ThreadPoolExecutor(
                1, thread_name_prefix=f"ort-{served.name}-{served.version}"
            )
            self._executors.append(executor)
            served.batcher = DynamicBatcher(
                run=served.model.run,
                executor=executor,
                max_batch_size=settings.max_batch_size,
                max_delay_s=settings.max_delay_ms / 1000.0,
                max_queue_items=settings.max_queue_items,
                observer=served.metrics,
                name=f"{served.name}/{served.version}",
                item_shape=served.manifest.input.shape,
            )
            served.batcher.start()
            served.ready = True
            served.metrics.ready.set(1)

    def begin_drain(self) -> None:
        """Shutdown began: report not ready (probes, ``ood_model_ready``) but go on serving."""
        self.draining = True
        for served in self.all_served():
            served.metrics.ready.set(0)

    def begin_stop(self) -> None:
        """Refuse new requests (503 ``shutting_down``); the accepted ones go on to their answer."""
        self.begin_drain()
        self.stopping = True

    async def fail_queued(self) -> None:
        """Fail every request still queued with 503 ``shutting_down``; running batches finish.

        Called shortly before the server's graceful-shutdown time runs out: what uvicorn cancels
        then would otherwise become a 500.
        """
        self.begin_stop()
        for served in self.all_served():
            if served.batcher is not None:
                await served.batcher.close()

    async def stop(self) -> None:
        """Not ready any more; fail queued requests (503), finish running batches, free threads."""
        for served in self.all_served():
            served.ready = False
            served.metrics.ready.set(0)
        for served in self.all_served():
            if served.batcher is not None:
                await served.batcher.close()
        for executor in self._executors:
            executor.shutdown(wait=True)


def load_models(settings: Settings, metrics: Metrics) -> ModelRegistry:
    """Load and warm up every model version under ``settings.model_dir`` (blocking).

    Raises :class:`ModelLoadError` for the first broken version unless ``skip_broken_models``;
    raises ``RuntimeError`` when the default model is not among the loaded ones.
    """
    registry = ModelRegistry(settings.default_model, settings.retry_after_s)
    options = RuntimeOptions(
        providers=tuple(settings.providers),
        intra_op_threads=settings.intra_op_threads,
        inter_op_threads=settings.inter_op_threads,
        allow_spinning=settings.ort_allow_spinning,
    )
    for location in discover(settings.model_dir):
        try:
            artifact = load_artifact(location)
            model = OnnxModel.create(artifact, options, warmup_batch=settings.max_batch_size)
        except ModelLoadError as exc:
            logger.error("cannot load %s", exc)
            if not settings.skip_broken_models:
                raise
            registry.failed.setdefault(exc.name, {})[exc.version] = FailedModel(
                exc.name, exc.version, exc.reason
            )
            if _NAME.fullmatch(exc.name) and _VERSION.fullmatch(exc.version):
                metrics.model_ready.labels(exc.name, exc.version).set(0)
            continue
        manifest = artifact.manifest
        bound = metrics.for_model(manifest.name, manifest.version)
        bound.ready.set(0)
        tau = manifest.training.tau
        metrics.model_info.labels(
            manifest.name,
            manifest.version,
            manifest.training.loss,
            "" if tau is None else f"{tau:g}",
            model.provider,
        ).set(1)
        policy = ThresholdPolicy.from_settings(manifest, settings)
        expected = expected_reject_ratio(policy)
        if expected is not None:
            metrics.expected_reject.labels(manifest.name, manifest.version).set(expected)
        registry.served.setdefault(manifest.name, {})[manifest.version] = ServedModel(
            manifest=manifest,
            directory=location.directory,
            model=model,
            policy=policy,
            metrics=bound,
        )
    if settings.default_model not in registry.served:
        raise RuntimeError(
            f"default model {settings.default_model!r} is not loaded from {settings.model_dir} "
            f"(loaded: {sorted(registry.served) or 'none'})"
        )
    return registry


def expected_reject_ratio(policy: ThresholdPolicy) -> float | None:
    """Share of in-distribution inputs the default threshold rejects: ``1 - TPR``.

    Exported as ``ood_expected_reject_ratio`` so that the OOD-rate alerts can scale their levels
    with the threshold actually in force (``OOD_TARGET_TPR``, per-model ``target_tpr`` or the
    manifest's calibrated TPR). ``None`` for an explicit per-model ``threshold``: its TPR is not
    known here (no inverse of the calibration quantiles in :mod:`service.scores`), the gauge is
    left absent and the alerts fall back to their absolute levels. Per-request overrides are not
    reflected: this is the expectation for requests that take the defaults.
    """
    tpr = policy.resolve().target_tpr
    # rounded so that 1 - 0.9 reads 0.1 on /metrics, not 0.09999999999999998
    return None if tpr is None else round(1.0 - tpr, 12)
