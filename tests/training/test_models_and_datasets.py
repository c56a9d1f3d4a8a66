"""Model registry shapes, and training on bring-your-own data (CIFAR pickles, image folders)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from training.evaluate import odin_scores
from training.models import MODELS, create_model

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("head", ["linear", "isomax_plus"])
def test_every_model_builds_and_gives_logits(name, head):
    spec = MODELS[name]
    model = create_model(name, num_classes=7, head=head).eval()
    x = torch.randn(2, spec.in_channels, spec.image_size, spec.image_size)
    assert model(x).shape == (2, 7)
    assert model.forward_features(x).shape[0] == 2


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown model"):
        create_model("vit_huge", 10)


def test_odin_scores_are_bounded_probabilities():
    model = create_model("small_cnn", 10).eval()
    scores = odin_scores(model, torch.randn(20, 1, 28, 28), torch.device("cpu"), batch_size=8)
    assert scores.shape == (20,)
    assert np.all((scores >= 0.1 - 1e-9) & (scores <= 1.0))  # at T=1000 MSP sits near 1/k


def _write_cifar(root: Path, n: int = 60) -> Path:
    directory = root / "cifar-10-batches-py"
    directory.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def batch(count: int) -> dict:
        labels = (np.arange(count) % 10).tolist()
        data = rng.integers(0, 60, (count, 3072), dtype=np.uint8)
        for i, label in enumerate(labels):
            data[i, label * 300 : label * 300 + 300] = 250  # a class-specific bright band
        return {b"data": data, b"labels": labels}

    for i in range(1, 6):
        (directory / f"data_batch_{i}").write_bytes(pickle.dumps(batch(n)))
    (directory / "test_batch").write_bytes(pickle.dumps(batch(n)))
    names = [f"class{i}".encode() for i in range(10)]
    (directory / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    return directory


def _train(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "training.cli", "train", "--device", "cpu", "--epochs", "1",
        "--val-size", "50", "--runs-dir", str(tmp_path / "runs"), "--models-dir",
        str(tmp_path / "models"), *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)


@pytest.mark.slow
def test_train_on_cifar_pickles_exports_an_rgb_model(tmp_path):
    data_dir = _write_cifar(tmp_path)
    done = _train(tmp_path, "--dataset", "cifar10", "--data-dir", str(data_dir),
                  "--loss", "cross_entropy", "--export", "cifar-test", "--odin")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((tmp_path / "models/cifar-test/1/manifest.json").read_text())
    assert manifest["input"]["shape"] == [3, 32, 32]
    assert manifest["preprocessing"]["color_mode"] == "rgb"
    assert len(manifest["preprocessing"]["mean"]) == 3
    assert manifest["classes"][0] == "class0"
    assert set(manifest["metrics"]["ood"]) == {"msp", "energy", "max_logit", "odin"}


@pytest.mark.slow
def test_train_on_an_image_folder(tmp_path):
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        for label, value in (("dark", 40), ("bright", 220)):
            folder = tmp_path / "images" / split / label
            folder.mkdir(parents=True)
            for i in range(30):
                pixels = np.clip(rng.normal(value, 20, (20, 20)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    done = _train(tmp_path, "--dataset", "folder", "--data-dir", str(tmp_path / "images"),
                  "--image-size", "16", "--color-mode", "L", "--loss", "cross_entropy",
                  "--export", "folder-test")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((tmp_path / "models/folder-test/1/manifest.json").read_text())
    assert manifest["input"]["shape"] == [1, 16, 16]
    assert manifest["classes"] == ["bright", "dark"]
