"""The vectorized histogram helpers record exactly what one ``observe`` per value records."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from service.metrics import (
    QUEUE_WAIT_BUCKETS,
    SCORE_BUCKETS,
    Metrics,
    observe_many,
    observe_weighted,
)
from service.scores import ScoreName


def _pair(
    buckets: tuple[float, ...],
) -> tuple[CollectorRegistry, Histogram, CollectorRegistry, Histogram]:
    registries = CollectorRegistry(), CollectorRegistry()
    children = [
        Histogram("h", "test", ("model",), buckets=buckets, registry=r).labels("m")
        for r in registries
    ]
    return registries[0], children[0], registries[1], children[1]


def _samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("le", "")): s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


@pytest.mark.parametrize("score", list(ScoreName))
@pytest.mark.parametrize("size", [1, 7, 8, 64, 1000])
def test_observe_many_matches_observe(score: ScoreName, size: int) -> None:
    buckets = SCORE_BUCKETS[score]
    rng = np.random.default_rng(size)
    # values spread over the buckets, on the bounds themselves, and beyond the last finite bound
    values = np.concatenate(
        [rng.uniform(buckets[0] - 1, buckets[-1] + 1, size), np.asarray(buckets[: size % 5])]
    )
    expected_registry, expected, actual_registry, actual = _pair(buckets)
    for value in values.tolist():
        expected.observe(value)
    observe_many(actual, values)
    want, got = _samples(expected_registry), _samples(actual_registry)
    assert want.keys() == got.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-9), key


def test_observe_weighted_matches_observe() -> None:
    pairs = [(0.0003, 1), (0.001, 5), (0.0015, 0), (0.02, 64), (20.0, 2), (0.001, 1)]
    expected_registry, expected, actual_registry, actual = _pair(QUEUE_WAIT_BUCKETS)
    for value, count in pairs:
        for _ in range(count):
            expected.observe(value)
    observe_weighted(actual, pairs)
    want, got = _samples(expected_registry), _samples(actual_registry)
    assert want.keys() == got.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


def test_model_metrics_record_every_item() -> None:
    registry = CollectorRegistry()
    bound = Metrics(registry, 64).for_model("m", "1")
    scores = {name: np.linspace(-3.0, 3.0, 64) for name in ScoreName}
    bound.scored(scores, np.arange(64) % 4 != 0)
    bound.batch_started(64, [(0.001, 60), (0.004, 4)])
    text = generate_latest(registry).decode()
    assert 'ood_predictions_total{decision="accept",model="m",version="1"} 48.0' in text
    assert 'ood_predictions_total{decision="reject",model="m",version="1"} 16.0' in text
    assert 'ood_score_msp_count{model="m",version="1"} 64.0' in text
    assert 'ood_queue_wait_seconds_count{model="m",version="1"} 64.0' in text
    assert 'ood_queue_wait_seconds_bucket{le="0.001",model="m",version="1"} 60.0' in text
