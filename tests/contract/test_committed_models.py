"""Every committed ``models/<name>/<version>/`` loads with the serving code alone, torch blocked.

The service image has no torch and no training code, so the check runs in a subprocess where
``import torch`` fails: there the service's own loader validates the manifest schema, the ONNX
size and sha256 and the graph, and ONNX Runtime must reproduce the manifest's golden logits.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
MODEL_DIRS = sorted(path for path in MODELS.glob("*/*") if path.is_dir())
MODEL_IDS = [f"{path.parent.name}/{path.name}" for path in MODEL_DIRS]

# Runs in a fresh interpreter; prints {"models": {"name/version": result}, "imported": [...]}.
SCRIPT = """
import json, sys
sys.modules["torch"] = None  # any torch import now fails
from pathlib import Path
import numpy as np
from service.repository import discover, load_artifact
from service.runtime import OnnxModel, RuntimeOptions

def check(location):
    artifact = load_artifact(location)  # schema, name/version, size + sha256, onnx graph
    golden = artifact.manifest.golden
    if golden is None:
        return {"error": "manifest has no golden sample"}
    options = RuntimeOptions(providers=("CPUExecutionProvider",), intra_op_threads=1)
    model = OnnxModel.create(artifact, options, warmup_batch=1)  # replays the golden sample too
    inputs = np.asarray(golden.inputs, dtype=np.float32).reshape(-1, *artifact.manifest.input.shape)
    error = np.abs(model.run(inputs) - np.asarray(golden.logits, dtype=np.float32)).max()
    return {"golden_error": float(error), "atol": golden.atol, "golden_items": len(inputs),
            "sha256": artifact.manifest.onnx.sha256}

results = {}
for location in discover(Path(sys.argv[1])):
    try:
        results[f"{location.name}/{location.version}"] = check(location)
    except Exception as exc:
        results[f"{location.name}/{location.version}"] = {"error": f"{type(exc).__name__}: {exc}"}
imported = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "training"))
print(json.dumps({"models": results, "imported": imported}))
"""


@pytest.fixture(scope="module")
def torch_free_load() -> dict[str, Any]:
    """One subprocess for all models: interpreter and onnxruntime start-up are paid once."""
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(MODELS)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_repository_ships_models():
    assert MODEL_DIRS, f"no model directories under {MODELS}"


def test_the_loader_sees_every_committed_directory_without_torch_or_training(torch_free_load):
    assert sorted(torch_free_load["models"]) == MODEL_IDS
    # Only the blocked placeholder itself: nothing under torch.* or training.* got imported.
    assert torch_free_load["imported"] == ["torch"]


@pytest.mark.parametrize("model_dir", MODEL_DIRS, ids=MODEL_IDS)
def test_committed_model_loads_and_reproduces_its_golden_logits(model_dir, torch_free_load):
    result = torch_free_load["models"][f"{model_dir.parent.name}/{model_dir.name}"]
    assert "error" not in result, result.get("error")
    assert result["golden_items"] > 0
    assert result["golden_error"] <= result["atol"]
    # Independent of the service's own check: the file on disk is the one the manifest names.
    manifest = json.loads((model_dir / "manifest.json").read_text())
    digest = hashlib.sha256((model_dir / "model.onnx").read_bytes()).hexdigest()
    assert digest == manifest["onnx"]["sha256"] == result["sha256"]
