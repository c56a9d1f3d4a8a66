"""ONNX export, checks, and the model directory the service loads.

``export_model_dir`` writes ``models/<name>/<version>/``: ``model.onnx`` (opset 18, dynamic batch
axis, one self-contained file), ``manifest.json`` (see :mod:`service.manifest`) and a golden sample
that the service replays at load time. Before anything is written as final, ``onnx.checker`` runs
its full check and ONNX Runtime must reproduce PyTorch's logits on real inputs (max abs diff
<= 1e-4 by default); the measured difference is returned for the report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from service.manifest import (
    MANIFEST_FILENAME,
    ONNX_FILENAME,
    Calibration,
    GoldenSample,
    InputSpec,
    Manifest,
    OnnxFile,
    OutputSpec,
    Preprocessing,
    TrainingInfo,
    sha256_of,
    write_manifest,
)

OPSET = 18
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
PARITY_ATOL = 1e-4
GOLDEN_ITEMS = 4


class ParityError(RuntimeError):
    """ONNX Runtime disagrees with PyTorch beyond tolerance: the export is not trustworthy."""


def export_onnx(model: nn.Module, path: Path, input_shape: tuple[int, int, int]) -> None:
    """Export ``model`` (eval mode, on the CPU) with a dynamic batch axis and check the file.

    Uses the ``torch.export``-based exporter (the TorchScript one is deprecated since PyTorch
    2.9). Initializers are kept inside the file: these models are far below ONNX's 2 GB limit,
    and the service refuses external data.
    """
    model = model.eval().cpu()
    example = torch.zeros((2, *input_shape), dtype=torch.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    program = torch.onnx.export(
        model,
        (example,),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
        opset_version=OPSET,
        dynamo=True,
        verbose=False,
    )
    if program is None:  # only None when dynamo=False; keeps the type checker honest
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(path), external_data=False)
    check_onnx_file(path)


def check_onnx_file(path: Path) -> None:
    """Full ``onnx.checker`` pass, and no external-data tensors (the file must stand alone)."""
    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(str(path), load_external_data=False)
    for tensor in proto.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise ValueError(f"{path}: tensor {tensor.name} uses external data")


def onnx_logits(path: Path, inputs: np.ndarray) -> np.ndarray:
    """Run the exported file on the CPU provider (what every machine has)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: inputs.astype(np.float32)})[0]


@torch.no_grad()
def parity_check(
    model: nn.Module, path: Path, inputs: np.ndarray, atol: float = PARITY_ATOL
) -> float:
    """Max abs logit difference, ONNX Runtime vs PyTorch, on ``inputs``; raises above ``atol``."""
    reference = model.eval().cpu()(torch.from_numpy(inputs.astype(np.float32))).numpy()
    difference = float(np.abs(onnx_logits(path, inputs) - reference).max())
    if not difference <= atol:
        raise ParityError(f"ONNX vs PyTorch max abs diff {difference:.3g} > {atol}")
    return difference


@dataclass(frozen=True)
class ExportSpec:
    """What a manifest needs beyond the weights and the calibration."""

    name: str
    version: str
    classes: list[str]
    preprocessing: Preprocessing
    training: TrainingInfo
    description: str = ""


def export_model_dir(
    model: nn.Module,
    spec: ExportSpec,
    calibration: Calibration,
    parity_inputs: np.ndarray,
    models_root: Path,
    metrics: dict[str, Any] | None = None,
) -> tuple[Path, float]:
    """Export, check parity, and write ``<models_root>/<name>/<version>/``. Returns (dir, diff)."""
    target = models_root / spec.name / spec.version
    target.mkdir(parents=True, exist_ok=True)
    onnx_path = target / ONNX_FILENAME
    channels = 1 if spec.preprocessing.color_mode == "grayscale" else 3
    input_shape = (channels, spec.preprocessing.height, spec.preprocessing.width)
    export_onnx(model, onnx_path, input_shape)
    difference = parity_check(model, onnx_path, parity_inputs)
    golden_inputs = parity_inputs[:GOLDEN_ITEMS].astype(np.float32)
    manifest = Manifest(
        name=spec.name,
        version=spec.version,
        description=spec.description,
        created_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        classes=spec.classes,
        input=InputSpec(name=INPUT_NAME, shape=input_shape),
        output=OutputSpec(name=OUTPUT_NAME, num_classes=len(spec.classes)),
        preprocessing=spec.preprocessing,
        training=spec.training,
        calibration=calibration,
        metrics={**(metrics or {}), "onnx_parity_max_abs_diff": difference},
        onnx=OnnxFile(
            sha256=sha256_of(onnx_path), size_bytes=onnx_path.stat().st_size, opset=OPSET
        ),
        golden=GoldenSample(
            inputs=golden_inputs.reshape(len(golden_inputs), -1).tolist(),
            logits=onnx_logits(onnx_path, golden_inputs).tolist(),
        ),
    )
    write_manifest(manifest, target / MANIFEST_FILENAME)
    return target, difference
