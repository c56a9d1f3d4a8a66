"""Thresholds in force: manifest defaults, settings, per-request overrides."""

from __future__ import annotations

import pytest

from service.errors import ServiceError
from service.manifest import Manifest, read_manifest
from service.scores import ScoreName, threshold_from_quantiles
from service.settings import ModelThresholds, Settings
from service.thresholds import ThresholdPolicy
from tests.model_factory import build_model_dir


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    directory = build_model_dir(tmp_path_factory.mktemp("thr"), name="m", target_tpr=0.95)
    return read_manifest(directory / "manifest.json")


def policy(manifest: Manifest, **settings) -> ThresholdPolicy:
    return ThresholdPolicy.from_settings(manifest, Settings(**settings))


def test_manifest_values_are_the_defaults(manifest: Manifest) -> None:
    chosen = policy(manifest).resolve()
    assert chosen.score == ScoreName.MSP
    assert chosen.value == manifest.calibration.scores[ScoreName.MSP].threshold
    assert (chosen.source, chosen.target_tpr) == ("manifest", 0.95)


def test_global_target_tpr_derives_from_quantiles(manifest: Manifest) -> None:
    chosen = policy(manifest, target_tpr=0.9, default_score="energy").resolve()
    quantiles = manifest.calibration.scores[ScoreName.ENERGY].quantiles
    assert chosen.score == ScoreName.ENERGY
    assert chosen.value == threshold_from_quantiles(quantiles, 0.9, ScoreName.ENERGY)
    assert chosen.source == "settings"


def test_per_model_threshold_wins(manifest: Manifest) -> None:
    chosen = policy(
        manifest,
        target_tpr=0.9,
        model_thresholds={"m": ModelThresholds(score=ScoreName.MAX_LOGIT, threshold=2.5)},
    ).resolve()
    assert (chosen.score, chosen.value, chosen.source) == (ScoreName.MAX_LOGIT, 2.5, "settings")


def test_other_models_settings_do_not_apply(manifest: Manifest) -> None:
    chosen = policy(manifest, model_thresholds={"other": ModelThresholds(threshold=0.1)}).resolve()
    assert chosen.source == "manifest"


def test_request_overrides(manifest: Manifest) -> None:
    rules = policy(manifest)
    assert rules.resolve(ScoreName.ENERGY).value == manifest.calibration.scores["energy"].threshold
    assert rules.resolve(threshold=0.5).value == 0.5
    derived = rules.resolve(ScoreName.MAX_LOGIT, target_tpr=0.8)
    quantiles = manifest.calibration.scores[ScoreName.MAX_LOGIT].quantiles
    assert derived.value == threshold_from_quantiles(quantiles, 0.8, ScoreName.MAX_LOGIT)
    assert derived.source == "request"


def test_overrides_can_be_disabled(manifest: Manifest) -> None:
    rules = policy(manifest, allow_score_override=False, allow_threshold_override=False)
    assert rules.resolve(ScoreName.MSP).source == "manifest"  # naming the default is fine
    for kwargs in ({"score": ScoreName.ENERGY}, {"threshold": 0.5}, {"target_tpr": 0.9}):
        with pytest.raises(ServiceError) as caught:
            rules.resolve(**kwargs)
        assert (caught.value.status, caught.value.code) == (403, "override_not_allowed")


def test_threshold_and_target_tpr_are_exclusive_in_settings() -> None:
    with pytest.raises(ValueError):
        ModelThresholds(threshold=0.5, target_tpr=0.9)
