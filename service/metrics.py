"""Prometheus metrics on a registry the app factory makes: no module globals, no test cleanup.

Names and labels are the contract in ``docs/contracts.md``; alert rules are written against them.
Label values are bounded: route templates (not raw paths), model names and versions found on disk,
decisions, refusal reasons. Nothing per request.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from service.errors import RefusalReason
from service.scores import ScoreName

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
QUEUE_WAIT_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
INFERENCE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SCORE_BUCKETS: dict[ScoreName, tuple[float, ...]] = {
    # higher = in-distribution
    ScoreName.MSP: (
        0.1,
        0.2,
        0.3,
        0.4,
        0.5,
        0.6,
        0.7,
        0.8,
        0.85,
        0.9,
        0.95,
        0.97,
        0.99,
        0.995,
        0.999,
        1.0,
    ),
    # lower = in-distribution
    ScoreName.ENERGY: (
        -100.0,
        -50.0,
        -40.0,
        -30.0,
        -25.0,
        -20.0,
        -15.0,
        -12.0,
        -10.0,
        -8.0,
        -6.0,
        -5.0,
        -4.0,
        -3.0,
        -2.0,
        -1.0,
        0.0,
        5.0,
    ),
    # higher = in-distribution
    ScoreName.MAX_LOGIT: (
        -5.0,
        0.0,
        1.0,
        2.0,
        3.0,
        4.0,
        5.0,
        6.0,
        8.0,
        10.0,
        12.0,
        15.0,
        20.0,
        25.0,
        30.0,
        40.0,
        50.0,
        100.0,
    ),
}


def batch_size_buckets(max_batch_size: int) -> tuple[float, ...]:
    """Powers of two up to, and including, the largest possible batch."""
    sizes = {1, max_batch_size}
    size = 2
    while size < max_batch_size:
        sizes.add(size)
        size *= 2
    return tuple(float(s) for s in sorted(sizes))


class Metrics:
    """Every metric of the service, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry, max_batch_size: int) -> None:
        self.registry = registry
        route = ("route", "method", "status")
        model = ("model", "version")
        self.http_requests = Counter(
            "ood_http_requests", "HTTP requests by route template", route, registry=registry
        )
        self.http_duration = Histogram(
            "ood_http_request_duration_seconds",
            "HTTP request latency",
            route,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.predictions = Counter(
            "ood_predictions",
            "Items scored, by decision; OOD rate = reject / all",
            (*model, "decision"),
            registry=registry,
        )
        self.scores = {
            name: Histogram(
                f"ood_score_{name.value}",
                f"{name.value} of each scored item",
                model,
                buckets=SCORE_BUCKETS[name],
                registry=registry,
            )
            for name in ScoreName
        }
        self.batch_size = Histogram(
            "ood_batch_size_items",
            "Items per executed batch",
            model,
            buckets=batch_size_buckets(max_batch_size),
            registry=registry,
        )
        self.queue_wait = Histogram(
            "ood_queue_wait_seconds",
            "Time an item waited before its batch ran",
            model,
            buckets=QUEUE_WAIT_BUCKETS,
            registry=registry,
        )
        self.inference = Histogram(
            "ood_inference_duration_seconds",
            "ONNX Runtime run time per batch",
            model,
            buckets=INFERENCE_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge("ood_queue_depth_items", "Items waiting", model, registry=registry)
        self.refused = Counter(
            "ood_requests_refused",
            "Requests refused, by reason",
            ("model", "reason"),
            registry=registry,
        )
        self.model_info = Gauge(
            "ood_model_info",
            "What is loaded and where it runs (value 1)",
            (*model, "loss", "tau", "provider"),
            registry=registry,
        )
        self.model_ready = Gauge(
            "ood_model_ready", "1 when warmed up and serving", model, registry=registry
        )
        # Alert levels scale with it (deploy/prometheus/rules/ood-thresholds.yml): a model served
        # at TPR 0.9 rejects ~10% of clean inputs, which must not page like 10% at TPR 0.99.
        self.expected_reject = Gauge(
            "ood_expected_reject_ratio",
            "Share of in-distribution inputs the default threshold rejects (1 - its TPR); "
            "absent when the threshold has no known TPR",
            model,
            registry=registry,
        )

    def count_refused(self, model: str, reason: RefusalReason) -> None:
        """One refused request; ``model`` is ``-`` when the request named no loaded model."""
        self.refused.labels(model, reason).inc()

    def for_model(self, name: str, version: str) -> ModelMetrics:
        """Children bound to one model version (label lookups done once, not per request)."""
        return ModelMetrics(
            accepted=self.predictions.labels(name, version, "accept"),
            rejected=self.predictions.labels(name, version, "reject"),
            scores={score: self.scores[score].labels(name, version) for score in ScoreName},
            batch_size=self.batch_size.labels(name, version),
            queue_wait=self.queue_wait.labels(name, version),
            inference=self.inference.labels(name, version),
            depth=self.queue_depth.labels(name, version),
            ready=self.model_ready.labels(name, version),
        )


@dataclass(frozen=True)
class ModelMetrics:
    """One model version's metric children; also the batcher's :class:`BatchObserver`."""

    accepted: Counter
    rejected: Counter
    scores: dict[ScoreName, Histogram]
    batch_size: Histogram
    queue_wait: Histogram
    inference: Histogram
    depth: Gauge
    ready: Gauge

    def queue_depth(self, items: int) -> None:
        self.depth.set(items)

    def batch_started(self, size: int, waits: Sequence[tuple[float, int]]) -> None:
        self.batch_size.observe(size)
        observe_weighted(self.queue_wait, waits)

    def inference_done(self, seconds: float) -> None:
        self.inference.observe(seconds)

    def scored(
        self, scores: dict[ScoreName, NDArray[np.float64]], accepted: NDArray[np.bool_]
    ) -> None:
        """Record one request's decisions and score values."""
        accepted_count = int(np.count_nonzero(accepted))
        if accepted_count:
            self.accepted.inc(accepted_count)
        if accepted_count < accepted.size:
            self.rejected.inc(accepted.size - accepted_count)
        for name, values in scores.items():
            observe_many(self.scores[name], values)


# --- observing many values at once ----------------------------------------------------------------
#
# ``Histogram.observe`` costs a few microseconds (a lock for the sum, a Python loop over the
# buckets, a lock for the bucket); a 64-item request observes 3 scores per item and its batch 64
# queue waits, ~1 ms of event-loop time. These helpers record exactly what that many ``observe``
# calls would (prometheus_client keeps one *non-cumulative* count per upper bound, incremented for
# the first bound >= the value, plus the sum), with one increment per touched bucket. They use the
# histogram child's ``_upper_bounds``, ``_buckets`` and ``_sum`` (stable since
# prometheus_client 0.4; tests/service/test_metrics.py checks the exposition against ``observe``)
# and fall back to ``observe`` if those are missing. Exemplars are not used by this service.

#: below this many values the plain ``observe`` loop is as fast as the numpy path
_VECTOR_MIN = 8


def _internals(histogram: Histogram) -> tuple[list[float], list[Any], Any] | None:
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        return None
    return bounds, buckets, total


def observe_many(histogram: Histogram, values: NDArray[np.floating[Any]]) -> None:
    """``histogram.observe(v)`` for every ``v`` in ``values``, vectorized."""
    internals = _internals(histogram) if values.size >= _VECTOR_MIN else None
    if internals is None:
        for value in values.ravel().tolist():
            histogram.observe(value)
        return
    bounds, buckets, total = internals
    histogram._raise_if_not_observable()
    flat = values.ravel().astype(np.float64, copy=False)
    # first bound >= value, as observe's ``amount <= bound``; NaN sorts past the last bound and,
    # like in observe, counts in the sum only
    index = np.searchsorted(np.asarray(bounds), flat, side="left")
    counts = np.bincount(index, minlength=len(bounds) + 1)
    total.inc(float(flat.sum()))
    for i in np.flatnonzero(counts[: len(bounds)]).tolist():
        buckets[i].inc(int(counts[i]))


def observe_weighted(histogram: Histogram, weighted: Iterable[tuple[float, int]]) -> None:
    """``histogram.observe(value)`` ``count`` times for every ``(value, count)`` pair."""
    internals = _internals(histogram)
    if internals is None:
        for value, count in weighted:
            for _ in range(count):
                histogram.observe(value)
        return
    bounds, buckets, total = internals
    histogram._raise_if_not_observable()
    counts: dict[int, int] = {}
    amount = 0.0
    for value, count in weighted:
        if count <= 0:
            continue
        amount += value * count
        if value == value:  # NaN is in no bucket, as in observe
            index = bisect_left(bounds, value)
            counts[index] = counts.get(index, 0) + count
    total.inc(amount)
    for index, count in counts.items():
        buckets[index].inc(count)
