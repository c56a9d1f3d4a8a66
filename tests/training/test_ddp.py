"""Multi-process training through torchrun + DDP (gloo on the CPU), 2 processes, tiny real data."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.slow


def test_torchrun_two_processes_train_and_export(tmp_path, data_paths):
    runs, models = tmp_path / "runs", tmp_path / "models"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "training.cli", "train", "--device", "cpu", "--loss", "logitnorm", "--tau", "0.1",
        "--epochs", "1", "--train-subset", "512", "--test-subset", "256", "--ood-subset", "64",
        "--val-size", "500", "--runs-dir", str(runs), "--export", "ddp-test",
        "--models-dir", str(models),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (checkpoint,) = runs.glob("*/last.pt")
    state = torch.load(checkpoint, weights_only=True)
    # Each rank saw half the data; the all-reduced epoch statistics cover all 512 images once.
    assert state["history"][0]["samples"] == 512
    manifest = json.loads((models / "ddp-test" / "1" / "manifest.json").read_text())
    assert manifest["training"]["loss"] == "logitnorm"
    assert manifest["metrics"]["onnx_parity_max_abs_diff"] <= 1e-4
