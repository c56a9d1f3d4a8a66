"""One prediction request end to end: items -> batch -> batcher -> logits -> scores -> decisions.

The HTTP handler stays thin: it parses the body and resolves the model, then calls
:meth:`Predictor.predict`. Batcher failures become service errors here (503 overload or shutdown,
504 timeout, 500 for a failed run). Logits are checked row by row: a non-finite row is that
item's error (422), never a NaN silently written as ``null`` in a 200 answer.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from service import errors
from service.batcher import (
    BatcherClosed,
    DeadlineExceeded,
    InferenceFailed,
    QueueFull,
)
from service.preprocess import Batch, has_images, to_batch
from service.registry import ServedModel
from service.schemas import PredictRequest
from service.scores import DIRECTIONS, ScoreName, accepts, compute_scores, softmax
from service.thresholds import Threshold


@dataclass(frozen=True)
class Predictor:
    """Request limits and error policy shared by all predictions of an app."""

    max_items_per_request: int
    max_image_pixels: int
    request_timeout_s: float
    retry_after_s: int
    overload_status: int = 503

    async def predict(
        self, served: ServedModel, request: PredictRequest, started: float
    ) -> dict[str, Any]:
        """The response body (see :class:`service.schemas.PredictResponse`).

        ``started`` is when the request arrived (``time.monotonic()``); it must be answered
        within the server's ``request_timeout_s`` or the request's own, lower ``timeout``.
        """
        num_classes = served.manifest.output.num_classes
        if len(request.inputs) > self.max_items_per_request:
            raise errors.payload_too_large(
                f"{len(request.inputs)} items exceed the limit of {self.max_items_per_request}",
                code="too_many_items",
            )
        if request.top_k is not None and request.top_k > num_classes:
            raise errors.invalid_input(f"top_k {request.top_k} exceeds {num_classes} classes")
        threshold = served.policy.resolve(request.score, request.threshold, request.target_tpr)
        timeout_s = self.timeout_for(request.timeout)
        batch = await self._to_batch(served, request)
        logits = await self.infer(served, batch, started + timeout_s, timeout_s)
        return build_response(served, request, threshold, logits)

    async def _to_batch(self, served: ServedModel, request: PredictRequest) -> Batch:
        """Arrays convert inline (fast); image decoding runs in a thread, off the event loop."""

        def convert() -> Batch:
            return to_batch(
                request.inputs,
                served.manifest,
                preprocessed=request.preprocessed,
                max_image_pixels=self.max_image_pixels,
            )

        if has_images(request.inputs):
            return await asyncio.to_thread(convert)
        return convert()

    def timeout_for(self, requested_s: float | None) -> float:
        """The timeout in force: the server's, or the request's when that is lower."""
        if requested_s is None or not requested_s > 0:
            return self.request_timeout_s
        return min(self.request_timeout_s, requested_s)

    async def infer(
        self, served: ServedModel, batch: Batch, deadline: float, timeout_s: float | None = None
    ) -> NDArray[np.float32]:
        """Logits for a batch through the model's batcher, with batcher errors as service errors.

        ``deadline`` is on ``time.monotonic()``; ``timeout_s`` is only quoted in the 504.
        """
        if served.batcher is None or not served.ready:
            raise errors.model_not_ready(f"model {served.name} is not ready", self.retry_after_s)
        try:
            return await served.batcher.submit(batch, deadline)
        except QueueFull:
            raise errors.overloaded(self.retry_after_s, self.overload_status) from None
        except DeadlineExceeded:
            raise errors.timed_out(timeout_s or self.request_timeout_s) from None
        except BatcherClosed:
            raise errors.shutting_down(self.retry_after_s) from None
        except InferenceFailed:
            raise errors.inference_failed() from None


def build_response(
    served: ServedModel, request: PredictRequest, threshold: Threshold, logits: NDArray[np.float32]
) -> dict[str, Any]:
    """Scores, decisions and labels for every item, as plain JSON-ready values."""
    _check_finite_rows(logits)
    manifest = served.manifest
    scores = compute_scores(logits, manifest.calibration.energy_temperature)
    accepted = accepts(scores[threshold.score], threshold.value, threshold.score)
    served.metrics.scored(scores, accepted)
    predictions = _predictions(logits, scores, accepted, manifest.classes, request)
    return {
        "model": manifest.name,
        "version": manifest.version,
        "score": threshold.score.value,
        "score_direction": DIRECTIONS[threshold.score].value,
        "threshold": threshold.value,
        "threshold_source": threshold.source,
        "target_tpr": threshold.target_tpr,
        "predictions": predictions,
    }


def _check_finite_rows(logits: NDArray[np.float32]) -> None:
    finite = np.isfinite(logits).all(axis=1)
    if not finite.all():
        index = int(np.flatnonzero(~finite)[0])
        raise errors.invalid_input(
            f"item {index}: the model produced non-finite logits (input values too extreme?)",
            index,
            code="non_finite_output",
        )


def _predictions(
    logits: NDArray[np.float32],
    scores: dict[ScoreName, NDArray[np.float64]],
    accepted: NDArray[np.bool_],
    classes: list[str],
    request: PredictRequest,
) -> list[dict[str, Any]]:
    indices = logits.argmax(axis=1).tolist()
    msp_values = scores[ScoreName.MSP].tolist()
    energy_values = scores[ScoreName.ENERGY].tolist()
    max_logit_values = scores[ScoreName.MAX_LOGIT].tolist()
    results = [
        {
            "label": classes[index],
            "class_index": index,
            "confidence": msp,
            "scores": {"msp": msp, "energy": energy, "max_logit": max_logit},
            "ood": not accept,
            "decision": "accept" if accept else "reject",
        }
        for index, msp, energy, max_logit, accept in zip(
            indices, msp_values, energy_values, max_logit_values, accepted.tolist(), strict=True
        )
    ]
    if request.top_k is not None or request.return_probabilities:
        _add_probabilities(results, softmax(logits), classes, request)
    return results


def _add_probabilities(
    results: list[dict[str, Any]],
    probabilities: NDArray[np.float64],
    classes: list[str],
    request: PredictRequest,
) -> None:
    if request.top_k is not None:
        top = np.argsort(-probabilities, axis=1, kind="stable")[:, : request.top_k]
        for result, row, order in zip(results, probabilities, top.tolist(), strict=True):
            result["top_k"] = [
                {"label": classes[i], "class_index": i, "probability": float(row[i])} for i in order
            ]
    if request.return_probabilities:
        for result, row in zip(results, probabilities.tolist(), strict=True):
            result["probabilities"] = row
