"""Settings: defaults, OOD_ environment variables, YAML file, precedence, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import Settings


def test_secure_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OOD_HOST", "OOD_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.host == "127.0.0.1"
    assert settings.default_model == "fashion-mnist-logitnorm"
    assert settings.model_dir == Path("models")


def test_environment_then_yaml_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "service.yaml"
    config.write_text("port: 9000\nmax_batch_size: 16\nmodel_thresholds:\n  m: {target_tpr: 0.9}\n")
    monkeypatch.setenv("OOD_CONFIG_FILE", str(config))
    monkeypatch.setenv("OOD_PORT", "9100")
    settings = Settings()
    assert settings.port == 9100  # environment beats the file
    assert settings.max_batch_size == 16
    assert settings.model_thresholds["m"].target_tpr == 0.9
    assert Settings(port=9200).port == 9200  # arguments (CLI flags) beat the environment


def test_json_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OOD_PROVIDERS", '["CPUExecutionProvider"]')
    monkeypatch.setenv("OOD_MODEL_THRESHOLDS", '{"m": {"score": "energy", "threshold": -3}}')
    settings = Settings()
    assert settings.providers == ["CPUExecutionProvider"]
    assert settings.model_thresholds["m"].threshold == -3


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Settings(config_file=tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "bad",
    [
        {"max_items_per_request": 10, "max_queue_items": 5},
        {"max_batch_size": 0},
        {"unknown_setting": 1},
        {"target_tpr": 1.5},
        {"overload_status": 500},
        {"body_timeout_s": 0},
    ],
)
def test_invalid_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        Settings(**bad)


def test_reliability_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OOD_OVERLOAD_STATUS", "429")
    monkeypatch.setenv("OOD_BODY_TIMEOUT_S", "2.5")
    monkeypatch.setenv("OOD_HEADER_TIMEOUT_S", "3")
    monkeypatch.setenv("OOD_SHUTDOWN_DELAY_S", "5")
    settings = Settings()
    assert settings.overload_status == 429
    assert (settings.body_timeout_s, settings.header_timeout_s) == (2.5, 3.0)
    assert settings.shutdown_delay_s == 5.0
