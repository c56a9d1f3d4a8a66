"""``ood_expected_reject_ratio``: what the OOD-rate alert levels scale with (ood-thresholds.yml).

The alerts fire at ``max(absolute level, factor x expected)``, so the gauge must follow the
threshold actually in force: a service started with ``OOD_TARGET_TPR=0.9`` rejects ~10% of clean
inputs and must say so, or its alerts judge it by the 95% calibration of the manifest.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.model_factory import build_model_dir

GAUGE = "ood_expected_reject_ratio"
#: one sample of the gauge; prometheus_client writes labels in declaration order
SAMPLE = re.compile(rf'^{GAUGE}{{model="([^"]+)",version="([^"]+)"}} (\S+)$', re.MULTILINE)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny`` v1 and ``other`` v1, both calibrated at the manifest default TPR 0.95."""
    root = tmp_path_factory.mktemp("models")
    build_model_dir(root, name="tiny", version="1", seed=0)
    build_model_dir(root, name="other", version="1", seed=1)
    return root


def _metrics_text(model_dir: Path, **overrides: Any) -> str:
    """/metrics of an app started (lifespan included) on ``model_dir`` with ``overrides``."""
    settings = Settings(
        model_dir=model_dir,
        default_model="tiny",
        providers=["CPUExecutionProvider"],
        intra_op_threads=1,
        max_batch_size=4,
        **overrides,
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    return response.text


def _gauge(text: str) -> dict[tuple[str, str], float]:
    """(model, version) -> value of every ``ood_expected_reject_ratio`` sample."""
    return {(model, version): float(value) for model, version, value in SAMPLE.findall(text)}


def test_a_global_target_tpr_of_0_9_expects_10_percent_rejected(model_dir: Path) -> None:
    assert _gauge(_metrics_text(model_dir, target_tpr=0.9)) == {
        ("tiny", "1"): 0.1,
        ("other", "1"): 0.1,
    }


def test_without_settings_the_manifest_calibration_is_in_force(model_dir: Path) -> None:
    assert _gauge(_metrics_text(model_dir)) == {("tiny", "1"): 0.05, ("other", "1"): 0.05}


def test_a_per_model_target_tpr_wins_for_that_model_only(model_dir: Path) -> None:
    text = _metrics_text(model_dir, target_tpr=0.9, model_thresholds={"other": {"target_tpr": 0.8}})
    assert _gauge(text) == {("tiny", "1"): 0.1, ("other", "1"): 0.2}


def test_an_explicit_threshold_has_no_known_tpr_so_the_gauge_is_absent(model_dir: Path) -> None:
    """The alerts then use their absolute levels for that model (ood-thresholds.yml)."""
    text = _metrics_text(model_dir, model_thresholds={"other": {"threshold": 0.5}})
    assert _gauge(text) == {("tiny", "1"): 0.05}
    assert f"# TYPE {GAUGE} gauge" in text
