"""The model manifest: the contract between training (which writes it) and serving (which reads it).

A model repository holds ``models/<name>/<version>/model.onnx`` and ``manifest.json`` beside it.
The manifest says everything the service needs to run the model without the training code: the
classes, the input tensor, how to turn an image into that tensor, the calibrated thresholds and the
score quantiles that let the service derive a threshold for any other target TPR.

This module is torch-free and is the only definition of the schema. Training builds a
:class:`Manifest` and writes it with :func:`write_manifest`; the service reads it with
:func:`read_manifest`, which rejects unknown fields and unknown schema versions.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.scores import DIRECTIONS, QUANTILE_LEVELS, Direction, ScoreName

SCHEMA_VERSION: Final = 1
MANIFEST_FILENAME = "manifest.json"
ONNX_FILENAME: Final = "model.onnx"

#: Model names and versions become URL path segments, metric labels and directory names, so they
#: are restricted to a small alphabet and never taken raw from a request to build a path.
MODEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
MODEL_VERSION_PATTERN = r"^[1-9][0-9]{0,8}$"

ModelName = Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
ModelVersion = Annotated[str, Field(pattern=MODEL_VERSION_PATTERN)]


class _Strict(BaseModel):
    """Unknown fields are errors: a typo in a manifest must not fall back to a default silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """The ONNX input tensor. ``shape`` excludes the dynamic batch axis."""

    name: str = "input"
    dtype: Literal["float32"] = "float32"
    layout: Literal["NCHW"] = "NCHW"
    shape: tuple[int, int, int] = Field(description="(channels, height, width) of one item")


class OutputSpec(_Strict):
    """The ONNX output tensor: raw logits of shape (batch, num_classes)."""

    name: str = "logits"
    num_classes: int = Field(gt=1)


class Preprocessing(_Strict):
    """How a decoded image becomes the input tensor: convert, resize, ``(x * scale - mean) / std``.

    ``mean`` and ``std`` have one entry per channel. Arrays sent preprocessed skip all of it.
    """

    color_mode: Literal["grayscale", "rgb"]
    height: int = Field(gt=0)
    width: int = Field(gt=0)
    resample: Literal["bilinear", "nearest", "bicubic"] = "bilinear"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @model_validator(mode="after")
    def _per_channel(self) -> Preprocessing:
        channels = 1 if self.color_mode == "grayscale" else 3
        if len(self.mean) != channels or len(self.std) != channels:
            raise ValueError(f"mean and std need {channels} entries for {self.color_mode}")
        if any(s <= 0 for s in self.std):
            raise ValueError("std entries must be positive")
        return self


class TrainingInfo(_Strict):
    """Where the weights came from; informational, shown by ``GET /models/{name}``."""

    loss: Literal["cross_entropy", "logitnorm", "isomax_plus"]
    tau: float | None = Field(default=None, description="LogitNorm temperature, None otherwise")
    architecture: str
    dataset: str
    seed: int
    epochs: int
    extra: dict[str, Any] = Field(default_factory=dict)


class ScoreCalibration(_Strict):
    """One score's calibrated threshold and the validation quantiles it was read from."""

    direction: Direction
    target_tpr: float = Field(gt=0.0, le=1.0)
    threshold: float
    quantiles: list[float] = Field(
        description="in-distribution validation score quantiles at levels 0, 0.001, ..., 1"
    )

    @model_validator(mode="after")
    def _grid(self) -> ScoreCalibration:
        if len(self.quantiles) != QUANTILE_LEVELS.size:
            raise ValueError(f"quantiles must have {QUANTILE_LEVELS.size} values")
        if any(b < a for a, b in zip(self.quantiles, self.quantiles[1:], strict=False)):
            raise ValueError("quantiles must be non-decreasing")
        return self


class Calibration(_Strict):
    """Thresholds for every score, from the held-out in-distribution validation split."""

    split: str = "validation"
    num_samples: int = Field(gt=0)
    energy_temperature: float = Field(default=1.0, gt=0.0)
    default_score: ScoreName = ScoreName.MSP
    scores: dict[ScoreName, ScoreCalibration]

    @model_validator(mode="after")
    def _all_scores(self) -> Calibration:
        missing = set(ScoreName) - set(self.scores)
        if missing:
            raise ValueError(f"calibration lacks scores: {sorted(missing)}")
        for name, calibration in self.scores.items():
            if calibration.direction is not DIRECTIONS[name]:
                raise ValueError(f"{name} direction must be {DIRECTIONS[name]}")
        return self


class OnnxFile(_Strict):
    """Integrity data for ``model.onnx``: checked before the file is parsed."""

    file: Literal["model.onnx"] = ONNX_FILENAME
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(gt=0)
    opset: int = Field(ge=17)


class GoldenSample(_Strict):
    """A few preprocessed inputs and the logits ONNX Runtime gave for them at export time.

    Training records ONNX Runtime's logits (CPU provider), after checking them against PyTorch's
    within the export's parity tolerance. The service runs them after loading and turns ready only
    if ONNX Runtime reproduces the logits within ``atol``: a cheap end-to-end check that the
    weights, the runtime and the manifest agree.
    """

    inputs: list[list[float]] = Field(description="flattened items in the input shape")
    logits: list[list[float]]
    atol: float = Field(default=1e-4, gt=0.0)


class Manifest(_Strict):
    """Everything the service knows about one model version."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: ModelName
    version: ModelVersion
    description: str = ""
    created_at: str = Field(description="ISO 8601 UTC time of export")
    classes: list[str] = Field(min_length=2)
    input: InputSpec
    output: OutputSpec
    preprocessing: Preprocessing
    training: TrainingInfo
    calibration: Calibration
    metrics: dict[str, Any] = Field(
        default_factory=dict, description="evaluation summary (accuracy, ECE, OOD metrics)"
    )
    onnx: OnnxFile
    golden: GoldenSample | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if self.output.num_classes != len(self.classes):
            raise ValueError("output.num_classes must equal the number of classes")
        channels = 1 if self.preprocessing.color_mode == "grayscale" else 3
        expected = (channels, self.preprocessing.height, self.preprocessing.width)
        if self.input.shape != expected:
            raise ValueError(
                f"input.shape {self.input.shape} disagrees with preprocessing {expected}"
            )
        return self


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so large files do not load whole."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(path: Path) -> Manifest:
    """Parse and validate a manifest file; raises ``pydantic.ValidationError`` when it is wrong."""
    return Manifest.model_validate_json(path.read_bytes())


def write_manifest(manifest: Manifest, path: Path) -> None:
    """Write a manifest as indented JSON (reviewable in a diff)."""
    path.write_text(manifest.model_dump_json(indent=2) + "\n")
