"""Tiny valid model directories for tests: an ONNX graph made with ``onnx.helper`` and its manifest.

The graph is ``Flatten -> Gemm``: logits for a (C, H, W) float32 input, with a dynamic batch axis.
The manifest is complete and consistent: sha256 and size of the ONNX file, calibration thresholds
and quantiles computed with :mod:`service.scores` from the model's own logits on random inputs,
and a golden sample whose logits ONNX Runtime must reproduce. No torch, no training code.

    directory = build_model_dir(tmp_path / "models", name="tiny", version="1")
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

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
    ScoreCalibration,
    TrainingInfo,
    write_manifest,
)
from service.scores import (
    DIRECTIONS,
    ScoreName,
    calibrate_threshold,
    compute_scores,
    score_quantiles,
)

OPSET = 17
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


@dataclass(frozen=True)
class TinyModel:
    """The weights of a Flatten -> Gemm classifier, with a numpy twin of its forward pass."""

    weight: NDArray[np.float32]  # (classes, features)
    bias: NDArray[np.float32]  # (classes,)
    input_shape: tuple[int, int, int]

    @classmethod
    def random(
        cls, input_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10, seed: int = 0
    ) -> TinyModel:
        rng = np.random.default_rng(seed)
        features = int(np.prod(input_shape))
        weight = rng.normal(0.0, 3.0 / np.sqrt(features), (num_classes, features))
        bias = rng.normal(0.0, 0.5, num_classes)
        return cls(weight.astype(np.float32), bias.astype(np.float32), input_shape)

    def logits(self, inputs: NDArray[np.float32]) -> NDArray[np.float32]:
        """What the ONNX graph computes, in float64 then rounded (reference for tests)."""
        flat = inputs.reshape(len(inputs), -1).astype(np.float64)
        return (flat @ self.weight.T.astype(np.float64) + self.bias).astype(np.float32)

    def onnx_model(self, input_name: str = "input", output_name: str = "logits") -> onnx.ModelProto:
        num_classes = self.weight.shape[0]
        graph = helper.make_graph(
            nodes=[
                helper.make_node("Flatten", [input_name], ["flat"], axis=1),
                helper.make_node("Gemm", ["flat", "weight", "bias"], [output_name], transB=1),
            ],
            name="tiny",
            inputs=[
                helper.make_tensor_value_info(
                    input_name, TensorProto.FLOAT, ["batch", *self.input_shape]
                )
            ],
            outputs=[
                helper.make_tensor_value_info(
                    output_name, TensorProto.FLOAT, ["batch", num_classes]
                )
            ],
            initializer=[
                numpy_helper.from_array(self.weight, "weight"),
                numpy_helper.from_array(self.bias, "bias"),
            ],
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="model_factory"
        )
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


def random_inputs(
    count: int, shape: tuple[int, int, int] = (1, 28, 28), seed: int = 1
) -> NDArray[np.float32]:
    """Preprocessed-looking inputs: roughly what normalized images look like."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, (count, *shape)).astype(np.float32)


def make_manifest(
    model: TinyModel,
    onnx_bytes: bytes,
    *,
    name: str = "tiny",
    version: str = "1",
    classes: list[str] | None = None,
    target_tpr: float = 0.95,
    default_score: ScoreName = ScoreName.MSP,
    calibration_samples: int = 2000,
    golden_items: int = 4,
    **overrides: Any,
) -> Manifest:
    """A manifest consistent with ``model`` and its serialized bytes."""
    channels, height, width = model.input_shape
    num_classes = model.weight.shape[0]
    classes = classes or (
        FASHION_CLASSES if num_classes == 10 else [f"class_{i}" for i in range(num_classes)]
    )
    calibration_logits = model.logits(random_inputs(calibration_samples, model.input_shape, seed=2))
    scores = compute_scores(calibration_logits)
    golden_inputs = random_inputs(golden_items, model.input_shape, seed=3)
    fields: dict[str, Any] = {
        "name": name,
        "version": version,
        "description": "tiny Flatten+Gemm test model",
        "created_at": "2025-01-01T00:00:00Z",
        "classes": classes,
        "input": InputSpec(shape=model.input_shape),
        "output": OutputSpec(num_classes=num_classes),
        "preprocessing": Preprocessing(
            color_mode="grayscale" if channels == 1 else "rgb",
            height=height,
            width=width,
            mean=(0.2860,) * channels,
            std=(0.3530,) * channels,
        ),
        "training": TrainingInfo(
            loss="logitnorm", tau=0.04, architecture="tiny_gemm", dataset="random", seed=0, epochs=0
        ),
        "calibration": Calibration(
            num_samples=calibration_samples,
            default_score=default_score,
            scores={
                score: ScoreCalibration(
                    direction=DIRECTIONS[score],
                    target_tpr=target_tpr,
                    threshold=calibrate_threshold(values, target_tpr, score),
                    quantiles=score_quantiles(values),
                )
                for score, values in scores.items()
            },
        ),
        "metrics": {"accuracy": 0.5, "auroc": {"msp": 0.7}},
        "onnx": OnnxFile(
            sha256=hashlib.sha256(onnx_bytes).hexdigest(), size_bytes=len(onnx_bytes), opset=OPSET
        ),
        "golden": GoldenSample(
            inputs=golden_inputs.reshape(golden_items, -1).tolist(),
            logits=model.logits(golden_inputs).tolist(),
            atol=1e-4,
        ),
    }
    fields.update(overrides)
    return Manifest(**fields)


def build_model_dir(
    root: Path,
    *,
    name: str = "tiny",
    version: str = "1",
    seed: int = 0,
    input_shape: tuple[int, int, int] = (1, 28, 28),
    num_classes: int = 10,
    **manifest_overrides: Any,
) -> Path:
    """Write ``root/<name>/<version>/{model.onnx, manifest.json}``; returns that directory."""
    model = TinyModel.random(input_shape, num_classes, seed)
    onnx_bytes = model.onnx_model().SerializeToString()
    directory = root / name / version
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ONNX_FILENAME).write_bytes(onnx_bytes)
    manifest = make_manifest(model, onnx_bytes, name=name, version=version, **manifest_overrides)
    write_manifest(manifest, directory / MANIFEST_FILENAME)
    return directory


def tiny_model_for(directory: Path) -> TinyModel:
    """The :class:`TinyModel` whose weights are stored in ``directory`` (for reference logits)."""
    model = onnx.load_model(str(directory / ONNX_FILENAME))
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    dims = model.graph.input[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value for d in dims[1:])
    assert len(shape) == 3
    return TinyModel(tensors["weight"], tensors["bias"], (shape[0], shape[1], shape[2]))
