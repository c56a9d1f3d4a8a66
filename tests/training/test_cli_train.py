"""``ood-train train --export`` writes the same model directory as the benchmark does.

Runs the real command in-process on a tiny synthetic image folder, so no downloaded data is needed.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from service.manifest import read_manifest
from training.cli import main

pytestmark = pytest.mark.slow


def _image_folder(root, per_class: int) -> None:
    """Three classes told apart by where a bright square sits, 28x28 grayscale PNGs."""
    rng = np.random.default_rng(per_class)
    for label, name in enumerate(("left", "middle", "right")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 60, (28, 28), dtype=np.uint8)
            image[10:18, 2 + 8 * label : 10 + 8 * label] = 255
            Image.fromarray(image).save(root / name / f"{i}.png")


def test_train_export_writes_model_manifest_report_and_plots(tmp_path):
    _image_folder(tmp_path / "data" / "train", per_class=40)
    _image_folder(tmp_path / "data" / "test", per_class=10)
    # lr 0.01: one step at 0.1 on 96 images drives the logits to ~1e3, where float32 rounding
    # alone exceeds the 1e-4 ONNX parity tolerance.
    main(
        ["train", "--dataset", "folder", "--data-dir", str(tmp_path / "data"),
         "--image-size", "28", "--color-mode", "L", "--epochs", "1", "--val-size", "24",
         "--lr", "0.01", "--device", "cpu", "--runs-dir", str(tmp_path / "runs"),
         "--export", "tiny", "--models-dir", str(tmp_path / "models")]
    )  # fmt: skip
    model_dir = tmp_path / "models" / "tiny" / "1"
    assert read_manifest(model_dir / "manifest.json").name == "tiny"
    report = json.loads((model_dir / "report.json").read_text())
    assert report["loss"] == "logitnorm" and report["epochs"] == 1
    assert "tiny" in (model_dir / "report.md").read_text()
    plots = {path.name for path in (model_dir / "plots").glob("*.png")}
    assert {"roc-msp.png", "reliability.png", "training.png", "hist-msp.png"} <= plots
