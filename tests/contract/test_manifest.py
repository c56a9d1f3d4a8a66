"""The manifest schema rejects what would make the service misbehave."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from service.manifest import Manifest, read_manifest, write_manifest
from training.calibrate import calibrate


def _manifest_dict() -> dict:
    calibration = calibrate(np.random.default_rng(0).normal(size=(500, 3)) * 3)
    return {
        "name": "demo",
        "version": "1",
        "created_at": "2026-01-01T00:00:00+00:00",
        "classes": ["a", "b", "c"],
        "input": {"shape": [1, 4, 4]},
        "output": {"num_classes": 3},
        "preprocessing": {"color_mode": "grayscale", "height": 4, "width": 4, "mean": [0.5],
                          "std": [0.25]},
        "training": {"loss": "logitnorm", "tau": 0.1, "architecture": "x", "dataset": "d",
                     "seed": 0, "epochs": 1},
        "calibration": json.loads(calibration.model_dump_json()),
        "onnx": {"sha256": "0" * 64, "size_bytes": 10, "opset": 18},
    }  # fmt: skip


def test_roundtrip(tmp_path):
    manifest = Manifest.model_validate(_manifest_dict())
    write_manifest(manifest, tmp_path / "manifest.json")
    assert read_manifest(tmp_path / "manifest.json") == manifest


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(name="../etc"),
        lambda d: d.update(version="01"),
        lambda d: d.update(unknown_field=1),
        lambda d: d.update(classes=["a", "b"]),
        lambda d: d["input"].update(shape=[3, 4, 4]),
        lambda d: d["preprocessing"].update(std=[0.0]),
        lambda d: d["onnx"].update(opset=11),
        lambda d: d["calibration"]["scores"].pop("energy"),
        lambda d: d["calibration"]["scores"]["msp"].update(direction="lower_is_in"),
        lambda d: d["calibration"]["scores"]["msp"].update(quantiles=[0.0, 1.0]),
        lambda d: d.update(schema_version=2),
    ],
)
def test_invalid_manifests_are_rejected(mutate):
    data = _manifest_dict()
    mutate(data)
    with pytest.raises(ValidationError):
        Manifest.model_validate(data)
