"""Start-up: broken models stop the server (or are reported not ready), CLI, torch-free imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.manifest import MANIFEST_FILENAME
from service.repository import ModelLoadError
from service.settings import Settings
from tests.model_factory import build_model_dir
from tests.service.conftest import items

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def broken_root(tmp_path: Path) -> Path:
    """``good`` v1 loads; ``bad`` v1 has a manifest whose sha256 does not match its file."""
    build_model_dir(tmp_path, name="good")
    bad = build_model_dir(tmp_path, name="bad", seed=3)
    manifest = json.loads((bad / MANIFEST_FILENAME).read_text())
    manifest["onnx"]["sha256"] = "f" * 64
    (bad / MANIFEST_FILENAME).write_text(json.dumps(manifest))
    return tmp_path


def settings_for(root: Path, **overrides) -> Settings:
    return Settings(
        model_dir=root,
        default_model="good",
        providers=["CPUExecutionProvider"],
        max_batch_size=4,
        **overrides,
    )


def test_broken_model_stops_start_up(broken_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    with (
        pytest.raises(ModelLoadError, match="sha256"),
        TestClient(create_app(settings_for(broken_root))),
    ):
        pass
    assert any("cannot load model 'bad'" in record.getMessage() for record in caplog.records)


def test_skip_broken_models_serves_the_rest(broken_root: Path) -> None:
    with TestClient(create_app(settings_for(broken_root, skip_broken_models=True))) as client:
        assert client.get("/readyz").json() == {
            "status": "ready",
            "models": {"good": {"1": True}, "bad": {"1": False}},
        }
        refused = client.post("/models/bad/predict", json={"inputs": items(1).tolist()})
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "model_not_ready"
        assert "retry-after" in refused.headers
        assert client.post("/predict", json={"inputs": items(1).tolist()}).status_code == 200
        bad = client.get("/models/bad").json()["versions"][0]
        assert bad["ready"] is False and "sha256" in bad["error"]
        assert 'ood_model_ready{model="bad",version="1"} 0.0' in client.get("/metrics").text


def test_missing_default_model_stops_start_up(make_settings: Callable[..., Settings]) -> None:
    with (
        pytest.raises(RuntimeError, match="default model 'absent'"),
        TestClient(create_app(make_settings(default_model="absent"))),
    ):
        pass


def run_python(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("OOD_")}
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
        check=False,
    )


def test_cli_exits_non_zero_on_a_broken_model(broken_root: Path) -> None:
    result = run_python(
        "-m", "service", "--model-dir", str(broken_root), "--default-model", "good", "--port", "0"
    )
    assert result.returncode == 3, result.stderr
    assert "cannot load model 'bad' version '1'" in result.stderr
    assert "Application startup failed" in result.stderr


def test_cli_rejects_invalid_settings() -> None:
    result = run_python("-m", "service", "--port", "99999")
    assert result.returncode == 2
    assert "invalid settings" in result.stderr


def test_importing_the_service_does_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import service.main, service.__main__, service.preprocess\n"
        "from service.main import create_app\n"
        f"create_app(__import__('service.settings').settings.Settings(model_dir={str(tmp_path)!r}))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert not any(m.startswith('training') for m in sys.modules), 'training was imported'\n"
    )
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
