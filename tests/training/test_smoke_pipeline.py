"""Smoke test on real data: 1 epoch on a Fashion-MNIST subset, export, ONNX parity, manifest.

This is the end-to-end path of ``make model`` at a size CI can afford.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from service.manifest import read_manifest, sha256_of
from service.scores import ScoreName, accepts, compute_scores
from training.distributed import setup
from training.pipeline import export_run, load_fashion_mnist_experiment, train_and_score
from training.train import TrainConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tmp_path_factory, data_paths):
    root = tmp_path_factory.mktemp("smoke")
    data = load_fashion_mnist_experiment(
        data_paths, seed=0, val_size=1000, train_subset=2000, test_subset=1000, ood_subset=200
    )
    config = TrainConfig(loss="logitnorm", tau=0.1, epochs=1, device="cpu")
    run = train_and_score(config, data, setup("cpu"), root / "runs")
    assert run is not None
    model_dir, parity = export_run(run, data, "smoke", root / "models")
    return data, run, model_dir, parity


def test_export_passes_parity_and_writes_a_valid_manifest(exported):
    data, _run, model_dir, parity = exported
    assert parity <= 1e-4
    manifest = read_manifest(model_dir / "manifest.json")
    assert manifest.onnx.sha256 == sha256_of(model_dir / "model.onnx")
    assert manifest.classes == data.classes
    assert manifest.training.tau == 0.1
    assert manifest.metrics["onnx_parity_max_abs_diff"] == parity
    assert 0.5 < manifest.metrics["accuracy"] <= 1.0  # one epoch on 2,000 images learns something
    assert set(manifest.metrics["ood"]) == {"msp", "energy", "max_logit"}


def test_calibrated_thresholds_accept_the_target_share_of_validation(exported):
    _data, run, model_dir, _ = exported
    manifest = read_manifest(model_dir / "manifest.json")
    scores = compute_scores(run.val_logits)
    for name in ScoreName:
        accepted = accepts(scores[name], manifest.calibration.scores[name].threshold, name).mean()
        assert accepted == pytest.approx(0.95, abs=0.002), name


def test_onnx_model_runs_with_onnxruntime_alone(exported):
    """The acceptance check: plain onnxruntime + the manifest, with torch made unimportable."""
    _, _run, model_dir, _ = exported
    script = f"""
import sys, json
sys.modules["torch"] = None  # any torch import now fails
import numpy as np, onnxruntime as ort
from service.manifest import read_manifest
from service.scores import compute_scores
m = read_manifest(__import__("pathlib").Path({str(model_dir)!r}) / "manifest.json")
s = ort.InferenceSession({str(model_dir / "model.onnx")!r}, providers=["CPUExecutionProvider"])
x = np.asarray(m.golden.inputs, dtype=np.float32).reshape(-1, *m.input.shape)
logits = s.run([m.output.name], {{m.input.name: x}})[0]
assert np.abs(logits - np.asarray(m.golden.logits)).max() <= m.golden.atol
print(json.dumps(compute_scores(logits)["msp"].tolist()))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().strip("[]").split(",")) == 4
